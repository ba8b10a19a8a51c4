/**
 * LinuxKit reads build.yml with Go's yaml.v3 straight into typed structs, which differs from
 * reading plain data in two ways that real build.yml files rely on:
 *  - a key with an empty value (`arches:`) leaves the field unset;
 *  - a plain scalar in a string field keeps its source text (`mode: 0666` is the string "0666").
 * `goDecode` applies both to plain data, guided by the zod schema the data is meant for.
 */
import { isMap, isScalar, isSeq, type Node, type Scalar } from 'yaml';
import type { z } from 'zod';

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

/** Looks through wrappers (optional, default, pipe…) to the schema that decides the type. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let i = 0; i < 20; i++) {
    const def = defOf(s);
    const next = def.innerType ?? (def.type === 'pipe' ? def.in : undefined);
    if (!next) return s;
    s = next;
  }
  return s;
}

function scalarText(node: unknown, value: unknown): string {
  if (isScalar(node)) {
    const source = (node as Scalar).source;
    if (typeof source === 'string') return source;
  }
  return String(value);
}

/** Like `obj[key] = value`, but `__proto__` becomes an ordinary key (as in the YAML). */
function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

export function goDecode(schema: z.ZodType, data: unknown, node: Node | null | undefined): unknown {
  const s = unwrap(schema);
  const def = defOf(s);
  switch (def.type) {
    case 'string':
      return typeof data === 'number' || typeof data === 'boolean' ? scalarText(node, data) : data;
    case 'object': {
      if (data === null || typeof data !== 'object' || Array.isArray(data) || !isMap(node)) return data;
      const out: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
        if (value === null) continue; // Go leaves the field at its zero value
        const child = def.shape && Object.hasOwn(def.shape, key) ? def.shape[key] : undefined;
        if (!child) {
          setOwn(out, key, value); // unknown: the schema reports it
          continue;
        }
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
        setOwn(out, key, goDecode(child, value, pair?.value as Node | null | undefined));
      }
      return out;
    }
    case 'array': {
      if (!Array.isArray(data) || !isSeq(node) || !def.element) return data;
      const element = def.element;
      return data.map((item, i) => goDecode(element, item, node.items[i] as Node | undefined));
    }
    case 'record': {
      if (data === null || typeof data !== 'object' || Array.isArray(data) || !isMap(node) || !def.valueType) {
        return data;
      }
      const valueType = def.valueType;
      const out: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
        setOwn(out, key, goDecode(valueType, value, pair?.value as Node | undefined));
      }
      return out;
    }
    default:
      return data;
  }
}
