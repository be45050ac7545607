#!/usr/bin/env bash
# What --diff-against costs: CPU time (user+sys, the least of REPEAT runs,
# with and without it, interleaved) and peak memory, rendering folded stacks
# with --from-folded (no perf needed). The diff run draws diff.svg and
# diff-removed.svg and tests every function's change for sampling noise.
# Inputs: OLD and NEW folded files, else a synthetic pair made here (each
# 200 000 distinct stacks of depth 7-42 over 5 000 names, ~1.1 M samples,
# ~147 MB, drawn with different seeds).
# Usage: benches/diff.sh [OLD NEW]   (REPEAT=3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."

REPEAT=${REPEAT:-3}
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
cargo build -q --release
rf=${CARGO_TARGET_DIR:-$PWD/target}/release/rust-flamegraph
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ $# -eq 2 ]; then
  old=$1 new=$2
elif [ $# -eq 0 ]; then
  old=$work/old.folded new=$work/new.folded
  python3 - "$old" "$new" <<'PY'
import random, sys
names = [f"crate{i % 37}::module{i % 101}::function_{i}" for i in range(5000)]
for seed, path in enumerate(sys.argv[1:], start=1):
    random.seed(seed)
    seen = set()
    with open(path, "w") as f:
        while len(seen) < 200_000:
            depth = random.randint(5, 40)
            frames = [random.choice(names[:200] if k < 5 else names) for k in range(depth)]
            stack = ";".join(["big", "main"] + frames)
            if stack not in seen:
                seen.add(stack)
                f.write(f"{stack} {random.randint(1, 10)}\n")
PY
else
  echo "usage: benches/diff.sh [OLD NEW]" >&2
  exit 2
fi

declare -A best=() rss=()
for _ in $(seq "$REPEAT"); do
  for run in plain diff; do
    args=()
    [ "$run" = diff ] && args=(--diff-against "$old")
    /usr/bin/time -o "$work/time" -f "%U %S %M" "$rf" --from-folded "$new" "${args[@]}" \
      --out "$work/out-$run" >/dev/null 2>&1
    read -r user sys kb <"$work/time"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}')
    if [ -z "${best[$run]:-}" ] || awk -v a="$cpu" -v b="${best[$run]}" 'BEGIN{exit !(a<b)}'; then
      best[$run]=$cpu
    fi
    rss[$run]=$kb
  done
done
printf '%-8s %10s %10s\n' run cpu_s peak_MB
for run in plain diff; do
  printf '%-8s %10.2f %10.0f\n' "$run" "${best[$run]}" "$(awk -v k="${rss[$run]}" 'BEGIN{print k/1024}')"
done
printf -- '--diff-against adds %s s of CPU; diff.svg %s bytes, diff-removed.svg %s bytes\n' \
  "$(awk -v a="${best[diff]}" -v b="${best[plain]}" 'BEGIN{printf "%.2f", a-b}')" \
  "$(stat -c %s "$work/out-diff/diff.svg")" "$(stat -c %s "$work/out-diff/diff-removed.svg")"
