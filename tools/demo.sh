#!/usr/bin/env bash
# The main job, as far as it works today. Each stage prints what it does; stages that do not
# exist yet are named as such rather than faked.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
stele() { pnpm exec stele "$@"; }

echo "== 1. the toolchain"
stele --version
stele doctor

echo
echo "== not yet available: package builds, OS image assembly, fleet rollouts (see README: Status)"
