#!/usr/bin/env bash
# Finds the control-plane binaries (kube-apiserver, etcd, kubectl side by side, laid
# out like envtest's assets) and prints their directory on the last stdout line: the
# value for KUBEBUILDER_ASSETS.
#
# Usage: hack/control-plane/assets.sh
#
# Where they come from, in this order:
#   1. KUBEBUILDER_ASSETS, when set (e.g. `setup-envtest use 1.36 -p path`);
#   2. the bundle beside the checkout, ../shared/envtest (or DIGICERT_ENVTEST_DIR):
#      its install.sh unpacks version KUBE_TEST_VERSION (default v1.36.2) once into
#      ${XDG_CACHE_HOME:-$HOME/.cache}/envtest/VERSION and checks the sums; later calls
#      find a stamp there and take milliseconds.
# Also installs, with apt (as root, or with sudo), the few tools the control-plane
# scripts use and a fresh machine may lack (openssl, curl, xz, flock/setsid).
set -euo pipefail

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
root=$(cd "$here/../.." && pwd)
version=${KUBE_TEST_VERSION:-v1.36.2}

log() { printf '[control-plane] %s\n' "$*" >&2; }

# "command package" pairs.
tools=("openssl openssl" "curl curl" "xz xz-utils" "flock util-linux" "setsid util-linux" "sha256sum coreutils")
missing=()
for entry in "${tools[@]}"; do
  command -v "${entry%% *}" >/dev/null 2>&1 || missing+=("${entry#* }")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  as_root=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { log "not root and no sudo: install ${missing[*]} first"; exit 1; }
    as_root=(sudo -n)
  fi
  log "installing ${missing[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || true
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

check() {
  local dir=$1 f
  for f in kube-apiserver etcd kubectl; do
    [[ -x $dir/$f ]] || { log "$dir has no executable $f"; return 1; }
  done
}

if [[ -n ${KUBEBUILDER_ASSETS-} ]]; then
  dir=$(readlink -f -- "$KUBEBUILDER_ASSETS") || { log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS does not exist"; exit 1; }
  check "$dir" || exit 1
  echo "$dir"
  exit 0
fi

bundle=${DIGICERT_ENVTEST_DIR:-$root/../shared/envtest}
if [[ ! -x $bundle/install.sh ]]; then
  log "no Kubernetes test binaries: set KUBEBUILDER_ASSETS to a directory with kube-apiserver,"
  log "etcd and kubectl (e.g. KUBEBUILDER_ASSETS=\$(setup-envtest use 1.36 -p path)), or put the"
  log "envtest bundle at $bundle"
  exit 1
fi
if [[ ! -f $bundle/$version/SHA256SUMS ]]; then
  log "the bundle at $bundle has no $version (it has: $(cd "$bundle" && ls -d v*/ 2>/dev/null | tr -d / | xargs))"
  exit 1
fi
dest=${XDG_CACHE_HOME:-$HOME/.cache}/envtest/$version
# The stamp holds the sums it was checked against: a bundle with other binaries is
# unpacked again.
stamp=$dest/.checked
if ! cmp -s "$stamp" "$bundle/$version/SHA256SUMS" || ! check "$dest" 2>/dev/null; then
  mkdir -p "$dest"
  # Test processes start side by side: one unpacks, the others wait for it.
  exec 9>"$dest.lock"
  flock 9
  if ! cmp -s "$stamp" "$bundle/$version/SHA256SUMS" || ! check "$dest" 2>/dev/null; then
    log "unpacking Kubernetes $version test binaries into $dest"
    "$bundle/install.sh" "$version" "$dest" >/dev/null
    check "$dest" || exit 1
    cp "$bundle/$version/SHA256SUMS" "$stamp.tmp" && mv -f "$stamp.tmp" "$stamp"
  fi
  exec 9>&-
fi
echo "$dest"
