#!/usr/bin/env bash
# Fuzzes keygate's parsers with cargo-fuzz (libFuzzer) on nightly: docs/FUZZING.md.
#
#   bash bench/fuzz.sh smoke [TARGET...]   # each target for SMOKE_SECONDS (default 4) seconds
#   bash bench/fuzz.sh long  [TARGET...]   # each target until RUNS (default 10000000) executions
#
# Targets run one after another on one core each (the machine has two and is shared). Each
# starts from its committed seeds (fuzz/corpus/TARGET, never written to) and the corpus
# earlier runs grew (fuzz/generated/TARGET, gitignored, where new inputs go). A crash, a
# failed assertion, a leak or a timeout leaves its input in fuzz/artifacts/TARGET/ and makes
# the script exit non-zero after the other targets have run.
#
# Environment: FUZZ_TOOLCHAIN (default nightly), FUZZ_SANITIZER (default none: the parsers
# are safe Rust, so AddressSanitizer finds nothing that a panic or an overflow check would
# not, at half the speed; `address` to use it anyway), SMOKE_SECONDS, RUNS, FUZZ_TIMEOUT
# (seconds one input may take, default 10), FUZZ_MAX_LEN (longest input, bytes; default
# per target below).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fuzz_dir=$root/fuzz
mode=${1:-}
shift || true
case $mode in
  smoke) limit=(-max_total_time="${SMOKE_SECONDS:-4}") ;;
  long) limit=(-runs="${RUNS:-10000000}") ;;
  *)
    echo "usage: bash bench/fuzz.sh smoke|long [TARGET...]" >&2
    exit 2
    ;;
esac
toolchain=${FUZZ_TOOLCHAIN:-nightly}
sanitizer=${FUZZ_SANITIZER:-none}

if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 2
fi

cd "$fuzz_dir"
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo "+$toolchain" fuzz list)
fi
echo "building the fuzz targets (sanitizer: $sanitizer, $(rustc "+$toolchain" --version)); running ${#targets[@]}" >&2
cargo "+$toolchain" fuzz build -s "$sanitizer" >&2
binaries=$fuzz_dir/target/x86_64-unknown-linux-gnu/release

# Longest input per target. Several harnesses cost more than linearly in the input (pairs
# sorted, lines against lines), and with libFuzzer's default of 4096 bytes the inputs grew
# to it: 1024 bytes hold a signed request, an allowlist of 20 entries or a model call body.
# The forwarding path needs room to pass its 4096-byte query limit.
max_len_of() {
  case $1 in
    forwarding_path) echo 4200 ;;
    key_import | model_call_body) echo 2048 ;;
    *) echo 1024 ;;
  esac
}

# One line per target run, appended, so that two runs of this script side by side (on
# different targets) share it.
summary=$fuzz_dir/generated/summary-$mode.tsv
mkdir -p "$fuzz_dir/generated"
[ -f "$summary" ] || printf 'target\texecutions\tseconds\texec_per_second\tresult\tdate\n' >"$summary"
failed=()
for target in "${targets[@]}"; do
  corpus=$fuzz_dir/generated/$target
  artifacts=$fuzz_dir/artifacts/$target
  log=$fuzz_dir/generated/$target-$mode.log
  mkdir -p "$corpus" "$artifacts"
  started=$(date +%s.%N)
  result=ok
  # -close_fd_mask=1: the harnesses print nothing; keep libFuzzer's own lines on stderr.
  if ! "$binaries/$target" "$corpus" "$fuzz_dir/corpus/$target" "${limit[@]}" \
    -max_len="${FUZZ_MAX_LEN:-$(max_len_of "$target")}" -artifact_prefix="$artifacts/" -timeout="${FUZZ_TIMEOUT:-10}" \
    -print_final_stats=1 -close_fd_mask=1 >"$log" 2>&1; then
    result=FAILED
    failed+=("$target")
  fi
  seconds=$(echo "$(date +%s.%N) - $started" | bc)
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  executions=${executions:-0}
  per_second=$(echo "$executions / $seconds" | bc)
  printf '%s\t%s\t%.1f\t%s\t%s\t%s\n' "$target" "$executions" "$seconds" "$per_second" "$result" "$(date -u +%FT%TZ)" >>"$summary"
  printf '%-16s %12s executions %8.1f s %9s exec/s  %s\n' "$target" "$executions" "$seconds" "$per_second" "$result"
  if [ "$result" != ok ]; then
    grep -E 'panicked|SUMMARY|Test unit written|ERROR' "$log" | head -8 | sed 's/^/    /' >&2
    echo "    full log: $log" >&2
  fi
done
echo "summary: $summary" >&2
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]} (inputs in fuzz/artifacts/; docs/FUZZING.md says how to reproduce)" >&2
  exit 1
fi
