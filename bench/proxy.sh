#!/usr/bin/env bash
# Proxy overhead benchmark (issue 4). NOT a test: it prints numbers, it asserts nothing about speed.
#
# Starts on 127.0.0.1 only:
#   - a fast static upstream (nginx answering fixed JSON: POST /v1/graphql, GET /v1/schema with one
#     clip-managed class "Shape" in its stored form, GET /v1/meta, GET /v1/nodes);
#   - clipgate (release build) with --weaviate-url pointing at that upstream, bundled fixture model,
#     default cache;
#   - an nginx reverse proxy to the same upstream (what a user would otherwise put in front of
#     Weaviate: HTTP/1.1 upstream keep-alive, worker_processes auto).
# Then measures with wrk --latency, in one run:
#   (a) a cached nearText Get through clipgate vs the equivalent nearVector Get (64 floats, the
#       fixture model's vector length) through nginx, at concurrency $CONC (target: >= 0.8x nginx);
#   (b) a pass-through GET /v1/nodes at concurrency 1 (wrk -t1 -c1) through clipgate, through nginx
#       and straight to the upstream; added p50 of each proxy over direct (target: clipgate adds at
#       most 20 us p50 more than nginx).
#
# Usage: bench/proxy.sh            (DURATION=10s CONC=16 THREADS=2 by default; CLIPGATE_BIN=path skips the build)
#        DURATION=3s bench/proxy.sh
# Needs: nginx, wrk (installed with apt-get if missing), python3 (standard library only), cargo.
set -euo pipefail

DURATION=${DURATION:-10s}
CONC=${CONC:-16}
THREADS=${THREADS:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    echo "installing nginx and wrk (apt-get)..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk >/dev/null
fi
NGINX=$(command -v nginx)

if [ -z "${CLIPGATE_BIN:-}" ]; then
    echo "building clipgate (release)..." >&2
    cargo build --release -q -p gateway --bin clipgate
fi
CLIPGATE=${CLIPGATE_BIN:-"$ROOT/target/release/clipgate"}   # CLIPGATE_BIN: use a prebuilt binary

WORK=$(mktemp -d /tmp/clipgate-bench-proxy.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP_PORT=$(free_port)
NGX_PORT=$(free_port)
GW_PORT=$(free_port)
while [ "$NGX_PORT" = "$UP_PORT" ]; do NGX_PORT=$(free_port); done
while [ "$GW_PORT" = "$UP_PORT" ] || [ "$GW_PORT" = "$NGX_PORT" ]; do GW_PORT=$(free_port); done

# ---- request bodies, wrk scripts and canned upstream answers (python3: exact JSON) ----
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
vector = [round(((i * 37) % 101) / 101.0 - 0.5, 6) for i in range(64)]   # 64 = fixture model
fields = "name _additional { distance }"
near_text = {"query": '{ Get { Shape(nearText: {concepts: ["a red circle"]}, limit: 3) { %s } } }' % fields}
near_vector = {"query": "{ Get { Shape(nearVector: {vector: %s}, limit: 3) { %s } } }"
               % (json.dumps(vector), fields)}
answer = {"data": {"Get": {"Shape": [
    {"name": "red-circle", "_additional": {"distance": 0.12}},
    {"name": "red-square", "_additional": {"distance": 0.34}},
    {"name": "pink-heart", "_additional": {"distance": 0.41}}]}}}
schema = {"classes": [{
    "class": "Shape", "vectorizer": "none",
    "moduleConfig": {"multi2vec-clip": {"imageFields": ["image"]}},
    "properties": [{"name": "name", "dataType": ["text"]}, {"name": "image", "dataType": ["blob"]}],
    "vectorIndexType": "hnsw", "vectorIndexConfig": {"distance": "cosine"}}]}
meta = {"hostname": "http://[::]:8080", "version": "1.25.0", "modules": {}}
nodes = {"nodes": [{"name": "node1", "status": "HEALTHY", "version": "1.25.0", "gitHash": "bench",
                    "shards": None, "stats": {"objectCount": 0, "shardCount": 0}}]}
def nginx_str(s):   # nginx `return 200 '...'` string: escape backslash and single quote
    return s.replace("\\", "\\\\").replace("'", "\\'")
for name, obj in [("near_text", near_text), ("near_vector", near_vector)]:
    body = json.dumps(obj)
    open(f"{work}/{name}.json", "w").write(body)
    open(f"{work}/{name}.lua", "w").write(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        'wrk.body = [==[%s]==]\n' % body)
for name, obj in [("answer", answer), ("schema", schema), ("meta", meta), ("nodes", nodes)]:
    open(f"{work}/{name}.nginx", "w").write(nginx_str(json.dumps(obj)))
PY

user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
common() { # $1 = name
    cat <<EOF
$user_line
daemon off;
pid $WORK/$1.pid;
error_log $WORK/$1.error.log warn;
events { worker_connections 4096; }
EOF
}
http_common() { # $1 = name
    cat <<EOF
    access_log off;
    client_body_temp_path $WORK/$1.body;
    proxy_temp_path $WORK/$1.proxy;
    fastcgi_temp_path $WORK/$1.fastcgi;
    uwsgi_temp_path $WORK/$1.uwsgi;
    scgi_temp_path $WORK/$1.scgi;
    keepalive_requests 1000000;
EOF
}

# Static upstream: one worker (a fast, cheap stand-in for Weaviate).
{
    common upstream
    echo "worker_processes 1;"
    echo "http {"
    http_common upstream
    cat <<EOF
    default_type application/json;
    client_body_buffer_size 64k;
    server {
        listen 127.0.0.1:$UP_PORT;
        location = /v1/graphql { return 200 '$(cat "$WORK/answer.nginx")'; }
        location = /v1/schema  { return 200 '$(cat "$WORK/schema.nginx")'; }
        location = /v1/meta    { return 200 '$(cat "$WORK/meta.nginx")'; }
        location = /v1/nodes   { return 200 '$(cat "$WORK/nodes.nginx")'; }
        location / { return 404 '{"error":[{"message":"not found"}]}'; }
    }
}
EOF
} >"$WORK/upstream.conf"

# Reverse proxy: the usual production setup (keep-alive to the upstream, HTTP/1.1).
{
    common proxy
    echo "worker_processes auto;"
    echo "http {"
    http_common proxy
    cat <<EOF
    upstream weaviate { server 127.0.0.1:$UP_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$NGX_PORT;
        client_max_body_size 64m;
        location / {
            proxy_pass http://weaviate;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
        }
    }
}
EOF
} >"$WORK/proxy.conf"

