#!/usr/bin/env bash
# Stops the control plane that start.sh started in DIR: kube-apiserver, etcd
# and the watchdog (SIGTERM, then SIGKILL after the grace period), removes it
# from the registry and deletes DIR/etcd-data (unless --keep-data). Logs,
# pki/ and kubeconfig stay in DIR. Idempotent: exits 0 if nothing runs.
#
# Usage:
#   hack/control-plane/stop.sh DIR [--grace SECONDS] [--keep-data]
#   hack/control-plane/stop.sh --reap     stop every registered instance whose owner is gone
#   hack/control-plane/stop.sh --all      stop every registered instance
#
# Only processes recorded by start.sh are signalled, and only while their pid,
# start time and command line (which contains DIR/) still match.
set -euo pipefail

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
# shellcheck source=lib.sh
source "$here/lib.sh"

dir="" grace=10 keep=0 mode=one
while [[ $# -gt 0 ]]; do
  case $1 in
    --grace) grace=${2:?--grace needs seconds}; shift 2 ;;
    --grace=*) grace=${1#*=}; shift ;;
    --keep-data) keep=1; shift ;;
    --reap) mode=reap; shift ;;
    --all) mode=all; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    -*) cp_log "unknown option $1"; exit 2 ;;
    *) [[ -z $dir ]] || { cp_log "only one DIR"; exit 2; }; dir=$1; shift ;;
  esac
done

case $mode in
  reap)
    cp_with_lock cp_reap_stale
    exit 0
    ;;
  all)
    cp_ensure_state_dir
    shopt -s nullglob
    for f in "$CP_STATE_DIR"/*.instance; do
      cp_read_instance "$f" || continue
      cp_log "stopping $CP_DIR"
      cp_stop_loaded "$grace" || true
      rm -f "$f"
      [[ $keep -eq 1 || ! -d $CP_DIR ]] || rm -rf "$CP_DIR/etcd-data"
    done
    exit 0
    ;;
esac

[[ -n $dir ]] || { cp_log "usage: $0 DIR [--grace SECONDS] [--keep-data]"; exit 2; }
if [[ ! -d $dir ]]; then
  exit 0
fi
dir=$(readlink -f "$dir")
if ! cp_read_instance "$dir/instance" || [[ -z $CP_ID ]]; then
  exit 0
fi
registry_file="$CP_STATE_DIR/$CP_ID.instance"
# the registry copy may be newer (e.g. the watchdog pid)
if [[ -f $registry_file ]]; then
  cp_read_instance "$registry_file"
fi
[[ $CP_DIR == "$dir" ]] || { cp_log "$dir/instance belongs to $CP_DIR; not touching it"; exit 1; }

rc=0
cp_stop_loaded "$grace" || rc=1
rm -f "$registry_file" "$dir/instance"
if [[ $keep -eq 0 ]]; then
  rm -rf "$dir/etcd-data"
fi
exit $rc
