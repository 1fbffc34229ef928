#!/usr/bin/env bash
# Import-time vectorization benchmark (issue 5). NOT a test: it prints numbers.
#
# For each model (the bundled fixture model, then the full-size random-weight ViT-B/32 at
# fixtures/bench/vit-b32), starts a fresh `clipgate serve` with the embedded Weaviate double
# (no --weaviate-url) on 127.0.0.1, creates a multi2vec-clip text class and image class, and times
# POST /v1/batch/objects of $TEXTS unique text objects (batches of 100) and $IMAGES image objects
# (batches of 20; fixture PNGs with a few random pixels changed, so the cache never hits), with
# $WORKERS concurrent batch requests. Every object's result must be SUCCESS.
#
# Usage: bench/import.sh                     (TEXTS=1000 IMAGES=200 WORKERS=2)
#        MODELS=fixture TEXTS=100 IMAGES=20 bench/import.sh
# The ViT-B/32 model (about 600 MB, gitignored) is built with the ML venv:
#   /opt/mlenv/bin/python fixtures/scripts/make_bench_model.py      (-> fixtures/bench/vit-b32)
# Without it, that row is skipped with a note.
set -euo pipefail

TEXTS=${TEXTS:-1000}
IMAGES=${IMAGES:-200}
WORKERS=${WORKERS:-2}
MODELS=${MODELS:-"fixture vit-b32"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

if [ -z "${CLIPGATE_BIN:-}" ]; then
    echo "building clipgate (release)..." >&2
    cargo build --release -q -p gateway --bin clipgate
fi
CLIPGATE=${CLIPGATE_BIN:-"$ROOT/target/release/clipgate"}   # CLIPGATE_BIN: use a prebuilt binary

WORK=$(mktemp -d /tmp/clipgate-bench-import.XXXXXX)
PID=""
cleanup() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
status=0
for model in $MODELS; do
    case $model in
    fixture) model_dir="$ROOT/fixtures/model" ;;
    vit-b32) model_dir="$ROOT/fixtures/bench/vit-b32" ;;
    *) echo "unknown model $model (fixture|vit-b32)" >&2; exit 2 ;;
    esac
    if [ ! -f "$model_dir/onnx/text_model.onnx" ]; then
        echo "skipping $model: $model_dir missing; build it with:" >&2
        echo "  /opt/mlenv/bin/python fixtures/scripts/make_bench_model.py" >&2
        printf '%s\t(missing: see fixtures/scripts/make_bench_model.py)\n' "$model" >>"$RESULTS"
        continue
    fi
    port=$(free_port)
    RUST_LOG=${RUST_LOG:-warn} "$CLIPGATE" serve --listen "127.0.0.1:$port" --grpc-listen 127.0.0.1:0 --model-dir "$model_dir" \
        >"$WORK/clipgate-$model.log" 2>&1 &
    PID=$!
    up=""
    for _ in $(seq 1 1200); do  # model load can take a while for ViT-B/32
        if curl -sf -o /dev/null "http://127.0.0.1:$port/v1/meta"; then up=1; break; fi
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$up" ]; then
        echo "clipgate ($model) did not start:" >&2
        cat "$WORK/clipgate-$model.log" >&2
        exit 1
    fi
    echo "measuring $model ($TEXTS texts, $IMAGES images, $WORKERS workers)..." >&2
    if ! python3 "$ROOT/bench/import_bench.py" --url "http://127.0.0.1:$port" \
        --texts "$TEXTS" --images "$IMAGES" --workers "$WORKERS" >"$WORK/$model.tsv"; then
        status=1
        tail -20 "$WORK/clipgate-$model.log" >&2
    fi
    sed "s/^/$model\t/" "$WORK/$model.tsv" >>"$RESULTS"
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
done

echo
echo "batch import through clipgate (embedded double), $WORKERS concurrent batch requests, $(nproc) CPUs"
awk -F'\t' 'BEGIN { printf "%-10s %-6s %8s %9s %10s  %s\n", "model", "kind", "objects", "seconds", "objects/s", "results" }
    NF >= 5 { printf "%-10s %-6s %8s %9s %10s  %s\n", $1, $2, $3, $4, $5, ($6 == "ok" ? "all SUCCESS" : "FAILURES") }
    NF == 2 { printf "%-10s %s\n", $1, $2 }' "$RESULTS"
exit $status
