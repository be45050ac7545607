//! `report.html`: one self-contained page with a subsecond-offset heatmap of
//! the run (a column per second, a row per [`CELL_MS`] of it, as FlameScope
//! draws it), the flamegraph of any range of it, a thread filter and the
//! summary as a table. No network and no server: the page's script, style and
//! data are all inside it, so it opens from `file://` anywhere.
//!
//! Samples are never kept one by one: [`TimelineBuilder`](crate::model::timeline::TimelineBuilder) counts them per
//! (cell, thread, stack), so memory and the page grow with those distinct
//! tuples, not with the run's length times its sampling rate.

use foldhash::HashMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::model::counts::is_thread_root;
use crate::model::folded::{parse_line, Folded};
use crate::model::timeline::{CELL_MS, ROWS};

const PAGE: &str = include_str!("report/report.html");
const STYLE: &str = include_str!("report/report.css");
const SCRIPT: &str = include_str!("report/report.js");

/// What the page shows besides the data: its title and subtitle, and what
/// the counts are.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The title (the profiled command).
    pub title: String,
    /// The line under it (samples, rate, call graph mode).
    pub subtitle: String,
    /// Counts are nanoseconds (`--off-cpu`: CPU samples weigh their period,
    /// waits their length), not samples.
    pub nanoseconds: bool,
}

/// The data the page's script reads (`<script type="application/json">`).
#[derive(Serialize)]
struct Data<'a> {
    title: &'a str,
    subtitle: &'a str,
    /// What counts are: `samples`, or `ns` (nanoseconds, under `--off-cpu`).
    unit: &'static str,
    cell_ms: u64,
    rows: u64,
    /// Frame names.
    frames: Vec<&'a str>,
    /// The stacks as a tree: node `i` (from 1) is `[parent, frame]` at
    /// `nodes[2i]`, `nodes[2i+1]`; node 0 is the root (`all`) and parents
    /// come before their children.
    nodes: Vec<u32>,
    /// Frames that start a thread: a stack that reaches one is complete.
    roots: Vec<u32>,
    threads: Vec<&'a str>,
    /// `[cell, thread, node, weight]` flattened, sorted by cell, each cell
    /// given as the difference from the previous entry's (mostly 0 or 1: a
    /// third of the page's size for long runs); empty without a timeline.
    /// A weight is samples, or nanoseconds (see `unit`).
    cells: Vec<u64>,
    /// Without a timeline: `[node, samples]` flattened, the whole run.
    whole: Vec<u64>,
    /// Warnings of the run (lost samples, …).
    warnings: &'a [String],
}

/// The stacks as a tree of frames, each distinct path once.
#[derive(Default)]
struct Tree<'a> {
    frames: Vec<&'a str>,
    frame_ids: HashMap<&'a str, u32>,
    nodes: Vec<u32>,
    children: HashMap<(u32, u32), u32>,
}

impl<'a> Tree<'a> {
    fn new() -> Tree<'a> {
        let mut tree = Tree::default();
        tree.nodes.extend([0, 0]); // the root; its fields are unused
        tree
    }
}

/// Writes report.html for `folded` (its timeline if it has one, else its
/// stacks as one whole run).
pub fn write_html(folded: &Folded, page: &Page, w: &mut dyn Write) -> io::Result<()> {
    let text = String::from_utf8_lossy(&folded.text);
    let mut tree = Tree::new();
    let mut cells = Vec::new();
    let mut whole = Vec::new();
    let threads: Vec<&str>;
    match &folded.timeline {
        Some(timeline) => {
            let nodes: Vec<u32> = timeline.stacks.iter().map(|s| add(&mut tree, s)).collect();
            cells.reserve(timeline.cells.len() * 4);
            let mut previous = 0;
            for c in &timeline.cells {
                let delta = c.cell - previous;
                previous = c.cell;
                cells.extend([
                    u64::from(delta),
                    u64::from(c.thread),
                    u64::from(nodes[c.stack as usize]),
                    c.weight,
                ]);
            }
            threads = timeline.threads.iter().map(String::as_str).collect();
        }
        None => {
            let mut counts: HashMap<u32, u64> = HashMap::default();
            for (frames, count) in text.lines().filter_map(parse_line) {
                let node = add(&mut tree, frames);
                let c = counts.entry(node).or_default();
                *c = c.saturating_add(count);
            }
            let mut counts: Vec<(u32, u64)> = counts.into_iter().collect();
            counts.sort_unstable();
            whole = counts
                .into_iter()
                .flat_map(|(n, c)| [u64::from(n), c])
                .collect();
            threads = Vec::new();
        }
    }
    let roots = tree
        .frames
        .iter()
        .enumerate()
        .filter(|(_, f)| is_thread_root(f))
        .map(|(i, _)| i as u32)
        .collect();
    let data = Data {
        title: &page.title,
        subtitle: &page.subtitle,
        unit: if page.nanoseconds { "ns" } else { "samples" },
        cell_ms: CELL_MS,
        rows: ROWS,
        frames: tree.frames,
        nodes: tree.nodes,
        roots,
        threads,
        cells,
        whole,
        warnings: &folded.warnings,
    };
    let json = serde_json::to_string(&data).map_err(io::Error::other)?;
    // Inside <script>, `</script>` or `<!--` in a frame name would end or
    // change the element: no `<` at all (JSON reads `\u003c` as `<`).
    let json = json.replace('<', "\\u003c");
    let title = escape_html(&page.title);
    let html = PAGE
        .replacen("{{TITLE}}", &title, 1)
        .replacen("{{STYLE}}", STYLE, 1)
        .replacen("{{SCRIPT}}", SCRIPT, 1);
    // The data last: nothing in it is taken for a placeholder.
    let (before, after) = html
        .split_once("{{DATA}}")
        .expect("the page has a data placeholder");
    w.write_all(before.as_bytes())?;
    w.write_all(json.as_bytes())?;
    w.write_all(after.as_bytes())
}

