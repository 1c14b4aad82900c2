#!/usr/bin/env bash
# Debian packages the test suite needs: ffmpeg libraries come with PyAV's wheel, so only
# the browser (for the web page test) and PostgreSQL (for the bank database test).
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
