#!/usr/bin/env bash
# Runs every check and test of the project: formatting, lints, unit tests, and the
# end-to-end tests against a real Kubernetes API server.
#
# By default it starts a control plane (etcd + kube-apiserver of KUBEBUILDER_ASSETS,
# or of the envtest bundle beside the checkout: hack/control-plane/assets.sh) for the
# whole run and stops it at the end; kubectl comes from the same directory. No test
# may skip itself on that server: a skip fails the run.
# USE_EXISTING_CLUSTER=true runs the same suite against the cluster of KUBECONFIG.
# Arguments are passed to `cargo nextest run` (e.g. a test filter).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest (first run on this machine only)"
  cargo install cargo-nextest --locked
fi

existing=false
[[ ${USE_EXISTING_CLUSTER:-} == true ]] && existing=true

step "Kubernetes test binaries (KUBEBUILDER_ASSETS)"
if assets=$(hack/control-plane/assets.sh | tail -n 1); then
  export KUBEBUILDER_ASSETS=$assets
  # kubectl of the same version, for the tests and the commands they run as a user would.
  export PATH=$KUBEBUILDER_ASSETS:$PATH
  etcd_version=$("$KUBEBUILDER_ASSETS/etcd" --version)
  echo "$KUBEBUILDER_ASSETS: $("$KUBEBUILDER_ASSETS/kube-apiserver" --version), ${etcd_version%%$'\n'*}"
elif ! $existing; then
  exit 1
fi

step "Knot DNS (authoritative server of the DNS tests)"
knot_dir=$(hack/dns/install.sh | tail -n 1)
export DIGICERT_TEST_KNOTD=$knot_dir/knotd
"$DIGICERT_TEST_KNOTD" --version

step "promtool (checks and unit-tests the chart's alerting rules and dashboard queries)"
DIGICERT_TEST_PROMTOOL=$(hack/prometheus/install.sh | tail -n 1)
export DIGICERT_TEST_PROMTOOL
promtool_version=$("$DIGICERT_TEST_PROMTOOL" --version 2>&1)
echo "${promtool_version%%$'\n'*}"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

work=$(mktemp -d "${TMPDIR:-/tmp}/digicert-operator-test.XXXXXX")
cleanup() {
  if [[ -f $work/control-plane/kubeconfig ]]; then
    hack/control-plane/stop.sh "$work/control-plane" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if $existing; then
  step "using the existing cluster of KUBECONFIG=${KUBECONFIG:-~/.kube/config}"
else
  step "starting a control plane (etcd + kube-apiserver)"
  started=$SECONDS
  # The watchdog stops it if this script is killed before its trap runs.
  hack/control-plane/start.sh "$work/control-plane" --owner-pid $$ >/dev/null
  echo "control plane ready in $((SECONDS - started)) s"
  export DIGICERT_TEST_KUBECONFIG=$work/control-plane/kubeconfig
fi

step "Helm SDK venv"
DIGICERT_TEST_PYTHON=$(hack/helm/venv.sh | tail -n 1)
export DIGICERT_TEST_PYTHON

export DIGICERT_TEST_SKIP_LOG=$work/skipped.txt
step "cargo nextest run"
status=0
cargo nextest run --workspace --locked "$@" || status=$?

if [[ -s $DIGICERT_TEST_SKIP_LOG ]]; then
  step "tests skipped at run time"
  sort -u "$DIGICERT_TEST_SKIP_LOG"
  # Skips are for clusters the suite did not start; on its own server every test runs.
  $existing || status=1
fi
exit "$status"
