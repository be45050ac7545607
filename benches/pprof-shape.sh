#!/usr/bin/env bash
# What our profile.pb.gz holds next to the one pprof-rs (the `pprof` crate
# Rust services use) writes, and what --format pprof costs a recording's
# post-processing.
#
# 1. Ours: the demo `--phases SECONDS` (the main thread sorts, `encoder`
#    encodes) at 4999 Hz, `--format pprof`, with perf.data kept.
# 2. pprof-rs's: benches/pprof-rs (its own crate, outside the workspace), a
#    workload of the same two threads profiled in-process at 999 Hz.
# 3. The shape of both side by side (functions with a file name, locations
#    with an address and a line, inlined frames, mappings, labels).
# 4. The kept perf.data rendered again (`--perfdata`) REPEAT times with and
#    without --format pprof: least CPU time (user+sys) and peak memory.
# Needs perf, cargo and GNU time. Usage: benches/pprof-shape.sh [SECONDS]
# (4 by default; REPEAT=3).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_RUN=${1:-4}
REPEAT=${REPEAT:-3}
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
target=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release
rf=$target/release/rust-flamegraph
cargo build -q --release --manifest-path benches/pprof-rs/Cargo.toml --target-dir "$target/pprof-rs"
shape=$target/pprof-rs/release/pprof-rs-shape
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$rf" --out "$work/ours" --format pprof --keep-perf-data --freq 4999 -- --phases "$SECONDS_RUN" >/dev/null 2>&1 \
  || { echo "the profiler failed: run it by hand to see why" >&2; exit 1; }
"$shape" record "$work/pprof-rs.pb.gz" "$SECONDS_RUN" >/dev/null
echo "shape (demo --phases $SECONDS_RUN; ours: DWARF stacks at 4999 Hz; pprof-rs: 999 Hz):"
"$shape" shape "ours=$work/ours/profile.pb.gz" "pprof-rs=$work/pprof-rs.pb.gz"

echo
echo "--perfdata of that recording, least of $REPEAT:"
printf '%-16s %8s %10s\n' run cpu_s peak_MB
declare -A best=() rss=()
for _ in $(seq "$REPEAT"); do
  for run in default +pprof; do
    args=()
    [ "$run" = +pprof ] && args=(--format pprof)
    /usr/bin/time -o "$work/time" -f "%U %S %M" "$rf" --perfdata "$work/ours/perf.data" \
      "${args[@]}" --out "$work/again-$run" >/dev/null 2>&1
    read -r user sys kb <"$work/time"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}')
    if [ -z "${best[$run]:-}" ] || awk -v a="$cpu" -v b="${best[$run]}" 'BEGIN{exit !(a<b)}'; then
      best[$run]=$cpu
    fi
    if [ -z "${rss[$run]:-}" ] || [ "$kb" -gt "${rss[$run]}" ]; then
      rss[$run]=$kb
    fi
  done
done
for run in default +pprof; do
  printf '%-16s %8.2f %10.0f\n' "$run" "${best[$run]}" "$(awk -v k="${rss[$run]}" 'BEGIN{print k/1024}')"
done
printf 'profile.pb.gz: %s bytes, stacks.folded: %s bytes\n' \
  "$(stat -c %s "$work/again-+pprof/profile.pb.gz")" "$(stat -c %s "$work/again-+pprof/stacks.folded")"
