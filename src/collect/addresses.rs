//! Stacks by address, for pprof (`--format pprof`): while samples are read,
//! each distinct stack of frames (binary and address) is stored once, and
//! each (stack, thread) pair counts its samples; at the end every distinct
//! frame becomes a location with its source lines, in a
//! [`model::profile::AddressStacks`](AddressStacks). Kept only when pprof
//! is asked for; memory grows with distinct stacks and threads, never with
//! samples.

use std::sync::Arc;

use foldhash::HashMap;

use crate::collect::unwind::{Frame, Processes};
use crate::model::profile::{AddressStacks, Function, Line, Location, Mapping, StackSample};
use crate::symbolize::Kernel;

/// Who a sample or a wait belongs to, and what stack it has, if known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Context {
    /// The stack's id (`None`: a wait whose stack perf lost).
    pub stack: Option<u32>,
    /// The process.
    pub pid: i32,
    /// The thread.
    pub tid: i32,
    /// The thread's name, as a name id of the collector's.
    pub thread: u32,
}

/// Address stacks and their counts, as they are read.
#[derive(Default)]
pub(crate) struct Builder {
    /// Each distinct frame, by index: its location's index at the end.
    frames: Vec<Frame>,
    frame_ids: HashMap<Frame, u32>,
    /// Each distinct stack of frame indexes, leaf first.
    stacks: HashMap<Box<[u32]>, u32>,
    stack_list: Vec<Box<[u32]>>,
    /// Weight per (context, the folded stack's id): that id tells, at the
    /// end, whether and why a stack waited.
    counts: HashMap<(Context, u32), u64>,
    /// The context that the next count is for.
    current: Option<Context>,
    /// `--off-cpu`: the context each thread off the CPU left with.
    pending: HashMap<i32, Context>,
    /// `--off-cpu`: the context each thread last left the CPU with and a
    /// stack, for its switches without one.
    last_left: HashMap<i32, Context>,
    ids: Vec<u32>,
}

/// What [`Builder::finish`] needs of the collector's names.
pub(crate) struct Naming<'a> {
    /// Thread names by name id.
    pub thread: &'a dyn Fn(u32) -> Arc<str>,
    /// The leaf of folded stack `id`, when it is one of the pseudo-frames
    /// of `--off-cpu` (`[off-cpu: futex]`): not a frame of the stack.
    pub waited: &'a dyn Fn(u32) -> Option<String>,
    /// Name functions inlined into others (`--no-inline`: no).
    pub inline: bool,
    /// The profiled program's binary, when known (it was read ahead).
    pub program: Option<usize>,
}

impl Builder {
    /// The id of the stack in `frames` (leaf first).
    pub fn stack(&mut self, frames: &[Frame]) -> u32 {
        self.ids.clear();
        for frame in frames {
            let next = self.frames.len() as u32;
            let id = *self.frame_ids.entry(*frame).or_insert(next);
            if id == next {
                self.frames.push(*frame);
            }
            self.ids.push(id);
        }
        match self.stacks.get(self.ids.as_slice()) {
            Some(&id) => id,
            None => {
                let id = self.stack_list.len() as u32;
                let key: Box<[u32]> = self.ids.as_slice().into();
                self.stack_list.push(key.clone());
                self.stacks.insert(key, id);
                id
            }
        }
    }

    /// The next [`Builder::count`] is for `context`.
    pub fn set(&mut self, context: Context) {
        self.current = Some(context);
    }

    /// Thread `tid` left the CPU with `context`'s stack; the wait is
    /// counted when it comes back ([`Builder::back`]).
    pub fn left(&mut self, context: Context) {
        self.pending.insert(context.tid, context);
        self.last_left.insert(context.tid, context);
    }

    /// Thread `tid` left the CPU and no stack of that was taken (the cap
    /// paused the sampling, or perf lost it): its wait is counted on the
    /// stack it left with before, as in the folded stacks, or under its
    /// name alone.
    pub fn left_without_stack(&mut self, pid: i32, tid: i32, thread: u32) {
        let before = self.last_left.get(&tid).copied();
        self.pending.entry(tid).or_insert(before.unwrap_or(Context {
            stack: None,
            pid,
            tid,
            thread,
        }));
    }

    /// Thread `tid` is back on the CPU (or the recording ended while it
    /// waited): the next count is its wait's.
    pub fn back(&mut self, tid: i32) {
        self.current = self.pending.remove(&tid);
    }

