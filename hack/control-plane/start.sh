#!/usr/bin/env bash
# Starts a throw-away Kubernetes control plane (etcd + kube-apiserver, no
# kubelet, no controller-manager, no scheduler) on 127.0.0.1, on free ports.
#
# Usage:
#   hack/control-plane/start.sh DIR [--owner-pid PID] [--timeout SECONDS]
#
# DIR is created if needed and receives: kubeconfig (admin, group system:masters),
# env (the lines printed below), pki/, etcd-data/, etcd.log, kube-apiserver.log,
# watchdog.log, instance (pids and ports).
#
# On success stdout carries exactly these lines (also written to DIR/env):
#   KUBECONFIG=DIR/kubeconfig
#   KUBE_APISERVER_URL=https://127.0.0.1:PORT
#   ETCD_URL=http://127.0.0.1:PORT
#   CONTROL_PLANE_DIR=DIR
# Progress and errors go to stderr.
#
# --owner-pid PID: a detached watchdog stops this control plane as soon as PID
#   exits (also after kill -9 of PID).
# Every start also stops instances left behind by earlier runs whose owner is gone.
#
# Binaries: kube-apiserver and etcd of KUBEBUILDER_ASSETS, or of the envtest bundle
# beside the checkout (see assets.sh).
#
# Environment:
#   KUBEBUILDER_ASSETS   directory with kube-apiserver, etcd and kubectl
#   KUBE_APISERVER_BIN   kube-apiserver binary (default: $KUBEBUILDER_ASSETS/kube-apiserver)
#   ETCD_BIN             etcd binary (default: $KUBEBUILDER_ASSETS/etcd)
#   DIGICERT_CP_START_TIMEOUT   seconds to wait for readiness (default 120)
#   DIGICERT_CP_STATE_DIR       registry of instances
#                               (default ${XDG_RUNTIME_DIR:-/tmp}/digicert-operator-control-planes)
#   DIGICERT_CP_APISERVER_ARGS  extra kube-apiserver flags, whitespace separated
set -euo pipefail

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

dir="" owner="" timeout=${DIGICERT_CP_START_TIMEOUT:-120}
while [[ $# -gt 0 ]]; do
  case $1 in
    --owner-pid) owner=${2:?--owner-pid needs a pid}; shift 2 ;;
    --owner-pid=*) owner=${1#*=}; shift ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    -h | --help) usage ;;
    -*) cp_log "unknown option $1"; usage ;;
    *) [[ -z $dir ]] || usage; dir=$1; shift ;;
  esac
done
[[ -n $dir ]] || usage
[[ -z $owner || $owner =~ ^[0-9]+$ ]] || { cp_log "--owner-pid must be a number"; exit 2; }

mkdir -p "$dir"
dir=$(readlink -f "$dir")
[[ $dir != *$'\n'* ]] || { cp_log "DIR must not contain a newline"; exit 2; }

# ------------------------------------------------------------------ binaries
if [[ -z ${KUBE_APISERVER_BIN-} || -z ${ETCD_BIN-} ]]; then
  assets=$("$here/assets.sh" | tail -n 1)
fi
apiserver_bin=${KUBE_APISERVER_BIN:-$assets/kube-apiserver}
etcd_bin=${ETCD_BIN:-$assets/etcd}
[[ -x $apiserver_bin ]] || { cp_log "kube-apiserver not found: '$apiserver_bin'"; exit 1; }
[[ -x $etcd_bin ]] || { cp_log "etcd not found: '$etcd_bin'"; exit 1; }
for tool in openssl curl flock setsid; do
  command -v "$tool" >/dev/null || { cp_log "$tool not found (hack/control-plane/assets.sh installs it)"; exit 1; }
done

# ------------------------------------------------------------------ already running?
if cp_read_instance "$dir/instance" && [[ -n $CP_ID ]]; then
  if [[ -f $CP_STATE_DIR/$CP_ID.instance ]]; then cp_read_instance "$CP_STATE_DIR/$CP_ID.instance"; fi
  if cp_any_alive; then
    cp_log "a control plane is already running in $dir (stop it with hack/control-plane/stop.sh $dir)"
    exit 1
  fi
fi

owner_start=""
if [[ -n $owner ]]; then
  owner_start=$(cp_proc_start "$owner") || { cp_log "owner pid $owner is not running"; exit 1; }
fi

started_at=$(date +%s.%N)
registry_file=""

# ------------------------------------------------------------------ helpers
elapsed() { awk -v s="$started_at" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }'; }

