// Asserts that no process started by the suite's peers is still alive and no network namespace
// of theirs is left; kills and deletes, and lists, any that is.
import { deleteLeftoverNamespace, leftoverNamespaces } from '../test/peers/src/netns.ts';
import { isAlive, leftovers } from '../test/peers/src/process.ts';

const runDir = process.argv[2];
if (!runDir) {
  console.error('usage: check-leftovers RUN_DIR');
  process.exit(2);
}
const left = leftovers(runDir);
const namespaces = leftoverNamespaces(runDir);
if (left.length === 0 && namespaces.length === 0) {
  console.log('no peer process or network namespace left');
  process.exit(0);
}
for (const p of left) {
  console.error(`left running: pid ${p.pid} (${p.what})`);
  try {
    process.kill(-p.pid, 'SIGKILL');
  } catch {
    if (isAlive(p.pid)) process.kill(p.pid, 'SIGKILL');
  }
}
for (const name of namespaces) {
  console.error(`left behind: network namespace ${name}`);
  try {
    deleteLeftoverNamespace(name, runDir);
  } catch (err) {
    console.error(`  could not delete it: ${(err as Error).message}`);
  }
}
process.exit(1);
