//! Reading a `perf record` recording in-process with `linux-perf-data`: a
//! perf.data file, or perf's pipe format as it streams. The records come out
//! in time order, one at a time, as the few kinds the stacks need.

use std::borrow::Cow;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};
use linux_perf_data::linux_perf_event_reader::{
    ContextSwitchRecord, EventRecord, PerfEventType, Regs, SoftwareCounterType, TaskWasPreempted,
};
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
    /// Thread `tid` ended.
    Exit { tid: i32 },
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
    /// Thread `tid` left the CPU (`out`; `preempted` while it could still
    /// run) or came back to it, at `time` (`perf record --switch-events`).
    Switch {
        pid: i32,
        tid: i32,
        time: u64,
        out: bool,
        preempted: bool,
    },
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
    /// The event's period: nanoseconds for cpu-clock.
    pub period: Option<u64>,
    /// Taken as the thread left the CPU (the `context-switches` event),
    /// rather than by the clock.
    pub switch_out: bool,
}

/// Reads the recording in `path` (a perf.data file in either format).
pub(crate) fn read_file(path: &Path, on_record: impl FnMut(Record)) -> Result<Outcome> {
    // The user's rights, no foreign symlink, no FIFO planted by someone else.
    let mut file = crate::sys::safe_fs::open_input(path, crate::sys::safe_fs::Accept::Stream)
        .with_context(|| {
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
    if pipe {
        return read_pipe(BufReader::with_capacity(1 << 20, file), on_record);
    }
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut header = [0u8; HEADER_SIZE];
    file.read_exact(&mut header).map_err(|e| {
        anyhow::anyhow!(
            "{} is too short for a perf.data header ({e}): record again",
            path.display()
        )
    })?;
    let mut table = |offset: u64, size: usize| -> Option<Vec<u8>> {
        let mut bytes = vec![0; size];
        file.seek(SeekFrom::Start(offset)).ok()?;
        file.read_exact(&mut bytes).ok()?;
        Some(bytes)
    };
    let checked = check_header(header, len, &mut table).map_err(|why| {
        anyhow::anyhow!(
            "{} is not a readable perf.data ({why}): give a file written by `perf record`, \
             or record again",
            path.display()
        )
    })?;
    let mut header = checked.header;
    if checked.cut_short.is_some() {
        // Records are handed out in time order, round by round: data cut
        // inside a record would lose the whole last round. The data ends
        // where the last whole record does.
        let little = little_endian(&header);
        let data = u64_at(&header, 40, little);
        file.seek(SeekFrom::Start(data))?;
        let whole = whole_records(BufReader::with_capacity(1 << 20, &file), len - data, little);
        let whole = if little {
            whole.to_le_bytes()
        } else {
            whole.to_be_bytes()
        };
        header[48..56].copy_from_slice(&whole);
    }
    let input = Patched {
        header,
        inner: BufReader::with_capacity(1 << 20, file),
        pos: 0,
    };
    let mut input = input;
    input.seek(SeekFrom::Start(0))?;
    let reader = PerfFileReader::parse_file(input).map_err(|e| not_perf_data(path, e))?;
    let mut outcome = read_all(reader, on_record)?;
    if outcome.truncated.is_none() {
        outcome.truncated = checked.cut_short;
    }
    Ok(outcome)
}

/// perf.data's header: magic, its own size, the attributes' size, then the
/// attribute, data and event-type sections, then the feature bits.
const HEADER_SIZE: usize = 104;

/// Sizes no real recording's metadata comes near: feature sections (build
/// ids, the command line, CPU topology) or an attribute table larger than
/// this in all are damage, and are never allocated.
const MAX_METADATA: u64 = 64 << 20;

/// perf's `HEADER_EVENT_DESC` feature bit.
const EVENT_DESC: u32 = 12;

/// Whether a `HEADER_EVENT_DESC` section's counts fit inside it: `nr`
/// events of `attr_size` bytes, each with `nr_ids` ids and a name.
fn event_desc_sound(bytes: &[u8], little: bool) -> bool {
    let u32_at = |at: usize| -> Option<u64> {
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u64::from(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }))
    };
    let (Some(nr), Some(attr_size)) = (u32_at(0), u32_at(4)) else {
        return false;
    };
    if !(64..=4096).contains(&attr_size) {
        return false;
    }
    let mut at = 8u64;
    for _ in 0..nr {
        at += attr_size;
        let Some(ids) = usize::try_from(at).ok().and_then(u32_at) else {
            return false;
        };
        let Some(name) = usize::try_from(at + 4).ok().and_then(u32_at) else {
            return false;
        };
        at += 8 + name + ids * 8;
        if at > bytes.len() as u64 {
            return false;
        }
    }
    true
}

