#!/usr/bin/env bash
# Started (detached) by start.sh --owner-pid: stops the control plane when the
# owner process exits. Exits by itself once the instance is stopped.
# Usage: watchdog.sh DIR/ REGISTRY_FILE
set -uo pipefail
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
# shellcheck source=lib.sh
source "$here/lib.sh"
registry_file=$2
trap '' HUP INT

cp_read_instance "$registry_file" || exit 0
owner=$OWNER_PID owner_start=$OWNER_START
[[ -n $owner ]] || exit 0
while [[ -f $registry_file ]]; do
  if ! cp_proc_matches "$owner" "$owner_start"; then
    cp_read_instance "$registry_file" || exit 0
    printf '%s owner pid %s exited; stopping %s\n' "$(date -Is)" "$owner" "$CP_DIR" >&2
    cp_stop_loaded 5 $$ || true
    rm -f "$registry_file"
    rm -rf "$CP_DIR/etcd-data"
    if grep -qx "CP_ID=$CP_ID" "$CP_DIR/instance" 2>/dev/null; then rm -f "$CP_DIR/instance"; fi
    exit 0
  fi
  sleep 0.5
done
