#!/usr/bin/env bash
# Runs every check and test of the project: formatting, lints, unit tests, and the
# end-to-end tests against a real Kubernetes API server.
#
# By default it starts a control plane (etcd + kube-apiserver, built once by
# hack/control-plane/build.sh and cached) for the whole run and stops it at the end.
# USE_EXISTING_CLUSTER=true runs the same suite against the cluster of KUBECONFIG.
# Arguments are passed to `cargo nextest run` (e.g. a test filter).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest (first run on this machine only)"
  cargo install cargo-nextest --locked
fi

hack/ensure-kubectl.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

work=$(mktemp -d "${TMPDIR:-/tmp}/digicert-operator-test.XXXXXX")
cleanup() {
  if [[ -f $work/control-plane/kubeconfig ]]; then
    hack/control-plane/stop.sh "$work/control-plane" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if [[ ${USE_EXISTING_CLUSTER:-} == true ]]; then
  step "using the existing cluster of KUBECONFIG=${KUBECONFIG:-~/.kube/config}"
else
  step "starting a control plane (the first run on a machine builds kube-apiserver: ~10 min)"
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
cargo nextest run --locked "$@" || status=$?

if [[ -s $DIGICERT_TEST_SKIP_LOG ]]; then
  step "tests skipped at run time"
  sort -u "$DIGICERT_TEST_SKIP_LOG"
fi
exit "$status"
