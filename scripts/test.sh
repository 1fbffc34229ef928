#!/usr/bin/env bash
# The one command that runs every test of clipgate:
#   formatting, clippy, the workspace's Rust tests, the conformance suite against a running
#   clipgate (embedded Weaviate double + bundled fixture model) and the real-client scenarios
#   (Python weaviate-client v3, weaviate-ts-client 2.x).
# Every stage runs even if an earlier one failed; the last line is `total: N passed, M failed`
# and the exit code is non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

ART=artifacts
mkdir -p "$ART"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

declare -a STAGE_NAMES=() STAGE_RESULTS=()
TOTAL_PASSED=0
TOTAL_FAILED=0

banner() { printf '\n==> %s\n' "$*"; }

# record NAME STATUS LOG: adds the stage's `N passed, M failed` counts (summed over all such
# lines in LOG, cargo's `N passed; M failed` included) to the totals; a failed stage without
# counts counts as one failure.
record() {
  local name=$1 status=$2 log=$3 passed=0 failed=0
  if [ -f "$log" ]; then
    read -r passed failed < <(
      grep -Eo '[0-9]+ passed[;,] [0-9]+ failed' "$log" |
        awk '{p += $1; f += $3} END {print p + 0, f + 0}'
    )
  fi
  if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
  TOTAL_PASSED=$((TOTAL_PASSED + passed))
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
  local verdict=ok
  [ "$status" -eq 0 ] || verdict=FAILED
  STAGE_NAMES+=("$name")
  STAGE_RESULTS+=("$verdict ($passed passed, $failed failed)")
}

# stage NAME LOGFILE CMD...: runs CMD, shows its output, keeps it in LOGFILE.
stage() {
  local name=$1 log=$2
  shift 2
  banner "$name: $*"
  local status=0
  "$@" 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
  record "$name" "$status" "$log"
  return 0
}

stage "cargo fmt" "$ART/fmt.log" cargo fmt --all -- --check
stage "cargo clippy" "$ART/clippy.log" cargo clippy --workspace --all-targets -- -D warnings
stage "cargo test" "$ART/cargo-test.log" cargo test --workspace --no-fail-fast
stage "fuzz (proptest)" "$ART/fuzz.log" scripts/fuzz.sh
# The binaries as `cargo test` built them for the integration tests (target/debug/clipgate,
# target/debug/clipgate-conformance): a separate `cargo build -p …` would resolve other dependency
# features (no dev-dependencies) and compile tract a second time on a cold machine.
stage "build binaries" "$ART/build.log" cargo test --workspace --no-run

# --- clipgate on a free loopback port, embedded Weaviate double, bundled fixture model ---------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
GRPC_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CLIPGATE_PID=""
stop_clipgate() {
  if [ -n "$CLIPGATE_PID" ]; then
    kill "$CLIPGATE_PID" 2>/dev/null || true
    wait "$CLIPGATE_PID" 2>/dev/null || true
    CLIPGATE_PID=""
  fi
}
trap stop_clipgate EXIT

wait_ready() {
  python3 - "$1" <<'PY'
import sys, time, urllib.request
url = sys.argv[1] + "/v1/.well-known/ready"
deadline = time.time() + 90
while time.time() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status < 300:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.3)
sys.exit(1)
PY
}

banner "starting clipgate on $URL (log: $ART/clipgate.log)"
BIN="${CARGO_TARGET_DIR:-target}/debug"
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "${CHROMIUM:-}" ]; then
  stage "dashboard (headless Chromium)" "$ART/dashboard.log" env CLIPGATE_BIN="$BIN/clipgate" tests/dashboard/run.sh
else
  # .ci/run installs it (apt-get); a machine without it cannot run this one stage.
  banner "dashboard (headless Chromium): SKIPPED — chromium is not installed (apt-get install chromium)"
fi
if [ -x "$BIN/clipgate" ]; then
  RUST_LOG="${RUST_LOG:-info}" "$BIN/clipgate" serve --listen "127.0.0.1:$PORT" --grpc-listen "127.0.0.1:$GRPC_PORT" >"$ART/clipgate.log" 2>&1 &
  CLIPGATE_PID=$!
fi
if [ -n "$CLIPGATE_PID" ] && wait_ready "$URL"; then
  echo "clipgate is ready"
  stage "conformance suite" "$ART/conformance.log" \
    "$BIN/clipgate-conformance" run --target "$URL" --cases fixtures/conformance

  banner "real-client dependencies"
  if scripts/setup-clients.sh; then
    stage "python weaviate-client v3" "$ART/client-python.log" \
      env CLIPGATE_URL="$URL" .venv-clients/bin/python tests/clients/python/scenario_v3.py
    stage "weaviate-ts-client 2.x" "$ART/client-ts.log" \
      env CLIPGATE_URL="$URL" node tests/clients/ts/scenario.mjs
    stage "python weaviate-client v4" "$ART/client-python-v4.log" \
      env CLIPGATE_URL="$URL" CLIPGATE_GRPC="127.0.0.1:$GRPC_PORT" .venv-clients-v4/bin/python tests/clients/python/scenario_v4.py
    stage "weaviate-client 3.x (ts)" "$ART/client-ts-v3.log" \
      env CLIPGATE_URL="$URL" CLIPGATE_GRPC="127.0.0.1:$GRPC_PORT" node tests/clients/ts-v3/scenario.mjs
  else
    record "client dependencies" 1 /dev/null
  fi
else
  echo "clipgate did not become ready; last log lines:"
  tail -n 30 "$ART/clipgate.log" 2>/dev/null || true
  record "start clipgate" 1 /dev/null
fi
stop_clipgate

banner "summary"
for i in "${!STAGE_NAMES[@]}"; do
  printf '  %-28s %s\n' "${STAGE_NAMES[$i]}" "${STAGE_RESULTS[$i]}"
done
echo "total: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ "$TOTAL_FAILED" -eq 0 ]
