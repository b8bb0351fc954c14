#!/usr/bin/env bash
# Finds the control-plane binaries (kube-apiserver, etcd, kubectl side by side, the
# layout of envtest's assets) and prints their directory on the last stdout line: the
# value for KUBEBUILDER_ASSETS.
#
# Usage: hack/control-plane/assets.sh
#
# Where they come from, in this order:
#   1. KUBEBUILDER_ASSETS, when set (e.g. `setup-envtest use 1.36 -p path`);
#   2. the envtest bundle beside the checkout, ../shared/envtest/install.sh (or
#      DIGICERT_ENVTEST_DIR/install.sh), which unpacks them once into
#      ~/.cache/envtest/VERSION.
# Also installs, with apt, the few tools the control plane scripts use and a fresh
# machine may lack (openssl, curl, xz, flock/setsid).
set -euo pipefail

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
root=$(cd "$here/../.." && pwd)

log() { printf '[control-plane] %s\n' "$*" >&2; }

# "command package" pairs.
tools=("openssl openssl" "curl curl" "xz xz-utils" "flock util-linux" "setsid util-linux")
missing=()
for entry in "${tools[@]}"; do
  command -v "${entry%% *}" >/dev/null 2>&1 || missing+=("${entry#* }")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || true
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

check() {
  local dir=$1 f
  for f in kube-apiserver etcd kubectl; do
    [[ -x $dir/$f ]] || { log "$dir has no executable $f"; return 1; }
  done
}

if [[ -n ${KUBEBUILDER_ASSETS-} ]]; then
  dir=$(readlink -f "$KUBEBUILDER_ASSETS")
  check "$dir" || exit 1
  echo "$dir"
  exit 0
fi

bundle=${DIGICERT_ENVTEST_DIR:-$root/../shared/envtest}
if [[ -x $bundle/install.sh ]]; then
  dir=$("$bundle/install.sh" | tail -n 1)
  check "$dir" || exit 1
  echo "$dir"
  exit 0
fi

log "no Kubernetes test binaries: set KUBEBUILDER_ASSETS to a directory with kube-apiserver,"
log "etcd and kubectl (e.g. KUBEBUILDER_ASSETS=\$(setup-envtest use 1.36 -p path)), or put the"
log "envtest bundle at $bundle"
exit 1
