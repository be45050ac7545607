#!/usr/bin/env bash
# Prepares the third-party baselines for the benchmark (see thirdparty-baseline.md):
#   - `cargo flamegraph` (crate `flamegraph`, latest 0.6.x) in $BENCH_TOOLS/bin;
#   - ripgrep built from its published crate with full debuginfo and frame
#     pointers, in $BENCH_TOOLS/rg/bin/rg (a large, inlining-heavy target);
#   - a search corpus for rg in $CORPUS (copies of the cargo registry sources);
#   - binutils (addr2line, used by `perf script` for inlined frames) and GNU time.
# Idempotent: each step is skipped when its result is already there.
# Writes $BENCH_TOOLS/env.sh, to be sourced, with RG, CORPUS and RG_CMD.
set -euo pipefail

BENCH_TOOLS=${BENCH_TOOLS:-/work/bench-tools}
# Version requirement for `cargo install flamegraph`.
FLAMEGRAPH_VERSION=${FLAMEGRAPH_VERSION:-^0.6}
# Empty: the newest published ripgrep.
RG_VERSION=${RG_VERSION:-}
# Where the corpus is made, from which sources, and how many copies of them.
CORPUS=${CORPUS:-$BENCH_TOOLS/corpus}
CORPUS_SRC=${CORPUS_SRC:-${CARGO_HOME:-$HOME/.cargo}/registry/src}
CORPUS_COPIES=${CORPUS_COPIES:-40}
# The search the benchmark profiles.
RG_PATTERN=${RG_PATTERN:-'fn [a-z]+_[a-z]+\('}

log() { printf '[thirdparty-setup] %s\n' "$*" >&2; }

# `cargo install --locked ARGS...`; when a version pinned in the crate's
# Cargo.lock is missing from the registry index in use (a mirror that lags),
# falls back to a fresh resolution without --locked.
cargo_install() {
    if ! cargo install --locked "$@"; then
        log "cargo install --locked $* failed; retrying without --locked"
        cargo install "$@"
    fi
}

mkdir -p "$BENCH_TOOLS"

# --- system packages ---------------------------------------------------------
missing=()
command -v addr2line >/dev/null 2>&1 || missing+=(binutils)
[[ -x /usr/bin/time ]] || missing+=(time)
command -v file >/dev/null 2>&1 || missing+=(file)
command -v perf >/dev/null 2>&1 || missing+=(linux-perf)
if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# --- cargo flamegraph --------------------------------------------------------
if [[ -x $BENCH_TOOLS/bin/cargo-flamegraph ]]; then
    log "cargo-flamegraph already in $BENCH_TOOLS/bin"
else
    log "cargo install flamegraph $FLAMEGRAPH_VERSION into $BENCH_TOOLS"
    # Plain release build: no flags from the caller's environment.
    (
        unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
        cargo_install --root "$BENCH_TOOLS" --version "$FLAMEGRAPH_VERSION" flamegraph
    )
fi

# --- ripgrep with debuginfo and frame pointers -------------------------------
RG=$BENCH_TOOLS/rg/bin/rg

rg_ok() {
    [[ -x $RG ]] || return 1
    local size
    size=$(stat -c %s "$RG")
    ((size >= 10 * 1024 * 1024)) || return 1
    file -L "$RG" | grep -q 'with debug_info, not stripped'
}

if rg_ok; then
    log "ripgrep with debuginfo already in $RG"
else
    rg_args=(--force --root "$BENCH_TOOLS/rg")
    [[ -n $RG_VERSION ]] && rg_args+=(--version "$RG_VERSION")
    log "cargo install ripgrep (debug=true, strip=false, frame pointers) into $BENCH_TOOLS/rg"
    # ripgrep's own release profile has only `debug = 1`: ask for full
    # debuginfo (with inlined-function entries) and keep it in the binary.
    (
        unset CARGO_ENCODED_RUSTFLAGS
        export CARGO_PROFILE_RELEASE_DEBUG=true
        export CARGO_PROFILE_RELEASE_STRIP=false
        export CARGO_PROFILE_RELEASE_SPLIT_DEBUGINFO=off
        export RUSTFLAGS="-C force-frame-pointers=yes"
        cargo_install "${rg_args[@]}" ripgrep
    )
    if ! rg_ok; then
        log "error: $RG is not >= 10 MB with debug_info: $(file -L "$RG")"
        exit 1
    fi
fi
log "$(file -L "$RG")"
log "$(du -h "$RG" | cut -f1) $("$RG" --version | head -n1)"

# --- corpus ------------------------------------------------------------------
# One copy of the registry sources, then hard-linked copies of it (no extra
# disk; rg still reads and searches every path).
if [[ -f $CORPUS/.complete && $(cat "$CORPUS/.complete") == "$CORPUS_COPIES" ]]; then
    log "corpus already in $CORPUS ($CORPUS_COPIES copies)"
else
    [[ -d $CORPUS_SRC ]] || { log "error: no corpus source $CORPUS_SRC"; exit 1; }
    log "corpus: $CORPUS_COPIES copies of $CORPUS_SRC in $CORPUS"
    rm -rf "$CORPUS"
    mkdir -p "$CORPUS"
    cp -r "$CORPUS_SRC" "$CORPUS/copy-001"
    for ((i = 2; i <= CORPUS_COPIES; i++)); do
        cp -al "$CORPUS/copy-001" "$(printf '%s/copy-%03d' "$CORPUS" "$i")"
    done
    echo "$CORPUS_COPIES" >"$CORPUS/.complete"
fi
log "corpus: $(du -sh --count-links "$CORPUS" | cut -f1) in $(find "$CORPUS" -type f | wc -l) files"

# --- env file ------------------------------------------------------------------
{
    printf 'BENCH_TOOLS=%q\n' "$BENCH_TOOLS"
    printf 'RG=%q\n' "$RG"
    printf 'CORPUS=%q\n' "$CORPUS"
    printf 'RG_PATTERN=%q\n' "$RG_PATTERN"
    # The profiled command: count matching lines in every file of the corpus.
    printf 'RG_CMD=(%q -c %q %q)\n' "$RG" "$RG_PATTERN" "$CORPUS"
} >"$BENCH_TOOLS/env.sh"
log "wrote $BENCH_TOOLS/env.sh (source it for RG, CORPUS, RG_CMD)"
