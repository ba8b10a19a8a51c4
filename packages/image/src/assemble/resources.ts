// runtime-spec LinuxResources (and the id mappings) from a manifest or label value, written with
// runtime-spec's JSON names in Go struct order. A field is looked up by its schema/JSON name or,
// ignoring case, by the lower-case spelling yaml.v3 would use (`blockio`, `kerneltcp`, `hostid`).

type Scalar = 'int' | 'uint' | 'bool' | 'string' | 'stringish';
interface Field {
  name: string;
  kind: Scalar | Shape | { list: Shape } | 'stringMap' | { map: Shape };
  /** Go field without omitempty (or not a pointer): always written, zero when absent. */
  always?: boolean;
}
interface Shape {
  fields: Field[];
}

const deviceCgroup: Shape = {
  fields: [
    { name: 'allow', kind: 'bool', always: true },
    { name: 'type', kind: 'string' },
    { name: 'major', kind: 'int' },
    { name: 'minor', kind: 'int' },
    { name: 'access', kind: 'string' },
  ],
};
const memory: Shape = {
  fields: [
    { name: 'limit', kind: 'int' },
    { name: 'reservation', kind: 'int' },
    { name: 'swap', kind: 'int' },
    { name: 'kernel', kind: 'int' },
    { name: 'kernelTCP', kind: 'int' },
    { name: 'swappiness', kind: 'uint' },
    { name: 'disableOOMKiller', kind: 'bool' },
    { name: 'useHierarchy', kind: 'bool' },
    { name: 'checkBeforeUpdate', kind: 'bool' },
  ],
};
const cpu: Shape = {
  fields: [
    { name: 'shares', kind: 'uint' },
    { name: 'quota', kind: 'int' },
    { name: 'burst', kind: 'uint' },
    { name: 'period', kind: 'uint' },
    { name: 'realtimeRuntime', kind: 'int' },
    { name: 'realtimePeriod', kind: 'uint' },
    { name: 'cpus', kind: 'string' },
    { name: 'mems', kind: 'string' },
    { name: 'idle', kind: 'int' },
  ],
};
const pids: Shape = { fields: [{ name: 'limit', kind: 'int', always: true }] };
const weightDevice: Shape = {
  fields: [
    { name: 'major', kind: 'int', always: true },
    { name: 'minor', kind: 'int', always: true },
    { name: 'weight', kind: 'uint' },
    { name: 'leafWeight', kind: 'uint' },
  ],
};
const throttleDevice: Shape = {
  fields: [
    { name: 'major', kind: 'int', always: true },
    { name: 'minor', kind: 'int', always: true },
    { name: 'rate', kind: 'uint', always: true },
  ],
};
const blockIO: Shape = {
  fields: [
    { name: 'weight', kind: 'uint' },
    { name: 'leafWeight', kind: 'uint' },
    { name: 'weightDevice', kind: { list: weightDevice } },
    { name: 'throttleReadBpsDevice', kind: { list: throttleDevice } },
    { name: 'throttleWriteBpsDevice', kind: { list: throttleDevice } },
    { name: 'throttleReadIOPSDevice', kind: { list: throttleDevice } },
    { name: 'throttleWriteIOPSDevice', kind: { list: throttleDevice } },
  ],
};
const hugepageLimit: Shape = {
  fields: [
    { name: 'pageSize', kind: 'stringish', always: true },
    { name: 'limit', kind: 'uint', always: true },
  ],
};
const interfacePriority: Shape = {
  fields: [
    { name: 'name', kind: 'string', always: true },
    { name: 'priority', kind: 'uint', always: true },
  ],
};
const network: Shape = {
  fields: [
    { name: 'classID', kind: 'uint' },
    { name: 'priorities', kind: { list: interfacePriority } },
  ],
};
const rdma: Shape = {
  fields: [
    { name: 'hcaHandles', kind: 'uint' },
    { name: 'hcaObjects', kind: 'uint' },
  ],
};
const resources: Shape = {
  fields: [
    { name: 'devices', kind: { list: deviceCgroup } },
    { name: 'memory', kind: memory },
    { name: 'cpu', kind: cpu },
    { name: 'pids', kind: pids },
    { name: 'blockIO', kind: blockIO },
    { name: 'hugepageLimits', kind: { list: hugepageLimit } },
    { name: 'network', kind: network },
    { name: 'rdma', kind: { map: rdma } },
    { name: 'unified', kind: 'stringMap' },
  ],
};
const idMapping: Shape = {
  fields: [
    { name: 'containerID', kind: 'uint', always: true },
    { name: 'hostID', kind: 'uint', always: true },
    { name: 'size', kind: 'uint', always: true },
  ],
};

