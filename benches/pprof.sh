#!/usr/bin/env bash
# What --format pprof costs: CPU time (user+sys, the least of REPEAT runs,
# with and without it, interleaved), peak memory and profile.pb.gz's size,
# rendering folded stacks with --from-folded (no perf needed).
# Inputs: the FOLDED files given, else a synthetic one made here (200 000
# distinct stacks of depth 7-42 over 5 000 names, ~1.1 M samples, ~147 MB).
# For the seed's heavy run, record it first and pass its stacks.folded:
#   target/release/rust-flamegraph --out /tmp/seed -- --iters 10000 --size 200000
#   benches/pprof.sh /tmp/seed/stacks.folded
# Usage: benches/pprof.sh [FOLDED...]   (REPEAT=3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."

REPEAT=${REPEAT:-3}
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
cargo build -q --release
rf=$PWD/target/release/rust-flamegraph
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

inputs=("$@")
if [ ${#inputs[@]} -eq 0 ]; then
  python3 - "$work/synthetic.folded" <<'PY'
import random, sys
random.seed(1)
names = [f"crate{i % 37}::module{i % 101}::function_{i}" for i in range(5000)]
seen = set()
with open(sys.argv[1], "w") as f:
    while len(seen) < 200_000:
        depth = random.randint(5, 40)
        stack = ";".join(["big", "main"] + [random.choice(names[:200] if k < 5 else names) for k in range(depth)])
        if stack not in seen:
            seen.add(stack)
            f.write(f"{stack} {random.randint(1, 10)}\n")
PY
  inputs=("$work/synthetic.folded")
fi

printf '%-28s %8s %9s %10s %10s %10s\n' input stacks folded_MB run cpu_s peak_MB
for input in "${inputs[@]}"; do
  label=$input
  [ ${#label} -gt 28 ] && label=…${input: -27}
  stacks=$(wc -l <"$input")
  mb=$(awk -v b="$(stat -c %s "$input")" 'BEGIN{printf "%.1f", b/1e6}')
  declare -A best=() rss=()
  for _ in $(seq "$REPEAT"); do
    for run in svg+folded +pprof; do
      args=()
      [ "$run" = +pprof ] && args=(--format pprof)
      /usr/bin/time -o "$work/time" -f "%U %S %M" "$rf" --from-folded "$input" "${args[@]}" \
        --out "$work/out-$run" >/dev/null 2>&1
      read -r user sys kb <"$work/time"
      cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}')
      if [ -z "${best[$run]:-}" ] || awk -v a="$cpu" -v b="${best[$run]}" 'BEGIN{exit !(a<b)}'; then
        best[$run]=$cpu
      fi
      rss[$run]=$kb
    done
  done
  for run in svg+folded +pprof; do
    printf '%-28s %8s %9s %10s %10.2f %10.0f\n' "$label" "$stacks" "$mb" "$run" \
      "${best[$run]}" "$(awk -v k="${rss[$run]}" 'BEGIN{print k/1024}')"
  done
  pb=$(stat -c %s "$work/out-+pprof/profile.pb.gz")
  printf '%-28s profile.pb.gz %s bytes; --format pprof adds %s s of CPU\n' "$label" "$pb" \
    "$(awk -v a="${best[+pprof]}" -v b="${best[svg+folded]}" 'BEGIN{printf "%.2f", a-b}')"
  unset best rss
done
