# shellcheck shell=bash disable=SC2034
# Shared helpers for start.sh, stop.sh and watchdog.sh (sourced, not executed).
#
# An instance is described by a key=value file, written both to DIR/instance
# and to the registry ($CP_STATE_DIR/<id>.instance). Keys:
#   CP_ID CP_DIR OWNER_PID OWNER_START ETCD_PID ETCD_START APISERVER_PID
#   APISERVER_START WATCHDOG_PID WATCHDOG_START ETCD_PORT ETCD_PEER_PORT APISERVER_PORT
# *_START is the process start time (field 22 of /proc/PID/stat); a pid is only
# signalled while its start time and command line still match what was recorded.

CP_STATE_DIR=${DIGICERT_CP_STATE_DIR:-${XDG_RUNTIME_DIR:-/tmp}/digicert-operator-control-planes}

cp_log() { printf '[control-plane] %s\n' "$*" >&2; }

cp_ensure_state_dir() {
  mkdir -p "$CP_STATE_DIR"
  chmod 0700 "$CP_STATE_DIR" 2>/dev/null || true
}

# Runs the rest of the command with the global registry lock held (fd 8).
cp_with_lock() {
  cp_ensure_state_dir
  (
    flock 8
    "$@"
  ) 8>"$CP_STATE_DIR/.lock"
}

# cp_proc_stat PID -> prints "STATE STARTTIME" of PID (starttime = field 22 of
# /proc/PID/stat, clock ticks since boot), or fails if PID does not exist.
cp_proc_stat() {
  local stat=""
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  # after "comm) " the fields start at field 3 (state); starttime is field 22
  local -a f
  read -r -a f <<<"$stat"
  [[ -n ${f[19]-} ]] || return 1
  printf '%s %s\n' "${f[0]}" "${f[19]}"
}

# cp_proc_start PID -> prints the start time of PID.
cp_proc_start() {
  local st
  st=$(cp_proc_stat "$1") || return 1
  printf '%s\n' "${st#* }"
}

# cp_proc_matches PID START [NEEDLE]: true if PID is alive (not a zombie),
# started at START and (if given) its command line contains NEEDLE.
cp_proc_matches() {
  local pid=$1 start=$2 needle=${3-} st cmdline
  [[ -n $pid && -n $start && $pid =~ ^[0-9]+$ ]] || return 1
  st=$(cp_proc_stat "$pid") || return 1
  [[ ${st#* } == "$start" && ${st%% *} != Z && ${st%% *} != X ]] || return 1
  if [[ -n $needle ]]; then
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmdline == *"$needle"* ]] || return 1
  fi
  return 0
}

# cp_read_instance FILE: sets the CP_*/..._PID/... variables from FILE.
cp_read_instance() {
  local file=$1 key value
  CP_ID="" CP_DIR="" OWNER_PID="" OWNER_START="" ETCD_PID="" ETCD_START=""
  APISERVER_PID="" APISERVER_START="" WATCHDOG_PID="" WATCHDOG_START=""
  ETCD_PORT="" ETCD_PEER_PORT="" APISERVER_PORT=""
  [[ -f $file ]] || return 1
  while IFS='=' read -r key value; do
    case $key in
      CP_ID | CP_DIR | OWNER_PID | OWNER_START | ETCD_PID | ETCD_START | APISERVER_PID | APISERVER_START | \
        WATCHDOG_PID | WATCHDOG_START | ETCD_PORT | ETCD_PEER_PORT | APISERVER_PORT)
        printf -v "$key" '%s' "$value"
        ;;
    esac
  done <"$file"
}

# cp_write_instance FILE: writes the current variables to FILE atomically.
cp_write_instance() {
  local file=$1 tmp key
  tmp="$file.tmp.$$"
  {
    for key in CP_ID CP_DIR OWNER_PID OWNER_START ETCD_PID ETCD_START APISERVER_PID APISERVER_START \
      WATCHDOG_PID WATCHDOG_START ETCD_PORT ETCD_PEER_PORT APISERVER_PORT; do
      printf '%s=%s\n' "$key" "${!key}"
    done
  } >"$tmp"
  mv -f "$tmp" "$file"
}

# The string every process of an instance has on its command line.
cp_needle() { printf '%s' "$CP_DIR/"; }

cp_owner_alive() {
  [[ -z $OWNER_PID ]] && return 0
  cp_proc_matches "$OWNER_PID" "$OWNER_START"
}

# Microseconds since the epoch (EPOCHREALTIME without its locale's decimal mark).
cp_now_us() { printf '%s\n' "${EPOCHREALTIME//[!0-9]/}"; }

# cp_stop_one NAME PID START GRACE_SECONDS: SIGTERM, then SIGKILL if PID still runs
# after the grace period; logs which signal ended it ("stopped on SIGTERM"), so that
# a caller can tell a clean stop from a forced one. Returns 1 if it outlives SIGKILL.
cp_stop_one() {
  local name=$1 pid=$2 start=$3 grace=$4 needle t0 deadline
  needle=$(cp_needle)
  cp_proc_matches "$pid" "$start" "$needle" || return 0
  t0=$(cp_now_us)
  deadline=$((t0 + grace * 1000000))
  kill -TERM "$pid" 2>/dev/null || true
  while cp_proc_matches "$pid" "$start" "$needle"; do
    if (($(cp_now_us) >= deadline)); then
      cp_log "$name (pid $pid) did not exit within ${grace}s of SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$(($(cp_now_us) + 5000000))
      while cp_proc_matches "$pid" "$start" "$needle"; do
        if (($(cp_now_us) >= deadline)); then
          cp_log "warning: $name (pid $pid) of $CP_DIR is still alive after SIGKILL"
          return 1
        fi
        sleep 0.1
      done
      cp_log "$name (pid $pid) stopped on SIGKILL"
      return 0
    fi
    sleep 0.05
  done
  cp_log "$name (pid $pid) stopped on SIGTERM in $((($(cp_now_us) - t0) / 1000)) ms"
}

