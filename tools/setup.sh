#!/usr/bin/env bash
# Idempotent set-up: installs only what is missing, then the workspace's npm dependencies.
#   - Debian packages the real peers and image formats need (apt-get, when root)
#   - pnpm (the version pinned in package.json's packageManager)
#   - pnpm install
# Prints what it installed. Safe to run again: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

# Debian packages: the peers of the end-to-end suites (see ../shared/PEERS.md) and host tools
# behind the image-format port.
APT_PACKAGES=(
  docker.io docker-registry skopeo
  qemu-system-x86 qemu-utils xorriso isolinux syslinux-common mtools dosfstools
  grub-efi-amd64-bin grub-pc-bin ovmf cpio busybox-static linux-image-amd64
  golang-go golang-github-vmware-govmomi-dev golang-github-containers-image-dev
  debootstrap iproute2 qemu-user-static apache2-utils openssl openssh-client
  python3 util-linux procps git
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing Debian packages (run as root, or install them): ${missing[*]}"
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  t0=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/stele-apt.log 2>&1 || {
    tail -30 /tmp/stele-apt.log >&2
    exit 1
  }
  log "Debian packages installed in $((SECONDS - t0)) s"
else
  log "Debian packages: all present"
fi

# moto (AWS emulator) is preinstalled in python3 on these machines; elsewhere pip can add it.
if ! python3 -c 'import moto.server' 2>/dev/null; then
  log "installing moto[server] with pip"
  python3 -m pip install --quiet 'moto[server]' || log "could not install moto; the AWS end-to-end tests will fail"
fi

want_pnpm=$(node -p "require('./package.json').packageManager.split('@')[1]")
if [[ "$(pnpm --version 2>/dev/null || true)" != "$want_pnpm" ]]; then
  log "installing pnpm@$want_pnpm"
  npm install -g --silent "pnpm@$want_pnpm" >/dev/null
fi

if [[ -n "${CI:-}" ]]; then
  pnpm install --frozen-lockfile --reporter=append-only 2>&1 | tail -3 >&2
else
  pnpm install --reporter=append-only 2>&1 | tail -3 >&2
fi
log "ready: $(node --version), pnpm $(pnpm --version)"
