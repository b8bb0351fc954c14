#!/usr/bin/env bash
# Copies the CRDs (crds/*.yaml) into the chart, then renders
# charts/digicert-operator with its default values (release and namespace
# digicert-operator) into plain manifests that install what the chart installs by
# default: the Namespace, the CRDs, and the chart's objects. The image, which the chart
# requires, is REGISTRY/digicert-operator:<appVersion>: REGISTRY stands for the registry
# the image is pushed to, which an install puts in its place (README, "Install").
# Tests fail when the chart's CRDs or deploy/digicert-operator.yaml are stale.
#
# Usage: hack/render-manifests.sh            copy the CRDs, write deploy/digicert-operator.yaml
#        hack/render-manifests.sh OUTPUT     only render, into OUTPUT
# Environment: DIGICERT_TEST_PYTHON, the Helm venv's python (default: hack/helm/venv.sh makes it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ $# -eq 0 ]]; then
  rm -f "$root"/charts/digicert-operator/crds/*.yaml
  cp "$root"/crds/*.yaml "$root/charts/digicert-operator/crds/"
fi
out=${1:-$root/deploy/digicert-operator.yaml}
name=digicert-operator
namespace=digicert-operator

py=${DIGICERT_TEST_PYTHON:-$("$root/hack/helm/venv.sh" | tail -n 1)}
# The default DigicertAccount is not in the file: `kubectl apply -f deploy/` cannot
# create it in the same run as its CRD. deploy/examples/default-account.yaml is it.
rendered=$("$py" "$root/hack/helm/helm.py" template "$name" "$root/charts/digicert-operator" \
  --namespace "$namespace" --include-crds \
  --set image.repository=REGISTRY/digicert-operator \
  --set defaultAccount.create=false --set defaultAccount.name=digicert-operator \
  --set certManager.approverRBAC.create=true)

tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
{
  cat <<HEADER
# digicert-operator: the Helm chart charts/digicert-operator rendered with its default
# values by hack/render-manifests.sh; do not edit. The image is the Dockerfile's, which
# no public registry has: build it, push it to your registry, and install with that
# registry in place of REGISTRY (Kubernetes 1.33 or newer):
#   sed "s|REGISTRY/|\$REGISTRY/|" deploy/digicert-operator.yaml | kubectl apply -f -
# then create the API key Secret and the default DigicertAccount
# (deploy/examples/api-key-secret.yaml, default-account.yaml; see the README's "Install"
# and "Accounts").
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
