#!/bin/sh
# Playwright's executable_path for the browser tests: Debian's Chromium inside the loopback-only
# network namespace (tests/e2e/netns.py). nsenter keeps Playwright's pipe file descriptors.
exec nsenter --net="$MEET_E2E_NETNS" -- "$MEET_E2E_CHROMIUM" "$@"
