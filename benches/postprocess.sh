#!/usr/bin/env bash
# Post-processing figures, side by side on the same recordings:
#   rust-flamegraph --perfdata (in-process) against `perf script` (with
#   binutils addr2line for inlined frames, as cargo flamegraph runs it).
# Sections:
#   demo  the seed's heavy run (DEMO_ARGS), recorded with fp and with dwarf;
#   rg    ripgrep, a large third-party binary with inlining (needs
#         benches/thirdparty-setup.sh; skipped without it), with leaf agreement;
#   1M    about a million fp samples of the demo: peak memory of the whole run.
# Prints a table: samples, perf.data MB, wall, peak RSS, samples/s, speed-up.
# Usage: benches/postprocess.sh [demo] [rg] [1M]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_ARGS=${DEMO_ARGS:---iters 10000 --size 200000}
BENCH_TOOLS=${BENCH_TOOLS:-/work/bench-tools}
sections=("$@")
[ ${#sections[@]} -eq 0 ] && sections=(demo rg 1M)

command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
command -v perf >/dev/null || { echo "needs perf: apt-get install linux-perf" >&2; exit 1; }
cargo build -q --release
rf=$PWD/target/release/rust-flamegraph
$rf --build-only >/dev/null 2>&1
demo=$PWD/target/rust-flamegraph/release/demo
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf '%-26s %9s %9s %8s %9s %11s %8s\n' recording samples data_MB wall_s peak_MB samples/s speedup

# measure NAME DATA: ours and perf script on DATA; prints two rows.
measure() {
  local name=$1 data=$2 out="$work/out-$1"
  /usr/bin/time -o "$work/ours.time" -f "%e %M" "$rf" --perfdata "$data" --out "$out" \
    >/dev/null 2>"$work/ours.log"
  local samples wall rss mb
  samples=$(grep -o '^  samples  *[0-9]*' "$work/ours.log" | awk '{print $2}')
  read -r wall rss <"$work/ours.time"
  mb=$(du -m "$data" | cut -f1)
  /usr/bin/time -o "$work/perf.time" -f "%e %M" perf script -F comm,pid,tid,time,event,ip,sym,dso \
    -i "$data" >"$work/perf.out" 2>/dev/null
  local pwall prss
  read -r pwall prss <"$work/perf.time"
  printf '%-26s %9s %9s %8s %9.0f %11.0f %8s\n' "$name (ours)" "$samples" "$mb" "$wall" \
    "$(awk -v k="$rss" 'BEGIN{print k/1024}')" "$(awk -v s="$samples" -v w="$wall" 'BEGIN{print s/(w>0?w:1e-3)}')" \
    "$(awk -v a="$pwall" -v b="$wall" 'BEGIN{printf "%.1fx", a/(b>0?b:1e-3)}')"
  printf '%-26s %9s %9s %8s %9.0f %11.0f %8s\n' "$name (perf script)" "$samples" "$mb" "$pwall" \
    "$(awk -v k="$prss" 'BEGIN{print k/1024}')" "$(awk -v s="$samples" -v w="$pwall" 'BEGIN{print s/(w>0?w:1e-3)}')" "1x"
}

# leaves FOLDED PERF_SCRIPT_OUTPUT: share of samples whose leaf function agrees.
leaves() {
  python3 - "$1" "$2" <<'PY'
import re, sys, collections
def core(name):
    name = name.replace(" (inlined)", "").removesuffix("_[k]")
    flat, depth, prev = [], 0, " "
    for c in name:
        arrow, prev = prev == "-", c
        if c == "<": depth += 1
        elif c == ">" and depth and not arrow: depth -= 1
        elif depth == 0: flat.append(c)
    last = "".join(flat).rstrip(":").split(" (")[0].split("::")[-1]
    last = re.split(r"[@.]", last)[0]
    # One function, several symbols at its address: glibc's aliases
    # (__close/close, open64/open, __readdir64/readdir, cfree/free).
    last = re.sub(r"^(__GI_|__vdso_)?(__libc_)?", "", last).lstrip("_").removesuffix("64")
    return {"cfree": "free"}.get(last, last.replace("memcpy_", "memmove_"))
ours = collections.Counter()
for line in open(sys.argv[1], errors="replace"):
    stack, n = line.rstrip("\n").rsplit(" ", 1)
    ours[core(stack.split(";")[-1])] += int(n)
theirs, first = collections.Counter(), True
for line in open(sys.argv[2], errors="replace"):
    if not line.strip():
        first = True
        continue
    if first and line.startswith("\t"):
        first = False
        parts = line.strip().split(" ", 1)
        sym = parts[1].rsplit(" (", 1)[0] if len(parts) > 1 else "[unknown]"
        theirs[core(re.sub(r"\+0x[0-9a-f]+$", "", sym))] += 1
total = sum(theirs.values())
same = sum(min(n, ours[f]) for f, n in theirs.items())
print(f"  leaf function agrees for {same} of {total} samples ({100*same/max(total,1):.1f} %); ours {sum(ours.values())}")
PY
}

for s in "${sections[@]}"; do
  case $s in
    demo)
      for cg in fp dwarf; do
        spec=$cg; [ $cg = dwarf ] && spec=dwarf,16384
        # shellcheck disable=SC2086 # DEMO_ARGS is a list of words
        perf record -q -e cpu-clock -F 997 --call-graph $spec --no-bpf-event -B -o "$work/demo-$cg.data" \
          -- "$demo" $DEMO_ARGS >/dev/null 2>&1
        measure "demo $cg" "$work/demo-$cg.data"
      done ;;
    rg)
      if [ ! -f "$BENCH_TOOLS/env.sh" ]; then
        echo "rg: skipped (run benches/thirdparty-setup.sh first)"; continue
      fi
      # shellcheck disable=SC1091
      source "$BENCH_TOOLS/env.sh"
      perf record -q -e cpu-clock -F 997 --call-graph dwarf,16384 --no-bpf-event -B -o "$work/rg.data" \
        -- "${RG_CMD[@]}" >/dev/null 2>&1
      measure "ripgrep dwarf" "$work/rg.data"
      perf script -F ip,sym -i "$work/rg.data" >"$work/rg.script" 2>/dev/null
      leaves "$work/out-ripgrep dwarf/stacks.folded" "$work/rg.script" ;;
    1M)
      # 50 kHz for 20 s of the demo: about a million samples, however fast
      # the machine (the demo runs longer; --duration stops it).
      /usr/bin/time -o "$work/1m.time" -f "%e %M" "$rf" --call-graph fp -F 50000 --duration 20 \
        --out "$work/out-1m" -- --iters 100000 --size 150000 >/dev/null 2>"$work/1m.log"
      read -r wall rss <"$work/1m.time"
      samples=$(grep -o '^  samples  *[0-9]*' "$work/1m.log" | awk '{print $2}')
      pp=$(grep -o 'post-processing *[0-9.]* s' "$work/1m.log" | awk '{print $2}')
      printf '%-26s %9s %9s %8s %9.0f %11.0f %8s\n' "demo fp 50 kHz (whole run)" "$samples" - "$wall" \
        "$(awk -v k="$rss" 'BEGIN{print k/1024}')" "$(awk -v s="$samples" -v w="$pp" 'BEGIN{print s/(w>0?w:1e-3)}')" - ;;
    *) echo "unknown section $s (demo, rg, 1M)" >&2; exit 2 ;;
  esac
done