/// A `perf_header_string` (a length, then that many bytes, NUL-padded),
/// read within its section.
fn header_string(bytes: &[u8]) -> Option<&str> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let text = bytes.get(4..4usize.checked_add(len)?)?;
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    std::str::from_utf8(&text[..end]).ok()
}

/// A header fit to hand to the parser, and why the file was cut short, if it was.
#[derive(Debug)]
struct CheckedHeader {
    header: [u8; HEADER_SIZE],
    cut_short: Option<String>,
}

/// Checks perf.data's header against the file's `len` before anything is
/// allocated from it: every section inside the file and of a sane size.
/// A recording whose writing stopped early (perf killed, the disk full:
/// the data size is never filled in, or points past the end) keeps what it
/// holds: its data runs to the end of the file, without the feature
/// sections perf writes last.
/// `read(offset, size)` reads the feature table.
fn check_header(
    mut header: [u8; HEADER_SIZE],
    len: u64,
    read: &mut dyn FnMut(u64, usize) -> Option<Vec<u8>>,
) -> Result<CheckedHeader, String> {
    let little = match &header[..8] {
        b"PERFILE2" => true,
        b"2ELIFREP" => false,
        _ => return Err("no perf.data magic".into()),
    };
    let get = |h: &[u8; HEADER_SIZE], at: usize| u64_at(h, at, little);
    let inside = |offset: u64, size: u64| offset.checked_add(size).is_some_and(|end| end <= len);
    let header_size = get(&header, 8);
    let attr_size = get(&header, 16);
    let (attrs, attrs_size) = (get(&header, 24), get(&header, 32));
    let (data, data_size) = (get(&header, 40), get(&header, 48));
    let (types, types_size) = (get(&header, 56), get(&header, 64));
    if !(HEADER_SIZE as u64..=4096).contains(&header_size) || header_size > len {
        return Err(format!("a header of {header_size} bytes"));
    }
    if !(8..=4096).contains(&attr_size) {
        return Err(format!("attributes of {attr_size} bytes"));
    }
    for (what, offset, size) in [
        ("attribute", attrs, attrs_size),
        ("event type", types, types_size),
    ] {
        if size > MAX_METADATA || (size > 0 && !inside(offset, size)) {
            return Err(format!("its {what} section lies outside the file"));
        }
    }
    if data < header_size || data > len {
        return Err("its data section lies outside the file".into());
    }
    let set = |h: &mut [u8; HEADER_SIZE], at: usize, value: u64| {
        let bytes = if little {
            value.to_le_bytes()
        } else {
            value.to_be_bytes()
        };
        h[at..at + 8].copy_from_slice(&bytes);
    };
    let features: u32 = header[72..104].iter().map(|b| b.count_ones()).sum();
    let end = data.saturating_add(data_size);
    let table_fits = inside(end, u64::from(features) * 16);
    let mut cut_short = None;
    if data_size == 0 || end > len || !table_fits {
        // Written up to a point: the data is what the file holds after its
        // start; feature sections, written last, are not there.
        set(&mut header, 48, len - data);
        header[72..104].fill(0);
        cut_short = Some(format!(
            "its header was never completed (perf stopped before finishing it); \
             {} bytes of data were read",
            len - data
        ));
    } else if features > 0 {
        // Each feature section inside the file and of a sane size, or none
        // is read: they name the machine, not the samples.
        let table = read(end, features as usize * 16).unwrap_or_default();
        let mut total = 0u64;
        let sound = table.len() == features as usize * 16
            && table.chunks_exact(16).all(|entry| {
                let (offset, size) = (u64_at(entry, 0, little), u64_at(entry, 8, little));
                total = total.saturating_add(size);
                total <= MAX_METADATA && inside(offset, size)
            });
        // The event descriptions, which the parser reads whole, allocating
        // what their counts say before reading what they count.
        let index = |feature: u32| {
            let bits: u32 = (0..feature)
                .filter(|&bit| header[72 + (bit / 8) as usize] >> (bit % 8) & 1 == 1)
                .count() as u32;
            let set = header[72 + (feature / 8) as usize] >> (feature % 8) & 1 == 1;
            set.then_some(bits as usize)
        };
        // (Bits are counted in little-endian words: a big-endian recording
        // is read without its feature sections.)
        let mut events_sound = || {
            if !little {
                return false;
            }
            let Some(i) = index(EVENT_DESC) else {
                return true;
            };
            let entry = &table[i * 16..i * 16 + 16];
            let (offset, size) = (u64_at(entry, 0, little), u64_at(entry, 8, little));
            read(offset, size as usize).is_some_and(|bytes| event_desc_sound(&bytes, little))
        };
        if !sound || !events_sound() {
            header[72..104].fill(0);
        }
    }
    Ok(CheckedHeader { header, cut_short })
}

