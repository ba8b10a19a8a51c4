// Entry point Nx loads (nx.json "plugins"). Nx requires plugins as CommonJS; tsx compiles the
// TypeScript sources on the fly, so no @swc-node/register or ts-node is needed at the root.
const { require: tsxRequire } = require('tsx/cjs/api');

module.exports = tsxRequire('./src/index.ts', __filename);
