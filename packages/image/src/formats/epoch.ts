// The one timestamp every output carries. LinuxKit stamps everything with 2017-04-18T16:30:00Z;
// we do the same unless SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/)
// or an explicit option says otherwise.

/** LinuxKit's fixed modification time, 2017-04-18T16:30:00Z, in seconds since the Unix epoch. */
export const LINUXKIT_EPOCH = 1492533000;

/**
 * The build timestamp in seconds: `explicit` if given, else `$SOURCE_DATE_EPOCH`, else
 * LINUXKIT_EPOCH. A malformed SOURCE_DATE_EPOCH is an error, not silently ignored.
 */
export function sourceDateEpoch(explicit?: number, env: NodeJS.ProcessEnv = process.env): number {
  if (explicit !== undefined) return checkEpoch(explicit, 'sourceDateEpoch option');
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === '') return LINUXKIT_EPOCH;
  if (!/^\d+$/.test(raw))
    throw new Error(`SOURCE_DATE_EPOCH must be a whole number of seconds, got ${JSON.stringify(raw)}`);
  return checkEpoch(Number(raw), 'SOURCE_DATE_EPOCH');
}

function checkEpoch(n: number, what: string): number {
  // FAT dates start in 1980 and newc/VHD fields are 32 bits; keep inside what every format can hold.
  if (!Number.isInteger(n) || n < 315532800 || n > 0xffffffff) {
    throw new Error(`${what} must be an integer between 315532800 (1980-01-01) and 4294967295, got ${n}`);
  }
  return n;
}
