# Sourced by the install scripts of the test tools that come as Debian packages
# (hack/dns/install.sh: knot; hack/prometheus/install.sh: prometheus, for promtool).
#
# install_package PACKAGE SERVICE   installs PACKAGE with apt-get (as root, or through
#   sudo) without letting its service start, and keeps SERVICE off afterwards: the
#   tests run the tools themselves. Needs a `log` function. Fails with a message
#   saying what to install by hand where it cannot.
install_package() {
  local package=$1 service=$2
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { log "$package is missing; install the package '$package' as root"; return 1; }
    sudo=(sudo)
  fi
  command -v apt-get >/dev/null || { log "$package is missing and there is no apt-get: install it by hand"; return 1; }

  # A policy-rc.d that forbids starting services while the package installs (unless
  # the system already has one, e.g. in a container image).
  local policy=/usr/sbin/policy-rc.d own_policy=false
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    own_policy=true
  fi
  log "installing the Debian package $package"
  local status=0
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 \
      install -y -qq --no-install-recommends "$package" >&2 || status=$?
  if $own_policy; then "${sudo[@]}" rm -f "$policy"; fi
  [[ $status -eq 0 ]] || return "$status"

  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    "${sudo[@]}" systemctl disable --now "$service" >/dev/null 2>&1 || true
  fi
}
