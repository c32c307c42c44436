#!/bin/sh
# Install what the tests drive from Debian: the Chromium of the browser tests (Debian's package;
# playwright-core only drives it; never downloaded from anywhere else) and iptables, which the chaos
# test uses for packet loss. Without root or apt-get it explains and exits 0: the browser tests then
# skip with the same explanation, and the chaos test runs without packet loss and says so.
CHROMIUM="${HEARSAY_CHROMIUM:-/usr/bin/chromium}"
MISSING=""
if [ -x "$CHROMIUM" ]; then
  echo "setup:browser: $CHROMIUM is installed"
else
  MISSING="chromium"
fi
if command -v iptables >/dev/null 2>&1; then
  echo "setup:browser: iptables is installed"
else
  MISSING="$MISSING iptables"
fi
[ -z "$MISSING" ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="$(command -v sudo || true)"
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; }; then
  echo "setup:browser: installing$MISSING (apt-get)"
  # shellcheck disable=SC2086
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $MISSING >/dev/null && exit 0
  echo "setup:browser: apt-get install$MISSING failed; the browser tests will be skipped, and the chaos test runs without packet loss" >&2
  exit 0
fi
echo "setup:browser: cannot install$MISSING here (no apt-get, or not root and no sudo)." >&2
echo "  Install Chromium yourself and set HEARSAY_CHROMIUM=/path/to/chromium; the browser tests skip until then." >&2
echo "  Without iptables the chaos test runs without packet loss, and says so." >&2
exit 0