# cp_stop_loaded GRACE_SECONDS [SKIP_PID]: stops the processes of the loaded
# instance one after the other: kube-apiserver first, while etcd still answers (it
# writes to etcd on its way out, and etcd would wait for its connections), then
# etcd, then the watchdog unless it is SKIP_PID. Each gets GRACE_SECONDS after
# SIGTERM before SIGKILL.
cp_stop_loaded() {
  local grace=${1:-10} skip=${2-} rc=0
  cp_stop_one kube-apiserver "$APISERVER_PID" "$APISERVER_START" "$grace" || rc=1
  cp_stop_one etcd "$ETCD_PID" "$ETCD_START" "$grace" || rc=1
  if [[ -n $WATCHDOG_PID && $WATCHDOG_PID != "$skip" ]]; then
    cp_stop_one watchdog "$WATCHDOG_PID" "$WATCHDOG_START" "$grace" || rc=1
  fi
  return $rc
}

# true if any process of the loaded instance is still running
cp_any_alive() {
  local needle
  needle=$(cp_needle)
  cp_proc_matches "$APISERVER_PID" "$APISERVER_START" "$needle" ||
    cp_proc_matches "$ETCD_PID" "$ETCD_START" "$needle" ||
    cp_proc_matches "$WATCHDOG_PID" "$WATCHDOG_START" "$needle"
}

# Reaps registry entries whose owner is gone, or whose processes are all gone.
# Must run with the registry lock held.
cp_reap_stale() {
  local f
  shopt -s nullglob
  for f in "$CP_STATE_DIR"/*.instance; do
    cp_read_instance "$f" || continue
    if ! cp_owner_alive; then
      cp_log "reaping instance $CP_ID in $CP_DIR (owner pid $OWNER_PID is gone)"
      cp_stop_loaded 5 || true
      rm -f "$f"
      [[ -d $CP_DIR ]] && rm -rf "$CP_DIR/etcd-data"
    elif ! cp_any_alive; then
      # started without owner (or owner alive) but every process is gone
      if [[ -n $APISERVER_PID ]]; then
        rm -f "$f"
      else
        # still being started: keep it unless very old (start.sh died mid-way)
        if [[ -n $(find "$f" -mmin +10 2>/dev/null) ]]; then rm -f "$f"; fi
      fi
    fi
  done
  shopt -u nullglob
}

# Ports in use (any state) according to /proc/net/tcp{,6}.
cp_used_ports() {
  awk 'FNR > 1 { split($2, a, ":"); print strtonum("0x" a[2]) }' /proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -un
}

# cp_pick_ports N: prints N distinct free ports outside the kernel's ephemeral
# range that no other registered instance has reserved. Run with the lock held.
cp_pick_ports() {
  local n=$1 lo hi range_lo range_hi used reserved f
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
  if ((lo > 12000)); then
    range_lo=10000 range_hi=$((lo - 1))
  elif ((hi < 64000)); then
    range_lo=$((hi + 1)) range_hi=65000
  else
    range_lo=$lo range_hi=$hi
  fi
  used=" $(cp_used_ports | tr '\n' ' ') "
  reserved=" "
  shopt -s nullglob
  for f in "$CP_STATE_DIR"/*.instance; do
    reserved+="$(grep -E '^(ETCD_PORT|ETCD_PEER_PORT|APISERVER_PORT)=' "$f" | cut -d= -f2 | tr '\n' ' ')"
  done
  shopt -u nullglob
  local picked=" " out=() p tries=0 span=$((range_hi - range_lo + 1))
  while ((${#out[@]} < n)); do
    ((tries++ < 10000)) || { cp_log "no free port found"; return 1; }
    p=$((range_lo + (RANDOM * 32768 + RANDOM) % span))
    [[ $used == *" $p "* || $reserved == *" $p "* || $picked == *" $p "* ]] && continue
    picked+="$p "
    out+=("$p")
  done
  printf '%s\n' "${out[@]}"
}

# cp_wait_condition TIMEOUT_SECONDS TYPE OBJECT...: waits until condition TYPE is
# True on each OBJECT (e.g. crd/NAME), with kubectl of PATH and KUBECONFIG. Not
# `kubectl wait --for=condition=TYPE`: a CRD just created has `.status.conditions:
# null` until the API server's controllers write them, and kubectl wait fails at
# once on that ("accessor error") instead of waiting.
cp_wait_condition() {
  local timeout=$1 type=$2 object out=""
  shift 2
  local deadline=$(($(cp_now_us) + timeout * 1000000))
  for object in "$@"; do
    while true; do
      out=$(kubectl get "$object" -o 'jsonpath={range .status.conditions[*]}{.type}={.status}{" "}{end}' 2>&1) || true
      [[ " $out" == *" $type=True "* ]] && break
      if (($(cp_now_us) >= deadline)); then
        cp_log "$object is not $type=True after ${timeout}s: ${out:-no conditions yet}"
        return 1
      fi
      sleep 0.2
    done
  done
}
