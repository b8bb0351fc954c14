#!/usr/bin/env bash
# Packs kubectl-digicert binaries as krew archives and writes their krew manifest.
#
#   hack/krew/package.sh VERSION URL_BASE OUT_DIR BINARY OS/ARCH [BINARY OS/ARCH ...]
#
# e.g. hack/krew/package.sh v0.1.0 https://example.org/releases/v0.1.0 out \
#        target/release/kubectl-digicert linux/amd64
# writes out/kubectl-digicert_linux_amd64.tar.gz and out/digicert.yaml (the manifest of
# plugins/krew/digicert.yaml with VERSION, and one platform per archive with its uri
# and sha256). Then: kubectl krew install --manifest=out/digicert.yaml \
#   --archive=out/kubectl-digicert_linux_amd64.tar.gz
set -euo pipefail

if [ $# -lt 5 ] || [ $(( ($# - 3) % 2 )) -ne 0 ]; then
  sed -n '2,10p' "$0" >&2
  exit 2
fi
version=$1 url_base=${2%/} out=$3
shift 3
case "$version" in
  v[0-9]*.[0-9]*.[0-9]*) ;;
  *) echo "error: VERSION must be a semantic version with a leading v, e.g. v0.1.0" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/../.." && pwd)
template="$root/plugins/krew/digicert.yaml"
mkdir -p "$out"

# The manifest up to its platforms, with the version; the template's comments stay out.
sed -n '/^apiVersion:/,/^  platforms:/p' "$template" | sed "s/^  version: VERSION$/  version: $version/" >"$out/digicert.yaml"

while [ $# -gt 0 ]; do
  binary=$1 platform=$2
  shift 2
  os=${platform%/*} arch=${platform#*/}
  case "$os/$arch" in
    linux/amd64 | linux/arm64 | darwin/amd64 | darwin/arm64) ;;
    *) echo "error: unsupported platform $platform (linux|darwin / amd64|arm64)" >&2; exit 2 ;;
  esac
  [ -x "$binary" ] || { echo "error: $binary is not an executable" >&2; exit 1; }
  stage=$(mktemp -d)
  cp "$binary" "$stage/kubectl-digicert"
  printf 'kubectl-digicert, the kubectl plugin of digicert-operator.\nLicensed under the Apache License, Version 2.0: https://www.apache.org/licenses/LICENSE-2.0\n' >"$stage/LICENSE"
  archive="kubectl-digicert_${os}_${arch}.tar.gz"
  tar -C "$stage" -czf "$out/$archive" kubectl-digicert LICENSE
  rm -rf "$stage"
  sha=$(sha256sum "$out/$archive" | cut -d' ' -f1)
  cat >>"$out/digicert.yaml" <<ENTRY
  - selector:
      matchLabels:
        os: $os
        arch: $arch
    uri: $url_base/$archive
    sha256: $sha
    bin: kubectl-digicert
    files:
    - from: kubectl-digicert
      to: .
    - from: LICENSE
      to: .
ENTRY
  echo "$out/$archive"
done
echo "$out/digicert.yaml"
