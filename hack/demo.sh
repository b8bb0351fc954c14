#!/usr/bin/env bash
# A local demo of the whole path, on this machine alone:
#   a Kubernetes API server (etcd + kube-apiserver of KUBEBUILDER_ASSETS, or of the
#   envtest bundle beside the checkout: hack/control-plane/assets.sh),
#   the CertCentral simulator with the example orders,
#   the operator,
#   the example DigicertOrders (RSA and ECDSA) applied with kubectl,
# then waits for them to be Ready and shows the certificates in their Secrets.
#
# Usage: hack/demo.sh [--keep]
#   --keep   leave everything running (Ctrl-C stops it) to explore with kubectl;
#            the KUBECONFIG to use is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

keep=false
[[ ${1-} == --keep ]] && keep=true

step() { printf '\n==> %s\n' "$*"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/digicert-operator-demo.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  hack/control-plane/stop.sh "$work/control-plane" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "building digicert-operator"
cargo build --locked --quiet
bin=target/debug/digicert-operator

step "starting a Kubernetes API server (etcd + kube-apiserver)"
KUBEBUILDER_ASSETS=$(hack/control-plane/assets.sh | tail -n 1)
export KUBEBUILDER_ASSETS
# kubectl of the server's version.
export PATH=$KUBEBUILDER_ASSETS:$PATH
hack/control-plane/start.sh "$work/control-plane" --owner-pid $$ >/dev/null
export KUBECONFIG=$work/control-plane/kubeconfig
kubectl version
command -v openssl >/dev/null || { echo "openssl is needed to show the certificates" >&2; exit 1; }

step "starting the CertCentral simulator (deploy/simulator/orders.yaml)"
"$bin" simulator --listen 127.0.0.1:0 --orders deploy/simulator/orders.yaml \
  --ca-bundle-out "$work/simulator-ca.pem" --ready-file "$work/simulator.json" \
  >"$work/simulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [[ -s $work/simulator.json ]] && break; sleep 0.1; done
[[ -s $work/simulator.json ]] || { cat "$work/simulator.log" >&2; exit 1; }
base_url=$(sed -E 's/.*"base_url":"([^"]+)".*/\1/' "$work/simulator.json")
echo "simulator: $base_url"

step "installing the CRDs, the API key Secret and the default account"
kubectl apply -f crds/
kubectl wait --for=condition=Established crd/digicertorders.digicert-operator.dev \
  crd/digicertaccounts.digicert-operator.dev --timeout=60s >/dev/null
kubectl create namespace digicert-operator
kubectl apply -f deploy/examples/api-key-secret.yaml
kubectl apply -f deploy/examples/default-account.yaml
kubectl create namespace demo

step "starting the operator"
"$bin" run --certcentral-url "$base_url" --ca-bundle "$work/simulator-ca.pem" \
  --namespace digicert-operator --default-account digicert-operator \
  >"$work/operator.log" 2>&1 &
pids+=($!)
echo "log: $work/operator.log"

step "kubectl apply -f deploy/examples/rsa-order.yaml -f deploy/examples/ecdsa-order.yaml"
kubectl -n demo apply -f deploy/examples/rsa-order.yaml -f deploy/examples/ecdsa-order.yaml

step "kubectl wait --for=condition=Ready dco --all"
started=$(date +%s%N)
if ! kubectl -n demo wait --for=condition=Ready dco --all --timeout=120s; then
  kubectl -n demo get dco -o yaml >&2
  tail -n 50 "$work/operator.log" >&2
  exit 1
fi
echo "ready in $(( ($(date +%s%N) - started) / 1000000 )) ms"

step "kubectl get dco"
kubectl -n demo get dco -o wide

for secret in example-com-tls shop-example-org-tls; do
  step "certificate in Secret demo/$secret"
  kubectl -n demo get secret "$secret" -o jsonpath='{.data.tls\.crt}' | base64 -d \
    | openssl x509 -noout -subject -issuer -ext subjectAltName -startdate -enddate -serial
  kubectl -n demo get secret "$secret" -o jsonpath='{.data.tls\.key}' | base64 -d | head -n 1
done

step "events"
kubectl -n demo get events --sort-by=.metadata.creationTimestamp | tail -n 8

if $keep; then
  step "running; explore with: export KUBECONFIG=$KUBECONFIG   (Ctrl-C stops everything)"
  echo "try: kubectl -n demo annotate dco example-com digicert-operator.dev/renew=\$(date +%s)"
  wait
fi
