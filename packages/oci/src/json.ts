// JSON from files a person or another tool wrote (a Docker config.json, an archive's index.json):
// a syntax error says where (line, column) and what kind of mistake it is, but never quotes the
// text around it, as JSON.parse's messages do — the file may hold a password.
import { type ParseError, parse, printParseErrorCode } from 'jsonc-parser';

export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(message);
    this.name = 'JsonSyntaxError';
  }
}

/** `InvalidSymbol` → `invalid symbol`. */
function words(code: string): string {
  return code.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

/**
 * JSON.parse, except that a syntax error is a JsonSyntaxError whose message is only
 * `not valid JSON (line L, column C: <kind of mistake>)`.
 */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    /* located below */
  }
  const errors: ParseError[] = [];
  parse(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  const first = errors[0];
  if (!first) throw new JsonSyntaxError('not valid JSON');
  const before = text.slice(0, first.offset);
  const line = before.split('\n').length;
  const column = first.offset - before.lastIndexOf('\n');
  throw new JsonSyntaxError(
    `not valid JSON (line ${line}, column ${column}: ${words(printParseErrorCode(first.error))})`,
    line,
    column,
  );
}
