#!/usr/bin/env bash
# Headless-Chromium test of clipgate's /dashboard (issue 7): starts target/debug/clipgate
# (embedded Weaviate double, bundled fixture model, free loopback port), loads /dashboard, sends
# traffic, checks the numbers shown against /metrics and writes artifacts/dashboard.png.
#
# Needs: python3 (standard library only) and Chromium (Debian: apt-get install -y chromium; or
# set CHROMIUM=/path/to/chrome). Builds the binary first if it is missing.
# Last line: `dashboard: N passed, M failed`; exit code 0 only if all passed.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${CLIPGATE_BIN:-${CARGO_TARGET_DIR:-target}/debug/clipgate}"
if [ ! -x "$BIN" ]; then
  cargo build -p gateway --bin clipgate
fi
exec python3 tests/dashboard/dashboard_test.py --bin "$BIN" --artifacts "${ARTIFACTS:-artifacts}" "$@"
