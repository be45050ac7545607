//! From a recording to folded stacks, in-process: records read by
//! `perf_data`, stacks walked by `unwind`, frames named by `symbols`. Memory
//! grows with distinct stacks and binaries, never with the number of samples.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Result;
use foldhash::HashMap;

use super::addresses::{self, Context};
use super::off_cpu::{off_cpu_reason, OffCpu, OFF_CPU, PREEMPTED, STACK_LOST};
use crate::collect::perf_data::{self, Record, Sample};
use crate::collect::unwind::{Arch, Frame, Processes};
use crate::model::folded::Folded;
use crate::model::seen::Seen;
use crate::model::timeline::TimelineBuilder;
use crate::symbolize::{Binary, Kernel};

/// How samples become stacks.
#[derive(Debug, Clone, Copy, Default)]
pub struct StackOptions {
    /// Name functions inlined into others as frames of their own.
    pub inline: bool,
    /// Root frames name the thread (`name-pid/tid`) rather than the thread name.
    pub per_thread: bool,
    /// Keep time order (for flame charts): one line per run of identical
    /// consecutive samples instead of one per distinct stack.
    pub time_order: bool,
    /// Whether waiting is drawn too (`--off-cpu`): counts are then
    /// nanoseconds, not samples.
    pub off_cpu: OffCpu,
    /// Also keep the stacks by address, with source lines, for pprof
    /// (`Folded::addresses`): costs memory and time, so only when asked for.
    pub addresses: bool,
}

/// A thread off the CPU since `since`, with the stack it left with.
struct Waiting {
    key: Box<[u32]>,
    since: u64,
    /// Preempted while runnable, rather than blocked.
    preempted: bool,
    /// The switch-out record that follows the sample was seen.
    seen_out: bool,
}

/// A sample taken in the kernel whose user frames are all unknown: the
/// kernel is working for a user context we cannot place, most often inside
/// `execve`, where the registers still point into the image being replaced
/// and its mappings are gone. The kernel's frames alone say what ran;
/// `[unknown]` frames above them would say nothing. (A sample taken in user
/// code, in JIT code say, keeps its `[unknown]`.)
fn drop_unknown_callers_of_kernel_work(frames: &mut Vec<Frame>) {
    let is_kernel = |f: &Frame| matches!(f, Frame::Kernel(_));
    let (kernel, user): (Vec<&Frame>, Vec<&Frame>) = frames.iter().partition(|f| is_kernel(f));
    if !kernel.is_empty() && !user.is_empty() && user.iter().all(|f| **f == Frame::Unknown) {
        frames.retain(is_kernel);
    }
}

/// What post-processing needs before the first sample, read while the
/// program is recorded: kernel symbols, and the profiled binary with its
/// debug info.
pub struct Prefetch {
    kernel: std::thread::JoinHandle<Kernel>,
    binaries: Vec<(PathBuf, Binary)>,
    root: PathBuf,
}

impl Prefetch {
    /// Starts reading, on other threads, what naming the frames of
    /// `binaries` will need.
    pub fn start(binaries: &[PathBuf]) -> Prefetch {
        Prefetch {
            kernel: std::thread::spawn(|| Kernel::load(Path::new("/proc/kallsyms"))),
            binaries: binaries
                .iter()
                .filter_map(|p| std::fs::canonicalize(p).ok())
                .map(|p| {
                    let binary = Binary::open(&p);
                    (p, binary)
                })
                .collect(),
            root: PathBuf::from("/"),
        }
    }

    /// For a recording made on another machine whose files are under
    /// `root` at their paths (as perf's `--symfs`): binaries and their debug
    /// files are read from there, kernel symbols from `root/proc/kallsyms`.
    pub fn of_machine_in(root: &Path) -> Prefetch {
        let kallsyms = root.join("proc/kallsyms");
        Prefetch {
            kernel: std::thread::spawn(move || Kernel::load_given(&kallsyms)),
            binaries: Vec::new(),
            root: root.to_path_buf(),
        }
    }
}

/// Reads the recording in `path` into folded stacks; `prefetch`, if given,
/// holds what was read ahead.
pub fn from_file(path: &Path, opts: StackOptions, prefetch: Option<Prefetch>) -> Result<Folded> {
    let mut collector = Collector::new(opts, prefetch);
    let outcome = perf_data::read_file(path, |r| collector.record(r))?;
    Ok(collector.finish(outcome.truncated))
}

/// Reads perf's pipe format from `input` (`perf record -o -`) into folded
/// stacks, as it streams; `prefetch`, if given, holds what was read ahead.
/// `seen`, if given, counts the samples as they are read (for the progress
/// line, and `--off-cpu`'s cap).
pub fn from_pipe<R: Read>(
    input: R,
    opts: StackOptions,
    prefetch: Option<Prefetch>,
    seen: Option<&Seen>,
) -> Result<Folded> {
    let mut collector = Collector::new(opts, prefetch);
    collector.seen = seen;
    let outcome = perf_data::read_pipe(input, |r| collector.record(r))?;
    Ok(collector.finish(outcome.truncated))
}

/// Frame names, each stored once.
#[derive(Default)]
struct Names {
    all: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

impl Names {
    fn id(&mut self, name: &Arc<str>) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.all.len() as u32;
        self.all.push(name.clone());
        self.ids.insert(name.clone(), id);
        id
    }

    fn id_of(&mut self, name: &str) -> u32 {
        match self.ids.get(name) {
            Some(&id) => id,
            None => self.id(&Arc::from(name)),
        }
    }
}

