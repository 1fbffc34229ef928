#!/usr/bin/env bash
# The fuzz run (issue 7, "Hostile input"): the property-based fuzz targets with many cases.
# `cargo test` runs the same targets with a few cases each; this runs them long enough to find
# things, within about 2 minutes on 2 cores once built (the build is not counted).
#
#   scripts/fuzz.sh                 # default case counts below
#   FUZZ_SCALE=10 scripts/fuzz.sh   # 10 times as many cases (longer, e.g. nightly)
#
# Prints, per target, the cases run (and what they exercised) and the wall time. Exit code
# non-zero if a target fails; proptest then writes the shrunk case to
# <crate>/proptest-regressions/<target>.txt — commit it, it is replayed first on every run.
# Seed corpora: fixtures/fuzz/ (README there).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
SCALE="${FUZZ_SCALE:-1}"

# crate  test-target  PROPTEST_CASES (per property test)
TARGETS=(
  "gateway fuzz_graphql 3000"
  "vectorizer fuzz_base64 50000"
  "vectorizer fuzz_images 5000"
  "gateway fuzz_grpc 3000"
)

# The built test executable of test target TARGET (built here, so that the timings below are the
# fuzzing's own, not cargo's or a wait for its build lock). Built with `--workspace`, i.e. with
# the dependency features of `cargo test --workspace`, so the binaries that run already built are
# reused: `-p CRATE` alone resolves other features for shared dependencies and compiled tract
# again (minutes on a cold machine). Target names are unique in the workspace.
executable() {
  cargo test -q --workspace --test "$2" --no-run --message-format=json 2>/dev/null |
    grep -o "\"executable\":\"[^\"]*/$2-[0-9a-f]*\"" | sed 's/^"executable":"//; s/"$//' | tail -n 1 || true
}

status=0
declare -a BINARIES=()
for t in "${TARGETS[@]}"; do
  read -r crate target _ <<<"$t"
  bin=$(executable "$crate" "$target")
  if [ -z "$bin" ]; then
    echo "$target: build failed:"
    cargo test -q --workspace --test "$target" --no-run 2>&1 | tail -n 40
    status=1
  fi
  BINARIES+=("$bin")
done

total_start=$EPOCHREALTIME
for i in "${!TARGETS[@]}"; do
  read -r crate target cases <<<"${TARGETS[$i]}"
  bin=${BINARIES[$i]}
  [ -n "$bin" ] || continue
  cases=$((cases * SCALE))
  log=$(mktemp)
  start=$EPOCHREALTIME
  # Tests run in their crate's directory, as under `cargo test`.
  if (cd "$crate" && PROPTEST_CASES="$cases" "$bin" --test-threads=1 --nocapture) >"$log" 2>&1; then
    verdict=ok
  else
    verdict=FAILED
    status=1
  fi
  secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {print b - a}')
  printf '%-14s %-6s PROPTEST_CASES=%-6s %6.1f s\n' "$target" "$verdict" "$cases" "$secs"
  grep -Eo 'fuzz_[a-z0-9_]*(::[a-z0-9_]+)?: .*|gif frame.*|test result.*' "$log" | sed 's/^/    /' || true
  if [ "$verdict" = FAILED ]; then
    tail -n 60 "$log"
  fi
  rm -f "$log"
done
printf 'fuzz total: %.1f s\n' "$(awk -v a="$total_start" -v b="$EPOCHREALTIME" 'BEGIN {print b - a}')"
exit "$status"
