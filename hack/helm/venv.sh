#!/usr/bin/env bash
# Creates (once) a Python venv with the pinned PyPI packages that hack/helm/helm.py
# needs: helm-python-sdk (the Helm v4 Go SDK behind a C ABI, no helm binary).
#
# Usage:
#   hack/helm/venv.sh               create if needed; last stdout line = the venv's python
#   hack/helm/venv.sh --print-path  print that python path; exit 0 if it exists, 3 if not
#
# The venv lives outside the repository, keyed by a checksum of this script:
#   ${DIGICERT_OPERATOR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/digicert-operator}/helm-venv-<sha>/
# Environment: PYTHON (interpreter to build the venv from; default python3).
set -euo pipefail

packages=(
  helm-python-sdk==0.2.2
)

script_path=$(readlink -f "${BASH_SOURCE[0]}")
script_sha=$(sha256sum "$script_path" | cut -c1-12)
cache_root=${DIGICERT_OPERATOR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/digicert-operator}
venv="$cache_root/helm-venv-$script_sha"
py="$venv/bin/python"

log() { printf '[helm venv] %s\n' "$*" >&2; }

if [[ ${1-} == --print-path ]]; then
  echo "$py"
  [[ -f $venv/.complete ]] || exit 3
  exit 0
elif [[ $# -gt 0 ]]; then
  echo "usage: $0 [--print-path]" >&2
  exit 2
fi

if [[ -f $venv/.complete ]]; then
  echo "$py"
  exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/helm-venv.lock"
flock 9
if [[ -f $venv/.complete ]]; then
  echo "$py"
  exit 0
fi

python=${PYTHON:-python3}
command -v "$python" >/dev/null || { log "$python not found"; exit 1; }
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  log "installing python3-venv"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || true
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3-venv >&2
  python=python3
fi

log "creating $venv"
rm -rf "$venv"
"$python" -m venv "$venv"
"$py" -m pip install -q --disable-pip-version-check --no-input "${packages[@]}" >&2 9>&-
"$py" -c 'import helm_python; helm_python.helm_c_version()'
touch "$venv/.complete"
log "ready"
echo "$py"
