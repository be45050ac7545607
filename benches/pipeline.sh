#!/usr/bin/env bash
# Side-by-side figures for the whole pipeline on the demo, in one run:
#   bare demo | rust-flamegraph (default: dwarf, streamed) | --call-graph fp |
#   --keep-perf-data (dwarf written to perf.data, read after the run) |
#   cargo flamegraph (if installed, or in $BENCH_TOOLS/bin: benches/thirdparty-setup.sh)
# Rounds interleave the variants. Prints median wall time and its overhead over
# the bare workload, median CPU time (user + sys of the whole process tree,
# which a loaded machine disturbs less than wall time) and its overhead, peak
# RSS (largest process), recording size per 1,000 samples (streamed or
# perf.data), samples, post-processing rate (after the program ended) and the
# share of complete stacks. Usage: benches/pipeline.sh [ROUNDS] [-- DEMO ARGS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
shift || true
[ "${1:-}" = "--" ] && shift
args=("${@:---iters}")
[ $# -eq 0 ] && args=(--iters 2000 --size 100000)

command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
cargo build -q --release
rf=target/release/rust-flamegraph
# Build the demo once (one build serves both modes), outside the timings.
$rf --build-only >/dev/null 2>&1
demo=target/rust-flamegraph/release/demo
export PATH="$PATH:${BENCH_TOOLS:-/work/bench-tools}/bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

variants=(bare default fp perf.data)
if cargo flamegraph --help >/dev/null 2>&1; then variants+=(cargo-flamegraph); fi

run_variant() { # name round
  local log="$work/$1.$2.log" out="$work/out-$1"
  local fmt="%e %M %U %S"
  case $1 in
    bare) /usr/bin/time -o "$log.time" -f "$fmt" "$demo" "${args[@]}" >/dev/null 2>"$log" ;;
    default) /usr/bin/time -o "$log.time" -f "$fmt" $rf --out "$out" -- "${args[@]}" >/dev/null 2>"$log" ;;
    fp) /usr/bin/time -o "$log.time" -f "$fmt" $rf --call-graph fp --out "$out" -- "${args[@]}" >/dev/null 2>"$log" ;;
    perf.data) /usr/bin/time -o "$log.time" -f "$fmt" $rf --keep-perf-data --out "$out" -- "${args[@]}" >/dev/null 2>"$log" ;;
    cargo-flamegraph) (cd "$work" && /usr/bin/time -o "$log.time" -f "$fmt" cargo flamegraph \
        --manifest-path "$OLDPWD/Cargo.toml" -p demo --bin demo -o "$work/cfg.svg" -- "${args[@]}" >/dev/null 2>"$log") ;;
  esac
}

echo "warming up (one untimed run each)…" >&2
for v in "${variants[@]}"; do run_variant "$v" warm; done
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds…" >&2
  for v in "${variants[@]}"; do run_variant "$v" "$r"; done   # interleaved
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# Column $1 (wall), or user + sys, of each round's time file of variant $2.
walls() { for r in $(seq 1 "$rounds"); do cut -d' ' -f1 "$work/$1.$r.log.time"; done; }
cpus() { for r in $(seq 1 "$rounds"); do awk '{print $3 + $4}' "$work/$1.$r.log.time"; done; }
bare=$(walls bare | median)
bare_cpu=$(cpus bare | median)
printf '\ndemo %s, %s rounds, medians\n' "${args[*]}" "$rounds"
printf '%-17s %7s %8s %7s %8s %8s %11s %8s %11s %9s\n' variant wall_s overhead cpu_s cpu_over peak_MB MB/1k_samp samples postproc/s complete%
for v in "${variants[@]}"; do
  wall=$(walls "$v" | median)
  cpu=$(cpus "$v" | median)
  rss=$(for r in $(seq 1 "$rounds"); do cut -d' ' -f2 "$work/$v.$r.log.time"; done | median)
  log="$work/$v.1.log"
  # Streamed: "read 50.4 MB of samples as perf recorded them"; perf.data:
  # perf's "[ perf record: Captured and wrote 0.327 MB …/perf.data (2431 samples) ]"
  mb=$( (grep -o 'read [0-9.]* MB of samples' "$log" | awk '{print $2}'; \
    grep -o 'wrote [0-9.]* MB' "$log" | awk '{print $2}') | tail -1 || true)
  samples=$(grep -o '^  samples  *[0-9]*' "$log" | awk '{print $2}' || true)
  [ -n "$samples" ] || samples=$(grep -o '([0-9]* samples)' "$log" | tr -dc 0-9 || true)
  per1k=$( [ -n "$mb" ] && [ -n "$samples" ] && awk -v m="$mb" -v s="$samples" 'BEGIN{printf "%.3f", m*1000/s}' || echo -)
  rate=$(grep -o '([0-9]* samples/s)' "$log" | tr -dc 0-9 || true)
  complete=$(grep -o 'complete stacks *[0-9.]*' "$log" | awk '{print $3}' || true)
  over=$(awk -v w="$wall" -v b="$bare" 'BEGIN{printf "%+.0f%%", (w/b-1)*100}')
  cpu_over=$(awk -v w="$cpu" -v b="$bare_cpu" 'BEGIN{printf "%+.0f%%", (w/b-1)*100}')
  printf '%-17s %7s %8s %7.2f %8s %8.0f %11s %8s %11s %9s\n' "$v" "$wall" "$over" "$cpu" "$cpu_over" \
    "$(awk -v k="$rss" 'BEGIN{print k/1024}')" "${per1k:--}" "${samples:--}" "${rate:--}" "${complete:--}"
done
