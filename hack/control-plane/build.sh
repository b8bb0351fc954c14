#!/usr/bin/env bash
# Builds (once) the kube-apiserver binary used by the test control plane and
# makes sure the other runtime tools (etcd, openssl, curl) are installed.
#
# Usage:
#   hack/control-plane/build.sh               build if needed; last stdout line = binary path
#   hack/control-plane/build.sh --print-path  print the binary path; exit 0 if it is built, 3 if not
#
# Source: Debian bookworm's `kubernetes` source package (Kubernetes v1.20.2),
# built offline with Debian's Go 1.19 via upstream's `make WHAT=cmd/kube-apiserver`.
# The vendored github.com/modern-go/reflect2 1.0.1 is replaced by Debian's 1.0.2,
# because 1.0.1 crashes ("fatal error: fault") under Go >= 1.18.
#
# Environment:
#   DIGICERT_OPERATOR_CACHE_DIR  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/digicert-operator)
#   DIGICERT_CP_KEEP_WORK=1      keep the extracted source tree after a successful build
#   DIGICERT_CP_HEARTBEAT        seconds between progress lines while compiling (default 20)
#
# Progress goes to stderr; only the binary path goes to stdout.
set -euo pipefail

KUBE_VERSION=v1.20.2
KUBE_GIT_COMMIT_SHA=faecb196815e248d3ecfb03c680a4507229c2a56
GO_PACKAGE=golang-1.19-go
GO_BIN_DIR=/usr/lib/go-1.19/bin

script_path=$(readlink -f "${BASH_SOURCE[0]}")
script_sha=$(sha256sum "$script_path" | cut -c1-12)
cache_root=${DIGICERT_OPERATOR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/digicert-operator}
out_dir="$cache_root/kube-apiserver-$KUBE_VERSION-$script_sha"
bin="$out_dir/kube-apiserver"

# Runtime tools needed by start.sh: "command package" pairs.
runtime_tools=(
  "etcd etcd-server"
  "openssl openssl"
  "curl curl"
)

log() { printf '[control-plane build] %s\n' "$*" >&2; }

runtime_tools_present() {
  local entry
  for entry in "${runtime_tools[@]}"; do
    command -v "${entry%% *}" >/dev/null 2>&1 || return 1
  done
}

if [[ ${1-} == --print-path ]]; then
  echo "$bin"
  [[ -x $bin ]] || exit 3
  exit 0
elif [[ $# -gt 0 ]]; then
  echo "usage: $0 [--print-path]" >&2
  exit 2
fi

# Fast path: nothing to do.
if [[ -x $bin ]] && runtime_tools_present; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for its lock ($cache_root/build.lock)"
  flock 9
fi

# ---------------------------------------------------------------- apt helpers
export DEBIAN_FRONTEND=noninteractive
apt_updated=0
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { log "not root and no sudo: cannot install packages"; exit 1; }
  sudo_cmd=(sudo -n env DEBIAN_FRONTEND=noninteractive)
fi

apt_update() {
  log "apt-get update"
  if ! "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2; then
    log "warning: apt-get update reported errors; continuing"
  fi
  apt_updated=1
}

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

apt_install() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $apt_updated -eq 1 ]] || apt_update
  log "apt-get install ${missing[*]}"
  "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Adds deb-src entries mirroring the Debian archive's deb entries, if apt has
