import type { Id, IdMap, OsManifest } from './types.ts';

/** The first id LinuxKit hands out to a container name. */
export const FIRST_CONTAINER_ID = 100;

/**
 * LinuxKit's named ids: every onboot, then onshutdown, then services container gets the next
 * number from 100 up, usable by its name as a uid or gid (in `uid`, `gid`, `additionalGids` and in
 * `files`). A name used twice keeps the later number, as a map assignment would.
 */
export function containerIdMap(manifest: Pick<OsManifest, 'onboot' | 'onshutdown' | 'services'>): Map<string, number> {
  const ids = new Map<string, number>();
  let next = FIRST_CONTAINER_ID;
  for (const list of [manifest.onboot, manifest.onshutdown, manifest.services]) {
    for (const image of list ?? []) ids.set(image.name, next++);
  }
  return ids;
}

/**
 * A uid or gid as a number: absent → 0; a number as is; "" and "root" → 0; any other string must be
 * a name in `ids` (a numeric string is a name too, as in LinuxKit). Returns a message on failure.
 */
export function resolveId(
  value: Id | null | undefined,
  ids: IdMap,
): { ok: true; id: number } | { ok: false; message: string } {
  if (value === null || value === undefined) return { ok: true, id: 0 };
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      return { ok: false, message: `${value} is not a valid id (an integer from 0 to 4294967295)` };
    }
    return { ok: true, id: value };
  }
  if (typeof value !== 'string')
    return { ok: false, message: 'bad type for uid or gid: expected a string or an integer' };
  if (value === '' || value === 'root') return { ok: true, id: 0 };
  const id = ids.get(value);
  if (id === undefined) {
    const known = [...ids.keys()];
    const hint = known.length > 0 ? ` (known names: root, ${known.join(', ')})` : ' (only "root" is known)';
    return { ok: false, message: `cannot find id: ${value}${hint}` };
  }
  return { ok: true, id };
}
