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

# crate  test-target  cases (per property test)
TARGETS=(
  "gateway fuzz_graphql 1500"
  "vectorizer fuzz_base64 4000"
  "vectorizer fuzz_images 400"
  "gateway fuzz_grpc 3000"
)

for t in "${TARGETS[@]}"; do
  read -r crate target _ <<<"$t"
  cargo test -q -p "$crate" --test "$target" --no-run 2>&1 | grep -v '^\s*$' || true
done

status=0
total_start=$EPOCHREALTIME
for t in "${TARGETS[@]}"; do
  read -r crate target cases <<<"$t"
  cases=$((cases * SCALE))
  log=$(mktemp)
  start=$EPOCHREALTIME
  if PROPTEST_CASES="$cases" cargo test -q -p "$crate" --test "$target" -- --test-threads=1 --nocapture >"$log" 2>&1; then
    verdict=ok
  else
    verdict=FAILED
    status=1
  fi
  secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {print b - a}')
  printf '%-14s %-6s PROPTEST_CASES=%-6s %6.1f s\n' "$target" "$verdict" "$cases" "$secs"
  grep -E '^fuzz_|^gif frame|test result' "$log" | sed 's/^/    /' || true
  if [ "$verdict" = FAILED ]; then
    tail -n 60 "$log"
  fi
  rm -f "$log"
done
printf 'fuzz total: %.1f s\n' "$(awk -v a="$total_start" -v b="$EPOCHREALTIME" 'BEGIN {print b - a}')"
exit "$status"