struct Collector<'a> {
    opts: StackOptions,
    /// Counts samples as they are read, for the progress line.
    seen: Option<&'a Seen>,
    procs: Processes,
    /// `/proc/kallsyms`, read on the other core while samples are read;
    /// kernel frames are named once it is in, at the end.
    kernel: Option<std::thread::JoinHandle<Kernel>>,
    /// A name id per kernel address, to be named at the end.
    kernel_frames: HashMap<u64, u32>,
    /// Thread names by tid.
    comms: HashMap<i32, u32>,
    names: Names,
    /// Names of each address already seen, root-most first.
    frame_names: HashMap<Frame, Box<[u32]>>,
    /// Each distinct stack (by name ids), with its id: its index in `counts`,
    /// and the timeline's.
    stacks: HashMap<Box<[u32]>, u32>,
    /// Samples of each stack, by id.
    counts: Vec<u64>,
    /// The stack id of each call chain already seen, for samples that carry
    /// no stack copy: `(pid, root frame's id, ip)` then the chain, with its
    /// address stack's id (for pprof, else 0). Cleared when a mapping
    /// changes, since the same addresses may then name other code.
    chains: HashMap<Box<[u64]>, (u32, u32)>,
    /// What `chains` holds, in words (its chains, and each entry's overhead).
    chain_words: usize,
    chain: Vec<u64>,
    /// Weight per (time, root frame's id, stack id), for report.html.
    timeline: TimelineBuilder,
    /// Time order: runs of samples of one stack (by id).
    runs: Vec<(u32, u64)>,
    samples: u64,
    lost: u64,
    frames: Vec<Frame>,
    key: Vec<u32>,
    /// The recording's architecture, when we cannot unwind its stack copies
    /// (its registers would be misread): only call chains are used.
    foreign_arch: Option<String>,
    /// `--off-cpu`: threads off the CPU now, by tid.
    waiting: HashMap<i32, Waiting>,
    /// The latest time seen: where waits still open at the end stop.
    last_time: u64,
    /// A switch-out was sampled: perf's sampling is on.
    switches_sampled: bool,
    /// `--off-cpu`: the last stack taken at a switch-out, by tid, for the
    /// switches without a stack of their own.
    taken: HashMap<i32, Box<[u32]>>,
    /// Switch-outs seen once perf's sampling was on, and those of them
    /// charged to their thread's previous stack (above the cap).
    switch_outs: u64,
    /// Switch records read (out and in), to weigh what perf lost against.
    switches: u64,
    charged: u64,
    /// The stacks by address, for pprof (`StackOptions::addresses`).
    addresses: Option<addresses::Builder>,
    /// The profiled program was read ahead: it is binary 0.
    program_read_ahead: bool,
}

