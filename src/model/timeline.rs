//! Samples over time: counted per (cell, thread, stack) as they are read, for
//! report.html's heatmap. Memory grows with those distinct tuples, not with
//! the run's length times its sampling rate.
//!
//! Under `--off-cpu` the weights are nanoseconds: a CPU sample weighs its
//! period, and a wait is split over the cells it spans, each getting the
//! nanoseconds of the wait that fall in it.

use foldhash::HashMap;

/// Height of one heatmap cell: 20 ms, so 50 rows make a second.
pub const CELL_MS: u64 = 20;
/// Rows per column (one column is a second).
pub const ROWS: u64 = 1000 / CELL_MS;
/// The longest run the heatmap draws (a day): a recording whose sample times
/// span more is damaged, and the page would not open.
const MAX_CELLS: i64 = 24 * 3600 * 1000 / CELL_MS as i64;
/// The most (cell, thread, stack) counts kept (about 100 MB, and a page of
/// about 40 MB): under `--off-cpu` every thread adds one per cell it waits
/// in, so hundreds of threads over minutes would hold gigabytes. Past it the
/// timeline is dropped, and its memory freed, with a warning.
pub const MAX_ENTRIES: usize = 2_000_000;

/// Samples (or nanoseconds) over time, aggregated per (cell, thread, stack).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Timeline {
    /// Thread names, by thread index.
    pub threads: Vec<String>,
    /// Folded stacks (`frame;frame;…`), by stack index.
    pub stacks: Vec<String>,
    /// Weight per (cell, thread, stack), sorted; cell 0 holds the earliest
    /// time given to the builder.
    pub cells: Vec<Cell>,
}

/// The weight of one stack on one thread in one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cell {
    /// [`CELL_MS`] slices since the first sample.
    pub cell: u32,
    /// Index in [`Timeline::threads`].
    pub thread: u32,
    /// Index in [`Timeline::stacks`].
    pub stack: u32,
    /// Samples, or nanoseconds under `--off-cpu`.
    pub weight: u64,
}

impl Timeline {
    /// The weight of all cells: samples, or nanoseconds under `--off-cpu`.
    pub fn weight(&self) -> u64 {
        self.cells
            .iter()
            .fold(0u64, |sum, c| sum.saturating_add(c.weight))
    }
}

/// Counts samples into a [`Timeline`] as they are read, by the caller's
/// thread and stack ids.
#[derive(Debug, Default)]
pub struct TimelineBuilder {
    first: Option<u64>,
    /// A sample without a time: the recording has no times, so no timeline.
    untimed: bool,
    /// A wait longer than the longest run drawn: a damaged recording.
    damaged: bool,
    /// More than the budget of counts: dropped (see [`MAX_ENTRIES`]).
    full: bool,
    /// The budget, when not [`MAX_ENTRIES`] (tests).
    budget: Option<usize>,
    counts: HashMap<(i64, u32, u32), u64>,
}

/// Nanoseconds in a cell.
const CELL_NS: i128 = CELL_MS as i128 * 1_000_000;

impl TimelineBuilder {
    /// A builder that keeps at most `entries` counts.
    pub fn with_budget(entries: usize) -> TimelineBuilder {
        TimelineBuilder {
            budget: Some(entries),
            ..TimelineBuilder::default()
        }
    }

    /// More (cell, thread, stack) counts came than the budget: the timeline
    /// was dropped ([`finish`](Self::finish) gives none).
    pub fn overflowed(&self) -> bool {
        self.full
    }

    /// Counts one sample taken at `time` (nanoseconds; `None` if perf recorded no time).
    pub fn add(&mut self, time: Option<u64>, thread: u32, stack: u32) {
        self.add_weight(time, thread, stack, 1);
    }

    /// Adds `weight` (a sample's period in nanoseconds, under `--off-cpu`)
    /// at `time`, as [`add`](Self::add) adds one.
    pub fn add_weight(&mut self, time: Option<u64>, thread: u32, stack: u32, weight: u64) {
        let Some(time) = time else {
            self.untimed = true;
            return;
        };
        let cell = self.cell_of(time);
        self.put(cell, thread, stack, weight);
    }

    /// Cells are counted from `time` if nothing came before: call it with
    /// each sample's time, so that a wait that ends late but began early
    /// does not move where the cells start.
    pub fn begin(&mut self, time: u64) {
        self.first.get_or_insert(time);
    }

    /// A wait of `thread` in `stack` from `since` to `until` (nanoseconds):
    /// each cell it spans gets the nanoseconds of it that fall in that cell,
    /// so the cells' weights add up to `until - since`.
    pub fn add_span(&mut self, since: u64, until: u64, thread: u32, stack: u32) {
        if until <= since {
            return;
        }
        let (a, b) = (self.cell_of(since), self.cell_of(until - 1));
        if self.full {
            return;
        }
        if b.saturating_sub(a) >= MAX_CELLS {
            self.damaged = true;
            return;
        }
        let first = i128::from(self.first.unwrap_or(since));
        for cell in a..=b {
            let start = first + i128::from(cell) * CELL_NS;
            let from = start.max(i128::from(since));
            let to = (start + CELL_NS).min(i128::from(until));
            self.put(cell, thread, stack, (to - from) as u64);
        }
    }

    /// The cell of `time`, counted from the first time given.
    fn cell_of(&mut self, time: u64) -> i64 {
        let first = *self.first.get_or_insert(time);
        let cell = (i128::from(time) - i128::from(first)).div_euclid(CELL_NS);
        cell.clamp(i64::MIN.into(), i64::MAX.into()) as i64
    }

    fn put(&mut self, cell: i64, thread: u32, stack: u32, weight: u64) {
        if self.full {
            return;
        }
        let key = (cell, thread, stack);
        if self.counts.len() >= self.budget.unwrap_or(MAX_ENTRIES)
            && !self.counts.contains_key(&key)
        {
            self.full = true;
            self.counts = HashMap::default();
            return;
        }
        let count = self.counts.entry(key).or_default();
        *count = count.saturating_add(weight);
    }

    /// The timeline, naming threads with `thread_name` and stacks with
    /// `stack_text` (indexed by the ids given to [`add`](Self::add); its
    /// strings are moved into the timeline, not copied); stacks that read
    /// the same are merged. `None` without samples, if any sample
    /// had no time, or if the times (or a wait) span more than a day.
    pub fn finish(
        self,
        mut thread_name: impl FnMut(u32) -> String,
        mut stack_text: Vec<String>,
    ) -> Option<Timeline> {
        if self.untimed || self.damaged || self.full || self.counts.is_empty() {
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
        let mut merged: HashMap<(u32, u32, u32), u64> = HashMap::default();
        // In time order: threads and stacks are numbered as they first
        // appear, the same for the same recording.
        let mut counts: Vec<_> = self.counts.into_iter().collect();
        counts.sort_unstable();
        for ((cell, thread, stack), weight) in counts {
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
            *count = count.saturating_add(weight);
        }
        let mut cells: Vec<Cell> = merged
            .into_iter()
            .map(|((cell, thread, stack), weight)| Cell {
                cell,
                thread,
                stack,
                weight,
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
