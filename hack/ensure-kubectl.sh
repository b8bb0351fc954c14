#!/usr/bin/env bash
# Makes sure kubectl is on PATH: the tests and the demo drive the API server with it.
# Most machines have one; otherwise Debian's own client (kubernetes-client, v1.20,
# the version of the test control plane) is installed.
set -euo pipefail
command -v kubectl >/dev/null 2>&1 && exit 0
echo "[kubectl] not found; installing Debian's kubernetes-client" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || true
apt-get -o DPkg::Lock::Timeout=600 install -y -qq kubernetes-client >&2
command -v kubectl >/dev/null
