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

# shellcheck source=hack/lib/apt-package.sh
source "$(dirname "$0")/../lib/apt-package.sh"
install_package prometheus prometheus.service

path=$(command -v promtool) || { log "promtool not found after installing prometheus"; exit 1; }
log "$("$path" --version 2>&1 | head -n 1)"
echo "$path"
