#!/usr/bin/env bash
# Installs every real peer the tests use (Debian packages, the project's Python
# virtualenv). Idempotent: a second run changes nothing and takes seconds.
# Each peer has its own script in install.d/; they share the helpers below.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export LIFEBOAT_ROOT=$root
export VENV=$root/.venv

# apt_install PKG... : installs the Debian packages that are missing.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "install.sh: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1
  fi
  local SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "install.sh: apt-get install ${missing[*]}"
  # apt-cache and apt-get need fresh lists on a new machine.
  if [ ! -f /var/lib/apt/periodic/lifeboat-updated ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
    $SUDO apt-get update -qq && $SUDO mkdir -p /var/lib/apt/periodic && $SUDO touch /var/lib/apt/periodic/lifeboat-updated
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# pip_install SPEC... : installs Python packages into the project's virtualenv.
pip_install() {
  if [ ! -x "$VENV/bin/python" ]; then
    command -v python3 >/dev/null || apt_install python3
    # Debian's own python3 keeps the venv module in a separate package.
    python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
    echo "install.sh: creating the virtualenv $VENV"
    python3 -m venv "$VENV"
  fi
  local stamp=$VENV/.installed-$(echo "$*" | sha256sum | cut -c1-16)
  [ -f "$stamp" ] && return 0
  echo "install.sh: pip install $*"
  "$VENV/bin/pip" install -q --disable-pip-version-check "$@"
  touch "$stamp"
}

for script in "$root"/tests/peers/install.d/*.sh; do
  [ -e "$script" ] || continue
  # shellcheck source=/dev/null
  source "$script"
done
echo "install.sh: peers ready"
