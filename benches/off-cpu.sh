#!/usr/bin/env bash
# What --off-cpu costs and how right it is, side by side in one run:
# 1. the demo's default workload (few switches): bare, default recording,
#    --off-cpu; wall time (median of RUNS) and data streamed;
# 2. the demo's --waits (sleeps, then waits on a mutex a thread holds while
#    it computes): each kind's share of the profile against the demo's own
#    measurement, and the total weight against its threads' lives;
# 3. the demo's --ping-pong (hundreds of thousands of switches a second):
#    round trips a second, data streamed and records lost, bare, default and
#    --off-cpu (capped at 1,000 switch stacks a second).
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

# median wall seconds of RUNS runs of "$@"; the last run's output in $work/out, $work/err
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
lost() { sed -n 's/.*perf lost \([0-9]*\) records.*/\1/p' "$work/err" | head -n 1; }
trips() { sed -n 's/.*(\([0-9]*\) a second).*/\1/p' "$work/out"; }

printf 'load average: %s; %s cores\n\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"

echo "1. Cost on the demo's default workload (median of $runs)"
printf '%-26s %8s %8s %9s %s\n' workload bare default off-cpu "streamed (default → off-cpu)"
args="--iters 1500 --size 200000"
# shellcheck disable=SC2086 # the demo's arguments are words
bare=$(median "$demo" $args)
# shellcheck disable=SC2086
default=$(median "$rf" -q --out "$work/d" -- $args)
mb_default=$(streamed)
# shellcheck disable=SC2086
off=$(median "$rf" -q --off-cpu --out "$work/o" -- $args)
mb_off=$(streamed)
printf '%-26s %7.2fs %7.2fs %8.2fs %s MB → %s MB (off-cpu %+.1f %% over default)\n' \
  "$args" "$bare" "$default" "$off" "$mb_default" "$mb_off" \
  "$(echo "($off - $default) * 100 / $default" | bc -l)"

echo
echo "2. Right: the demo's --waits 500 against its own measurement (last of $runs)"
median "$rf" -q --off-cpu --out "$work/w" -- --waits 500 >/dev/null
python3 - "$work/w/stacks.folded" "$work/out" <<'PY'
import re, sys
folded, out = sys.argv[1], open(sys.argv[2]).read()
num = lambda pattern: float(re.search(pattern, out).group(1))
truth = {
    "sleep (demo::sleeping)": num(r"sleep ([0-9.]+) ms"),
    "mutex (demo::contending)": num(r"mutex ([0-9.]+) ms"),
    "holding (demo::holding)": num(r"holding ([0-9.]+) ms"),
}
alive = sum(float(x) for x in re.findall(r"(?:main|holder) ([0-9.]+) ms", out.split("alive:")[1]))
got = dict.fromkeys(truth, 0.0)
total = 0.0
for line in open(folded):
    frames, n = line.rsplit(" ", 1)
    ms = int(n) / 1e6
    total += ms
    if "demo::sleeping" in frames and frames.endswith("[off-cpu: sleep]"):
        got["sleep (demo::sleeping)"] += ms
    elif "demo::contending" in frames and frames.endswith("[off-cpu: futex]"):
        got["mutex (demo::contending)"] += ms
    elif "demo::holding" in frames:  # on the CPU, or preempted while computing
        got["holding (demo::holding)"] += ms
print(f"{'kind':26} {'demo measured':>22} {'profile':>22} {'points apart':>13}")
for k in truth:
    a, b = 100 * truth[k] / alive, 100 * got[k] / total
    print(f"{k:26} {truth[k]:9.1f} ms {a:6.1f} %    {got[k]:9.1f} ms {b:6.1f} %    {abs(a - b):9.2f}")
print(f"total weight {total:.1f} ms; threads lived {alive:.1f} ms: {100 * (total - alive) / alive:+.2f} %")
PY

echo
echo "3. A program that switches all the time: --ping-pong 2 (median of $runs)"
printf '%-12s %10s %10s %10s %14s\n' recording wall "trips/s" streamed "records lost"
for mode in bare default off-cpu; do
  case $mode in
    bare) t=$(median "$demo" --ping-pong 2) ;;
    default) t=$(median "$rf" -q --out "$work/p" -- --ping-pong 2) ;;
    off-cpu) t=$(median "$rf" -q --off-cpu --out "$work/p" -- --ping-pong 2) ;;
  esac
  mb=-
  if [ "$mode" != bare ]; then mb=$(streamed); fi
  printf '%-12s %9.2fs %10s %8s MB %14s\n' "$mode" "$t" "$(trips)" "$mb" "$(lost || true)"
done
grep -o 'waits ([0-9]*%) have no stack of their own' "$work/err" || true
