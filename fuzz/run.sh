#!/usr/bin/env bash
# Runs miniquant's fuzz targets one after another, each for SECONDS, from its seed corpus.
#
#   fuzz/run.sh SECONDS [BUILD_DIR [TARGET...]]
#
# BUILD_DIR (default build-fuzz) is a build configured with
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DMQ_FUZZ=ON
# TARGETs are names like fuzz_gguf (default: every fuzz_* in BUILD_DIR). One fuzzer runs at a
# time, single-threaded and niced, so the machine stays usable. Per target, BUILD_DIR/fuzz-out/
# <target>/ keeps corpus/ (the seeds and what the run added), crashes/ (inputs that failed) and
# the log fuzz-0.log. Prints a line per target: executions, peak RSS and outcome; exits 1 when a
# target found a failing input.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:?usage: fuzz/run.sh SECONDS [BUILD_DIR [TARGET...]]}"
build="$(cd "${2:-build-fuzz}" && pwd)"
shift $(( $# < 2 ? $# : 2 ))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$build"/fuzz_*; do [ -x "$f" ] && targets+=("$(basename "$f")"); done
fi
[ ${#targets[@]} -gt 0 ] || { echo "run.sh: no fuzz targets in $build (build with -DMQ_FUZZ=ON)" >&2; exit 2; }

seeds="$build/fuzz-seeds"
"$build/make_seeds" "$seeds" "$src/tests/data"

export MQ_QUIET=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

status=0
printf '%-22s %12s %9s  %s\n' target executions peak_rss outcome
for t in "${targets[@]}"; do
  name="${t#fuzz_}"
  work="$build/fuzz-out/$t"
  mkdir -p "$work/corpus" "$work/crashes"
  rm -f "$work"/fuzz-*.log
  dict=()
  case "$name" in
    gguf|model|train_state|tokenizer_gguf) dict=(-dict="$src/fuzz/gguf.dict") ;;
    blimp) dict=(-dict="$src/fuzz/blimp.dict") ;;
    scheme) dict=(-dict="$src/fuzz/scheme.dict") ;;
  esac
  seed_dir="$seeds/$name"
  [ -d "$seed_dir" ] || seed_dir=""
  (cd "$work" && nice -n 10 "$build/$t" -jobs=1 -workers=1 -max_total_time="$secs" \
     -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=crashes/ \
     "${dict[@]}" corpus $seed_dir > run.log 2>&1) || true
  log="$work/fuzz-0.log"
  [ -f "$log" ] || log="$work/run.log"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  found=$(find "$work/crashes" -type f | wc -l)
  if [ "$found" -gt 0 ]; then
    outcome="FAILED: $found input(s) in $work/crashes (see $log)"
    status=1
  elif [ -z "$execs" ]; then
    outcome="did not finish (see $log)"
    status=1
  else
    outcome="clean ($(find "$work/corpus" -type f | wc -l) corpus files)"
  fi
  printf '%-22s %12s %7s MB  %s\n' "$t" "${execs:-?}" "${rss:-?}" "$outcome"
done
exit $status
