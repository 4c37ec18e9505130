#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ one after another, each for a bounded
# time, and prints a summary: executions, exec/s, coverage, corpus size and
# whether a crash was found. Exits non-zero if any target crashed.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]   (default 600, all targets)
#   FUZZ_SMOKE=1 scripts/fuzz.sh                       (10 s each)
#
# Environment:
#   FUZZ_SANITIZER  address (default) or none; falls back to none when the
#                   address-sanitizer build fails.
#   FUZZ_ARGS       extra libFuzzer arguments, e.g. "-seed=1 -jobs=1".
#
# Only stable Rust is needed: cargo-fuzz's nightly flags are allowed with
# RUSTC_BOOTSTRAP=1. The grown corpus goes to fuzz/corpus/<target>/ (not
# committed); crashes to fuzz/artifacts/<target>/; logs to fuzz/logs/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/fuzz"
ALL_TARGETS=(npy_header npy_read call_key npz_aligned block_digests)

SECONDS_PER_TARGET="${1:-}"
if [[ $# -gt 0 ]]; then shift; fi
if [[ -z "$SECONDS_PER_TARGET" ]]; then
  if [[ "${FUZZ_SMOKE:-0}" != 0 ]]; then SECONDS_PER_TARGET=10; else SECONDS_PER_TARGET=600; fi
fi
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [[ "$SECONDS_PER_TARGET" -lt 1 ]]; then
  echo "usage: $0 [seconds-per-target] [target...]" >&2
  exit 2
fi
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then TARGETS=("${ALL_TARGETS[@]}"); fi

# Per-target libFuzzer options.
max_len() {
  case "$1" in
    npy_header) echo 65536 ;;   # headers; the round trip reaches the 2.0 (u32 length) form
    npy_read) echo 1048576 ;;   # whole files, incl. headers past the 64 KiB first read
    call_key) echo 65536 ;;     # structure + splice specs (big splices are generated)
    *) echo 65536 ;;
  esac
}

export RUSTC_BOOTSTRAP=1
SANITIZER="${FUZZ_SANITIZER:-address}"

# 1. cargo-fuzz
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz
fi

# 2. seeds (real NumPy files)
if ! compgen -G "$FUZZ/seeds/npy_read/*.npy" >/dev/null || ! compgen -G "$FUZZ/seeds/npy_header/*.npy" >/dev/null; then
  echo "==> making seeds with NumPy"
  PY="$ROOT/.venv/bin/python"
  if ! "$PY" -c 'import numpy' >/dev/null 2>&1; then
    python3 -m venv "$ROOT/.venv"
    "$PY" -m pip install --quiet numpy
  fi
  "$PY" "$FUZZ/seeds/make_seeds.py" "$FUZZ/seeds"
fi

# 3. build (one build for all targets)
cd "$FUZZ"
BUILD_FLAGS=(-O --debug-assertions)
echo "==> building fuzz targets (sanitizer: $SANITIZER)"
if ! cargo fuzz build "${BUILD_FLAGS[@]}" --sanitizer "$SANITIZER"; then
  if [[ "$SANITIZER" != none ]]; then
    echo "!! build with --sanitizer $SANITIZER failed; retrying with --sanitizer none" >&2
    SANITIZER=none
    cargo fuzz build "${BUILD_FLAGS[@]}" --sanitizer none
  else
    exit 1
  fi
fi

mkdir -p "$FUZZ/logs"
declare -a SUMMARY=()
CRASHED=0

for target in "${TARGETS[@]}"; do
  corpus="$FUZZ/corpus/$target"
  artifacts="$FUZZ/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  if [[ -d "$FUZZ/seeds/$target" ]]; then
    cp -n "$FUZZ/seeds/$target"/* "$corpus"/ 2>/dev/null || true
  fi
  log="$FUZZ/logs/$target.log"
  echo "==> $target for ${SECONDS_PER_TARGET}s (log: ${log#"$ROOT"/})"
  before="$(find "$artifacts" -type f | wc -l)"
  status=0
  # shellcheck disable=SC2086
  cargo fuzz run "${BUILD_FLAGS[@]}" --sanitizer "$SANITIZER" "$target" "$corpus" -- \
    -max_total_time="$SECONDS_PER_TARGET" \
    -rss_limit_mb=2048 \
    -max_len="$(max_len "$target")" \
    -timeout=60 \
    -print_final_stats=1 \
    -artifact_prefix="$artifacts/" \
    ${FUZZ_ARGS:-} \
    >"$log" 2>&1 || status=$?

  runs="?" secs="?" eps="?" cov="?" ft="?" corp="?"
  if done_line="$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1)" && [[ -n "$done_line" ]]; then
    runs="$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\1/' <<<"$done_line")"
    secs="$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\2/' <<<"$done_line")"
  else
    # No "Done" line (a crash): take the last status line's count.
    runs="$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)"
  fi
  stat_runs="$(grep -E '^stat::number_of_executed_units:' "$log" | awk '{print $2}' | tail -1 || true)"
  stat_eps="$(grep -E '^stat::average_exec_per_sec:' "$log" | awk '{print $2}' | tail -1 || true)"
  [[ -n "$stat_runs" ]] && runs="$stat_runs"
  if [[ -n "$stat_eps" ]]; then
    eps="$stat_eps"
  elif [[ "$runs" =~ ^[0-9]+$ && "$secs" =~ ^[0-9]+$ && "$secs" -gt 0 ]]; then
    eps=$((runs / secs))
  fi
  if last="$(grep -E ' cov: [0-9]+ ft: [0-9]+ corp: ' "$log" | tail -1)" && [[ -n "$last" ]]; then
    cov="$(sed -E 's/.* cov: ([0-9]+) .*/\1/' <<<"$last")"
    ft="$(sed -E 's/.* ft: ([0-9]+) .*/\1/' <<<"$last")"
    corp="$(sed -E 's/.* corp: ([0-9]+\/[0-9]+[a-zA-Z]*) .*/\1/' <<<"$last")"
  fi
  files="$(find "$corpus" -type f | wc -l | tr -d ' ')"
  crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
  verdict="no crashes"
  if [[ $status -ne 0 || $crashes -gt 0 ]] || grep -qE '^(==[0-9]+==ERROR|SUMMARY: |.*deadly signal|.*Test unit written to)' "$log"; then
    verdict="CRASH (exit $status, $crashes new artifact(s)): $(grep -oE 'Test unit written to .*' "$log" | tail -1 | sed 's/Test unit written to //')"
    CRASHED=1
  fi
  SUMMARY+=("$(printf '%-11s runs=%-10s exec/s=%-7s cov=%-5s ft=%-6s corpus=%s files (%s)  %s' \
    "$target" "$runs" "$eps" "$cov" "$ft" "$files" "$corp" "$verdict")")
  echo "    ${SUMMARY[-1]}"
done

echo
echo "==> summary (${SECONDS_PER_TARGET}s per target, sanitizer: $SANITIZER)"
printf '  %s\n' "${SUMMARY[@]}"
if [[ $CRASHED -ne 0 ]]; then
  echo "!! at least one target crashed; reproduce with:"
  echo "   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O --debug-assertions <target> artifacts/<target>/<file>"
  exit 1
fi