impl Collector<'_> {
    fn new(opts: StackOptions, prefetch: Option<Prefetch>) -> Self {
        let prefetch = prefetch.unwrap_or_else(|| Prefetch::start(&[]));
        let mut procs = Processes::new();
        let program_read_ahead = !prefetch.binaries.is_empty();
        procs.set_root(&prefetch.root);
        for (path, binary) in prefetch.binaries {
            procs.add_binary(path.as_os_str().as_encoded_bytes(), binary);
        }
        Collector {
            opts,
            seen: None,
            procs,
            kernel: Some(prefetch.kernel),
            kernel_frames: HashMap::default(),
            comms: HashMap::default(),
            names: Names::default(),
            frame_names: HashMap::default(),
            stacks: HashMap::default(),
            counts: Vec::new(),
            chains: HashMap::default(),
            chain_words: 0,
            chain: Vec::new(),
            timeline: TimelineBuilder::default(),
            runs: Vec::new(),
            samples: 0,
            lost: 0,
            frames: Vec::new(),
            key: Vec::new(),
            foreign_arch: None,
            waiting: HashMap::default(),
            last_time: 0,
            switches_sampled: false,
            taken: HashMap::default(),
            switch_outs: 0,
            switches: 0,
            charged: 0,
            addresses: opts.addresses.then(addresses::Builder::default),
            program_read_ahead,
        }
    }

    fn record(&mut self, record: Record) {
        self.track_waits(&record);
        match record {
            Record::Arch(name) => match Arch::from_perf(name) {
                Some(arch) => self.procs.set_arch(arch),
                None => self.foreign_arch = Some(name.to_string()),
            },
            Record::Comm {
                pid,
                tid,
                name,
                exec,
            } => {
                if exec {
                    self.procs.exec(pid);
                    self.forget_chains();
                    // Another program now: its waits without a stack are
                    // not the old program's.
                    self.taken.remove(&tid);
                    if let Some(a) = self.addresses.as_mut() {
                        a.exec(tid);
                    }
                }
                let name = clean(&String::from_utf8_lossy(&name));
                let id = self.names.id_of(&name);
                self.comms.insert(tid, id);
            }
            Record::Fork { pid, ppid } => {
                // A new thread (pid == ppid) changes nothing.
                if self.procs.fork(pid, ppid) {
                    self.forget_chains();
                }
            }
            Record::Mmap {
                pid,
                start,
                len,
                pgoff,
                path,
            } => {
                if self.procs.mmap(pid, start, len, pgoff, &path) {
                    self.forget_chains();
                }
            }
            Record::Sample(sample) => self.sample(sample),
            Record::Lost(n) => self.lost += n,
            // Its last switch off the CPU was no wait.
            Record::Exit { tid } => {
                self.waiting.remove(&tid);
                self.taken.remove(&tid);
            }
            Record::Switch {
                pid,
                tid,
                time,
                out,
                preempted,
            } => {
                self.last_time = self.last_time.max(time);
                self.switches += 1;
                if self.opts.off_cpu == OffCpu::No {
                    return;
                }
                if out {
                    if self.switches_sampled {
                        self.switch_outs += 1;
                    }
                    match self.waiting.get_mut(&tid) {
                        // Right after the switch-out sample: how the thread left.
                        Some(w) if w.since <= time && !w.seen_out => {
                            w.preempted = preempted;
                            w.seen_out = true;
                        }
                        // Before the first switch was sampled, the sampling
                        // was not on yet (perf enables it when the program
                        // starts): not a wait of the program's.
                        _ if !self.switches_sampled => {}
                        // No stack of its own: the cap had paused the
                        // sampling of switches, or perf lost the sample. The
                        // wait is charged to the stack its thread left with
                        // before (a thread switching that often does it in a
                        // loop), or to the thread alone. Its time counts.
                        _ => {
                            let key = match self.taken.get(&tid) {
                                Some(key) => {
                                    self.charged += 1;
                                    key.clone()
                                }
                                _ => {
                                    let root = self.root(pid, tid);
                                    [root, self.names.id_of(STACK_LOST)].into()
                                }
                            };
                            self.waiting.insert(
                                tid,
                                Waiting {
                                    key,
                                    since: time,
                                    preempted,
                                    seen_out: true,
                                },
                            );
                        }
                    }
                } else if let Some(w) = self.waiting.remove(&tid) {
                    self.waited(w, time);
                }
            }
        }
    }

    fn sample(&mut self, s: Sample) {
        self.samples += 1;
        if let Some(seen) = self.seen {
            seen.samples.fetch_add(1, Ordering::Relaxed);
            if s.switch_out {
                seen.switch_stacks.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(time) = s.time {
            self.last_time = self.last_time.max(time);
            self.timeline.begin(time);
        }
        let root = self.root(s.pid, s.tid);
        if s.switch_out {
            // A thread leaving the CPU: weighed when it comes back.
            self.switches_sampled = true;
            if let (OffCpu::Also | OffCpu::Only, Some(since)) = (self.opts.off_cpu, s.time) {
                self.stack_key(root, &s);
                let key: Box<[u32]> = self.key.as_slice().into();
                self.taken.insert(s.tid, key.clone());
                self.address_context(&s, None, true);
                self.waiting.insert(
                    s.tid,
                    Waiting {
                        key,
                        since,
                        preempted: false,
                        seen_out: false,
                    },
                );
            }
            return;
        }
        let weight = match self.opts.off_cpu {
            OffCpu::No => 1,
            OffCpu::Also => s.period.unwrap_or(1),
            OffCpu::Only => return,
        };
        // A sample without a stack copy is its call chain: one seen before
        // is the same stack.
        let id = if s.user.is_none() {
            let mut chain = std::mem::take(&mut self.chain);
            chain.clear();
            chain.extend([s.pid as u64, u64::from(root), s.ip]);
            chain.extend_from_slice(s.callchain);
            let id = match self.chains.get(chain.as_slice()) {
                Some(&(id, stack)) => {
                    self.address_context(&s, Some(stack), false);
                    id
                }
                None => {
                    let id = self.stack_id(root, &s);
                    let stack = self.address_context(&s, None, false);
                    let cost = chain.len() + CHAIN_OVERHEAD;
                    if self.chain_words + cost > MAX_CACHED_WORDS {
                        self.forget_chains();
                    }
                    self.chain_words += cost;
                    self.chains.insert(chain.as_slice().into(), (id, stack));
                    id
                }
            };
            self.chain = chain;
            id
        } else {
            let id = self.stack_id(root, &s);
            self.address_context(&s, None, false);
            id
        };
        self.count(id, weight);
        // The thread is the root frame: its name (with pid/tid when asked).
        self.timeline.add_weight(s.time, root, id, weight);
    }

    /// The id of the sample's stack, its frames walked and named.
    /// Adds `weight` to stack `id` (and to the run, in time order).
    fn count(&mut self, id: u32, weight: u64) {
        self.counts[id as usize] += weight;
        if let Some(a) = self.addresses.as_mut() {
            a.count(id, weight);
        }
        if self.opts.time_order {
            match self.runs.last_mut() {
                Some((stack, count)) if *stack == id => *count += weight,
                _ => self.runs.push((id, weight)),
            }
        }
    }

    /// A wait ended at `until`: its stack, with why as the leaf, weighs the
    /// nanoseconds it lasted.
    fn waited(&mut self, w: Waiting, until: u64) {
        let lost = self.names.ids.get(STACK_LOST).copied();
        let mut key = w.key.into_vec();
        if w.preempted {
            key.push(self.names.id_of(PREEMPTED));
        } else if key.last().copied() != lost {
            key.push(self.names.id_of(OFF_CPU));
        }
        let id = self.intern(&key);
        self.count(id, until.saturating_sub(w.since));
        // On the timeline, spread over the cells it spans, on its thread.
        self.timeline.add_span(w.since, until, key[0], id);
    }

    /// The id of stack `key`, new if never seen.
    fn intern(&mut self, key: &[u32]) -> u32 {
        match self.stacks.get(key) {
            Some(&id) => id,
            None => {
                let id = self.counts.len() as u32;
                self.stacks.insert(key.into(), id);
                self.counts.push(0);
                id
            }
        }
    }

    fn stack_id(&mut self, root: u32, s: &Sample) -> u32 {
        self.stack_key(root, s);
        let key = std::mem::take(&mut self.key);
        let id = self.intern(&key);
        self.key = key;
        id
    }

    /// The sample's stack as name ids, root first, into `self.key`.
    fn stack_key(&mut self, root: u32, s: &Sample) {
        let mut frames = std::mem::take(&mut self.frames);
        let user = match self.foreign_arch {
            Some(_) => None,
            None => s.user.as_ref().map(|(regs, stack)| (regs, &stack[..])),
        };
        self.procs
            .frames(s.pid, s.ip, s.callchain, user, &mut frames);
        drop_unknown_callers_of_kernel_work(&mut frames);
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        key.push(root);
        for &frame in frames.iter().rev() {
            if let Frame::Kernel(addr) = frame {
                let next = self.names.all.len() as u32;
                let id = *self.kernel_frames.entry(addr).or_insert(next);
                if id == next {
                    self.names.all.push(Arc::from(KERNEL));
                }
                key.push(id);
                continue;
            }
            if let Some(ids) = self.frame_names.get(&frame) {
                key.extend_from_slice(ids);
                continue;
            }
            let ids: Box<[u32]> = match frame {
                Frame::Kernel(_) => unreachable!("kernel frames are named at the end"),
                Frame::User(binary, svma) => {
                    let list = self.procs.binaries[binary].frames(svma, self.opts.inline);
                    list.iter()
                        .map(|n| {
                            if n.contains([';', '\n', '\r']) {
                                self.names.id_of(&clean(n))
                            } else {
                                self.names.id(n)
                            }
                        })
                        .collect()
                }
                Frame::Unknown => Box::new([self.names.id_of("[unknown]")]),
            };
            key.extend_from_slice(&ids);
            self.frame_names.insert(frame, ids);
        }
        self.frames = frames;
        self.key = key;
    }

    /// For pprof: address stack `cached`, else that of the frames just
    /// walked (`self.frames`), is sample `s`'s, or with `left`, the stack its
    /// thread left the CPU with. Returns the stack's id (0 when not keeping
    /// addresses, which costs nothing then).
    fn address_context(&mut self, s: &Sample, cached: Option<u32>, left: bool) -> u32 {
        if self.addresses.is_none() {
            return 0;
        }
        let thread = self.thread(s.pid, s.tid);
        let Some(a) = self.addresses.as_mut() else {
            return 0;
        };
        let stack = cached.unwrap_or_else(|| a.stack(&self.frames));
        let context = Context {
            stack: Some(stack),
            pid: s.pid,
            tid: s.tid,
            thread,
        };
        match left {
            true => a.left(context),
            false => a.set(context),
        }
        stack
    }

    /// For pprof, with `--off-cpu`: which thread's wait the switch records
    /// end, and who left without a stack (perf lost it).
    fn track_waits(&mut self, record: &Record) {
        if self.addresses.is_none() || self.opts.off_cpu == OffCpu::No {
            return;
        }
        match *record {
            Record::Switch { pid, tid, out, .. } => {
                let thread = self.thread(pid, tid);
                if let Some(a) = self.addresses.as_mut() {
                    match out {
                        true => a.left_without_stack(pid, tid, thread),
                        false => a.back(tid),
                    }
                }
            }
            Record::Exit { tid } => {
                if let Some(a) = self.addresses.as_mut() {
                    a.exited(tid);
                }
            }
            _ => {}
        }
    }

    /// Empties the call-chain cache: a mapping changed, or it is full.
    fn forget_chains(&mut self) {
        self.chains.clear();
        self.chain_words = 0;
    }

    /// The thread's name, as a name id.
    fn thread(&mut self, pid: i32, tid: i32) -> u32 {
        match self.comms.get(&tid).or_else(|| self.comms.get(&pid)) {
            Some(&id) => id,
            None => self.names.id_of("[unknown]"),
        }
    }

    /// The root frame: the thread's name (with pid/tid when asked).
    fn root(&mut self, pid: i32, tid: i32) -> u32 {
        let comm = self
            .comms
            .get(&tid)
            .or_else(|| self.comms.get(&pid))
            .copied();
        let name = comm.map_or_else(
            || "[unknown]".to_string(),
            |id| self.names.all[id as usize].to_string(),
        );
        if self.opts.per_thread {
            return self.names.id_of(&format!("{name}-{pid}/{tid}"));
        }
        match comm {
            Some(id) => id,
            None => self.names.id_of(&name),
        }
    }

    fn finish(mut self, truncated: Option<String>) -> Folded {
        // Threads still waiting when the recording ended waited until then.
        let mut open: Vec<(i32, Waiting)> = std::mem::take(&mut self.waiting).into_iter().collect();
        open.sort_unstable_by_key(|(tid, _)| *tid);
        for (tid, w) in open {
            if let Some(a) = self.addresses.as_mut() {
                a.back(tid);
            }
            let end = self.last_time;
            self.waited(w, end);
        }
        let mut warnings = Vec::new();
        if self.lost > 0 {
            warnings.push(lost_warning(self.lost, self.samples + self.switches));
        }
        if self.charged > 0 {
            warnings.push(charged_warning(self.charged, self.switch_outs));
        }
        if let Some(why) = truncated {
            warnings.push(format!(
                "the recording ends in the middle of a record ({why}): \
                 the {} samples before it were kept",
                self.samples
            ));
        }
        if let Some(arch) = &self.foreign_arch {
            warnings.push(format!(
                "this recording was made on {arch}, whose stack copies we cannot unwind: \
                 only the kernel's call chains were used; record with --call-graph fp"
            ));
        }
        let mut kernel = self
            .kernel
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        for (&addr, &id) in &self.kernel_frames {
            self.names.all[id as usize] = kernel.name(addr);
        }
        let kernel_names_hidden = !self.kernel_frames.is_empty() && !kernel.named();
        // Kernel addresses in one function, and all of them when names are
        // hidden, read the same now: merge what reads the same.
        let mut lines = vec![String::new(); self.counts.len()];
        let waited = self.names.ids.get(OFF_CPU).copied();
        for (stack, &id) in &self.stacks {
            lines[id as usize] = match stack.split_last() {
                // Why it waited, now that kernel frames have names.
                Some((&leaf, frames)) if Some(leaf) == waited => {
                    let names = frames.iter().map(|&f| &*self.names.all[f as usize]);
                    format!("{};{}", join(&self.names, frames), off_cpu_reason(names))
                }
                _ => join(&self.names, stack),
            };
        }
        // Lines with their counts, then written into one buffer: these lines
        // are the largest thing held (kilobytes each for deep Rust stacks).
        let counted: Vec<(&str, u64)> = if self.opts.time_order {
            let mut runs: Vec<(&str, u64)> = Vec::new();
            for &(id, count) in &self.runs {
                let line = &lines[id as usize];
                match runs.last_mut() {
                    Some((last, total)) if last == line => *total += count,
                    _ => runs.push((line, count)),
                }
            }
            runs
        } else {
            let mut merged: HashMap<&str, u64> = HashMap::default();
            for (id, &count) in self.counts.iter().enumerate().filter(|(_, &c)| c > 0) {
                *merged.entry(&lines[id]).or_default() += count;
            }
            let mut merged: Vec<(&str, u64)> = merged.into_iter().collect();
            merged.sort_unstable();
            merged
        };
        let size = counted.iter().map(|(line, _)| line.len() + 22).sum();
        let mut text = String::with_capacity(size);
        for (line, count) in counted {
            use std::fmt::Write as _;
            let _ = writeln!(text, "{line} {count}");
        }
        let text = text.into_bytes();
        let addresses = self.addresses.take().map(|a| {
            let all = &self.names.all;
            let names = addresses::Naming {
                thread: &|id| all[id as usize].clone(),
                waited: &|id| {
                    let leaf = lines[id as usize].rsplit(';').next()?;
                    leaf.starts_with("[off-cpu").then(|| leaf.to_string())
                },
                inline: self.opts.inline,
                program: self.program_read_ahead.then_some(0),
            };
            a.finish(&mut self.procs, &mut kernel, &names)
        });
        if self.timeline.overflowed() {
            warnings.push(format!(
                "report.html has no heatmap: the run made more than {} counts of (20 ms, \
                 thread, stack), too many for the page (--duration, or fewer threads); the \
                 flamegraph and the other files are whole",
                crate::model::timeline::MAX_ENTRIES
            ));
        }
        let names = &self.names;
        let timeline = self
            .timeline
            .finish(|id| names.all[id as usize].to_string(), lines);
        Folded {
            text,
            warnings,
            kernel_names_hidden,
            records_lost: self.lost,
            timeline,
            addresses,
        }
    }
}

/// What is said of `lost` records next to `samples` kept: below 1 % they
/// change nothing worth acting on (a busy machine drops a few), so no advice.
/// Switches off the CPU without a stack of their own: how many, and where
/// they are.
fn charged_warning(charged: u64, switch_outs: u64) -> String {
    format!(
        "--off-cpu: {charged} of {switch_outs} waits ({share:.0}%) have no stack of their own \
         (above {cap} switches a second their stacks are paused, or perf dropped them): each is \
         drawn on the stack its thread left the CPU with before; their time is exact",
        cap = crate::defaults::OFF_CPU_STACKS_PER_SECOND,
        share = charged as f64 * 100.0 / switch_outs.max(1) as f64,
    )
}

fn lost_warning(lost: u64, samples: u64) -> String {
    let share = lost as f64 * 100.0 / (lost + samples).max(1) as f64;
    if share < 1.0 {
        format!("perf lost {lost} records, {share:.1}% of them: too few to change the picture")
    } else {
        format!(
            "perf lost {lost} records, {share:.0}% of them (its buffer was full): lower --freq, \
             or use --call-graph fp"
        )
    }
}

/// Words (8 bytes) the call-chain cache holds at most, 8 MiB: past that it
/// starts over, so that memory stays bounded when nearly every chain is new
/// (a chain can hold thousands of addresses in a crafted recording).
const MAX_CACHED_WORDS: usize = 1 << 20;

/// A cache entry's cost beyond its chain, in words: the map's slot and the
/// allocation's header.
const CHAIN_OVERHEAD: usize = 4;

/// Kernel frames, when the kernel hides its symbols.
const KERNEL: &str = "[kernel]";

/// A stack as a folded line (without its count); a run of `[kernel]` frames
/// is one frame.
fn join(names: &Names, stack: &[u32]) -> String {
    let size = stack
        .iter()
        .map(|&id| names.all[id as usize].len() + 1)
        .sum();
    let mut line = String::with_capacity(size);
    let mut previous: Option<&str> = None;
    for &id in stack {
        let name = &*names.all[id as usize];
        if name == KERNEL && previous == Some(KERNEL) {
            continue;
        }
        if previous.is_some() {
            line.push(';');
        }
        line.push_str(name);
        previous = Some(name);
    }
    line
}

/// A name that fits in one frame of a folded line: `;` separates frames and
/// a line break ends the line, so both are replaced.
fn clean(name: &str) -> String {
    name.replace(';', "\u{ff1b}").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_lost_records_are_noise_not_advice() {
        let few = lost_warning(2, 2_795);
        assert!(
            few.contains("lost 2 records") && !few.contains("--freq"),
            "{few}"
        );
        let many = lost_warning(300, 2_700);
        assert!(
            many.contains("10%") && many.contains("lower --freq"),
            "{many}"
        );
    }
    use crate::model::counts::is_thread_root;
    use crate::symbolize::demangle;

    #[test]
    fn kernel_work_for_an_unknown_user_context_shows_the_kernel_alone() {
        // Inside execve: the kernel's frames, then the replaced image's address.
        let mut exec = vec![Frame::Kernel(1), Frame::Kernel(2), Frame::Unknown];
        drop_unknown_callers_of_kernel_work(&mut exec);
        assert_eq!(exec, [Frame::Kernel(1), Frame::Kernel(2)]);
        // A known caller keeps the unknown ones: they are where unwinding broke.
        let mut torn = vec![Frame::Kernel(1), Frame::Unknown, Frame::User(0, 5)];
        drop_unknown_callers_of_kernel_work(&mut torn);
        assert_eq!(torn.len(), 3);
        // JIT code, sampled in user space: its [unknown] is all there is.
        let mut jit = vec![Frame::Unknown];
        drop_unknown_callers_of_kernel_work(&mut jit);
        assert_eq!(jit, [Frame::Unknown]);
    }

    #[test]
    fn thread_roots_are_recognised() {
        for root in ["_start", "clone3", "start_thread", "demo::main", "main"] {
            assert!(is_thread_root(root), "{root}");
        }
        for other in ["malloc", "demo::run", "mainly"] {
            assert!(!is_thread_root(other), "{other}");
        }
    }

    #[test]
    fn hidden_kernel_frames_are_one_frame() {
        let mut names = Names::default();
        let (main, read) = (names.id_of("main"), names.id_of("read"));
        names.all.push(Arc::from(KERNEL));
        names.all.push(Arc::from(KERNEL));
        let (k1, k2) = (2, 3);
        assert_eq!(join(&names, &[main, read, k1, k2]), "main;read;[kernel]");
        names.all[k1 as usize] = Arc::from("do_syscall_64_[k]");
        assert_eq!(
            join(&names, &[main, read, k1, k2]),
            "main;read;do_syscall_64_[k];[kernel]"
        );
    }

    /// Records a frame-pointer sample of `pid` at `ip` (its only frame).
    fn fp_sample(collector: &mut Collector, pid: i32, ip: u64) {
        use linux_perf_data::linux_perf_event_reader::constants::PERF_CONTEXT_USER;
        collector.record(Record::Sample(Sample {
            pid,
            tid: pid,
            time: Some(ip),
            ip,
            callchain: &[PERF_CONTEXT_USER, ip],
            user: None,
            period: None,
            switch_out: false,
        }));
    }

    #[test]
    fn a_wait_weighs_the_time_until_the_thread_runs_again() {
        use linux_perf_data::linux_perf_event_reader::constants::PERF_CONTEXT_USER;
        let opts = StackOptions {
            off_cpu: OffCpu::Also,
            ..StackOptions::default()
        };
        let nowhere = tempfile::tempdir().unwrap();
        let mut c = Collector::new(opts, Some(Prefetch::of_machine_in(nowhere.path())));
        let sample = |tid: i32, time: u64, switch_out: bool| {
            Record::Sample(Sample {
                pid: 1,
                tid,
                time: Some(time),
                ip: 0x1000,
                callchain: &[PERF_CONTEXT_USER, 0x1000],
                user: None,
                period: Some(if switch_out { 1 } else { 1_000_000 }),
                switch_out,
            })
        };
        let switch = |tid: i32, time: u64, out: bool, preempted: bool| Record::Switch {
            pid: 1,
            tid,
            time,
            out,
            preempted,
        };
        c.record(sample(1, 1_000, false));
        // Preempted at 2,000, back at 5,000.
        c.record(sample(1, 2_000, true));
        c.record(switch(1, 2_001, true, true));
        c.record(switch(1, 5_000, false, false));
        // Blocked at 6,000 and never back: until the last time seen.
        c.record(sample(1, 6_000, true));
        c.record(switch(1, 6_001, true, false));
        // Thread 3's switch-out sample was lost: its wait still counts.
        c.record(switch(3, 7_000, true, false));
        c.record(switch(3, 8_000, false, false));
        c.record(sample(2, 9_000, false));
        let folded = c.finish(None);
        let text = String::from_utf8(folded.text).unwrap();
        let weight = |leaf: &str| -> Vec<u64> {
            text.lines()
                .filter_map(crate::model::folded::parse_line)
                .filter(|(f, _)| f.ends_with(leaf))
                .map(|(_, n)| n)
                .collect()
        };
        assert_eq!(weight(PREEMPTED), [3_000], "{text}");
        assert_eq!(weight(";[off-cpu]"), [3_000], "{text}");
        assert_eq!(weight(STACK_LOST), [1_000], "{text}");
        assert_eq!(weight("[unknown]").iter().sum::<u64>(), 2_000_000, "{text}");
        assert!(folded.warnings.is_empty(), "{:?}", folded.warnings);

        // Sampling paused by the cap: thread 1's switch-outs without a
        // sample are drawn on the stack it left with before, and counted.
        let mut c = Collector::new(opts, Some(Prefetch::of_machine_in(nowhere.path())));
        c.record(sample(1, 1_000, true));
        c.record(switch(1, 1_001, true, false));
        c.record(switch(1, 2_000, false, false));
        for at in [3_000, 5_000] {
            c.record(switch(1, at, true, false));
            c.record(switch(1, at + 500, false, false));
        }
        let folded = c.finish(None);
        let text = String::from_utf8(folded.text).unwrap();
        assert_eq!(
            text.trim_end(),
            "[unknown];[unknown];[off-cpu] 2000",
            "{text}"
        );
        assert!(
            folded
                .warnings
                .iter()
                .any(|w| w.starts_with("--off-cpu: 2 of 3 waits")),
            "{:?}",
            folded.warnings
        );
        // After an exec the thread is another program: a wait without a
        // stack is not drawn on the old program's.
        let mut c = Collector::new(opts, Some(Prefetch::of_machine_in(nowhere.path())));
        c.record(sample(1, 1_000, true));
        c.record(switch(1, 1_001, true, false));
        c.record(switch(1, 2_000, false, false));
        c.record(Record::Comm {
            pid: 1,
            tid: 1,
            name: b"other"[..].into(),
            exec: true,
        });
        c.record(switch(1, 3_000, true, false));
        c.record(switch(1, 3_500, false, false));
        let text = String::from_utf8(c.finish(None).text).unwrap();
        assert!(text.contains(&format!("other;{STACK_LOST} 500")), "{text}");
        // Without --off-cpu, switch-outs are not counted and samples weigh 1.
        let mut c = Collector::new(
            StackOptions::default(),
            Some(Prefetch::of_machine_in(nowhere.path())),
        );
        c.record(sample(1, 1_000, false));
        c.record(sample(1, 2_000, true));
        c.record(switch(1, 5_000, false, false));
        let text = String::from_utf8(c.finish(None).text).unwrap();
        assert!(
            !text.contains("off-cpu") && text.trim_end().ends_with(" 1"),
            "{text}"
        );
    }

    /// For pprof with `--off-cpu`: each wait is counted on the stack its
    /// thread left with, why it waited as its leaf (a location of no file),
    /// a lost stack under the thread alone.
    #[test]
    fn address_stacks_weigh_waits_on_the_stack_they_left_with() {
        use linux_perf_data::linux_perf_event_reader::constants::PERF_CONTEXT_USER;
        let opts = StackOptions {
            off_cpu: OffCpu::Also,
            addresses: true,
            ..StackOptions::default()
        };
        let nowhere = tempfile::tempdir().unwrap();
        let mut c = Collector::new(opts, Some(Prefetch::of_machine_in(nowhere.path())));
        let sample = |tid: i32, time: u64, switch_out: bool| {
            Record::Sample(Sample {
                pid: 1,
                tid,
                time: Some(time),
                ip: 0x1000,
                callchain: &[PERF_CONTEXT_USER, 0x1000],
                user: None,
                period: Some(if switch_out { 1 } else { 1_000_000 }),
                switch_out,
            })
        };
        let switch = |tid: i32, time: u64, out: bool, preempted: bool| Record::Switch {
            pid: 1,
            tid,
            time,
            out,
            preempted,
        };
        c.record(sample(1, 1_000, false));
        c.record(sample(1, 2_000, true));
        c.record(switch(1, 2_001, true, true));
        c.record(switch(1, 5_000, false, false));
        c.record(sample(1, 6_000, true));
        c.record(switch(1, 6_001, true, false));
        c.record(switch(3, 7_000, true, false));
        c.record(switch(3, 8_000, false, false));
        c.record(sample(2, 9_000, false));
        let a = c.finish(None).addresses.unwrap();
        let name = |l: usize| a.functions[a.locations[l].lines[0].function].name.as_str();
        let mut got: Vec<(i64, Vec<&str>, u64, bool)> = a
            .samples
            .iter()
            .map(|s| {
                let names = s.locations.iter().map(|&l| name(l)).collect();
                (s.tid, names, s.count, s.waiting)
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                (1, vec!["[off-cpu: preempted]", "[unknown]"], 3_000, true),
                (1, vec!["[off-cpu]", "[unknown]"], 3_000, true),
                (1, vec!["[unknown]"], 1_000_000, false),
                (2, vec!["[unknown]"], 1_000_000, false),
                (3, vec!["[off-cpu: stack lost]"], 1_000, true),
            ]
        );
    }

    /// The address of one of this test binary's functions, as it states it.
    fn function_svma(exe: &Path, suffix: &str) -> u64 {
        use object::{Object, ObjectSymbol};
        let data = std::fs::read(exe).unwrap();
        let obj = object::File::parse(&data[..]).unwrap();
        let symbol = obj
            .symbols()
            .find(|s| s.name().is_ok_and(|n| demangle(n).ends_with(suffix)))
            .unwrap_or_else(|| panic!("{suffix} is in the symbol table"));
        symbol.address()
    }

    /// A call chain seen before names the same stack, until a new mapping
    /// puts other code at its addresses.
    #[test]
    fn a_repeated_call_chain_is_named_again_after_a_new_mapping() {
        let exe = std::env::current_exe().unwrap();
        let len = exe.metadata().unwrap().len();
        let (first, second) = (
            function_svma(&exe, "stacks::clean"),
            function_svma(&exe, "stacks::join"),
        );
        let mut collector = Collector::new(StackOptions::default(), None);
        let path = exe.as_os_str().as_encoded_bytes();
        let map = |collector: &mut Collector, start: u64| {
            collector.record(Record::Mmap {
                pid: 7,
                start,
                len,
                pgoff: 0,
                path: path.into(),
            })
        };
        let base = 0x5555_0000_0000;
        map(&mut collector, base);
        let ip = base + first;
        for _ in 0..3 {
            fp_sample(&mut collector, 7, ip);
        }
        // The same file mapped lower: `ip` is now in the other function.
        map(&mut collector, ip - second);
        fp_sample(&mut collector, 7, ip);
        let folded = collector.finish(None);
        let text = String::from_utf8(folded.text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("stacks::clean") && l.ends_with(" 3")),
            "{text}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("stacks::join") && l.ends_with(" 1")),
            "{text}"
        );
    }

    /// For pprof (`addresses`): the stacks by address, with their binary's
    /// mapping (its build id), source lines and thread names, one sample per
    /// distinct (stack, thread) however many samples there were.
    #[test]
    fn address_stacks_hold_mappings_lines_and_threads_aggregated() {
        use linux_perf_data::linux_perf_event_reader::constants::PERF_CONTEXT_USER;
        use object::{Object, ObjectSegment};
        let exe = std::env::current_exe().unwrap();
        let len = exe.metadata().unwrap().len();
        let (clean_at, join_at) = (
            function_svma(&exe, "stacks::clean"),
            function_svma(&exe, "stacks::join"),
        );
        let base = 0x5555_0000_0000;
        let run = |addresses: bool| {
            let opts = StackOptions {
                addresses,
                ..StackOptions::default()
            };
            let mut c = Collector::new(opts, None);
            for (tid, name) in [(7, &b"demo"[..]), (8, b"encoder")] {
                c.record(Record::Comm {
                    pid: 7,
                    tid,
                    name: name.into(),
                    exec: false,
                });
            }
            c.record(Record::Mmap {
                pid: 7,
                start: base,
                len,
                pgoff: 0,
                path: exe.as_os_str().as_encoded_bytes().into(),
            });
            // 300 samples: 2 addresses on 2 threads.
            for i in 0..300u64 {
                let ip = base + [clean_at, join_at][(i % 2) as usize];
                c.record(Record::Sample(Sample {
                    pid: 7,
                    tid: [7, 8][(i / 2 % 2) as usize],
                    time: Some(i),
                    ip,
                    callchain: &[PERF_CONTEXT_USER, ip],
                    user: None,
                    period: None,
                    switch_out: false,
                }));
            }
            c.finish(None)
        };
        assert!(run(false).addresses.is_none(), "kept only when asked for");
        let folded = run(true);
        let a = folded.addresses.expect("stacks by address");
        assert_eq!(a.samples.len(), 4, "{:#?}", a.samples);
        assert_eq!(a.samples.iter().map(|s| s.count).sum::<u64>(), 300);
        for s in &a.samples {
            assert_eq!(s.count, 75);
            let thread = &a.threads[s.thread];
            assert_eq!(thread, if s.tid == 7 { "demo" } else { "encoder" });
            assert_eq!(s.pid, 7);
            assert_eq!(s.locations.len(), 1, "no thread-root frame");
        }
        // The binary's mapping: its build id, its code segment in the
        // addresses it states, and the file offset there.
        let data = std::fs::read(&exe).unwrap();
        let obj = object::File::parse(&data[..]).unwrap();
        let build_id: String = obj
            .build_id()
            .unwrap()
            .map(|id| id.iter().map(|b| format!("{b:02x}")).collect())
            .unwrap_or_default();
        assert_eq!(a.mappings.len(), 1);
        let m = &a.mappings[0];
        assert_eq!(m.path, exe.to_string_lossy());
        assert_eq!(m.build_id.clone().unwrap_or_default(), build_id);
        let segment = obj
            .segments()
            .find(|seg| (seg.address()..seg.address() + seg.size()).contains(&clean_at))
            .unwrap();
        assert_eq!(
            (m.start, m.offset),
            (segment.address(), segment.file_range().0)
        );
        assert!(m.has_lines);
        // A location per address, named with file and line from the DWARF.
        let source = include_str!("stacks.rs");
        let line_of = |text: &str| {
            source
                .lines()
                .position(|l| l.starts_with(text))
                .map(|i| i as u64 + 1)
                .unwrap()
        };
        let mut seen = Vec::new();
        for l in &a.locations {
            assert_eq!(l.mapping, Some(0));
            assert!((m.start..m.limit).contains(&l.address));
            let line = l.lines.last().unwrap();
            let f = &a.functions[line.function];
            assert!(f.filename.ends_with("src/collect/stacks.rs"), "{f:?}");
            assert_eq!(demangle(&f.system_name), f.name, "{f:?}");
            assert_ne!(f.system_name, f.name, "mangled: {f:?}");
            let (at, text) = match f.name.rsplit("::").next() {
                Some("clean") => (clean_at, "fn clean("),
                Some("join") => (join_at, "fn join("),
                _ => panic!("{f:?}"),
            };
            assert_eq!(l.address, at);
            assert_eq!(line.line, line_of(text), "{f:?}");
            seen.push(at);
        }
        seen.sort_unstable();
        let mut expected = vec![clean_at, join_at];
        expected.sort_unstable();
        assert_eq!(seen, expected);
    }

    /// Memory stays bounded when every call chain is new: the cache starts
    /// over, and every sample is still counted.
    #[test]
    fn the_call_chain_cache_is_bounded() {
        let mut collector = Collector::new(StackOptions::default(), None);
        // pid, root, ip, then the chain's two words.
        let per_chain = 5 + CHAIN_OVERHEAD;
        let fit = (MAX_CACHED_WORDS / per_chain) as u64;
        let n = fit + 1000;
        for ip in 1..=n {
            fp_sample(&mut collector, 7, ip);
            assert!(collector.chain_words <= MAX_CACHED_WORDS);
        }
        assert_eq!(collector.chains.len(), 1000);
        let text = String::from_utf8(collector.finish(None).text).unwrap();
        assert_eq!(text, format!("[unknown];[unknown] {n}\n"));
    }

    /// A new thread (a fork within its process) keeps the cache: a pool's
    /// threads would otherwise empty it all the time.
    #[test]
    fn a_new_thread_keeps_the_call_chain_cache() {
        let mut collector = Collector::new(StackOptions::default(), None);
        collector.record(Record::Fork { pid: 7, ppid: 1 });
        fp_sample(&mut collector, 7, 1);
        assert_eq!(collector.chains.len(), 1);
        collector.record(Record::Fork { pid: 7, ppid: 7 });
        assert_eq!(collector.chains.len(), 1, "a thread changes no mapping");
        collector.record(Record::Fork { pid: 8, ppid: 7 });
        assert!(
            collector.chains.is_empty(),
            "a new process may map other code"
        );
    }

    #[test]
    fn names_with_separators_stay_one_frame() {
        assert_eq!(clean("<[u8; 4]>::len"), "<[u8\u{ff1b} 4]>::len");
        assert_eq!(clean("a\nb"), "a b");
    }

    /// Under --off-cpu the timeline weighs nanoseconds: a CPU sample its
    /// period in its cell, a wait spread over the cells it spans, on its
    /// thread; and the cells start at the first sample, even a switch-out.
    #[test]
    fn waits_are_on_the_timeline_in_the_cells_they_span() {
        use linux_perf_data::linux_perf_event_reader::constants::PERF_CONTEXT_USER;
        const MS: u64 = 1_000_000;
        let opts = StackOptions {
            off_cpu: OffCpu::Also,
            ..StackOptions::default()
        };
        let nowhere = tempfile::tempdir().unwrap();
        let mut c = Collector::new(opts, Some(Prefetch::of_machine_in(nowhere.path())));
        for (tid, name) in [(1, "main"), (2, "worker")] {
            c.record(Record::Comm {
                pid: 1,
                tid,
                name: name.as_bytes().into(),
                exec: false,
            });
        }
        let sample = |tid: i32, time: u64, switch_out: bool| {
            Record::Sample(Sample {
                pid: 1,
                tid,
                time: Some(time),
                ip: 0x1000,
                callchain: &[PERF_CONTEXT_USER, 0x1000],
                user: None,
                period: Some(if switch_out { 1 } else { MS }),
                switch_out,
            })
        };
        let t0 = 1_000 * MS;
        // main leaves the CPU at t0 + 10 ms and is back at t0 + 55 ms; the
        // worker runs at t0 + 30 ms.
        c.record(sample(1, t0 + 10 * MS, true));
        c.record(sample(2, t0 + 30 * MS, false));
        c.record(Record::Switch {
            pid: 1,
            tid: 1,
            time: t0 + 55 * MS,
            out: false,
            preempted: false,
        });
        let folded = c.finish(None);
        let t = folded.timeline.unwrap();
        let cells: Vec<(u32, &str, bool, u64)> = t
            .cells
            .iter()
            .map(|x| {
                let stack = &t.stacks[x.stack as usize];
                (
                    x.cell,
                    &*t.threads[x.thread as usize],
                    stack.ends_with("[off-cpu]"),
                    x.weight,
                )
            })
            .collect();
        assert_eq!(
            cells,
            [
                (0, "main", true, 20 * MS),
                (1, "main", true, 20 * MS),
                (1, "worker", false, MS),
                (2, "main", true, 5 * MS)
            ]
        );
        assert!(folded.warnings.is_empty(), "{:?}", folded.warnings);

        // Past the budget of counts, the timeline is dropped with a warning
        // and the stacks stay whole.
        let mut c = Collector::new(opts, Some(Prefetch::of_machine_in(nowhere.path())));
        c.timeline = TimelineBuilder::with_budget(3);
        c.record(sample(1, t0 + 10 * MS, true));
        c.record(sample(2, t0 + 30 * MS, false));
        c.record(Record::Switch {
            pid: 1,
            tid: 1,
            time: t0 + 55 * MS,
            out: false,
            preempted: false,
        });
        let folded = c.finish(None);
        assert!(folded.timeline.is_none());
        assert!(
            folded
                .warnings
                .iter()
                .any(|w| w.starts_with("report.html has no heatmap")),
            "{:?}",
            folded.warnings
        );
        let total: u64 = String::from_utf8(folded.text)
            .unwrap()
            .lines()
            .filter_map(crate::model::folded::parse_line)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(total, 45 * MS + MS, "the wait and the sample, whole");
    }
}
