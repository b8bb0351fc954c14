#!/usr/bin/env bash
# Makes sure promtool (Prometheus's rule checker and rule unit-test runner, Debian
# package `prometheus`) is installed: the monitoring tests check and unit-test the
# chart's alerting rules and the dashboard's queries with it.
#
# Usage: hack/prometheus/install.sh   last stdout line = the path of promtool
#
# Quiet and quick when promtool is present. Otherwise it installs the package with
# apt-get (as root, or through sudo), keeping the package's own Prometheus server from
# starting: the tests never use it.
set -euo pipefail

log() { printf '[promtool] %s\n' "$*" >&2; }

if path=$(command -v promtool); then
  echo "$path"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { log "promtool is missing; install the package 'prometheus' as root"; exit 1; }
  sudo=(sudo)
fi
command -v apt-get >/dev/null || { log "promtool is missing and there is no apt-get: install Prometheus's promtool"; exit 1; }

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

log "installing the Debian package prometheus (for promtool)"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus >&2

# Only promtool is wanted; the server stays off.
if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
  "${sudo[@]}" systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi

path=$(command -v promtool) || { log "promtool not found after installing prometheus"; exit 1; }
log "$("$path" --version 2>&1 | head -n 1)"
echo "$path"
