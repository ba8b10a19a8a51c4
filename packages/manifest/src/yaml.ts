/**
 * Reads YAML text into plain data while keeping the document, so that any path into the
 * data can be mapped back to a line and column. Every failure is returned as errors.
 */
import {
  type Alias,
  Composer,
  type CST,
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  Parser,
  visit,
  type YAMLError,
  type YAMLMap,
} from 'yaml';
import { finishErrors, formatPath, type ManifestError, type PathSegment } from './errors.ts';
import { textProblem } from './text.ts';

export interface LoadedYaml {
  file: string;
  text: string;
  doc: Document;
  lineCounter: LineCounter;
  /** The document as plain JS (mappings are objects with string keys). */
  data: unknown;
}

export type LoadResult = { ok: true; loaded: LoadedYaml } | { ok: false; errors: ManifestError[] };

const MAX_ALIAS_COUNT = 100;
/** Lists and mappings nested deeper than this are refused before they are built (LinuxKit's go below 10). */
export const MAX_DEPTH = 100;

function errorAt(
  file: string,
  lc: LineCounter,
  offset: number,
  path: readonly PathSegment[],
  message: string,
): ManifestError {
  const { line, col } = lc.linePos(Math.max(0, offset));
  return { file, line, col, path: formatPath(path), message };
}

/** The yaml library's message without its ` at line N, column M:` tail and code excerpt. */
function plainMessage(e: YAMLError): string {
  const first = e.message.split('\n')[0] ?? e.message;
  return first.replace(/ at line \d+, column \d+:?$/, '');
}

function syntaxMessage(e: YAMLError, text: string): string {
  switch (e.code) {
    case 'TAB_AS_INDENT':
      return 'tab character in indentation: YAML indents with spaces only';
    case 'BAD_INDENT': {
      const lineStart = text.lastIndexOf('\n', e.pos[0] - 1) + 1;
      if (text[lineStart] === '#') {
        return `${plainMessage(e)} (a comment at column 1 ends the block scalar above it: indent the line to keep it in the text)`;
      }
      return plainMessage(e);
    }
    default:
      return plainMessage(e);
  }
}

function scalarKey(pair: Pair): string | undefined {
  const k = pair.key;
  if (isScalar(k)) return String(k.value);
  if (k === null || k === undefined) return '';
  return undefined;
}

/** Problems the parser accepts but plain data cannot hold: complex keys, duplicates, bad aliases. */
function structuralErrors(file: string, lc: LineCounter, doc: Document): ManifestError[] {
  const errors: ManifestError[] = [];
  visit(doc, {
    Map(_key, map: YAMLMap) {
      const seen = new Map<string, Pair>();
      for (const pair of map.items) {
        const key = scalarKey(pair);
        const keyNode = pair.key as Node | null;
        const offset = keyNode?.range?.[0] ?? map.range?.[0] ?? 0;
        if (key === undefined) {
          errors.push(errorAt(file, lc, offset, [], 'mapping keys must be plain scalars, not lists or mappings'));
          continue;
        }
        if (key === '<<') continue; // merge key
        const first = seen.get(key);
        if (first) {
          const firstOffset = (first.key as Node | null)?.range?.[0];
          const where = firstOffset !== undefined ? ` (first defined at line ${lc.linePos(firstOffset).line})` : '';
          errors.push(errorAt(file, lc, offset, [], `duplicate key '${key}'${where}`));
        } else {
          seen.set(key, pair);
        }
      }
    },
    Alias(_key, alias: Alias) {
      if (alias.resolve(doc) === undefined) {
        errors.push(
          errorAt(
            file,
            lc,
            alias.range?.[0] ?? 0,
            [],
            `unknown alias *${alias.source} (define &${alias.source} before using it)`,
          ),
        );
      }
    },
  });
  return errors;
}

/** No content at all, e.g. after a trailing `---`. */
function isEmptyDocument(doc: Document): boolean {
  const c = doc.contents;
  if (c === null) return true;
  return isScalar(c) && c.value === null && (c.range?.[0] ?? 0) === (c.range?.[1] ?? 0);
}

/**
 * The offset of a list or mapping nested deeper than MAX_DEPTH in the syntax tree, found
 * without recursion (building documents from such a tree overflows the stack).
 */
function tooDeep(tokens: readonly CST.Token[]): number | undefined {
  const stack: Array<[CST.Token | null | undefined, number]> = tokens.map((t) => [t, 0]);
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [token, depth] = next;
    if (!token) continue;
    if (token.type === 'document') stack.push([token.value, depth]);
    else if (token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection') {
      if (depth >= MAX_DEPTH) return token.offset;
      for (const item of token.items) stack.push([item.key, depth + 1], [item.value, depth + 1]);
    }
  }
  return undefined;
}

/**
 * Parses exactly one YAML document. Empty text, several documents, syntax errors, text that is
 * too large or not plain text, and nesting deeper than MAX_DEPTH are errors.
 */
