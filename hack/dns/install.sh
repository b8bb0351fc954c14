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

# shellcheck source=hack/lib/apt-package.sh
source "$(dirname "$0")/../lib/apt-package.sh"
install_package knot knot.service

dir=$(find_knotd) || { log "knotd not found after installing knot"; exit 1; }
log "$("$dir/knotd" --version)"
echo "$dir"