"$NGINX" -t -q -p "$WORK" -c "$WORK/upstream.conf" -e "$WORK/upstream.error.log"
"$NGINX" -t -q -p "$WORK" -c "$WORK/proxy.conf" -e "$WORK/proxy.error.log"
"$NGINX" -p "$WORK" -c "$WORK/upstream.conf" -e "$WORK/upstream.error.log" &
PIDS+=($!)
"$NGINX" -p "$WORK" -c "$WORK/proxy.conf" -e "$WORK/proxy.error.log" &
PIDS+=($!)
RUST_LOG=${RUST_LOG:-warn} "$CLIPGATE" serve --listen "127.0.0.1:$GW_PORT" --grpc-listen 127.0.0.1:0 \
    --weaviate-url "http://127.0.0.1:$UP_PORT" >"$WORK/clipgate.log" 2>&1 &
PIDS+=($!)

wait_up() { # $1 = url
    for _ in $(seq 1 300); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "not answering: $1" >&2
    cat "$WORK"/*.log >&2 || true
    exit 1
}
wait_up "http://127.0.0.1:$UP_PORT/v1/meta"
wait_up "http://127.0.0.1:$NGX_PORT/v1/meta"
wait_up "http://127.0.0.1:$GW_PORT/v1/meta"

# Sanity: both queries answer 200 with the canned data; this also warms clipgate's embedding
# cache ("a red circle") and its schema cache.
check_post() { # $1 = url, $2 = body file
    local out code
    out=$(curl -s -w '\n%{http_code}' "$1" -H 'content-type: application/json' --data-binary "@$2")
    code=${out##*$'\n'}
    if [ "$code" != 200 ] || ! grep -q red-circle <<<"$out"; then
        echo "unexpected answer from $1: $out" >&2
        exit 1
    fi
}
for _ in 1 2 3; do
    check_post "http://127.0.0.1:$GW_PORT/v1/graphql" "$WORK/near_text.json"
    check_post "http://127.0.0.1:$NGX_PORT/v1/graphql" "$WORK/near_vector.json"
done

run_wrk() { # $1 = label, rest = wrk args; output kept in $WORK/$1.wrk
    local label=$1
    shift
    echo "wrk $label: $*" >&2
    wrk --latency -d "$DURATION" "$@" >"$WORK/$label.wrk" 2>&1
}
run_wrk a_clipgate -t"$THREADS" -c"$CONC" -s "$WORK/near_text.lua" "http://127.0.0.1:$GW_PORT/v1/graphql"
run_wrk a_nginx -t"$THREADS" -c"$CONC" -s "$WORK/near_vector.lua" "http://127.0.0.1:$NGX_PORT/v1/graphql"
run_wrk b_clipgate -t1 -c1 "http://127.0.0.1:$GW_PORT/v1/nodes"
run_wrk b_nginx -t1 -c1 "http://127.0.0.1:$NGX_PORT/v1/nodes"
run_wrk b_direct -t1 -c1 "http://127.0.0.1:$UP_PORT/v1/nodes"
curl -s "http://127.0.0.1:$GW_PORT/metrics" >"$WORK/clipgate.metrics" || true
if [ -n "${KEEP_DIR:-}" ]; then   # KEEP_DIR=dir: keep configs, wrk outputs, logs and metrics
    mkdir -p "$KEEP_DIR" && cp -r "$WORK"/. "$KEEP_DIR"/
fi

python3 - "$WORK" "$DURATION" "$CONC" "$(nproc)" <<'PY'
import re, sys
work, duration, conc, cpus = sys.argv[1:]
UNITS = {"us": 1.0, "ms": 1000.0, "s": 1e6}
def parse(label):
    text = open(f"{work}/{label}.wrk").read()
    lat = {p: float(v) * UNITS[u] for p, v, u in
           re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errs = re.search(r"Socket errors:.*", text)
    if rps is None or "50" not in lat:
        sys.exit(f"cannot parse wrk output for {label}:\n{text}")
    return {"rps": float(rps.group(1)), "p50": lat["50"], "p99": lat.get("99", float("nan")),
            "non2xx": int(bad.group(1)) if bad else 0, "errors": errs.group(0) if errs else ""}
r = {k: parse(k) for k in ["a_clipgate", "a_nginx", "b_clipgate", "b_nginx", "b_direct"]}
for k, v in r.items():
    if v["non2xx"] or v["errors"]:
        print(f"WARNING {k}: non-2xx={v['non2xx']} {v['errors']}")
print(f"\n(a) cached Get, {duration} each, concurrency {conc}, {cpus} CPUs")
print(f"{'path':<44}{'req/s':>10}{'p50 us':>10}{'p99 us':>10}")
print(f"{'clipgate  nearText (cached) -> nearVector':<44}{r['a_clipgate']['rps']:>10.0f}"
      f"{r['a_clipgate']['p50']:>10.0f}{r['a_clipgate']['p99']:>10.0f}")
print(f"{'nginx     nearVector (64 floats)':<44}{r['a_nginx']['rps']:>10.0f}"
      f"{r['a_nginx']['p50']:>10.0f}{r['a_nginx']['p99']:>10.0f}")
ratio = r["a_clipgate"]["rps"] / r["a_nginx"]["rps"]
print(f"ratio clipgate/nginx req/s: {ratio:.2f}x (target >= 0.80x) -> {'met' if ratio >= 0.8 else 'NOT met'}")
print(f"\n(b) pass-through GET /v1/nodes, {duration} each, wrk -t1 -c1")
print(f"{'path':<44}{'req/s':>10}{'p50 us':>10}{'p99 us':>10}{'+p50 us':>10}")
d = r["b_direct"]["p50"]
for k, name in [("b_direct", "direct to upstream"), ("b_nginx", "via nginx"), ("b_clipgate", "via clipgate")]:
    v = r[k]
    print(f"{name:<44}{v['rps']:>10.0f}{v['p50']:>10.1f}{v['p99']:>10.1f}{v['p50'] - d:>10.1f}")
extra = (r["b_clipgate"]["p50"] - d) - (r["b_nginx"]["p50"] - d)
print(f"clipgate adds {extra:.1f} us p50 more than nginx (target <= 20 us) -> {'met' if extra <= 20 else 'NOT met'}")
PY