export function loadYaml(text: string, file: string): LoadResult {
  const problem = textProblem(text, file);
  if (problem) return { ok: false, errors: [problem] };
  const lineCounter = new LineCounter();
  try {
    const tokens = Array.from(new Parser(lineCounter.addNewLine).parse(text));
    const deep = tooDeep(tokens);
    if (deep !== undefined) {
      const message = `nested more than ${MAX_DEPTH} levels deep: Stele reads manifests up to that depth`;
      return { ok: false, errors: [errorAt(file, lineCounter, deep, [], message)] };
    }
    const composer = new Composer({
      keepSourceTokens: true,
      merge: true,
      uniqueKeys: false, // checked here, with a better message
    });
    const docs: Document[] = Array.from(composer.compose(tokens));
    const errors: ManifestError[] = [];

    const first = docs[0];
    if (first === undefined || (isEmptyDocument(first) && first.errors.length === 0 && docs.length === 1)) {
      return { ok: false, errors: [{ file, line: 1, col: 1, path: '', message: 'file is empty: no YAML content' }] };
    }

    for (const doc of docs) {
      let lastLine = -1;
      for (const e of [...doc.errors, ...doc.warnings]) {
        const pos = lineCounter.linePos(e.pos[0]);
        // After one syntax error, further ones on the same line are almost always echoes.
        if (pos.line === lastLine) continue;
        lastLine = pos.line;
        errors.push({ file, line: pos.line, col: pos.col, path: '', message: syntaxMessage(e, text) });
      }
    }

    const extra = docs.slice(1).filter((d) => !isEmptyDocument(d));
    const second = extra[0];
    if (second) {
      const offset = second.range?.[0] ?? 0;
      // Point at the `---` that starts the second document when there is one.
      const marker = text.lastIndexOf('---', offset);
      errors.push(
        errorAt(
          file,
          lineCounter,
          marker >= 0 ? marker : offset,
          [],
          `file holds ${extra.length + 1} YAML documents; one is allowed (LinuxKit would silently use only the first)`,
        ),
      );
    }
    if (errors.length > 0) return { ok: false, errors: finishErrors(errors) };

    const doc = first;
    const structural = structuralErrors(file, lineCounter, doc);
    if (structural.length > 0) return { ok: false, errors: finishErrors(structural) };

    const data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown;
    return { ok: true, loaded: { file, text, doc, lineCounter, data } };
  } catch (err) {
    // The parser and toJS throw on pathological input (alias bombs, extreme nesting).
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, errors: [{ file, line: 1, col: 1, path: '', message: `cannot read YAML: ${message}` }] };
  }
}

function findPair(map: YAMLMap, key: string, doc: Document, depth = 0): Pair | undefined {
  for (const pair of map.items) {
    if (scalarKey(pair) === key) return pair;
  }
  if (depth > 10) return undefined;
  // Keys that come from a `<<: *anchor` merge live in the anchored map.
  for (const pair of map.items) {
    if (scalarKey(pair) !== '<<') continue;
    const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
    for (const s of sources) {
      const target = isAlias(s) ? s.resolve(doc) : s;
      if (isMap(target)) {
        const found = findPair(target, key, doc, depth + 1);
        if (found) return found;
      }
    }
  }
  return undefined;
}

function deref(node: unknown, doc: Document): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}

/**
 * The source offset of the node at `path`: its key when `target` is 'key', else its value.
 * When the path does not exist (a missing key), the deepest node that does exist.
 */
export function offsetOf(loaded: LoadedYaml, path: readonly PathSegment[], target: 'key' | 'value' = 'value'): number {
  const { doc } = loaded;
  let node: unknown = doc.contents;
  let offset = (doc.contents as Node | null)?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i] as PathSegment;
    node = deref(node, doc);
    let next: unknown;
    let keyNode: unknown;
    if (isMap(node)) {
      const pair = findPair(node, String(seg), doc);
      if (pair) {
        next = pair.value;
        keyNode = pair.key;
      }
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg];
    } else if (isSeq(node) && /^\d+$/.test(String(seg))) {
      next = node.items[Number(seg)];
    }
    if (next === undefined && keyNode === undefined) return offset;
    const last = i === path.length - 1;
    const keyRange = (keyNode as Node | undefined)?.range;
    if (last && target === 'key' && keyRange) return keyRange[0];
    const valueRange = isPair(next) ? undefined : (next as Node | null)?.range;
    const emptyValue = valueRange !== undefined && valueRange !== null && valueRange[0] === valueRange[1];
    if (valueRange && !(emptyValue && keyRange)) offset = valueRange[0];
    else if (keyRange) offset = keyRange[0]; // `key:` with nothing after it
    node = next;
  }
  return offset;
}

/** The text of the plain scalar (a number, a word) at `path`, as written; undefined for anything else. */
export function plainScalarAt(loaded: LoadedYaml, path: readonly PathSegment[]): string | undefined {
  const offset = offsetOf(loaded, path);
  return /^[^\s,[\]{}#'"]+/.exec(loaded.text.slice(offset, offset + 64))?.[0];
}

export function positionOf(
  loaded: LoadedYaml,
  path: readonly PathSegment[],
  target: 'key' | 'value' = 'value',
): { line: number; col: number } {
  return loaded.lineCounter.linePos(offsetOf(loaded, path, target));
}

/** An error located at `path` in a loaded document. */
export function errorAtPath(
  loaded: LoadedYaml,
  path: readonly PathSegment[],
  message: string,
  target: 'key' | 'value' = 'value',
): ManifestError {
  const { line, col } = positionOf(loaded, path, target);
  return { file: loaded.file, line, col, path: formatPath(path), message };
}
