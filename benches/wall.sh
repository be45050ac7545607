#!/usr/bin/env bash
# Wall time of a whole profiling run against the bare workload, side by side in
# one hyperfine session (runs interleave warm-ups; means and σ over RUNS):
#   bare demo | rust-flamegraph (default) | --call-graph fp | cargo flamegraph
# On a shared 2-core machine single runs vary by ±10 %: read the means and σ,
# and the CPU time (user + sys) hyperfine prints, not one run.
# Usage: benches/wall.sh [RUNS] [-- DEMO ARGS]   (needs hyperfine: apt-get install hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
shift || true
[ "${1:-}" = "--" ] && shift
args="$*"

command -v hyperfine >/dev/null || { echo "needs hyperfine: apt-get install hyperfine" >&2; exit 1; }
cargo build -q --release
rf=$PWD/target/release/rust-flamegraph
$rf --build-only >/dev/null 2>&1
demo=$PWD/target/rust-flamegraph/release/demo
export PATH="$PATH:${BENCH_TOOLS:-/work/bench-tools}/bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

commands=("$demo $args" "$rf --out $work/default -- $args" "$rf --call-graph fp --out $work/fp -- $args")
names=(bare default fp)
if cargo flamegraph --help >/dev/null 2>&1; then
  # Built once here, so that its timings do not include the build.
  # shellcheck disable=SC2086 # DEMO ARGS are words
  (cd "$work" && cargo flamegraph --manifest-path "$OLDPWD/Cargo.toml" -p demo --bin demo \
    -o "$work/cf.svg" -- $args >/dev/null 2>&1) # $args: words
  commands+=("sh -c 'cd $work && cargo flamegraph --manifest-path $PWD/Cargo.toml -p demo --bin demo -o $work/cf.svg -- $args'")
  names+=(cargo-flamegraph)
fi
hyperfine_args=(-w 1 -r "$runs" --export-json "$work/h.json")
for i in "${!commands[@]}"; do hyperfine_args+=(-n "${names[$i]}" "${commands[$i]}"); done
hyperfine "${hyperfine_args[@]}" >/dev/null 2>&1
python3 - "$work/h.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
bare = results[0]["mean"]
print(f"{'variant':18} {'mean_s':>8} {'sigma_s':>8} {'vs_bare':>8} {'cpu_s':>7}")
for r in results:
    cpu = r["user"] + r["system"]
    print(f"{r['command']:18} {r['mean']:8.2f} {r['stddev']:8.2f} {100*(r['mean']/bare-1):+7.0f}% {cpu:7.2f}")
PY