/// Whether `record` can be handed to the parser: it asserts (panics) on an
/// mmap2 record's build id longer than 20 bytes, which only a damaged or
/// crafted file holds. Such a record is skipped like any unreadable one.
fn sound(record: &linux_perf_data::linux_perf_event_reader::RawEventRecord) -> bool {
    use linux_perf_data::linux_perf_event_reader::constants::PERF_RECORD_MISC_MMAP_BUILD_ID;
    use linux_perf_data::linux_perf_event_reader::RecordType;
    if record.record_type != RecordType::MMAP2 || record.misc & PERF_RECORD_MISC_MMAP_BUILD_ID == 0
    {
        return true;
    }
    // pid, tid (4 bytes each), address, length, offset (8 each), then the
    // build id's length.
    record
        .data
        .get(32..33)
        .is_some_and(|len| len.as_slice().first().is_some_and(|&len| len <= 20))
}

/// The u64 at `at` in `bytes`, in the recording's byte order (0 past the end).
fn u64_at(bytes: &[u8], at: usize, little: bool) -> u64 {
    let word: [u8; 8] = bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .unwrap_or_default();
    if little {
        u64::from_le_bytes(word)
    } else {
        u64::from_be_bytes(word)
    }
}

/// Whether the header is little-endian (`PERFILE2`).
fn little_endian(header: &[u8; HEADER_SIZE]) -> bool {
    &header[..8] == b"PERFILE2"
}

/// How many of the `len` bytes of records in `data` are whole records.
fn whole_records(mut data: impl Read, len: u64, little: bool) -> u64 {
    let mut whole = 0u64;
    let mut head = [0u8; 8];
    // Each record starts with its type (u32), misc (u16) and size (u16).
    while data.read_exact(&mut head).is_ok() {
        let size = if little {
            u16::from_le_bytes([head[6], head[7]])
        } else {
            u16::from_be_bytes([head[6], head[7]])
        };
        let size = u64::from(size);
        if size < 8 || whole + size > len {
            break;
        }
        if std::io::copy(&mut data.by_ref().take(size - 8), &mut std::io::sink()).ok()
            != Some(size - 8)
        {
            break;
        }
        whole += size;
    }
    whole
}

/// A perf.data file read with its header replaced by a checked one.
struct Patched<R> {
    header: [u8; HEADER_SIZE],
    inner: R,
    pos: u64,
}

