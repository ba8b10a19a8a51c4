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
echo "== 2. validate the Swarm worker OS manifest and its fleet (all errors, file:line:col)"
stele validate fleets/swarm-worker/os.yml fleets/swarm-worker/prod/fleet.yml
echo "-- and what a broken file looks like (exit 1 expected):"
broken=$(mktemp -d)
trap 'rm -rf "$broken"' EXIT
printf 'services:\n  - name: sshd\n    image: linuxkit/sshd:abc\n    readonly: "yes"\n    privileged: true\n' >"$broken/os.yml"
if stele validate "$broken/os.yml"; then echo "demo: the broken manifest was accepted" >&2; exit 1; fi

echo
echo "== 3. packages → signed images → Swarm worker OS → qemu → docker info over ssh (takes a few minutes)"
pnpm exec tsx tools/demo.ts
