//! Samples over time: counted per (cell, thread, stack) as they are read, for
//! report.html's heatmap. Memory grows with those distinct tuples, not with
//! the run's length times its sampling rate.

use foldhash::HashMap;

/// Height of one heatmap cell: 20 ms, so 50 rows make a second.
pub const CELL_MS: u64 = 20;
/// Rows per column (one column is a second).
pub const ROWS: u64 = 1000 / CELL_MS;
/// The longest run the heatmap draws (a day): a recording whose sample times
/// span more is damaged, and the page would not open.
const MAX_CELLS: i64 = 24 * 3600 * 1000 / CELL_MS as i64;

/// Samples over time, aggregated per (cell, thread, stack).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Timeline {
    /// Thread names, by thread index.
    pub threads: Vec<String>,
    /// Folded stacks (`frame;frame;…`), by stack index.
    pub stacks: Vec<String>,
    /// Samples per (cell, thread, stack), sorted; cell 0 starts at the first sample.
    pub cells: Vec<Cell>,
}

/// Samples of one stack on one thread in one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cell {
    /// [`CELL_MS`] slices since the first sample.
    pub cell: u32,
    /// Index in [`Timeline::threads`].
    pub thread: u32,
    /// Index in [`Timeline::stacks`].
    pub stack: u32,
    /// Samples.
    pub samples: u32,
}

impl Timeline {
    /// All samples.
    pub fn samples(&self) -> u64 {
        self.cells.iter().map(|c| u64::from(c.samples)).sum()
    }
}

/// Counts samples into a [`Timeline`] as they are read, by the caller's
/// thread and stack ids.
#[derive(Debug, Default)]
pub struct TimelineBuilder {
    first: Option<u64>,
    /// A sample without a time: the recording has no times, so no timeline.
    untimed: bool,
    counts: HashMap<(i64, u32, u32), u32>,
}

impl TimelineBuilder {
    /// Counts one sample taken at `time` (nanoseconds; `None` if perf recorded no time).
    pub fn add(&mut self, time: Option<u64>, thread: u32, stack: u32) {
        let Some(time) = time else {
            self.untimed = true;
            return;
        };
        let first = *self.first.get_or_insert(time);
        let cell = (time as i128 - first as i128).div_euclid(i128::from(CELL_MS) * 1_000_000);
        let cell = cell.clamp(i64::MIN.into(), i64::MAX.into()) as i64;
        let count = self.counts.entry((cell, thread, stack)).or_default();
        *count = count.saturating_add(1);
    }

    /// The timeline, naming threads with `thread_name` and stacks with
    /// `stack_text` (indexed by the ids given to [`add`](Self::add); its
    /// strings are moved into the timeline, not copied); stacks that read
    /// the same are merged. `None` without samples, if any sample
    /// had no time, or if the times span more than a day.
    pub fn finish(
        self,
        mut thread_name: impl FnMut(u32) -> String,
        mut stack_text: Vec<String>,
    ) -> Option<Timeline> {
        if self.untimed || self.counts.is_empty() {
            return None;
        }
        // Samples out of time order before the first one: start there.
        let min = self.counts.keys().map(|k| k.0).min().unwrap_or(0);
        let max = self.counts.keys().map(|k| k.0).max().unwrap_or(0);
        if max.saturating_sub(min) >= MAX_CELLS {
            return None;
        }
        let mut threads = Vec::new();
        let mut thread_ids: HashMap<u32, u32> = HashMap::default();
        // Each distinct text's index in the timeline's stacks, by the id that first had it.
        let mut by_text: HashMap<&str, u32> = HashMap::default();
        let mut first_with: Vec<u32> = Vec::new();
        let mut stack_ids: HashMap<u32, u32> = HashMap::default();
        let mut merged: HashMap<(u32, u32, u32), u32> = HashMap::default();
        // In time order: threads and stacks are numbered as they first
        // appear, the same for the same recording.
        let mut counts: Vec<_> = self.counts.into_iter().collect();
        counts.sort_unstable();
        for ((cell, thread, stack), samples) in counts {
            let t = *thread_ids.entry(thread).or_insert_with(|| {
                threads.push(thread_name(thread));
                threads.len() as u32 - 1
            });
            let s = *stack_ids.entry(stack).or_insert_with(|| {
                let text = stack_text.get(stack as usize).map_or("[unknown]", |s| s);
                *by_text.entry(text).or_insert_with(|| {
                    first_with.push(stack);
                    first_with.len() as u32 - 1
                })
            });
            let cell = (cell - min) as u32; // < MAX_CELLS
            let count = merged.entry((cell, t, s)).or_default();
            *count = count.saturating_add(samples);
        }
        let mut cells: Vec<Cell> = merged
            .into_iter()
            .map(|((cell, thread, stack), samples)| Cell {
                cell,
                thread,
                stack,
                samples,
            })
            .collect();
        cells.sort_unstable();
        drop(by_text);
        let stacks = first_with
            .into_iter()
            .map(|id| match stack_text.get_mut(id as usize) {
                Some(text) => std::mem::take(text),
                None => "[unknown]".to_string(),
            })
            .collect();
        Some(Timeline {
            threads,
            stacks,
            cells,
        })
    }
}
