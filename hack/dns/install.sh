#!/usr/bin/env bash
# Makes sure knotd and knotc (Knot DNS, Debian package `knot`) are installed: the DNS
# tests run an authoritative server of their own (tests/support/dns.rs) as a child
# process with its own configuration, on a loopback port.
#
# Usage: hack/dns/install.sh   last stdout line = the directory holding knotd
#
# Quiet and quick when knot is present. Otherwise it installs the package with
# apt-get (as root, or through sudo), keeping the package's own service from
# starting: the tests never use it, and it would take port 53.
set -euo pipefail

log() { printf '[knot] %s\n' "$*" >&2; }

find_knotd() {
  local dir
  for dir in /usr/sbin /usr/bin /usr/local/sbin; do
    if [[ -x $dir/knotd && -x $dir/knotc ]]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

if dir=$(find_knotd); then
  echo "$dir"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { log "knot is missing; install the package 'knot' as root"; exit 1; }
  sudo=(sudo)
fi
command -v apt-get >/dev/null || { log "knot is missing and there is no apt-get: install Knot DNS (knotd, knotc)"; exit 1; }

# A policy-rc.d that forbids starting services while the package installs (unless the
# system already has one, e.g. in a container image).
policy=/usr/sbin/policy-rc.d
own_policy=false
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  own_policy=true
fi
cleanup() { if $own_policy; then "${sudo[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

log "installing the Debian package knot"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends knot >&2

# The tests start knotd themselves; the system service stays off.
if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
  "${sudo[@]}" systemctl disable --now knot.service >/dev/null 2>&1 || true
fi

dir=$(find_knotd) || { log "knotd not found after installing knot"; exit 1; }
log "$("$dir/knotd" --version)"
echo "$dir"