    /// Thread `tid` became another program (`execve`): the stack it last
    /// left the CPU with is not this program's.
    pub fn exec(&mut self, tid: i32) {
        self.last_left.remove(&tid);
    }

    /// Thread `tid` ended: it waits no more.
    pub fn exited(&mut self, tid: i32) {
        self.pending.remove(&tid);
        self.last_left.remove(&tid);
    }

    /// Adds `weight` to folded stack `id` in the current context.
    pub fn count(&mut self, id: u32, weight: u64) {
        if let Some(context) = self.current.take() {
            *self.counts.entry((context, id)).or_default() += weight;
        }
    }

    /// The stacks with their locations, functions and mappings: kernel
    /// frames named by `kernel`, the others by the binaries in `procs`.
    pub fn finish(
        self,
        procs: &mut Processes,
        kernel: &mut Kernel,
        names: &Naming<'_>,
    ) -> AddressStacks {
        let mut out = AddressStacks::default();
        let mut functions: HashMap<Function, usize> = HashMap::default();
        let mut function = |out: &mut AddressStacks, f: Function| -> usize {
            *functions.entry(f.clone()).or_insert_with(|| {
                out.functions.push(f);
                out.functions.len() - 1
            })
        };
        // Mappings by (binary, segment's SVMA), and the kernel's.
        let mut mappings: HashMap<(usize, u64), usize> = HashMap::default();
        let mut kernel_mapping: Option<usize> = None;
        // The binary of each mapping (`None`: the kernel's).
        let mut binary_of: Vec<Option<usize>> = Vec::new();
        for &frame in &self.frames {
            let location = match frame {
                Frame::Kernel(addr) => {
                    let m = *kernel_mapping.get_or_insert_with(|| {
                        out.mappings.push(Mapping {
                            path: "[kernel.kallsyms]".into(),
                            start: addr,
                            limit: addr + 1,
                            ..Mapping::default()
                        });
                        binary_of.push(None);
                        out.mappings.len() - 1
                    });
                    let mapping = &mut out.mappings[m];
                    mapping.start = mapping.start.min(addr);
                    mapping.limit = mapping.limit.max(addr.saturating_add(1));
                    let name = kernel.name(addr);
                    let name = name.strip_suffix("_[k]").unwrap_or(&name).to_string();
                    let f = function(
                        &mut out,
                        Function {
                            system_name: name.clone(),
                            name,
                            filename: String::new(),
                        },
                    );
                    Location {
                        mapping: Some(m),
                        address: addr,
                        lines: vec![Line {
                            function: f,
                            line: 0,
                        }],
                    }
                }
                Frame::User(b, svma) => {
                    let binary = &mut procs.binaries[b];
                    let segment = binary.segment_of(svma);
                    let (offset, size, start) = segment.unwrap_or((0, 0, 0));
                    let m = match mappings.get(&(b, start)) {
                        Some(&m) => m,
                        None => {
                            out.mappings.push(Mapping {
                                path: binary.path.to_string_lossy().into_owned(),
                                start,
                                // No segment known (the file is gone): the
                                // whole address space, as pprof takes it.
                                limit: if segment.is_some() {
                                    start.saturating_add(size)
                                } else {
                                    u64::MAX
                                },
                                offset,
                                build_id: binary.build_id(),
                                // Said below, from the lines found.
                                ..Mapping::default()
                            });
                            binary_of.push(Some(b));
                            mappings.insert((b, start), out.mappings.len() - 1);
                            out.mappings.len() - 1
                        }
                    };
                    let lines = binary
                        .source_frames(svma, names.inline)
                        .into_iter()
                        .map(|s| Line {
                            function: function(
                                &mut out,
                                Function {
                                    name: clean(&s.name),
                                    system_name: s.system_name.to_string(),
                                    filename: s.file.as_deref().unwrap_or("").to_string(),
                                },
                            ),
                            line: u64::from(s.line),
                        })
                        .collect();
                    Location {
                        mapping: Some(m),
                        address: svma,
                        lines,
                    }
                }
                Frame::Unknown => pseudo(&mut out, &mut function, "[unknown]"),
            };
            out.locations.push(location);
        }
        // What the mappings' locations hold, now that they are named.
        for m in &mut out.mappings {
            (m.has_lines, m.has_inline_frames) = (false, false);
        }
        for location in &out.locations {
            if let Some(m) = location.mapping {
                let lines = location
                    .lines
                    .iter()
                    .any(|l| l.line > 0 && !out.functions[l.function].filename.is_empty());
                out.mappings[m].has_lines |= lines;
                out.mappings[m].has_inline_frames |= location.lines.len() > 1;
            }
        }
        // Threads by name id, and the pseudo-frames of waits by name.
        let mut threads: HashMap<u32, usize> = HashMap::default();
        let mut leaves: HashMap<String, usize> = HashMap::default();
        let mut samples: HashMap<(Vec<usize>, usize, i32, i32, bool), u64> = HashMap::default();
        for ((context, id), count) in self.counts {
            if count == 0 {
                continue;
            }
            let thread = *threads.entry(context.thread).or_insert_with(|| {
                out.threads.push((names.thread)(context.thread).to_string());
                out.threads.len() - 1
            });
            let mut locations: Vec<usize> = Vec::new();
            let waited = (names.waited)(id);
            if let Some(leaf) = waited.clone() {
                let l = match leaves.get(&leaf) {
                    Some(&l) => l,
                    None => {
                        let location = pseudo(&mut out, &mut function, &leaf);
                        out.locations.push(location);
                        leaves.insert(leaf, out.locations.len() - 1);
                        out.locations.len() - 1
                    }
                };
                locations.push(l);
            }
            if let Some(stack) = context.stack {
                let frames = &self.stack_list[stack as usize];
                locations.extend(frames.iter().map(|&f| f as usize));
            }
            let key = (
                locations,
                thread,
                context.pid,
                context.tid,
                waited.is_some(),
            );
            *samples.entry(key).or_default() += count;
        }
        out.samples = samples
            .into_iter()
            .map(
                |((locations, thread, pid, tid, waiting), count)| StackSample {
                    locations,
                    thread,
                    tid: i64::from(tid),
                    pid: i64::from(pid),
                    count,
                    waiting,
                },
            )
            .collect();
        // The same order whatever the hash map's: by thread, then stack.
        out.samples
            .sort_unstable_by(|a, b| (a.tid, &a.locations).cmp(&(b.tid, &b.locations)));
        let program = binary_of
            .iter()
            .position(|&b| b.is_some() && b == names.program);
        main_binary_first(&mut out, program);
        out
    }
}

