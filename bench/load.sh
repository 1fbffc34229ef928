#!/usr/bin/env bash
# Load harness (issue 7, "Load and resources"). NOT a test: it prints numbers and checks that no
# request failed (and, with --soak, the RSS budget).
#
# Starts on 127.0.0.1 only:
#   - the Weaviate double as its own process (`clipgate-conformance double`), so that the RSS
#     measured is clipgate's alone;
#   - clipgate (release build) with --weaviate-url pointing at it and --cache-mb $CACHE_MB (64);
# seeds a multi2vec-clip class `Shape` (text field `name` + image field `image`) with the 10
# fixture images (searched), creates `Imported` (same settings; the batch imports go there, so the
# searched class stays small and the double's brute-force search does not slow down as the run
# goes on), then runs ONE wrk run (bench/load.lua) of a mix at concurrency $CONC:
#   35 % cached nearText (10 fixed texts)      20 % uncached nearText (a unique text each)
#   15 % nearImage (the 10 fixture images)      20 % pass-through GETs (/v1/objects, /v1/nodes)
#   10 % batch imports (4 objects: a unique name + a fixture image each)
# and reports throughput, p50/p99, non-2xx, socket errors, GraphQL errors inside 200 answers,
# FAILED batch objects and empty search results (all must be 0), requests by kind, latency by
# route (from clipgate's /metrics histograms) and clipgate's peak RSS (VmHWM; VmRSS polled 1/s).
#
#   bench/load.sh                 mix for $DURATION (60s; must reach >= $MIN_REQUESTS = 20000)
#   bench/load.sh --soak 10       uncached nearText only (cache churn) for 10 minutes: one RSS line
#                                 per 30 s, then checks max RSS < cache + model + 150 MB
# Environment: DURATION, CONC (64), THREADS (2), CACHE_MB (64), MODEL_DIR (fixtures/model),
#   CLIPGATE_BIN / DOUBLE_BIN (prebuilt binaries: skip the build), KEEP_DIR (keep logs and outputs).
# Needs: wrk (with its Lua scripting), python3 (standard library), curl, cargo.
set -euo pipefail

DURATION=${DURATION:-60s}
CONC=${CONC:-64}
THREADS=${THREADS:-2}
CACHE_MB=${CACHE_MB:-64}
MIN_REQUESTS=${MIN_REQUESTS:-20000}
SOAK_MINUTES=""
if [ "${1:-}" = "--soak" ]; then
    SOAK_MINUTES=${2:?usage: bench/load.sh --soak MINUTES}
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MODEL_DIR=${MODEL_DIR:-"$ROOT/fixtures/model"}

command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 2; }
if [ -z "${CLIPGATE_BIN:-}" ] || [ -z "${DOUBLE_BIN:-}" ]; then
    echo "building clipgate and clipgate-conformance (release)..." >&2
    cargo build --release -q -p gateway --bin clipgate -p conformance --bin clipgate-conformance
fi
CLIPGATE=${CLIPGATE_BIN:-"$ROOT/target/release/clipgate"}
DOUBLE=${DOUBLE_BIN:-"$ROOT/target/release/clipgate-conformance"}

WORK=$(mktemp -d /tmp/clipgate-bench-load.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "${KEEP_DIR:-}" ]; then mkdir -p "$KEEP_DIR" && cp -r "$WORK"/. "$KEEP_DIR"/; fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DB_PORT=$(free_port)
GW_PORT=$(free_port)
while [ "$GW_PORT" = "$DB_PORT" ]; do GW_PORT=$(free_port); done
GW="http://127.0.0.1:$GW_PORT"
# gRPC ports too (binaries with a gRPC listener default to 127.0.0.1:50051, maybe taken).
DB_GRPC=(); GW_GRPC=()
if "$DOUBLE" double --help 2>/dev/null | grep -q -- --grpc-listen; then
    DB_GRPC_PORT=$(free_port)
    DB_GRPC=(--grpc-listen "127.0.0.1:$DB_GRPC_PORT")
    GW_GRPC=(--weaviate-grpc "http://127.0.0.1:$DB_GRPC_PORT")
fi
if "$CLIPGATE" serve --help 2>/dev/null | grep -q -- --grpc-listen; then
    GW_GRPC+=(--grpc-listen "127.0.0.1:$(free_port)")
fi

RUST_LOG=warn "$DOUBLE" double --listen "127.0.0.1:$DB_PORT" "${DB_GRPC[@]}" >"$WORK/double.log" 2>&1 &
DB_PID=$!
PIDS+=("$DB_PID")
RUST_LOG=${RUST_LOG:-warn} "$CLIPGATE" serve --listen "127.0.0.1:$GW_PORT" \
    --weaviate-url "http://127.0.0.1:$DB_PORT" --cache-mb "$CACHE_MB" --model-dir "$MODEL_DIR" \
    "${GW_GRPC[@]}" >"$WORK/clipgate.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")

