#!/bin/sh
# Installs Debian's chromium for the browser smoke test (tests/browser), unless it is already there.
# Idempotent: does nothing (not even apt-get update) when /usr/bin/chromium exists.
set -eu

if [ -x /usr/bin/chromium ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

echo "installing chromium (apt-get) for the browser smoke test" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

if [ ! -x /usr/bin/chromium ]; then
  echo "error: apt-get installed chromium but /usr/bin/chromium is still missing" >&2
  exit 1
fi