export type Converted = { [key: string]: unknown };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function scalar(kind: Scalar, value: unknown, where: string): unknown {
  switch (kind) {
    case 'bool':
      if (typeof value !== 'boolean') throw new Error(`${where}: expected a boolean`);
      return value;
    case 'string':
      if (typeof value !== 'string') throw new Error(`${where}: expected a string`);
      return value;
    case 'stringish':
      if (typeof value !== 'string' && typeof value !== 'number') throw new Error(`${where}: expected a string`);
      return String(value);
    case 'int':
    case 'uint':
      if (typeof value !== 'number' || !Number.isInteger(value)) throw new Error(`${where}: expected an integer`);
      if (kind === 'uint' && value < 0) throw new Error(`${where}: expected a non-negative integer`);
      return value;
  }
}

function zero(kind: Field['kind']): unknown {
  if (kind === 'bool') return false;
  if (kind === 'string' || kind === 'stringish') return '';
  return 0;
}

function convertShape(shape: Shape, value: unknown, where: string): Converted {
  if (!isRecord(value)) throw new Error(`${where}: expected an object`);
  const used = new Set<string>();
  const out: Converted = {};
  for (const field of shape.fields) {
    const key =
      field.name in value
        ? field.name
        : Object.keys(value).find((k) => k.toLowerCase() === field.name.toLowerCase() && !used.has(k));
    const raw = key === undefined ? undefined : value[key];
    if (key !== undefined) used.add(key);
    const at = `${where}.${field.name}`;
    if (raw === undefined || raw === null) {
      if (field.always) out[field.name] = zero(field.kind);
      continue;
    }
    const kind = field.kind;
    if (typeof kind === 'string') {
      if (kind === 'stringMap') {
        if (!isRecord(raw)) throw new Error(`${at}: expected a map of strings`);
        const m: Record<string, string> = {};
        for (const k of Object.keys(raw).sort()) m[k] = scalar('string', raw[k], `${at}.${k}`) as string;
        if (Object.keys(m).length > 0) out[field.name] = m;
      } else {
        out[field.name] = scalar(kind, raw, at);
      }
    } else if ('list' in kind) {
      if (!Array.isArray(raw)) throw new Error(`${at}: expected a list`);
      const list = raw.map((item, i) => convertShape(kind.list, item, `${at}[${i}]`));
      if (list.length > 0) out[field.name] = list;
    } else if ('map' in kind) {
      if (!isRecord(raw)) throw new Error(`${at}: expected a map`);
      const m: Record<string, Converted> = {};
      for (const k of Object.keys(raw).sort()) m[k] = convertShape(kind.map, raw[k], `${at}.${k}`);
      if (Object.keys(m).length > 0) out[field.name] = m;
    } else {
      out[field.name] = convertShape(kind, raw, at);
    }
  }
  const unknown = Object.keys(value).filter((k) => !used.has(k));
  if (unknown.length > 0)
    throw new Error(`${where}: unknown field ${unknown.map((k) => JSON.stringify(k)).join(', ')}`);
  return out;
}

/** LinuxResources in runtime-spec JSON order; throws with a field path on a malformed value. */
export function convertResources(value: unknown, where = 'resources'): Converted {
  return convertShape(resources, value, where);
}

/** A list of LinuxIDMapping ({containerID, hostID, size}). */
export function convertIdMappings(value: unknown, where: string): Converted[] {
  if (!Array.isArray(value)) throw new Error(`${where}: expected a list`);
  return value.map((item, i) => convertShape(idMapping, item, `${where}[${i}]`));
}
