#!/usr/bin/env bash
# Runs the benchmark suite (see BENCHMARKS.md): every benchmark, or those named.
#
#   hack/bench.sh                  all of them (about 77 min)
#   hack/bench.sh memory latency   some
#   hack/bench.sh crash --runs 1   flags go to the suite: --runs N, --scale F, --out DIR
#
# Benchmarks: calls throughput latency memory keygen crash faults dcv duplicates issuer feed. Each gets a fresh
# control plane, so the objects of one do not weigh on the next. The suite is built
# with the release profile (cargo bench). Reports: target/bench-report/NAME.md (the
# tables of BENCHMARKS.md) and NAME.json (every run's figures).
set -euo pipefail
cd "$(dirname "$0")/.."

all=(calls throughput latency memory keygen crash faults dcv duplicates issuer feed)
names=()
flags=()
for a in "$@"; do
  if [[ " ${all[*]} " == *" $a "* ]]; then names+=("$a"); else flags+=("$a"); fi
done
[[ ${#names[@]} -gt 0 ]] || names=("${all[@]}")

echo "==> building the suite (release)"
cargo bench --locked --package digicert-operator --bench suite --no-run

# The control plane's binaries, and kubectl of the same version.
KUBEBUILDER_ASSETS=$(hack/control-plane/assets.sh | tail -n 1)
export KUBEBUILDER_ASSETS
export PATH=$KUBEBUILDER_ASSETS:$PATH
echo "==> $("$KUBEBUILDER_ASSETS/kube-apiserver" --version) ($KUBEBUILDER_ASSETS)"

work=$(mktemp -d "${TMPDIR:-/tmp}/digicert-operator-bench.XXXXXX")
cleanup() {
  for cp in "$work"/cp-*; do
    [[ -f $cp/kubeconfig ]] && hack/control-plane/stop.sh "$cp" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

for name in "${names[@]}"; do
  echo "==> $name"
  cp=$work/cp-$name
  hack/control-plane/start.sh "$cp" --owner-pid $$ >/dev/null
  DIGICERT_TEST_KUBECONFIG=$cp/kubeconfig \
    cargo bench --locked --package digicert-operator --bench suite -- "$name" ${flags[@]+"${flags[@]}"}
  hack/control-plane/stop.sh "$cp" >/dev/null
done
out=target/bench-report
for ((i = 0; i < ${#flags[@]}; i++)); do
  case ${flags[i]} in
    --out) out=${flags[i + 1]-$out} ;;
    --out=*) out=${flags[i]#--out=} ;;
  esac
done
echo "==> reports in $out/"
