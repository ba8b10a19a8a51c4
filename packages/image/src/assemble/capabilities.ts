// The capabilities LinuxKit knows, in kernel number order (CAP_CHOWN = 0 … CAP_CHECKPOINT_RESTORE
// = 40). `capabilities: [all]` expands to this list, in this order. The list itself lives with the
// manifest checks, which validate capability names before a build starts.
import { CAPABILITIES } from '@stele/manifest';

export const ALL_CAPABILITIES: readonly string[] = CAPABILITIES;

const KNOWN = new Set(ALL_CAPABILITIES);

export function isKnownCapability(name: string): boolean {
  return KNOWN.has(name);
}
