#!/usr/bin/env bash
# Writes the cert-manager CRDs (CertificateRequest, Certificate) the tests install on
# the API server, derived from the k8s-crds-cert-manager crate's types.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/crates/digicert-operator/tests/fixtures/cert-manager-crds.yaml"
cargo run --quiet --release --manifest-path "$root/hack/cert-manager-crds/Cargo.toml" >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
