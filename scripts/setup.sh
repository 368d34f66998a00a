#!/usr/bin/env bash
# Prepares this machine for Jetvault: system packages, then `npm ci`.
#   bash scripts/setup.sh          what the console needs to launch (Electron's runtime libraries)
#   bash scripts/setup.sh --test   what the test suite needs (sshd, PostgreSQL, SQLite, Chromium, ...)
# On Debian/Ubuntu as root (or with sudo) it installs missing packages itself; otherwise it stops
# and names exactly what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=app
[ "${1:-}" = "--test" ] && mode=test

# Electron's shared libraries on Debian/Ubuntu.
app_pkgs=(libnss3 libatk1.0-0 libatk-bridge2.0-0 libcups2 libdrm2 libgtk-3-0 libgbm1 libasound2 libxss1 libxshmfence1)
# Real devices for tests: sshd, PostgreSQL and SQLite, network namespaces and traffic shaping,
# a headless Chromium for the UI tests, and restic/borg/rsync (+ GNU time) as benchmark baselines.
test_pkgs=(git openssh-server openssh-client postgresql mariadb-server mariadb-client sqlite3 chromium fonts-dejavu-core iproute2 nftables ethtool
  ceph-mon ceph-osd radosgw ceph-common kmod e2fsprogs util-linux procps psmisc xz-utils zstd restic borgbackup rsync time python3 make g++)

if [ "$mode" = test ]; then pkgs=("${test_pkgs[@]}"); else pkgs=("${app_pkgs[@]}"); fi

need_node() {
  if ! command -v node >/dev/null || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
    echo "Jetvault needs Node.js 20.19 or newer with npm (found: $(node --version 2>/dev/null || echo none))." >&2
    exit 1
  fi
}

missing=()
if command -v dpkg-query >/dev/null; then
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
elif [ "$(uname -s)" = Linux ]; then
  echo "This is not a Debian/Ubuntu system: install the equivalents of: ${pkgs[*]}" >&2
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=(); elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo); else
    echo "Missing system packages. Install them, then run this again:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

need_node
# A fresh npm ci builds better-sqlite3 from source for Node when no prebuilt binary can be fetched
# (allowScripts in package.json approves exactly the install scripts that must run).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
