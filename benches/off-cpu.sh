#!/usr/bin/env bash
# What --off-cpu costs, side by side in one run: the demo's default workload
# (few switches) and its --waits workload, each bare, with the default
# recording and with --off-cpu; wall time (median of RUNS), the data perf
# streamed, and for --waits the off-CPU time against the demo's own
# measurement of its waits.
# Usage: benches/off-cpu.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cargo build -q --release
rf=$PWD/target/release/rust-flamegraph
$rf --build-only >/dev/null 2>&1
demo=$PWD/target/rust-flamegraph/release/demo
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# median wall seconds of RUNS runs of "$@"; the last run's stderr in $work/err
median() {
  local times=()
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s.%N)
    "$@" >"$work/out" 2>"$work/err"
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p"
}

streamed() { sed -n 's/.*read \([0-9.]*\) MB of samples.*/\1/p' "$work/err"; }

printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-26s %8s %8s %10s\n' workload bare default off-cpu
for args in "--iters 1500 --size 200000" "--waits 500"; do
  # shellcheck disable=SC2086 # the demo's arguments are words
  bare=$(median "$demo" $args)
  # shellcheck disable=SC2086
  default=$(median "$rf" -q --out "$work/d" -- $args)
  mb_default=$(streamed)
  # shellcheck disable=SC2086
  off=$(median "$rf" -q --off-cpu --out "$work/o" -- $args)
  mb_off=$(streamed)
  printf '%-26s %7.2fs %7.2fs %9.2fs   (%s MB → %s MB streamed)\n' \
    "$args" "$bare" "$default" "$off" "$mb_default" "$mb_off"
done
# The waits, as the demo measured them and as the profile weighs them.
grep waited "$work/out" || true
python3 - "$work/o/stacks.folded" <<'PY'
import sys
ms = {}
for line in open(sys.argv[1]):
    frames, n = line.rsplit(" ", 1)
    for fn, leaf in (("demo::sleeping", "[off-cpu: sleep]"), ("demo::contending", "[off-cpu: futex]")):
        if fn in frames and frames.endswith(leaf):
            ms[leaf] = ms.get(leaf, 0) + int(n) / 1e6
print("profile: " + ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items()))
PY
