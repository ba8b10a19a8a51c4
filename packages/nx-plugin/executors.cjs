// Executor entry points for executors.json, loaded the same way as plugin.cjs.
const { require: tsxRequire } = require('tsx/cjs/api');

const { buildExecutor, fleetExecutor } = tsxRequire('./src/executor.ts', __filename);

module.exports = { build: buildExecutor, fleet: fleetExecutor };
