#!/usr/bin/env bash
# The whole test suite: set-up, lint, typecheck, every unit and end-to-end test (real peers),
# then a check that no process the suite started is still running.
set -uo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
bash tools/setup.sh || exit 1

run_dir=$(mktemp -d /tmp/stele-test-XXXXXX)
export STELE_PEERS_RUN_DIR="$run_dir"
export STELE_TOOLS_DIR="${STELE_TOOLS_DIR:-$PWD/.stele-tools}"
status=0

echo "== lint (biome)"
pnpm exec biome check . || status=1

echo "== typecheck (nx run-many -t build)"
pnpm exec nx run-many -t build --projects="@stele/*" --outputStyle=static || status=1

echo "== tests (vitest: unit + end-to-end)"
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json="$run_dir/vitest.json" "$@" || status=1

echo "== leftover processes"
pnpm exec tsx tools/check-leftovers.ts "$run_dir" || status=1

node tools/summary.mjs "$run_dir/vitest.json" || status=1
echo "test.sh: $((SECONDS - t0)) s wall, exit $status"
exit $status