show_logs() {
  local f
  for f in "$dir/etcd.log" "$dir/kube-apiserver.log"; do
    [[ -s $f ]] || continue
    printf -- '----- last 30 lines of %s -----\n' "$f" >&2
    tail -n 30 "$f" >&2
  done
}

fail() {
  cp_log "ERROR: $*"
  show_logs
  cleanup_instance
  exit 1
}

cleanup_instance() {
  [[ -n $registry_file ]] || return 0
  cp_stop_loaded 5 || true
  rm -f "$registry_file" "$dir/instance"
  registry_file=""
}
trap 'cleanup_instance' EXIT
trap 'exit 130' INT TERM HUP

save_instance() {
  cp_write_instance "$registry_file"
  cp_write_instance "$dir/instance"
}

# spawn LOGFILE PIDVAR STARTVAR CMD...: starts CMD in its own session, detached
# from our stdio and lock fds; sets PIDVAR/STARTVAR.
spawn() {
  local logfile=$1 pidvar=$2 startvar=$3
  shift 3
  local pidfile="$dir/.spawn.$$.$RANDOM"
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 8>&- 9>&- &
  local i pid=""
  for ((i = 0; i < 100; i++)); do
    if [[ -s $pidfile ]]; then pid=$(<"$pidfile"); break; fi
    sleep 0.05
  done
  rm -f "$pidfile"
  [[ -n $pid ]] || fail "could not start $1"
  printf -v "$pidvar" '%s' "$pid"
  printf -v "$startvar" '%s' "$(cp_proc_start "$pid" || true)"
}

# wait_until DESCRIPTION PID START CMD...: polls CMD until it succeeds; fails if
# the process dies or the timeout passes. Returns 10 on "address already in use".
wait_until() {
  local what=$1 pid=$2 start=$3 logfile=$4
  shift 4
  local deadline=$(($(date +%s) + timeout))
  while ! "$@" >/dev/null 2>&1; do
    if ! cp_proc_matches "$pid" "$start"; then
      if grep -q 'address already in use' "$logfile" 2>/dev/null; then return 10; fi
      fail "$what: the process exited (see $logfile)"
    fi
    if (($(date +%s) >= deadline)); then
      fail "$what: not ready after ${timeout}s"
    fi
    sleep 0.2
  done
}

