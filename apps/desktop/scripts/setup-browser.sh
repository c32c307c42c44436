#!/bin/sh
# Install the Chromium the browser tests drive (Debian's package; playwright-core only drives it).
# Never downloads a browser from anywhere else. Without root or apt-get it explains and exits 0:
# the browser tests then skip with the same explanation.
CHROMIUM="${HEARSAY_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  echo "setup:browser: $CHROMIUM is installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="$(command -v sudo || true)"
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; }; then
  echo "setup:browser: installing Debian's chromium (apt-get)"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null && exit 0
  echo "setup:browser: apt-get install chromium failed; the browser tests will be skipped" >&2
  exit 0
fi
echo "setup:browser: cannot install Chromium here (no apt-get, or not root and no sudo)." >&2
echo "  Install Chromium yourself and set HEARSAY_CHROMIUM=/path/to/chromium; the browser tests skip until then." >&2
exit 0