impl<R: Read + Seek> Read for Patched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(rest) = usize::try_from(self.pos)
            .ok()
            .and_then(|at| self.header.get(at..))
            .filter(|rest| !rest.is_empty())
        {
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.pos += n as u64;
            self.inner.seek(SeekFrom::Start(self.pos))?;
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for Patched<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
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
    if let Some(arch) = perf_file
        .feature_section_data(linux_perf_data::Feature::ARCH)
        .and_then(header_string)
    {
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
        let PerfFileRecord::EventRecord { attr_index, record } = record else {
            continue;
        };
        if !sound(&record) {
            continue;
        }
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
                    period: s.period,
                    switch_out: perf_file
                        .event_attributes()
                        .get(attr_index)
                        .is_some_and(|a| {
                            matches!(
                                a.attr.type_,
                                PerfEventType::Software(SoftwareCounterType::ContextSwitches)
                            )
                        }),
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
            EventRecord::Exit(e) => on_record(Record::Exit { tid: e.tid }),
            EventRecord::ContextSwitch(switch) => {
                let Ok(common) = record.common_data() else {
                    continue;
                };
                let (Some(pid), Some(tid), Some(time)) = (common.pid, common.tid, common.timestamp)
                else {
                    continue;
                };
                let (out, preempted) = match switch {
                    ContextSwitchRecord::In { .. } => (false, false),
                    ContextSwitchRecord::Out { preempted, .. } => {
                        (true, matches!(preempted, TaskWasPreempted::Yes))
                    }
                };
                on_record(Record::Switch {
                    pid,
                    tid,
                    time,
                    out,
                    preempted,
                });
            }
            _ => {}
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header as perf writes it: attributes at 104, data at 264 of `data` bytes.
    fn header(data: u64, features: u64) -> [u8; HEADER_SIZE] {
        let mut h = [0u8; HEADER_SIZE];
        h[..8].copy_from_slice(b"PERFILE2");
        for (at, value) in [
            (8, 104u64),
            (16, 136),
            (24, 104),
            (32, 136),
            (40, 264),
            (48, data),
        ] {
            h[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        h[72..80].copy_from_slice(&features.to_le_bytes());
        h
    }

    fn word(h: &[u8; HEADER_SIZE], at: usize) -> u64 {
        u64::from_le_bytes(h[at..at + 8].try_into().unwrap())
    }

    fn no_table(_: u64, _: usize) -> Option<Vec<u8>> {
        None
    }

    #[test]
    fn a_header_perf_never_finished_reads_the_data_to_the_end_of_the_file() {
        // perf killed: data size 0, feature bits set but no feature table.
        let checked = check_header(header(0, 0b1011), 5000, &mut no_table).unwrap();
        assert_eq!(word(&checked.header, 48), 5000 - 264);
        assert_eq!(
            word(&checked.header, 72),
            0,
            "no feature sections were written"
        );
        assert!(checked.cut_short.unwrap().contains("never completed"));
        // The file cut inside the data: the data runs to its end.
        let checked = check_header(header(9000, 0), 5000, &mut no_table).unwrap();
        assert_eq!(word(&checked.header, 48), 5000 - 264);
    }

    #[test]
    fn a_complete_header_is_kept_as_it_is() {
        // One feature section, inside the file.
        let mut read = |offset: u64, size: usize| {
            assert_eq!((offset, size), (264 + 4000, 16));
            let mut entry = (264u64 + 4016).to_le_bytes().to_vec();
            entry.extend(100u64.to_le_bytes());
            Some(entry)
        };
        let h = header(4000, 1);
        let checked = check_header(h, 264 + 4016 + 100, &mut read).unwrap();
        assert_eq!(checked.header, h);
        assert!(checked.cut_short.is_none());
    }

    #[test]
    fn feature_sections_too_large_or_outside_the_file_are_not_read() {
        // A sparse file: the section claims 1.5 GB inside a 3 GB file.
        let mut huge = |_: u64, _: usize| {
            let mut entry = 5000u64.to_le_bytes().to_vec();
            entry.extend((1500u64 << 20).to_le_bytes());
            Some(entry)
        };
        let checked = check_header(header(4000, 1), 3 << 30, &mut huge).unwrap();
        assert_eq!(word(&checked.header, 72), 0);
        let mut outside = |_: u64, _: usize| {
            let mut entry = 9000u64.to_le_bytes().to_vec();
            entry.extend(100u64.to_le_bytes());
            Some(entry)
        };
        let checked = check_header(header(4000, 1), 5000, &mut outside).unwrap();
        assert_eq!(word(&checked.header, 72), 0);
    }

    #[test]
    fn event_descriptions_whose_counts_overrun_their_section_are_refused() {
        // One event: a 64-byte attr, 2 ids, a name of 8 bytes.
        let mut desc = Vec::new();
        desc.extend(1u32.to_le_bytes());
        desc.extend(64u32.to_le_bytes());
        desc.extend([0u8; 64]);
        desc.extend(2u32.to_le_bytes());
        desc.extend(8u32.to_le_bytes());
        desc.extend(*b"cpu-clk\0");
        desc.extend([0u8; 16]);
        assert!(event_desc_sound(&desc, true));
        let mut many = desc.clone();
        many[..4].copy_from_slice(&0x18_0001u32.to_le_bytes());
        assert!(
            !event_desc_sound(&many, true),
            "1.5 million events in 100 bytes"
        );
        let mut ids = desc.clone();
        ids[72..76].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(!event_desc_sound(&ids, true), "4 billion ids");
        assert!(!event_desc_sound(&desc[..desc.len() - 1], true));
    }

    #[test]
    fn header_strings_are_read_within_their_section() {
        let mut arch = 8u32.to_le_bytes().to_vec();
        arch.extend(*b"aarch64\0");
        assert_eq!(header_string(&arch), Some("aarch64"));
        let mut long = u32::MAX.to_le_bytes().to_vec();
        long.extend(*b"x86_64\0\0");
        assert_eq!(header_string(&long), None);
    }

    #[test]
    fn headers_that_cannot_be_a_recording_are_refused() {
        let mut bad = header(100, 0);
        bad[..8].copy_from_slice(b"NOTPERF!");
        assert!(check_header(bad, 5000, &mut no_table).is_err());
        let mut bad = header(100, 0);
        bad[32..40].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(
            check_header(bad, 5000, &mut no_table).is_err(),
            "attributes outside"
        );
        let mut bad = header(100, 0);
        bad[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(
            check_header(bad, 5000, &mut no_table).is_err(),
            "data outside"
        );
        let mut bad = header(100, 0);
        bad[16..24].copy_from_slice(&0u64.to_le_bytes());
        assert!(
            check_header(bad, 5000, &mut no_table).is_err(),
            "zero-sized attributes"
        );
    }
}
