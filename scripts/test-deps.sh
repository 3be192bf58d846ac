#!/usr/bin/env bash
# System packages the tests use: Debian's Chromium for the browser test (Playwright drives it
# through executablePath; no browser is downloaded). Installed only when missing and possible;
# otherwise the browser test skips with its reason.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  echo "installed $(chromium --version)"
else
  echo "chromium not installed and cannot install it here (needs root and apt-get); the browser test will skip" >&2
fi
