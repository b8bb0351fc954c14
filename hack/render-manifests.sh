#!/usr/bin/env bash
# Copies the CRD (crds/digicertorders.yaml) into the chart, then renders
# charts/digicert-operator with its default values (release and namespace
# digicert-operator) into plain manifests, so that `kubectl apply -f deploy/` installs
# what the chart installs by default: the Namespace, the CRD, and the chart's objects.
# Tests fail when the chart's CRD or deploy/digicert-operator.yaml is stale.
#
# Usage: hack/render-manifests.sh            copy the CRD, write deploy/digicert-operator.yaml
#        hack/render-manifests.sh OUTPUT     only render, into OUTPUT
# Environment: DIGICERT_TEST_PYTHON, the Helm venv's python (default: hack/helm/venv.sh makes it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ $# -eq 0 ]]; then
  cp "$root/crds/digicertorders.yaml" "$root/charts/digicert-operator/crds/digicertorders.yaml"
fi
out=${1:-$root/deploy/digicert-operator.yaml}
name=digicert-operator
namespace=digicert-operator

py=${DIGICERT_TEST_PYTHON:-$("$root/hack/helm/venv.sh" | tail -n 1)}
rendered=$("$py" "$root/hack/helm/helm.py" template "$name" "$root/charts/digicert-operator" \
  --namespace "$namespace" --include-crds)

tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
{
  cat <<HEADER
# digicert-operator: the Helm chart charts/digicert-operator rendered with its default
# values by hack/render-manifests.sh; do not edit. Install with
#   kubectl apply -f deploy/
# (Kubernetes 1.33 or newer), then create the API key Secret
# (deploy/examples/api-key-secret.yaml).
---
apiVersion: v1
kind: Namespace
metadata:
  name: $namespace
  labels:
    app.kubernetes.io/name: digicert-operator
    app.kubernetes.io/part-of: digicert-operator
    pod-security.kubernetes.io/enforce: restricted
HEADER
  # Blank lines before a document separator (left by the templates) go.
  printf '%s\n' "$rendered" | awk '
    /^[[:space:]]*$/ { blank = blank $0 "\n"; next }
    /^---$/ { blank = "" }
    { printf "%s%s\n", blank, $0; blank = "" }'
} >"$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out" >&2
