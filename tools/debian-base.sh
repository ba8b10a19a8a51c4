#!/bin/sh
# The Debian base image the packages in pkg/ build FROM (`debian:bookworm-slim`), made offline
# from Debian's own mirror — there is no Docker Hub here.
#
#   tools/debian-base.sh tarball
#       Makes (once) and prints the path of the cached rootfs tarball.
#   tools/debian-base.sh load REGISTRY_HOST [DOCKER_SOCKET]
#       Imports the tarball into that dockerd as REGISTRY_HOST/library/debian:bookworm-slim and
#       pushes it, so a dockerd started with `--registry-mirror http://REGISTRY_HOST` resolves
#       `FROM debian:bookworm-slim`. DOCKER_SOCKET defaults to /var/run/docker.sock. Prints the
#       pushed image's digest reference.
#
# Environment: SUITE (bookworm), VARIANT (minbase), MIRROR (http://deb.debian.org/debian),
# SECURITY_MIRROR (http://deb.debian.org/debian-security), TAG (SUITE-slim),
# STELE_TOOLS (<repo>/.stele-tools). Needs root, debootstrap, tar, flock and the docker CLI.
#
# The cache is keyed by suite, variant and architecture: .stele-tools/debian-base/<key>.tar.
# debootstrap runs once; concurrent callers wait on a lock; files are written under a temp name
# and renamed, so a killed run leaves no half-made tarball behind.
set -eu

SUITE=${SUITE:-bookworm}
VARIANT=${VARIANT:-minbase}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
TAG=${TAG:-$SUITE-slim}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${STELE_TOOLS:-$ROOT/.stele-tools}
ARCH=$(dpkg --print-architecture)
KEY=$SUITE-$VARIANT-$ARCH
CACHE=$TOOLS/debian-base
TARBALL=$CACHE/$KEY.tar

die() { echo "debian-base: $*" >&2; exit 1; }
log() { echo "debian-base: $*" >&2; }

# Trim what a container base does not need, the way Debian's slim images do: no docs, man pages
# or locales from later installs either (dpkg path excludes), no apt caches or package lists.
slim() {
	dir=$1
	cat >"$dir/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
	mkdir -p "$dir/etc/dpkg/dpkg.cfg.d" "$dir/etc/apt/apt.conf.d"
	cat >"$dir/etc/dpkg/dpkg.cfg.d/stele-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
	cat >"$dir/etc/apt/apt.conf.d/stele-slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
	find "$dir/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
	rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/* \
		"$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin "$dir"/var/lib/apt/lists/* \
		"$dir"/var/log/* "$dir"/tmp/* "$dir"/root/.bash_history
	# Per-machine identity must not be baked into an image.
	: >"$dir/etc/machine-id"
	rm -f "$dir/var/lib/dbus/machine-id"
}

make_tarball() {
	[ "$(id -u)" = 0 ] || die "must run as root (debootstrap)"
	command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install debootstrap"
	mkdir -p "$CACHE"
	work=$(mktemp -d "$CACHE/.work-$KEY.XXXXXX")
	trap 'rm -rf "$work"' EXIT INT TERM
	log "debootstrap --variant=$VARIANT $SUITE from $MIRROR (once; ~1 min)"
	debootstrap --variant="$VARIANT" --arch="$ARCH" "$SUITE" "$work/rootfs" "$MIRROR" >"$work/log" 2>&1 ||
		{ tail -20 "$work/log" >&2; die "debootstrap failed (log above)"; }
	slim "$work/rootfs"
	# Stable order and numeric owners; file times stay those of the packages.
	tar --sort=name --numeric-owner --xattrs -C "$work/rootfs" -cf "$work/rootfs.tar" .
	mv "$work/rootfs.tar" "$TARBALL.tmp"
	mv "$TARBALL.tmp" "$TARBALL"
	rm -rf "$work"
	trap - EXIT INT TERM
	log "wrote $TARBALL ($(du -h "$TARBALL" | cut -f1))"
}

tarball() {
	mkdir -p "$CACHE"
	[ -s "$TARBALL" ] && return 0
	# One maker at a time; the others find the tarball when the lock is released.
	exec 9>"$CACHE/$KEY.lock"
	flock 9
	[ -s "$TARBALL" ] || make_tarball
	exec 9>&-
}

load() {
	registry=${1:?usage: $0 load REGISTRY_HOST [DOCKER_SOCKET]}
	socket=${2:-/var/run/docker.sock}
	ref=$registry/library/debian:$TAG
	tarball
	export DOCKER_HOST=unix://$socket
	log "import $TARBALL as $ref via $socket"
	docker import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		"$TARBALL" "$ref" >/dev/null
	docker push "$ref" >/dev/null
	docker image inspect --format '{{index .RepoDigests 0}}' "$ref"
}

case ${1:-} in
tarball) tarball && echo "$TARBALL" ;;
load) shift && load "$@" ;;
*) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2 && exit 2 ;;
esac