wait_up() { # $1 = url
    for _ in $(seq 1 600); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "not answering: $1" >&2
    cat "$WORK"/*.log >&2 || true
    exit 1
}
wait_up "http://127.0.0.1:$DB_PORT/v1/meta"
wait_up "$GW/v1/meta"

# ---- seed data and the wrk script (bench/load.lua gets the fixture images from a generated file) ----
python3 - "$WORK" "$ROOT/fixtures/images" "$GW" <<'PY'
import base64, json, os, sys, urllib.request
work, images_dir, gw = sys.argv[1:]
names = sorted(f[:-4] for f in os.listdir(images_dir) if f.endswith(".png"))
images = [base64.b64encode(open(os.path.join(images_dir, n + ".png"), "rb").read()).decode() for n in names]
def post(path, body):
    req = urllib.request.Request(gw + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, json.loads(r.read())
for cls in ["Shape", "Imported"]:
    status, _ = post("/v1/schema", {"class": cls, "vectorizer": "multi2vec-clip",
        "moduleConfig": {"multi2vec-clip": {"textFields": ["name"], "imageFields": ["image"],
                                            "weights": {"textFields": [0.3], "imageFields": [0.7]}}},
        "properties": [{"name": "name", "dataType": ["text"]}, {"name": "image", "dataType": ["blob"]}]})
    assert status == 200, status
status, results = post("/v1/batch/objects", {"objects": [
    {"class": "Shape", "properties": {"name": n.replace("-", " "), "image": b}} for n, b in zip(names, images)]})
bad = [r for r in results if r["result"].get("status") != "SUCCESS"]
assert status == 200 and len(results) == len(names) and not bad, (status, bad)
with open(f"{work}/images.lua", "w") as f:
    f.write("return {\n" + ",\n".join(json.dumps(b) for b in images) + "\n}\n")
print(f"seeded {len(names)} fixture images into class Shape", file=sys.stderr)
PY

# ---- RSS of clipgate, sampled once a second: "<seconds> <VmRSS kB> <VmHWM kB>" ----
(
    start=$(date +%s)
    while [ -r "/proc/$GW_PID/status" ]; do
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$GW_PID/status" 2>/dev/null || true)
        hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$GW_PID/status" 2>/dev/null || true)
        [ -n "$rss" ] && echo "$(($(date +%s) - start)) $rss $hwm" >>"$WORK/rss.log"
        sleep 1
    done
) &
PIDS+=($!)

MODE=mix
RUN_FOR=$DURATION
if [ -n "$SOAK_MINUTES" ]; then
    MODE=soak
    RUN_FOR="${SOAK_MINUTES}m"
fi
echo "wrk: $MODE, -t$THREADS -c$CONC -d$RUN_FOR against $GW (clipgate pid $GW_PID, --cache-mb $CACHE_MB)" >&2
LOAD_IMAGES="$WORK/images.lua" wrk --latency -t"$THREADS" -c"$CONC" -d"$RUN_FOR" --timeout 30s \
    -s "$ROOT/bench/load.lua" "$GW" -- "$MODE" >"$WORK/wrk.out" 2>&1 &
WRK_PID=$!
PIDS+=("$WRK_PID")

if [ "$MODE" = soak ]; then
    # One line per 30 s while wrk runs: the RSS curve and the cache's own numbers.
    printf '%8s %10s %10s %12s %12s %12s\n' "t (s)" "RSS MB" "peak MB" "cache MB" "entries" "evictions"
    t0=$(date +%s)
    while kill -0 "$WRK_PID" 2>/dev/null; do
        for _ in $(seq 1 30); do kill -0 "$WRK_PID" 2>/dev/null || break; sleep 1; done
        metrics=$(curl -s --max-time 5 "$GW/metrics" || true)
        read -r rss hwm < <(awk '/^VmRSS:/ {r=$2} /^VmHWM:/ {h=$2} END {print r, h}' "/proc/$GW_PID/status")
        cache_bytes=$(awk '/^clipgate_cache_bytes/ {s+=$2} END {print s+0}' <<<"$metrics")
        entries=$(awk '/^clipgate_cache_entries/ {s+=$2} END {print s+0}' <<<"$metrics")
        evictions=$(awk '/^clipgate_cache_evictions_total/ {s+=$2} END {print s+0}' <<<"$metrics")
        awk -v t="$(($(date +%s) - t0))" -v r="$rss" -v h="$hwm" -v c="$cache_bytes" -v e="$entries" \
            -v x="$evictions" 'BEGIN { printf "%8d %10.1f %10.1f %12.1f %12d %12d\n", t, r/1024, h/1024, c/1048576, e, x }' |
            tee -a "$WORK/soak.log"
    done
fi
wait "$WRK_PID" || { cat "$WORK/wrk.out" >&2; exit 1; }
curl -s "$GW/metrics" >"$WORK/clipgate.metrics" || true
grep -E '^Vm(RSS|HWM)' "/proc/$GW_PID/status" >"$WORK/final.status"
# CPU seconds (user + system) each process used, to see where the 2 cores went.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$1/stat"; }
echo "clipgate $(cpu "$GW_PID") double $(cpu "$DB_PID")" >"$WORK/cpu.txt"

MODEL_MB=$(du -sm "$MODEL_DIR" | awk '{print $1}')
python3 - "$WORK" "$MODE" "$CONC" "$(nproc)" "$MIN_REQUESTS" "$CACHE_MB" "$MODEL_MB" <<'PY'
import re, sys
work, mode, conc, cpus, min_requests, cache_mb, model_mb = sys.argv[1:]
min_requests, cache_mb, model_mb = int(min_requests), int(cache_mb), int(model_mb)
text = open(f"{work}/wrk.out").read()
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
lat = {p: float(v) * UNITS[u] for p, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)}
total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", text)
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
load = dict(re.findall(r"^LOAD (\w+)=(\S+)$", text, re.M))
if not total or not rps or "50" not in lat or not load:
    sys.exit(f"cannot parse the wrk output:\n{text}")
requests = int(total.group(1))
seconds = float(total.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[total.group(3)]
sockets = sum(int(x) for x in sock.groups()) if sock else 0
bad = {
    "non-2xx": int(non2xx.group(1)) if non2xx else 0,
    "socket errors": sockets,
    "GraphQL errors in 200": int(load["gql_errors"]),
    "empty search results": int(load["gql_empty"]),
    "FAILED batch objects": int(load["batch_failed"]),
    "unrecognised bodies": int(load["unknown"]),
}
rss = [tuple(int(x) for x in l.split()) for l in open(f"{work}/rss.log") if len(l.split()) == 3]
final = dict(re.findall(r"^(Vm\w+):\s+(\d+) kB", open(f"{work}/final.status").read(), re.M))
peak_rss_mb = max([r[1] for r in rss] + [int(final["VmRSS"])]) / 1024
hwm_mb = int(final["VmHWM"]) / 1024

# Latency by route from clipgate's histograms (upper bucket bound where the percentile falls).
buckets = {}
for route, le, n in re.findall(r'^clipgate_http_request_duration_seconds_bucket\{(?=[^}]*route="([^"]+)")(?=[^}]*le="([^"]+)")[^}]*\}\s+(\d+)', open(f"{work}/clipgate.metrics").read(), re.M):
    buckets.setdefault(route, []).append((float("inf") if le == "+Inf" else float(le), int(n)))
def pct(bs, q):
    bs = sorted(bs); count = bs[-1][1]
    for le, n in bs:
        if n >= q * count:
            return le * 1000
    return float("inf")

print(f"\nclipgate load, {mode}: {requests} requests in {seconds:.1f} s, concurrency {conc}, {cpus} CPUs, --cache-mb {cache_mb}")
print(f"{'throughput':<28}{float(rps.group(1)):>12.0f} req/s")
print(f"{'latency p50 / p99 (all)':<28}{lat['50']:>12.2f} / {lat.get('99', float('nan')):.2f} ms")
for k, v in bad.items():
    print(f"{k:<28}{v:>12}")
cpu = open(f"{work}/cpu.txt").read().split()
print(f"{'CPU seconds used':<28}{'clipgate ' + cpu[1] + ' s, double ' + cpu[3] + ' s':>12}")
print(f"{'clipgate peak RSS':<28}{max(peak_rss_mb, hwm_mb):>12.1f} MB (VmHWM {hwm_mb:.1f} MB, model files {model_mb} MB)")
kinds = [("near_text_cached", "nearText, cached"), ("near_text_uncached", "nearText, uncached"),
         ("near_image", "nearImage"), ("get", "pass-through GET"), ("batch", "batch import (4 objects)")]
print(f"\n{'requests sent by kind':<28}{'count':>12}")
for key, name in kinds:
    print(f"  {name:<26}{int(load['sent_' + key]):>12}")
if buckets:
    print(f"\n{'latency by route (/metrics)':<40}{'count':>10}{'p50 <= ms':>12}{'p99 <= ms':>12}")
    for route, bs in sorted(buckets.items()):
        count = max(n for _, n in bs)
        if count:
            print(f"  {route:<38}{count:>10}{pct(bs, .5):>12.2f}{pct(bs, .99):>12.2f}")
failed = False
if any(bad.values()):
    print("\nFAILED: some requests failed (see above)"); failed = True
if mode == "mix" and requests < min_requests:
    print(f"\nNOT met: {requests} requests < {min_requests} (raise DURATION)"); failed = True
if mode == "soak":
    limit = cache_mb + model_mb + 150
    ok = max(peak_rss_mb, hwm_mb) < limit
    print(f"\nRSS budget: peak {max(peak_rss_mb, hwm_mb):.1f} MB < cache {cache_mb} + model {model_mb} + 150 = {limit} MB -> {'met' if ok else 'NOT met'}")
    failed |= not ok
sys.exit(1 if failed else 0)
PY