/// Puts the program's own binary first, where pprof looks for it ("File:"
/// in its reports, the binary of `-disasm`): mapping `program` if known,
/// else the file of the root-most frame of the most samples of processes'
/// main threads (their `_start`).
fn main_binary_first(out: &mut AddressStacks, program: Option<usize>) {
    let mut weight = vec![0u64; out.mappings.len()];
    for s in out.samples.iter().filter(|s| s.tid == s.pid) {
        let root = s
            .locations
            .iter()
            .rev()
            .find_map(|&l| out.locations[l].mapping);
        if let Some(m) = root {
            weight[m] += s.count;
        }
    }
    let heaviest = (0..weight.len()).max_by_key(|&m| (weight[m], std::cmp::Reverse(m)));
    let Some(main) = program.or(heaviest) else {
        return;
    };
    if main == 0 {
        return;
    }
    // Mapping `main` moves to 0; those before it move up by one.
    let moved = |m: usize| match m {
        _ if m == main => 0,
        _ if m < main => m + 1,
        _ => m,
    };
    let mapping = out.mappings.remove(main);
    out.mappings.insert(0, mapping);
    for location in &mut out.locations {
        location.mapping = location.mapping.map(moved);
    }
}

/// A location of no file: one function, named `name`.
fn pseudo(
    out: &mut AddressStacks,
    function: &mut impl FnMut(&mut AddressStacks, Function) -> usize,
    name: &str,
) -> Location {
    let f = function(
        out,
        Function {
            name: name.to_string(),
            system_name: name.to_string(),
            filename: String::new(),
        },
    );
    Location {
        mapping: None,
        address: 0,
        lines: vec![Line {
            function: f,
            line: 0,
        }],
    }
}

/// A name as the folded stacks write it (`;` and line breaks replaced), so
/// that both name a function alike.
fn clean(name: &str) -> String {
    name.replace(';', "\u{ff1b}").replace(['\n', '\r'], " ")
}
