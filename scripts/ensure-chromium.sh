#!/usr/bin/env bash
# Browser tests drive Debian's Chromium. Install it when missing and we are root; otherwise
# the browser tests skip themselves and say why.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
else
  echo "chromium is missing and cannot be installed (not root): browser tests will be skipped." >&2
fi
