#!/usr/bin/env bash
# Side-by-side figures for the whole pipeline on the demo, in one run:
#   bare demo | rust-flamegraph (default: dwarf) | --call-graph fp |
#   cargo flamegraph (if installed, or in $BENCH_TOOLS/bin: benches/thirdparty-setup.sh)
# Prints median wall time, overhead over the bare workload, peak RSS (largest
# process), perf.data per 1,000 samples, samples, post-processing rate and the
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

variants=(bare default fp)
if cargo flamegraph --help >/dev/null 2>&1; then variants+=(cargo-flamegraph); fi

run_variant() { # name round
  local log="$work/$1.$2.log" out="$work/out-$1"
  case $1 in
    bare) /usr/bin/time -o "$log.time" -f "%e %M" "$demo" "${args[@]}" >/dev/null 2>"$log" ;;
    default) /usr/bin/time -o "$log.time" -f "%e %M" $rf --out "$out" -- "${args[@]}" >/dev/null 2>"$log" ;;
    fp) /usr/bin/time -o "$log.time" -f "%e %M" $rf --call-graph fp --out "$out" -- "${args[@]}" >/dev/null 2>"$log" ;;
    cargo-flamegraph) (cd "$work" && /usr/bin/time -o "$log.time" -f "%e %M" cargo flamegraph \
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
bare=$(for r in $(seq 1 "$rounds"); do cut -d' ' -f1 "$work/bare.$r.log.time"; done | median)
printf '\ndemo %s, %s rounds, medians\n' "${args[*]}" "$rounds"
printf '%-17s %8s %9s %9s %12s %8s %12s %9s\n' variant wall_s overhead peak_MB MB/1k_samp samples postproc/s complete%
for v in "${variants[@]}"; do
  wall=$(for r in $(seq 1 "$rounds"); do cut -d' ' -f1 "$work/$v.$r.log.time"; done | median)
  rss=$(for r in $(seq 1 "$rounds"); do cut -d' ' -f2 "$work/$v.$r.log.time"; done | median)
  log="$work/$v.1.log"
  # perf's own line: "[ perf record: Captured and wrote 0.327 MB …/perf.data (2431 samples) ]"
  mb=$(grep -o 'wrote [0-9.]* MB' "$log" | awk '{print $2}' | tail -1 || true)
  samples=$(grep -o '^  samples  *[0-9]*' "$log" | awk '{print $2}' || true)
  [ -n "$samples" ] || samples=$(grep -o '([0-9]* samples)' "$log" | tr -dc 0-9 || true)
  per1k=$( [ -n "$mb" ] && [ -n "$samples" ] && awk -v m="$mb" -v s="$samples" 'BEGIN{printf "%.3f", m*1000/s}' || echo -)
  rate=$(grep -o '([0-9]* samples/s)' "$log" | tr -dc 0-9 || true)
  complete=$(grep -o 'complete stacks *[0-9.]*' "$log" | awk '{print $3}' || true)
  over=$(awk -v w="$wall" -v b="$bare" 'BEGIN{printf "%+.0f%%", (w/b-1)*100}')
  printf '%-17s %8s %9s %9.0f %12s %8s %12s %9s\n' "$v" "$wall" "$over" "$(awk -v k="$rss" 'BEGIN{print k/1024}')" \
    "${per1k:--}" "${samples:--}" "${rate:--}" "${complete:--}"
done
