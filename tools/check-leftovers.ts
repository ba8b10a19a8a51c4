// Asserts that no process started by the suite's peers is still alive; kills and lists any that is.
import { isAlive, leftovers } from '../test/peers/src/process.ts';

const runDir = process.argv[2];
if (!runDir) {
  console.error('usage: check-leftovers RUN_DIR');
  process.exit(2);
}
const left = leftovers(runDir);
if (left.length === 0) {
  console.log('no peer process left running');
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
process.exit(1);
