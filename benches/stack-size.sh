#!/usr/bin/env bash
# DWARF stack-copy size against completeness and overhead (issue 21).
#
# For each workload and each size N in $SIZES, records with perf directly,
# with the flags src/perf.rs gives it except the size:
#   perf record -e cpu-clock -F 997 --call-graph dwarf,N --no-bpf-event \
#     --no-buildid-cache --no-buildid -o X.data -- PROGRAM
# then post-processes X.data with `rust-flamegraph --perfdata X.data`.
# Prints one row per workload x size:
#   complete %  share of samples whose stack reaches a thread root (as the
#               summary counts it, from stacks.folded, two decimals)
#   samples     samples in stacks.folded
#   lost        records perf lost, its buffer full, as the summary says
#               ("-" when none)
#   data MB     size of perf.data
#   overhead %  median wall time under perf record / median of the program
#               alone, minus 1 ($RUNS runs each, interleaved; "wall" is the
#               median)
#   post s      wall time of `rust-flamegraph --perfdata` (one run)
#   cpu, cpu %  the same for CPU time (user + sys of perf and the program):
#               what the recording costs, less sensitive to the other core's
#               load than wall time
# and, for the largest size, the outermost frames of the stacks that do not
# reach a thread root.
#
# Workloads (each skipped, loudly, when its prerequisite is missing):
#   demo   the workspace demo, as rust-flamegraph builds it
#          (DEMO_BIN, default: built with `rust-flamegraph --build-only`;
#          DEMO_ARGS, default "--iters 600 --size 200000")
#   rg     `rg -c 'fn [a-z_]+\(' TREE` (RG_BIN and RG_TREE; default: RG and
#          CORPUS of $BENCH_TOOLS/env.sh, written by benches/thirdparty-setup.sh)
#   rayon  a rayon program with deep generic iterator chains (RAYON_BIN and
#          RAYON_ARGS; no default binary: see benches/RESULTS.md, "Stack-copy
#          size", for the program used)
#
# Usage: benches/stack-size.sh [demo] [rg] [rayon]   (default: all three)
# Settings: SIZES (default "16384 24576 32768 65528", perf's maximum is
# 65528), RUNS (default 3), PERF_ARGS (more options for perf record, e.g.
# "--mmap-pages 2048" against lost records at large sizes), OUT (where each stacks.folded is kept, default a
# temporary folder, removed at exit), KEEP_DATA=1 keeps each perf.data in OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-16384 24576 32768 65528}
RUNS=${RUNS:-3}
DEMO_ARGS=${DEMO_ARGS:---iters 600 --size 200000}
RG_PATTERN=${RG_PATTERN:-'fn [a-z_]+\('}
RAYON_ARGS=${RAYON_ARGS:-}
KEEP_DATA=${KEEP_DATA:-0}
BENCH_TOOLS=${BENCH_TOOLS:-/work/bench-tools}
if [[ -f $BENCH_TOOLS/env.sh ]]; then
    # shellcheck disable=SC1091
    source "$BENCH_TOOLS/env.sh"
fi
RG_BIN=${RG_BIN:-${RG:-}}
RG_TREE=${RG_TREE:-${CORPUS:-}}
RAYON_BIN=${RAYON_BIN:-}

