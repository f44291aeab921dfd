#!/usr/bin/env bash
# Browser tests drive Debian's Chromium. Install it when missing and we are root; otherwise
# the browser tests skip themselves and say why. The colour emoji font comes with it: the
# call's reactions are emoji, and without a font that has them the screenshots show boxes
# where every user's system shows the pictures.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || missing+=(fonts-noto-color-emoji)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing ${missing[*]} for the browser tests..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
elif [[ " ${missing[*]} " == *" chromium "* ]]; then
  echo "chromium is missing and cannot be installed (not root): browser tests will be skipped." >&2
fi
