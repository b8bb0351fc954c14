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

# cp_stop_loaded GRACE_SECONDS [SKIP_PID]: stops the processes of the loaded
# instance (apiserver first, then etcd, then the watchdog unless it is SKIP_PID).
cp_stop_loaded() {
  local grace=${1:-10} skip=${2-} needle pids=() pid start i
  needle=$(cp_needle)
  for pair in "$APISERVER_PID:$APISERVER_START" "$ETCD_PID:$ETCD_START" "$WATCHDOG_PID:$WATCHDOG_START"; do
    pid=${pair%%:*} start=${pair#*:}
    [[ -n $pid && $pid != "$skip" ]] || continue
    if cp_proc_matches "$pid" "$start" "$needle"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid:$start")
    fi
  done
  [[ ${#pids[@]} -eq 0 ]] && return 0
  for ((i = 0; i < grace * 10; i++)); do
    local alive=0
    for pair in "${pids[@]}"; do
      cp_proc_matches "${pair%%:*}" "${pair#*:}" "$needle" && alive=1
    done
    [[ $alive -eq 0 ]] && return 0
    sleep 0.1
  done
  for pair in "${pids[@]}"; do
    if cp_proc_matches "${pair%%:*}" "${pair#*:}" "$needle"; then
      cp_log "pid ${pair%%:*} did not exit within ${grace}s; sending SIGKILL"
      kill -KILL "${pair%%:*}" 2>/dev/null || true
    fi
  done
  for ((i = 0; i < 50; i++)); do
    local alive=0
    for pair in "${pids[@]}"; do
      cp_proc_matches "${pair%%:*}" "${pair#*:}" "$needle" && alive=1
    done
    [[ $alive -eq 0 ]] && return 0
    sleep 0.1
  done
  cp_log "warning: some processes of $CP_DIR are still alive"
  return 1
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
