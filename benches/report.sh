#!/usr/bin/env bash
# report.html on the seed's heavy run (DEMO_ARGS, ~26k samples, ~25 s): its
# size, and in headless Chromium (chromedriver) the page's own
# performance.now() figures, REPORT_REPEAT times each: load → heatmap and
# whole-run flamegraph drawn, and a drag-selection (seconds 3 to 8) → its
# flamegraph drawn. Also a synthetic page of 1M samples (1000 s, 4 threads).
# Targets (issue 11): report.html ≤ 5 MB, each time ≤ 1 s.
# Usage: benches/report.sh [OUT]   (OUT: an earlier run's output folder to
# reuse instead of recording again). PROFILER_ARGS adds the profiler's own
# options (PROFILER_ARGS=--off-cpu: a page of nanoseconds, waits included).
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_ARGS=${DEMO_ARGS:---iters 10000 --size 200000}
PROFILER_ARGS=${PROFILER_ARGS:-}
export REPORT_REPEAT=${REPORT_REPEAT:-5}
for tool in perf chromium chromedriver; do
  command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install linux-perf chromium chromium-driver" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

out=${1:-}
if [ -z "$out" ]; then
  cargo build -q --release
  out=$work/heavy
  # shellcheck disable=SC2086 # PROFILER_ARGS and DEMO_ARGS are lists of arguments
  "${CARGO_TARGET_DIR:-target}/release/rust-flamegraph" $PROFILER_ARGS --out "$out" -- $DEMO_ARGS >"$work/run.log" 2>&1 \
    || { cat "$work/run.log" >&2; exit 1; }
fi
[ -f "$out/report.html" ] || { echo "no report.html in $out" >&2; exit 1; }

REPORT_HTML=$out/report.html cargo test -q --test report_browser measure -- \
  --ignored --nocapture --test-threads=1 2>/dev/null | grep '^MEASURE' >"$work/measure" || true
[ -s "$work/measure" ] || { echo "the browser measurement printed nothing" >&2; exit 1; }

printf '%-12s %8s %9s %6s %14s %14s %16s %16s\n' page samples size_MB runs \
  load_med_ms load_max_ms select_med_ms select_max_ms
# MEASURE path bytes load_ms select_ms samples_selected
samples=$(awk '{ s += $NF } END { print s }' "$out/stacks.folded")
awk -v heavy="$out/report.html" -v samples="$samples" '
  { page = ($2 == heavy) ? "heavy run" : "1M samples"
    size[page] = $3; n[page]++; load[page, n[page]] = $4; sel[page, n[page]] = $5 }
  function med(a, p, k,   v, i, j, t) {
    for (i = 1; i <= k; i++) v[i] = a[p, i]
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return v[int((k + 1) / 2)]
  }
  function max(a, p, k,   i, m) { m = a[p, 1]; for (i = 2; i <= k; i++) if (a[p, i] > m) m = a[p, i]; return m }
  END {
    for (page in n) printf "%-12s %8.0f %9.2f %6d %14.1f %14.1f %16.1f %16.1f\n", page, (page == "heavy run" ? samples : 1000000), size[page] / 1e6, n[page],
      med(load, page, n[page]), max(load, page, n[page]), med(sel, page, n[page]), max(sel, page, n[page])
  }' "$work/measure" | sort
echo "heavy run: $out ($(grep -c . "$out/stacks.folded") distinct stacks)"
