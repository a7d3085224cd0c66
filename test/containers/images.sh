#!/usr/bin/env bash
# The consumer image, built here without a Docker engine or an image registry:
#   images.sh tools   Debian's buildah, podman, runc and debootstrap (apt-get, as root)
#   images.sh base    a Debian rootfs (debootstrap, minbase) with the Node the tests pin (the npm
#                     `node` package of package.json, copied from node_modules) and npm, and the
#                     `node` user (uid/gid 1000, as in the official node images): NODE_IMAGE
#   images.sh app     the project's Dockerfile built on it (--build-arg NODE_IMAGE=...): APP_IMAGE
#   images.sh env     prints the podman/buildah wrapper settings (for the test)
# Everything is cached under $STATE_DIR/containers: the rootfs tarball (keyed by the Node and
# Debian versions), the image store (vfs), and the build's layers; `base` and `app` skip what
# is already there and current.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/stack/bin/lib.sh"

DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# npm inside the base image (the Dockerfile's build stage runs npm ci): the npm the lockfile is
# written with (lockfileVersion 3)
NPM_VERSION=11.19.1
NODE_VERSION=$(node -p "require('$ROOT/package.json').devDependencies.node")
CTR_DIR="$STATE_DIR/containers"
NODE_IMAGE="localhost/welcome-node:$NODE_VERSION-$DEBIAN_SUITE"
APP_IMAGE="localhost/welcome-consumers:dev"
# vfs: no overlay mounts needed; runc: crun refuses the hybrid cgroups here; cgroupfs: no systemd
# session; ulimits within the machine's hard limits (podman's defaults are refused)
STORE=(--root "$CTR_DIR/storage" --runroot "$CTR_DIR/runroot" --storage-driver vfs)
buildah_() { buildah "${STORE[@]}" "$@"; }

tools() {
  local missing=() cmd
  for cmd in buildah podman runc debootstrap; do command -v "$cmd" >/dev/null || missing+=("$cmd"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || fail "missing: ${missing[*]} (apt-get install ${missing[*]} as root)"
  step "installing Debian packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$LOGS/containers-apt.log" 2>&1 \
    || fail "apt-get install ${missing[*]} failed (see $LOGS/containers-apt.log)"
}

image_exists() { buildah_ inspect --type image "$1" >/dev/null 2>&1; }

base() {
  tools
  mkdir -p "$CTR_DIR"
  if image_exists "$NODE_IMAGE"; then ok "base image $NODE_IMAGE (cached)"; return 0; fi
  local node_bin="$ROOT/node_modules/node/bin/node" rootfs="$CTR_DIR/rootfs-$DEBIAN_SUITE" tarball="$CTR_DIR/rootfs-$DEBIAN_SUITE-node-$NODE_VERSION.tar"
  [ -x "$node_bin" ] || fail "no $node_bin: run make install first"
  [ "$("$node_bin" --version)" = "v$NODE_VERSION" ] || fail "$node_bin is $("$node_bin" --version), package.json pins $NODE_VERSION"
  if [ ! -f "$tarball" ]; then
    rm -rf "$rootfs"
    step "debootstrap $DEBIAN_SUITE (minbase) into $rootfs (log: $LOGS/containers-debootstrap.log)"
    debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$LOGS/containers-debootstrap.log" 2>&1 \
      || fail "debootstrap failed (see $LOGS/containers-debootstrap.log)"
    # the node user and group of the official images (the Dockerfile's USER node, compose, manifests: 1000)
    chroot "$rootfs" groupadd --gid 1000 node
    chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
    install -m 755 "$node_bin" "$rootfs/usr/local/bin/node"
    local pack
    pack=$(cd "$CTR_DIR" && npm pack "npm@$NPM_VERSION" --silent)
    mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
    tar -xzf "$CTR_DIR/$pack" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
    rm -f "$CTR_DIR/$pack"
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
    tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  step "importing $tarball as $NODE_IMAGE"
  local ctr
  ctr=$(buildah_ from scratch)
  buildah_ add "$ctr" "$tarball" / >/dev/null
  # This machine's network inspects TLS with its own CA (in the host's bundle, which the host's npm and
  # Node trust through NODE_EXTRA_CA_CERTS): the image made here trusts the same bundle, or npm ci
  # in the Dockerfile's build stage cannot reach the registry. A public node:*-slim needs none of this.
  buildah_ copy "$ctr" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
  buildah_ config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env NODE_VERSION="$NODE_VERSION" \
    --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt --cmd node "$ctr"
  buildah_ commit --rm --format docker "$ctr" "$NODE_IMAGE" >/dev/null
  ok "base image $NODE_IMAGE"
}

app() {
  base
  step "building $APP_IMAGE from the Dockerfile on $NODE_IMAGE (log: $LOGS/containers-build.log)"
  local t0=$SECONDS
  # --format docker keeps HEALTHCHECK; --layers caches each step (npm ci reruns only when the lockfile changed)
  buildah_ build --layers --format docker --network host --isolation chroot --ulimit nofile=20000:20000 \
    --build-arg "NODE_IMAGE=$NODE_IMAGE" -t "$APP_IMAGE" -f "$ROOT/Dockerfile" "$ROOT" >"$LOGS/containers-build.log" 2>&1 \
    || { tail -n 30 "$LOGS/containers-build.log" >&2; fail "image build failed (see $LOGS/containers-build.log)"; }
  ok "$APP_IMAGE built in $((SECONDS - t0)) s"
}

case ${1:-} in
  tools) tools ;;
  base) base ;;
  app) app ;;
  env) printf 'CTR_STORE=%s\nNODE_IMAGE=%s\nAPP_IMAGE=%s\n' "${STORE[*]}" "$NODE_IMAGE" "$APP_IMAGE" ;;
  *) fail "usage: images.sh tools|base|app|env" ;;
esac
