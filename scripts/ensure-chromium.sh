#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests when it is missing and we may (root + apt-get).
# Playwright drives this system browser; we never run `playwright install` (it downloads one).
set -u
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "netscope: installing Debian's chromium for the browser tests" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "netscope: could not install chromium; browser tests will be skipped" >&2
else
  echo "netscope: /usr/bin/chromium missing; browser tests will be skipped" >&2
fi
exit 0
