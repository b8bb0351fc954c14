#!/usr/bin/env bash
# A local demo of the whole path, on this machine alone:
#   a Kubernetes API server (etcd + kube-apiserver of KUBEBUILDER_ASSETS, or of the
#   envtest bundle beside the checkout: hack/control-plane/assets.sh),
#   the CertCentral simulator with the example orders,
#   the operator,
#   the example DigicertOrders (RSA and ECDSA) applied with kubectl,
# then waits for them to be Ready and shows the certificates in their Secrets.
# Everything listens on free loopback ports. If the simulator or the operator exits,
# the demo stops at once and shows the end of its log.
#
# Usage: hack/demo.sh [--keep]
#   --keep   leave everything running (Ctrl-C stops it) to explore with kubectl;
#            the KUBECONFIG to use is printed.
# DIGICERT_OPERATOR_BIN, CERTCENTRAL_SIM_BIN: the digicert-operator and certcentral-sim
# binaries to use instead of building them.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=control-plane/lib.sh
source hack/control-plane/lib.sh

keep=false
[[ ${1-} == --keep ]] && keep=true

step() { printf '\n==> %s\n' "$*"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/digicert-operator-demo.XXXXXX")
# The processes the demo started and their logs, by name.
declare -A pid_of=() log_of=()
waiter=""
cleanup() {
  local pid
  for pid in "${pid_of[@]}" ${waiter:+"$waiter"}; do kill "$pid" 2>/dev/null || true; done
  hack/control-plane/stop.sh "$work/control-plane" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND...: runs COMMAND in the background, its output in $work/NAME.log.
start() {
  local name=$1
  shift
  log_of[$name]=$work/$name.log
  "$@" >"${log_of[$name]}" 2>&1 &
  pid_of[$name]=$!
}

# Fails, with the end of its log, if a process the demo started has exited.
check_running() {
  local name status
  for name in "${!pid_of[@]}"; do
    if ! kill -0 "${pid_of[$name]}" 2>/dev/null; then
      status=0
      wait "${pid_of[$name]}" || status=$?
      echo "the $name exited (status $status); the end of ${log_of[$name]}:" >&2
      tail -n 20 "${log_of[$name]}" >&2
      return 1
    fi
  done
}

# wait_for WHAT TIMEOUT_SECONDS COMMAND...: runs COMMAND until it succeeds; gives up
# after the timeout, or at once if the simulator or the operator has exited.
wait_for() {
  local what=$1 timeout=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    check_running || exit 1
    if ((SECONDS >= deadline)); then
      echo "$what: not there after ${timeout}s" >&2
      exit 1
    fi
    sleep 0.1
  done
}

if [[ -n ${DIGICERT_OPERATOR_BIN-} && -n ${CERTCENTRAL_SIM_BIN-} ]]; then
  bin=$DIGICERT_OPERATOR_BIN
  sim_bin=$CERTCENTRAL_SIM_BIN
else
  step "building digicert-operator and certcentral-sim"
  cargo build --locked --quiet --package digicert-operator --package certcentral-sim --bins
  bin=target/debug/digicert-operator
  sim_bin=target/debug/certcentral-sim
fi

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
start simulator "$sim_bin" --listen 127.0.0.1:0 --orders deploy/simulator/orders.yaml \
  --ca-bundle-out "$work/simulator-ca.pem" --ready-file "$work/simulator.json"
wait_for "the simulator's ready file" 30 test -s "$work/simulator.json"
base_url=$(sed -E 's/.*"base_url":"([^"]+)".*/\1/' "$work/simulator.json")
echo "simulator: $base_url"

step "installing the CRDs, the API key Secret and the default account"
kubectl apply -f crds/
cp_wait_condition 60 Established crd/digicertorders.digicert-operator.dev \
  crd/digicertaccounts.digicert-operator.dev
kubectl create namespace digicert-operator
kubectl apply -f deploy/examples/api-key-secret.yaml
kubectl apply -f deploy/examples/default-account.yaml
kubectl create namespace demo

step "starting the operator"
start operator "$bin" run --certcentral-url "$base_url" --ca-bundle "$work/simulator-ca.pem" \
  --namespace digicert-operator --default-account digicert-operator \
  --health-addr 127.0.0.1:0
echo "log: ${log_of[operator]}"
serving() { grep -q 'serving /healthz' "${log_of[operator]}"; }
wait_for "the operator's HTTP endpoint" 30 serving
addr=$(sed -n 's/.*serving \/healthz.*addr=\([0-9.:]*\).*/\1/p;T;q' "${log_of[operator]}")
echo "metrics: http://$addr/metrics"

step "kubectl apply -f deploy/examples/rsa-order.yaml -f deploy/examples/ecdsa-order.yaml"
kubectl -n demo apply -f deploy/examples/rsa-order.yaml -f deploy/examples/ecdsa-order.yaml

step "kubectl wait --for=condition=Ready dco --all"
started=$(date +%s%N)
kubectl -n demo wait --for=condition=Ready dco --all --timeout=120s &
waiter=$!
# kubectl waits; the demo watches the processes meanwhile.
while kill -0 "$waiter" 2>/dev/null; do
  if ! check_running; then
    kill "$waiter" 2>/dev/null || true
    exit 1
  fi
  sleep 0.2
done
if ! wait "$waiter"; then
  kubectl -n demo get dco -o yaml >&2
  tail -n 50 "${log_of[operator]}" >&2
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
  while check_running; do sleep 1; done
  exit 1
fi