/// Adds `stack` to `tree`, returning its node.
fn add<'a>(tree: &mut Tree<'a>, stack: &'a str) -> u32 {
    let mut node = 0u32;
    for frame in stack.split(';') {
        let next = tree.frames.len() as u32;
        let id = *tree.frame_ids.entry(frame).or_insert(next);
        if id == next {
            tree.frames.push(frame);
        }
        let next = (tree.nodes.len() / 2) as u32;
        let child = *tree.children.entry((node, id)).or_insert(next);
        if child == next {
            tree.nodes.extend([node, id]);
        }
        node = child;
    }
    node
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::timeline::{Timeline, TimelineBuilder};

    const MS: u64 = 1_000_000;

    #[test]
    fn samples_are_counted_per_cell_thread_and_stack_from_the_first() {
        let mut b = TimelineBuilder::default();
        let t0 = 5_000 * MS;
        b.add(Some(t0), 7, 1);
        b.add(Some(t0 + 19 * MS), 7, 1);
        b.add(Some(t0 + 20 * MS), 7, 1);
        b.add(Some(t0 + 1_000 * MS), 8, 2);
        // Ids 1 and 3 read the same: merged.
        b.add(Some(t0 + 1_001 * MS), 8, 3);
        let stacks = ["".to_string(), "a;b".into(), "a;c".into(), "a;c".into()];
        let t = b.finish(|id| format!("t{id}"), stacks.to_vec()).unwrap();
        assert_eq!(t.weight(), 5);
        let named: Vec<(u32, &str, &str, u64)> = t
            .cells
            .iter()
            .map(|c| {
                (
                    c.cell,
                    &*t.threads[c.thread as usize],
                    &*t.stacks[c.stack as usize],
                    c.weight,
                )
            })
            .collect();
        assert_eq!(
            named,
            [
                (0, "t7", "a;b", 2),
                (1, "t7", "a;b", 1),
                (50, "t8", "a;c", 2)
            ]
        );
    }

    #[test]
    fn no_times_or_a_damaged_span_means_no_timeline() {
        let mut b = TimelineBuilder::default();
        b.add(Some(1), 0, 0);
        b.add(None, 0, 0);
        assert_eq!(b.finish(|_| String::new(), vec!["x".into()]), None);
        assert_eq!(
            TimelineBuilder::default().finish(|_| String::new(), Vec::new()),
            None
        );
        // Times of a damaged recording, a year apart.
        let mut b = TimelineBuilder::default();
        b.add(Some(1), 0, 0);
        b.add(Some(365 * 24 * 3600 * 1_000 * MS), 0, 0);
        assert_eq!(b.finish(|_| String::new(), vec!["x".into()]), None);
    }

    #[test]
    fn a_wait_is_split_over_the_cells_it_spans() {
        let mut b = TimelineBuilder::default();
        let t0 = 7_000 * MS;
        b.begin(t0);
        // A CPU sample of 1 ms at 5 ms, then a wait from 15 ms to 62 ms.
        b.add_weight(Some(t0 + 5 * MS), 0, 0, MS);
        b.add_span(t0 + 15 * MS, t0 + 62 * MS, 0, 1);
        // Nothing for an empty wait; a wait of a year damages the timeline.
        b.add_span(t0, t0, 0, 1);
        let stacks = ["t;run".to_string(), "t;[off-cpu: sleep]".into()];
        let t = b.finish(|_| "t".into(), stacks.to_vec()).unwrap();
        let cells: Vec<(u32, u32, u64)> = t
            .cells
            .iter()
            .map(|c| (c.cell, c.stack, c.weight))
            .collect();
        assert_eq!(
            cells,
            [
                (0, 0, MS),
                (0, 1, 5 * MS),
                (1, 1, 20 * MS),
                (2, 1, 20 * MS),
                (3, 1, 2 * MS)
            ]
        );
        assert_eq!(t.weight(), MS + 47 * MS);
        let mut b = TimelineBuilder::default();
        b.add_span(0, 365 * 24 * 3600 * 1_000 * MS, 0, 0);
        assert_eq!(b.finish(|_| String::new(), vec!["x".into()]), None);
    }

    #[test]
    fn the_page_says_what_its_counts_are() {
        let mut b = TimelineBuilder::default();
        b.add_weight(Some(0), 0, 0, 3_000_000_000);
        let folded = Folded {
            timeline: b.finish(|_| "t".into(), vec!["t;a".into()]),
            ..Folded::default()
        };
        let mut out = Vec::new();
        let page = Page {
            nanoseconds: true,
            ..Page::default()
        };
        write_html(&folded, &page, &mut out).unwrap();
        let d = data(&String::from_utf8(out).unwrap());
        assert_eq!(d["unit"], "ns");
        // Past 32 bits: weights are not cut.
        assert_eq!(d["cells"], serde_json::json!([0, 0, 2, 3_000_000_000u64]));
    }

    /// The page's data, parsed back.
    fn data(html: &str) -> serde_json::Value {
        let start = html.find("id=\"data\">").unwrap() + "id=\"data\">".len();
        let end = start + html[start..].find("</script>").unwrap();
        serde_json::from_str(&html[start..end]).unwrap()
    }

    #[test]
    fn names_cannot_end_the_script_and_the_tree_shares_prefixes() {
        let folded = Folded {
            text: b"main;</script><!--x;a 3\nmain;b 2\nmain;</script><!--x;c 1\n".to_vec(),
            ..Folded::default()
        };
        let page = Page {
            title: "<b>&".into(),
            ..Page::default()
        };
        let mut out = Vec::new();
        write_html(&folded, &page, &mut out).unwrap();
        let html = String::from_utf8(out).unwrap();
        assert_eq!(
            html.matches("</script>").count(),
            2,
            "style aside, two scripts"
        );
        assert!(html.contains("<title>&lt;b&gt;&amp; · report</title>"));
        let d = data(&html);
        assert_eq!(d["frames"][1], "</script><!--x");
        // root, main, </script>…, a, b, c
        assert_eq!(d["nodes"].as_array().unwrap().len(), 6 * 2);
        let whole: Vec<u64> = serde_json::from_value(d["whole"].clone()).unwrap();
        assert_eq!(whole.iter().skip(1).step_by(2).sum::<u64>(), 6);
        assert_eq!(d["cells"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn the_page_holds_the_timeline_with_cells_as_differences() {
        let mut b = TimelineBuilder::default();
        b.add(Some(0), 0, 0);
        b.add(Some(MS), 1, 1);
        b.add(Some(1_500 * MS), 0, 1);
        b.add(Some(1_501 * MS), 0, 1);
        let stacks = ["main;a".to_string(), "main;b".into()];
        let timeline = b.finish(|t| ["demo", "encoder"][t as usize].into(), stacks.to_vec());
        let folded = Folded {
            timeline,
            ..Folded::default()
        };
        let mut out = Vec::new();
        write_html(&folded, &Page::default(), &mut out).unwrap();
        let d = data(&String::from_utf8(out).unwrap());
        assert_eq!(d["threads"], serde_json::json!(["demo", "encoder"]));
        // Nodes: root 0, main 1, a 2, b 3.
        assert_eq!(
            d["cells"],
            serde_json::json!([0, 0, 2, 1, 0, 1, 3, 1, 75, 0, 3, 2])
        );
        assert_eq!(d["whole"], serde_json::json!([]));
    }

    /// 1M samples (1000 s at 1 kHz, 4 threads, 200 stacks): memory and the
    /// page grow with distinct (cell, thread, stack), not with samples.
    #[test]
    fn a_million_samples_stay_small() {
        let (page, timeline) = million();
        assert_eq!(timeline.weight(), 1_000_000);
        // 50,000 cells of 20 samples over 200 stacks: about 19 distinct per cell.
        let per_cell = timeline.cells.len() as f64 / 50_000.0;
        assert!((15.0..20.0).contains(&per_cell), "{per_cell}");
        assert_eq!(timeline.cells.last().unwrap().cell, 49_999);
        let mb = page.len() as f64 / 1e6;
        assert!(mb < 20.0, "{mb:.1} MB");
        // The browser test opens this page and sums its cells.
        assert!(page.contains("\"cells\":["), "the cells are embedded");
    }

    fn million() -> (String, Timeline) {
        let stacks: Vec<String> = (0..200)
            .map(|i| format!("worker-{};main;run;step_{};leaf_{}", i % 4, i / 10, i))
            .collect();
        let mut b = TimelineBuilder::default();
        let mut x = 1u64;
        for i in 0..1_000_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let stack = (x % 200) as u32;
            b.add(Some(i * MS), stack % 4, stack);
        }
        let timeline = b.finish(|t| format!("worker-{t}"), stacks.clone()).unwrap();
        let folded = Folded {
            timeline: Some(timeline.clone()),
            ..Folded::default()
        };
        let mut out = Vec::new();
        write_html(&folded, &Page::default(), &mut out).unwrap();
        (String::from_utf8(out).unwrap(), timeline)
    }
}