workloads=("$@")
[[ ${#workloads[@]} -eq 0 ]] && workloads=(demo rg rayon)
read -ra sizes <<<"$SIZES"
read -ra perf_args <<<"${PERF_ARGS:-}"

loud() { printf '\n*** stack-size.sh: %s ***\n\n' "$*" >&2; }

[[ -x /usr/bin/time ]] || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
command -v perf >/dev/null || { echo "needs perf: apt-get install linux-perf" >&2; exit 1; }
cargo build -q --release -p rust-flamegraph
rf=$PWD/target/release/rust-flamegraph
[[ -n ${CARGO_TARGET_DIR:-} ]] && rf=$CARGO_TARGET_DIR/release/rust-flamegraph

if [[ -n ${OUT:-} ]]; then
    mkdir -p "$OUT"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
else
    work=$(mktemp -d)
    OUT=$work/out
    mkdir -p "$OUT"
    trap 'rm -rf "$work"' EXIT
fi

# row: one line of the table.
row() { printf '%-7s %7s %10s %8s %6s %8s %10s %9s %7s %9s %10s\n' "$@"; }

# now: seconds since the epoch, with microseconds.
now() { printf '%s' "$EPOCHREALTIME"; }

# median of the numbers given.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# run_timed CMD...: runs CMD (its output dropped), prints its wall time and
# the CPU time (user + sys) of it and its children, in seconds. Exit status 1
# is accepted (rg finding nothing in some file).
run_timed() {
    local rc=0
    /usr/bin/time -o "$work/run.time" -f '%e %U %S' "$@" >/dev/null 2>"$work/run.err" || rc=$?
    if ((rc > 1)); then
        echo "command failed ($rc): $*" >&2
        tail -n 5 "$work/run.err" >&2
        return 1
    fi
    awk '{ printf "%.3f %.3f", $1, $2 + $3 }' "$work/run.time"
}

# stats FOLDED: "complete% samples", counting as src/summary.rs does: a
# stack is complete when one of its frames is a thread root (src/stacks.rs).
stats() {
    awk '
    BEGIN {
        n = split("_start _dl_start _dl_start_user __libc_start_main __libc_start_call_main clone __clone clone3 __clone3 __GI___clone3 start_thread thread_start main", r, " ")
        for (i = 1; i <= n; i++) root[r[i]] = 1
    }
    {
        count = $NF; line = $0; sub(/ [0-9]+$/, "", line)
        total += count
        m = split(line, f, ";")
        for (i = 1; i <= m; i++) if ((f[i] in root) || f[i] ~ /::main$/) { done += count; break }
    }
    END { printf "%.2f %d\n", (total ? 100 * done / total : 0), total }' "$1"
}

# cut_stacks FOLDED: samples of stacks that reach no thread root, by their
# outermost frame (the first after the command name).
cut_stacks() {
    awk '
    BEGIN {
        n = split("_start _dl_start _dl_start_user __libc_start_main __libc_start_call_main clone __clone clone3 __clone3 __GI___clone3 start_thread thread_start main", r, " ")
        for (i = 1; i <= n; i++) root[r[i]] = 1
    }
    {
        count = $NF; line = $0; sub(/ [0-9]+$/, "", line)
        total += count
        m = split(line, f, ";")
        ok = 0
        for (i = 1; i <= m; i++) if ((f[i] in root) || f[i] ~ /::main$/) { ok = 1; break }
        if (!ok) { outer = (m >= 2 ? f[2] : "(no frames)"); cut[f[1] ";" outer] += count; ncut += count }
    }
    END {
        for (k in cut) printf "    %7d  %5.2f %%  %s\n", cut[k], 100 * cut[k] / total, substr(k, 1, 160)
        if (!ncut) print "    none"
    }' "$1" | sort -rn | head -n 12
}

# measure NAME CMD...: the rows of one workload.
measure() {
    local name=$1
    shift
    local -a cmd=("$@")
    local -A walls=() cpus=()
    local round size t c
    "${cmd[@]}" >/dev/null 2>&1 || true # warm the page cache
    for ((round = 1; round <= RUNS; round++)); do
        t=$(run_timed "${cmd[@]}")
        read -r t c <<<"$t"
        walls[bare]+="$t "
        cpus[bare]+="$c "
        for size in "${sizes[@]}"; do
            t=$(run_timed perf record -e cpu-clock -F 997 --call-graph "dwarf,$size" \
                --no-bpf-event --no-buildid-cache --no-buildid "${perf_args[@]}" \
                -o "$work/$name-$size.data" -- "${cmd[@]}")
            read -r t c <<<"$t"
            walls[$size]+="$t "
            cpus[$size]+="$c "
        done
    done
    local bare bare_cpu
    # shellcheck disable=SC2086
    bare=$(median ${walls[bare]})
    # shellcheck disable=SC2086
    bare_cpu=$(median ${cpus[bare]})
    row "$name" bare - - - - - "${bare}s" - "${bare_cpu}s" -
    for size in "${sizes[@]}"; do
        local data=$work/$name-$size.data out=$OUT/$name-$size start end post wall cpu mb over cover pct samples lost
        start=$(now)
        "$rf" --perfdata "$data" -o "$out" >"$work/post.log" 2>&1
        end=$(now)
        cp "$work/post.log" "$out/summary.txt"
        post=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
        # shellcheck disable=SC2086
        wall=$(median ${walls[$size]})
        mb=$(awk -v b="$(stat -c %s "$data")" 'BEGIN { printf "%.1f", b / 1048576 }')
        over=$(awk -v w="$wall" -v b="$bare" 'BEGIN { printf "%+.0f", 100 * (w / b - 1) }')
        # shellcheck disable=SC2086
        cpu=$(median ${cpus[$size]})
        cover=$(awk -v w="$cpu" -v b="$bare_cpu" 'BEGIN { printf "%+.0f", 100 * (w / b - 1) }')
        read -r pct samples < <(stats "$out/stacks.folded")
        # "perf lost 3 records (its buffer was full): ..." -> 3
        lost=$(sed -n 's/^  samples  *[0-9]* (perf lost \([0-9]*\) record.*$/\1/p' "$work/post.log")
        [[ -z $lost ]] && lost=-
        row "$name" "$size" "$pct" "$samples" "$lost" "$mb" "$over" "${wall}s" "$post" "${cpu}s" "$cover"
        if [[ $KEEP_DATA == 1 ]]; then mv "$data" "$out/perf.data"; else rm -f "$data"; fi
    done
    local last=${sizes[${#sizes[@]}-1]}
    echo "  $name at $last: stacks that reach no thread root, by outermost frame:"
    cut_stacks "$OUT/$name-$last/stacks.folded"
}

printf '# %s, %s cores, load average %s\n' "$(date -u +%F)" "$(nproc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
row workload size complete% samples lost data_MB overhead% wall post_s cpu cpu_over%
for w in "${workloads[@]}"; do
    case $w in
    demo)
        demo=${DEMO_BIN:-}
        if [[ -z $demo ]]; then
            "$rf" --build-only >/dev/null 2>&1 || true
            demo=$PWD/target/rust-flamegraph/release/demo
            [[ -n ${CARGO_TARGET_DIR:-} ]] && demo=$CARGO_TARGET_DIR/rust-flamegraph/release/demo
        fi
        if [[ ! -x $demo ]]; then
            loud "SKIPPING demo: no demo binary ($demo); set DEMO_BIN"
            continue
        fi
        read -ra demo_args <<<"$DEMO_ARGS"
        measure demo "$demo" "${demo_args[@]}"
        ;;
    rg)
        if [[ -z $RG_BIN || ! -x $RG_BIN || -z $RG_TREE || ! -d $RG_TREE ]]; then
            loud "SKIPPING rg: set RG_BIN (ripgrep with debuginfo) and RG_TREE (a large folder), or run benches/thirdparty-setup.sh"
            continue
        fi
        measure rg "$RG_BIN" -c "$RG_PATTERN" "$RG_TREE"
        ;;
    rayon)
        if [[ -z $RAYON_BIN || ! -x $RAYON_BIN ]]; then
            loud "SKIPPING rayon: set RAYON_BIN to a rayon program built with debuginfo (and RAYON_ARGS)"
            continue
        fi
        read -ra rayon_args <<<"$RAYON_ARGS"
        measure rayon "$RAYON_BIN" "${rayon_args[@]}"
        ;;
    *)
        echo "unknown workload $w (demo, rg, rayon)" >&2
        exit 2
        ;;
    esac
done
printf '# finished, load average %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
