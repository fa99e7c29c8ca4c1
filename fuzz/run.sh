#!/usr/bin/env bash
# Runs every libFuzzer target built in BUILD_DIR (bin/fuzz_<name>) for SECONDS each, one after
# the other (the machine's cores are shared), on its seed corpus. New inputs go to
# BUILD_DIR/fuzz-corpus/<name>/ (the seeds in fuzz/corpus/ stay as they are); crashes to
# BUILD_DIR/fuzz-artifacts/<name>/. Exit status 1 when any target crashed.
#   fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
set -uo pipefail

build_dir=${1:?usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
src_dir=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$src_dir"/*_fuzz.cc; do
    n=$(basename "$f" _fuzz.cc)
    targets+=("$n")
  done
fi

failed=()
for t in "${targets[@]}"; do
  bin="$build_dir/bin/fuzz_$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz/run.sh: $bin is missing (make fuzz builds it)" >&2
    failed+=("$t")
    continue
  fi
  work="$build_dir/fuzz-corpus/$t"
  art="$build_dir/fuzz-artifacts/$t"
  mkdir -p "$work" "$art"
  echo "== fuzz $t for ${seconds}s"
  # -timeout: one input may take 10 s; -rss_limit_mb: a leak or blow-up is a finding too.
  if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$art/" "$work" "$src_dir/corpus/$t" 2>"$build_dir/fuzz-$t.log"; then
    echo "   CRASH: see $build_dir/fuzz-$t.log and $art/"
    failed+=("$t")
  else
    grep -E '^stat::number_of_executed_units|^#[0-9]+ *DONE' "$build_dir/fuzz-$t.log" | tail -1
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz/run.sh: failed: ${failed[*]}" >&2
  exit 1
fi