# no source index for `kubernetes` yet.
ensure_deb_src() {
  if apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes'; then
    return 0
  fi
  local target=/etc/apt/sources.list.d/digicert-operator-deb-src.sources
  local tmp
  tmp=$(mktemp)
  local f
  # deb822 files: copy every stanza that has "Types: deb" and a Debian archive URI.
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -e $f && $f != "$target" ]] || continue
    awk '
      function flush() {
        if (stanza != "" && isdeb && isdebian) { printf "%s\n", stanza }
        stanza = ""; isdeb = 0; isdebian = 0
      }
      /^[[:space:]]*$/ { flush(); next }
      /^#/ { next }
      /^Types:/ {
        for (i = 2; i <= NF; i++) if ($i == "deb") isdeb = 1
        stanza = stanza "Types: deb-src\n"; next
      }
      /^URIs:/ { if ($0 ~ /\/debian(-security)?\/?([[:space:]]|$)/) isdebian = 1 }
      /^Enabled:[[:space:]]*no/ { isdeb = 0 }
      { stanza = stanza $0 "\n" }
      END { flush() }
    ' "$f" >>"$tmp"
  done
  # one-line format
  local lists=()
  [[ -e /etc/apt/sources.list ]] && lists+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list; do [[ -e $f ]] && lists+=("$f"); done
  local oneline=""
  if [[ ${#lists[@]} -gt 0 ]]; then
    oneline=$(grep -hE '^[[:space:]]*deb[[:space:]]' "${lists[@]}" | grep -E '/debian(-security)?/?[[:space:]]' |
      sed -E 's/^[[:space:]]*deb[[:space:]]/deb-src /' || true)
  fi
  if [[ ! -s $tmp && -z $oneline ]]; then
    rm -f "$tmp"
    log "cannot find a Debian archive entry in the apt sources to derive a deb-src entry from"
    exit 1
  fi
  log "adding deb-src entries for the Debian archive"
  if [[ -s $tmp ]]; then
    "${sudo_cmd[@]}" install -m 0644 "$tmp" "$target"
  fi
  if [[ -n $oneline ]]; then
    printf '%s\n' "$oneline" >"$tmp"
    "${sudo_cmd[@]}" install -m 0644 "$tmp" /etc/apt/sources.list.d/digicert-operator-deb-src.list
  fi
  rm -f "$tmp"
  apt_update
  if ! apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes'; then
    log "apt still knows no source package 'kubernetes' after adding deb-src entries"
    exit 1
  fi
}

# ---------------------------------------------------------------- runtime tools
missing_pkgs=()
for entry in "${runtime_tools[@]}"; do
  command -v "${entry%% *}" >/dev/null 2>&1 || missing_pkgs+=("${entry#* }")
done
if [[ ${#missing_pkgs[@]} -gt 0 ]]; then
  log "phase: installing runtime tools (${missing_pkgs[*]})"
  apt_install "${missing_pkgs[@]}"
fi

if [[ -x $bin ]]; then
  echo "$bin"
  exit 0
fi

# ---------------------------------------------------------------- build
build_start=$(date +%s)
log "kube-apiserver $KUBE_VERSION is not cached yet; building it from Debian's source."
log "The first build takes about 12-15 minutes on 2 cores (~1.5 GB memory); later runs reuse"
log "$bin"

log "phase 1/5: build dependencies"
apt_install "$GO_PACKAGE" golang-github-modern-go-reflect2-dev rsync jq make xz-utils ca-certificates

log "phase 2/5: fetching the kubernetes source package"
downloads="$cache_root/downloads"
mkdir -p "$downloads"
shopt -s nullglob
orig=("$downloads"/kubernetes_*1.20.2.orig.tar.*)
shopt -u nullglob
if [[ ${#orig[@]} -eq 0 ]]; then
  ensure_deb_src
  # a directory apt's unprivileged "_apt" user can write to
  tmpdl=$(mktemp -d "${TMPDIR:-/tmp}/digicert-operator-src.XXXXXX")
  chmod 0755 "$tmpdl"
  (cd "$tmpdl" && apt-get source --download-only -qq kubernetes >&2)
  shopt -s nullglob
  got=("$tmpdl"/kubernetes_*.orig.tar.*)
  shopt -u nullglob
  if [[ ${#got[@]} -ne 1 ]]; then
    log "unexpected download result in $tmpdl:"; ls -l "$tmpdl" >&2; exit 1
  fi
  case ${got[0]##*/} in
    *1.20.2.orig.tar.*) ;;
    *) log "Debian's kubernetes source is ${got[0]##*/}, but this script builds $KUBE_VERSION; update build.sh"; exit 1 ;;
  esac
  mv "${got[0]}" "$downloads/"
  rm -rf "$tmpdl"
  orig=("$downloads/${got[0]##*/}")
fi
log "source: ${orig[0]}"

work="$cache_root/work-$KUBE_VERSION-$script_sha"
src="$work/kubernetes"
log "phase 3/5: unpacking into $work"
rm -rf "$work"
mkdir -p "$src"
tar -xf "${orig[0]}" -C "$src" --strip-components=1
[[ -f $src/cmd/kube-apiserver/apiserver.go ]] || { log "unexpected source layout in $src"; exit 1; }

log "phase 4/5: replacing vendored github.com/modern-go/reflect2 1.0.1 with Debian's 1.0.2"
r2_src=/usr/share/gocode/src/github.com/modern-go/reflect2
r2_dst="$src/vendor/github.com/modern-go/reflect2"
[[ -d $r2_src && -d $r2_dst ]] || { log "missing $r2_src or $r2_dst"; exit 1; }
find "$r2_dst" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
find "$r2_src" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' -exec cp {} "$r2_dst/" \;
sed -i 's|^# github.com/modern-go/reflect2 v1.0.1$|# github.com/modern-go/reflect2 v1.0.2|' "$src/vendor/modules.txt"

log "phase 5/5: compiling (make WHAT=cmd/kube-apiserver); log: $work/make.log"
export PATH="$GO_BIN_DIR:$PATH"
unset GOROOT GOFLAGS GOPATH GOBIN
export GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local CGO_ENABLED=0
export KUBE_GIT_VERSION=$KUBE_VERSION KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20
export KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT=$KUBE_GIT_COMMIT_SHA
export KUBE_VERBOSE=${KUBE_VERBOSE:-2}
go version >&2

make_log="$work/make.log"
(cd "$src" && exec setsid make WHAT=cmd/kube-apiserver </dev/null >"$make_log" 2>&1 9>&-) &
make_pid=$!
cleanup_make() {
  if kill -0 "$make_pid" 2>/dev/null; then
    log "interrupted; stopping the build"
    kill -TERM -- "-$make_pid" 2>/dev/null || true
  fi
}
trap cleanup_make EXIT
trap 'exit 130' INT TERM HUP

heartbeat=${DIGICERT_CP_HEARTBEAT:-20}
while kill -0 "$make_pid" 2>/dev/null; do
  for ((i = 0; i < heartbeat * 2; i++)); do
    kill -0 "$make_pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -0 "$make_pid" 2>/dev/null || break
  elapsed=$(($(date +%s) - build_start))
  # the last "+++ [date] step" line of upstream's build says where it is
  last=$(grep '^+++ ' "$make_log" 2>/dev/null | tail -n 1 | sed 's/^+++ \[[^]]*\] //' | cut -c1-90 || true)
  mem=$(awk '/^MemTotal/{t=$2} /^MemAvailable/{a=$2} END{printf "%d", (t-a)/1024}' /proc/meminfo)
  log "$(printf '%2dm%02ds' $((elapsed / 60)) $((elapsed % 60))) still compiling (memory in use: ${mem} MiB) | ${last:-starting}"
done
if ! wait "$make_pid"; then
  trap - EXIT
  log "make failed; last 40 lines of $make_log:"
  tail -n 40 "$make_log" >&2
  exit 1
fi
trap - EXIT INT TERM HUP

built="$src/_output/local/bin/linux/amd64/kube-apiserver"
[[ -x $built ]] || built=$(find "$src/_output" -type f -name kube-apiserver -perm -u+x | head -n 1)
[[ -n $built && -x $built ]] || { log "build finished but no kube-apiserver binary found"; exit 1; }
"$built" --version >&2

tmp_out=$(mktemp -d "$cache_root/.kube-apiserver.XXXXXX")
cp "$built" "$tmp_out/kube-apiserver"
cp "$make_log" "$tmp_out/make.log"
chmod 0755 "$tmp_out" "$tmp_out/kube-apiserver"
rm -rf "$out_dir"
mv "$tmp_out" "$out_dir"
if [[ ${DIGICERT_CP_KEEP_WORK:-0} != 1 ]]; then
  rm -rf "$work"
fi
elapsed=$(($(date +%s) - build_start))
log "done in $((elapsed / 60))m$((elapsed % 60))s"
echo "$bin"