# ------------------------------------------------------------------ PKI
pki="$dir/pki"
make_pki() {
  rm -rf "$pki"
  mkdir -p "$pki"
  chmod 0700 "$pki"
  cat >"$pki/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  local ossl=(openssl)
  (
    cd "$pki"
    for k in ca apiserver admin sa; do
      "${ossl[@]}" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$k.key" 2>/dev/null
    done
    "${ossl[@]}" pkey -in sa.key -pubout -out sa.pub
    "${ossl[@]}" req -x509 -new -key ca.key -config openssl.cnf -extensions ca -days 3650 \
      -subj "/CN=digicert-operator-test-ca" -out ca.crt
    "${ossl[@]}" req -new -key apiserver.key -config openssl.cnf -subj "/CN=kube-apiserver" -out apiserver.csr
    "${ossl[@]}" x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
      -days 365 -extfile openssl.cnf -extensions server -out apiserver.crt 2>/dev/null
    "${ossl[@]}" req -new -key admin.key -config openssl.cnf -subj "/O=system:masters/CN=admin" -out admin.csr
    "${ossl[@]}" x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
      -days 365 -extfile openssl.cnf -extensions client -out admin.crt 2>/dev/null
    rm -f ./*.csr
  ) || fail "generating certificates failed"
}

write_kubeconfig() {
  local tmp="$dir/kubeconfig.tmp.$$"
  cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(base64 -w0 <"$pki/admin.crt")
    client-key-data: $(base64 -w0 <"$pki/admin.key")
contexts:
- name: test
  context:
    cluster: test
    user: admin
    namespace: default
current-context: test
EOF
  chmod 0600 "$tmp"
  mv -f "$tmp" "$dir/kubeconfig"
}

api_get() {
  curl -fsS --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT$1" -o /dev/null
}

# ------------------------------------------------------------------ start
make_pki

attempt=0
while true; do
  attempt=$((attempt + 1))
  # reserve ports and register (under the registry lock), reaping stale instances first
  reserve() {
    cp_reap_stale
    local ports
    ports=$(cp_pick_ports 3) || return 1
    CP_ID="$(date +%s)-$$-$RANDOM"
    CP_DIR=$dir
    OWNER_PID=$owner OWNER_START=$owner_start
    ETCD_PID="" ETCD_START="" APISERVER_PID="" APISERVER_START="" WATCHDOG_PID="" WATCHDOG_START=""
    { read -r ETCD_PORT; read -r ETCD_PEER_PORT; read -r APISERVER_PORT; } <<<"$ports"
    registry_file="$CP_STATE_DIR/$CP_ID.instance"
    save_instance
    declare -p CP_ID CP_DIR OWNER_PID OWNER_START ETCD_PID ETCD_START APISERVER_PID APISERVER_START \
      WATCHDOG_PID WATCHDOG_START ETCD_PORT ETCD_PEER_PORT APISERVER_PORT registry_file
  }
  reserved=$(cp_with_lock reserve) || fail "could not reserve ports"
  eval "$reserved"
  cp_log "starting control plane in $dir (etcd :$ETCD_PORT, kube-apiserver :$APISERVER_PORT)"

  if [[ -n $owner ]]; then
    spawn "$dir/watchdog.log" WATCHDOG_PID WATCHDOG_START \
      bash "$here/watchdog.sh" "$dir/" "$registry_file"
    save_instance
  fi

  rm -rf "$dir/etcd-data"
  : >"$dir/etcd.log"
  : >"$dir/kube-apiserver.log"
  etcd_url="http://127.0.0.1:$ETCD_PORT"
  spawn "$dir/etcd.log" ETCD_PID ETCD_START \
    "$etcd_bin" --name=default --data-dir="$dir/etcd-data" \
    --listen-client-urls="$etcd_url" --advertise-client-urls="$etcd_url" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="default=http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster-state=new --logger=zap --log-outputs=stderr --log-level=warn \
    --quota-backend-bytes=$((2 * 1024 * 1024 * 1024)) --snapshot-count=10000
  save_instance

  rc=0
  wait_until "etcd" "$ETCD_PID" "$ETCD_START" "$dir/etcd.log" \
    curl -fsS --max-time 2 "$etcd_url/health" || rc=$?
  if [[ $rc -eq 10 && $attempt -lt 4 ]]; then
    cp_log "port collision for etcd; retrying with other ports"
    cleanup_instance
    continue
  fi

  # --shutdown-watch-termination-grace-period: on SIGTERM the server ends open watches
  # within 2 s; without it, it waits 60 s for them to end and stop.sh resorts to SIGKILL.
  extra_args=()
  if [[ -n ${DIGICERT_CP_APISERVER_ARGS-} ]]; then read -r -a extra_args <<<"$DIGICERT_CP_APISERVER_ARGS"; fi
  spawn "$dir/kube-apiserver.log" APISERVER_PID APISERVER_START \
    "$apiserver_bin" \
    --etcd-servers="$etcd_url" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --secure-port="$APISERVER_PORT" \
    --cert-dir="$pki" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc \
    --api-audiences=https://kubernetes.default.svc \
    --service-account-signing-key-file="$pki/sa.key" \
    --service-account-key-file="$pki/sa.pub" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --disable-admission-plugins=ServiceAccount \
    --endpoint-reconciler-type=none \
    --allow-privileged=true \
    --profiling=false \
    --shutdown-watch-termination-grace-period=2s \
    "${extra_args[@]}"
  save_instance
  write_kubeconfig

  rc=0
  wait_until "kube-apiserver /readyz" "$APISERVER_PID" "$APISERVER_START" "$dir/kube-apiserver.log" \
    api_get /readyz || rc=$?
  if [[ $rc -eq 10 && $attempt -lt 4 ]]; then
    cp_log "port collision for kube-apiserver; retrying with other ports"
    cleanup_instance
    continue
  fi
  wait_until "kube-apiserver /openapi/v2" "$APISERVER_PID" "$APISERVER_START" "$dir/kube-apiserver.log" \
    api_get /openapi/v2
  wait_until "namespace default" "$APISERVER_PID" "$APISERVER_START" "$dir/kube-apiserver.log" \
    api_get /api/v1/namespaces/default
  break
done

if [[ -n $owner ]] && ! cp_owner_alive; then
  fail "owner pid $owner exited during start-up"
fi

env_text="KUBECONFIG=$dir/kubeconfig
KUBE_APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
ETCD_URL=$etcd_url
CONTROL_PLANE_DIR=$dir"
printf '%s\n' "$env_text" >"$dir/env"
trap - EXIT INT TERM HUP
cp_log "ready after $(elapsed)s (stop with: $here/stop.sh $dir)"
printf '%s\n' "$env_text"
