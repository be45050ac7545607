//! Reading a `perf record` recording in-process with `linux-perf-data`: a
//! perf.data file, or perf's pipe format as it streams. The records come out
//! in time order, one at a time, as the few kinds the stacks need.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};
use linux_perf_data::linux_perf_event_reader::{EventRecord, Regs};
use linux_perf_data::{PerfFileReader, PerfFileRecord};

/// One record of a recording, as the stacks need it.
pub(crate) enum Record<'a> {
    /// The machine the recording was made on (`uname -m`, from perf's
    /// header), before any other record.
    Arch(&'a str),
    /// A thread got a name (`exec` when a new program image replaced the old).
    Comm {
        pid: i32,
        tid: i32,
        name: Cow<'a, [u8]>,
        exec: bool,
    },
    /// A process or thread was created.
    Fork { pid: i32, ppid: i32 },
    /// An executable mapping: `len` bytes of `path` from file offset `pgoff` at `start`.
    Mmap {
        pid: i32,
        start: u64,
        len: u64,
        pgoff: u64,
        path: Cow<'a, [u8]>,
    },
    /// A sample.
    Sample(Sample<'a>),
    /// perf lost this many records (its buffer was full).
    Lost(u64),
}

/// One sample: who, when, and what to build its stack from.
pub(crate) struct Sample<'a> {
    pub pid: i32,
    pub tid: i32,
    /// When it was taken (perf's clock, nanoseconds), if perf recorded times.
    pub time: Option<u64>,
    /// Instruction pointer.
    pub ip: u64,
    /// The kernel's call chain (frame pointers, and kernel frames in every mode).
    pub callchain: &'a [u64],
    /// User registers and stack copy, with `--call-graph dwarf`.
    pub user: Option<(Regs<'a>, Cow<'a, [u8]>)>,
}

/// Reads the recording in `path` (a perf.data file in either format).
pub(crate) fn read_file(path: &Path, on_record: impl FnMut(Record)) -> Result<Outcome> {
    let mut file = File::open(path).with_context(|| {
        format!(
            "cannot open {}: give a perf.data written by `perf record`",
            path.display()
        )
    })?;
    if file.seek(SeekFrom::Start(0)).is_err() {
        // A pipe (`perf record -o - | rust-flamegraph --perfdata /dev/stdin`).
        return read_pipe(BufReader::with_capacity(1 << 20, file), on_record);
    }
    let mut head = [0u8; 16];
    let n = file.read(&mut head).unwrap_or(0);
    file.seek(SeekFrom::Start(0))?;
    // Pipe format starts with magic and a 16-byte header size; files with 104.
    let pipe = n == 16 && u64::from_le_bytes(head[8..16].try_into().unwrap_or_default()) == 16;
    let input = BufReader::with_capacity(1 << 20, file);
    if pipe {
        read_pipe(input, on_record)
    } else {
        let reader = PerfFileReader::parse_file(input).map_err(|e| not_perf_data(path, e))?;
        read_all(reader, on_record)
    }
}

/// Reads perf's pipe format (`perf record -o -`) as it streams.
pub(crate) fn read_pipe<R: Read>(input: R, on_record: impl FnMut(Record)) -> Result<Outcome> {
    let reader = PerfFileReader::parse_pipe(input)
        .map_err(|e| anyhow::anyhow!("perf's output is not a recording: {e}"))?;
    read_all(reader, on_record)
}

fn not_perf_data(path: &Path, e: linux_perf_data::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is not a readable perf.data ({e}): give a file written by `perf record`, \
         or record again",
        path.display()
    )
}

/// How reading ended.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Set when the recording ends in the middle of a record (perf was killed,
    /// the disk filled): what came before it was read.
    pub truncated: Option<String>,
}

fn read_all<R: Read>(
    reader: PerfFileReader<R>,
    mut on_record: impl FnMut(Record),
) -> Result<Outcome> {
    let PerfFileReader {
        mut perf_file,
        mut record_iter,
    } = reader;
    let mut outcome = Outcome::default();
    if let Ok(Some(arch)) = perf_file.arch() {
        on_record(Record::Arch(arch));
    }
    // One buffer for every sample's call chain.
    let mut callchain: Vec<u64> = Vec::new();
    loop {
        let record = match record_iter.next_record(&mut perf_file) {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(e) => {
                outcome.truncated = Some(e.to_string());
                break;
            }
        };
        let PerfFileRecord::EventRecord { record, .. } = record else {
            continue;
        };
        let Ok(parsed) = record.parse() else {
            continue;
        };
        match parsed {
            EventRecord::Sample(s) => {
                let (Some(pid), Some(tid)) = (s.pid, s.tid) else {
                    continue;
                };
                callchain.clear();
                if let Some(c) = s.callchain {
                    callchain.extend((0..c.len()).filter_map(|i| c.get(i)));
                }
                let stack = s.user_stack.map(|(stack, size)| {
                    let bytes = stack.as_slice();
                    let size = (size as usize).min(bytes.len());
                    match bytes {
                        Cow::Borrowed(b) => Cow::Borrowed(&b[..size]),
                        Cow::Owned(mut b) => {
                            b.truncate(size);
                            Cow::Owned(b)
                        }
                    }
                });
                let user = s.user_regs.zip(stack);
                on_record(Record::Sample(Sample {
                    pid,
                    tid,
                    time: s.timestamp,
                    ip: s.ip.unwrap_or(0),
                    callchain: &callchain,
                    user,
                }));
            }
            EventRecord::Comm(c) => on_record(Record::Comm {
                pid: c.pid,
                tid: c.tid,
                name: c.name.as_slice(),
                exec: c.is_execve,
            }),
            EventRecord::Fork(f) => on_record(Record::Fork {
                pid: f.pid,
                ppid: f.ppid,
            }),
            EventRecord::Mmap(m) if m.is_executable => on_record(Record::Mmap {
                pid: m.pid,
                start: m.address,
                len: m.length,
                pgoff: m.page_offset,
                path: m.path.as_slice(),
            }),
            EventRecord::Mmap2(m) if m.protection & libc::PROT_EXEC as u32 != 0 => {
                on_record(Record::Mmap {
                    pid: m.pid,
                    start: m.address,
                    len: m.length,
                    pgoff: m.page_offset,
                    path: m.path.as_slice(),
                })
            }
            EventRecord::Lost(l) => on_record(Record::Lost(l.count)),
            _ => {}
        }
    }
    Ok(outcome)
}
