#!/usr/bin/env bash
# The SFU benchmark measures Janus (VideoRoom) beside our node: bench/sfu_janus.py runs
# Debian's janus. Install it when missing and we are root; otherwise say why Janus cannot be
# measured (bench/sfu_janus.py then refuses to start).
set -euo pipefail
if command -v janus >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's janus for the SFU benchmark..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends janus >/dev/null
else
  echo "janus is missing and cannot be installed (not root): the SFU benchmark cannot measure Janus." >&2
fi
