//! `--format pprof`: the stacks as `profile.pb.gz`, the gzipped protobuf that
//! `go tool pprof`, Grafana Pyroscope and Parca read.
//!
//! From a recording read in-process, it is built from the stacks by address
//! ([`from_stacks`]), as fleet tools expect:
//!
//! - mappings (the file, its build id, the part that holds code) and the
//!   kernel's, `[kernel.kallsyms]`;
//! - a location per code address, its lines innermost first (inlined
//!   functions, then the function they were inlined into), each with its
//!   function (name, mangled `system_name`, source file) and line;
//! - labels instead of a root frame: `thread` (the name), `thread_id` and
//!   `pid` (numbers);
//! - one sample per distinct (location list, labels).
//!
//! Otherwise (`--from-folded`, `--perf-script`, `--skip-after`,
//! `--post-process`) it is built from the folded stacks ([`profile`]), so it
//! holds what the flamegraph shows:
//!
//! - each distinct stack is one sample, its locations leaf first;
//! - each distinct frame name is one function, with one location of its own
//!   (folded stacks carry names, not addresses): names are kept as they are,
//!   thread roots and `[unknown]` included, so that `go tool pprof -top`
//!   lists the same functions, with the same counts, as the summary;
//! - two values per sample: `samples/count`, and `cpu/nanoseconds` (samples ×
//!   the sampling period, `1e9 / --freq` ns); the period is recorded too;
//! - the time of the run: when it started and how long it took (left at 0,
//!   pprof's "unknown", when rendering a file, whose time is not known).
//!
//! The message types are `libdd-profiling-protobuf`'s (prost), the gzip is
//! flate2's: both pure Rust.

use std::collections::HashMap;
use std::io::Write;
use std::time::SystemTime;

use libdd_profiling_protobuf::prost_impls::{
    Function, Line, Location, Message, Profile, Sample, ValueType,
};

use libdd_profiling_protobuf::prost_impls::{Label, Mapping};

use crate::model::folded::parse_line;
use crate::model::profile::AddressStacks;

/// What the profile says besides its stacks.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Sampling frequency in Hz (the period of a sample is `1e9 / freq` ns).
    pub freq: u32,
    /// When the recording started (`None`: unknown).
    pub start: Option<SystemTime>,
    /// How long it ran (`None`: unknown).
    pub duration: Option<std::time::Duration>,
    /// A comment to embed: what was profiled.
    pub comment: String,
    /// Counts are nanoseconds on and off the CPU (`--off-cpu`): the sample
    /// types are then `cpu/nanoseconds` (stacks that ran) and
    /// `wall/nanoseconds` (all of them, waiting included).
    pub nanoseconds: bool,
    /// The root frame of each folded stack names its thread (a recording
    /// read by `perf script`): for [`profile`], it becomes the sample's
    /// `thread` label instead of a frame.
    pub thread_roots: bool,
}

/// Strings, each stored once; index 0 is `""`, as pprof requires.
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Self {
        Strings {
            table: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }

    fn get(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        self.table.push(s.to_string());
        let i = self.table.len() as i64 - 1;
        self.index.insert(s.to_string(), i);
        i
    }
}

/// What every profile has besides its stacks: sample types, period, time,
/// comment.
struct Header {
    sample_types: Vec<ValueType>,
    period_type: Option<ValueType>,
    period: i64,
}

impl Header {
    fn new(strings: &mut Strings, meta: &Meta) -> Header {
        let period = (1e9 / f64::from(meta.freq.max(1))).round() as i64;
        let (sample_count, count_unit) = (strings.get("samples"), strings.get("count"));
        let (cpu, nanoseconds) = (strings.get("cpu"), strings.get("nanoseconds"));
        let wall = strings.get("wall");
        let sample_types = vec![
            ValueType {
                r#type: if meta.nanoseconds { cpu } else { sample_count },
                unit: if meta.nanoseconds {
                    nanoseconds
                } else {
                    count_unit
                },
            },
            ValueType {
                r#type: if meta.nanoseconds { wall } else { cpu },
                unit: nanoseconds,
            },
        ];
        let period_type = Some(sample_types[if meta.nanoseconds { 0 } else { 1 }]);
        Header {
            sample_types,
            period_type,
            period,
        }
    }

    /// The two values of a count: (samples, cpu ns), or with nanoseconds
    /// (cpu ns, wall ns), a waiting stack having no cpu time.
    fn values(&self, meta: &Meta, count: i64, waiting: bool) -> Vec<i64> {
        match (meta.nanoseconds, waiting) {
            (false, _) => vec![count, count.saturating_mul(self.period)],
            (true, true) => vec![0, count],
            (true, false) => vec![count, count],
        }
    }

    /// The profile of these stacks.
    fn profile(
        self,
        mut strings: Strings,
        meta: &Meta,
        stacks: (Vec<Sample>, Vec<Mapping>, Vec<Location>, Vec<Function>),
    ) -> Profile {
        let (samples, mappings, locations, functions) = stacks;
        let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let time_nanos = meta
            .start
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, nanos);
        let comment = vec![strings.get(&meta.comment)];
        Profile {
            sample_types: self.sample_types,
            samples,
            mappings,
            locations,
            functions,
            string_table: strings.table,
            drop_frames: 0,
            keep_frames: 0,
            time_nanos,
            duration_nanos: meta.duration.map_or(0, nanos),
            period_type: self.period_type,
            period: self.period,
            comment,
            default_sample_type: 0,
        }
    }
}

/// The pprof profile of stacks by address (see the module's comment);
/// `short_names` shortens function names as `--short-names` does.
pub fn from_stacks(
    stacks: &AddressStacks,
    meta: &Meta,
    short_name: &dyn Fn(&str) -> String,
) -> Profile {
    let mut strings = Strings::new();
    let header = Header::new(&mut strings, meta);
    let file_names: Vec<String> = stacks.mappings.iter().map(|m| m.path.clone()).collect();
    let mappings = stacks
        .mappings
        .iter()
        .enumerate()
        .map(|(i, m)| Mapping {
            id: i as u64 + 1,
            memory_start: m.start,
            memory_limit: m.limit,
            file_offset: m.offset,
            filename: strings.get(&file_names[i]),
            build_id: m.build_id.as_deref().map_or(0, |b| strings.get(b)),
            // Named here: pprof need not (and, without the file, cannot).
            has_functions: true,
            has_filenames: m.has_lines,
            has_line_numbers: m.has_lines,
            has_inline_frames: m.has_inline_frames,
        })
        .collect();
    let functions = stacks
        .functions
        .iter()
        .enumerate()
        .map(|(i, f)| Function {
            id: i as u64 + 1,
            name: strings.get(&short_name(&f.name)),
            system_name: strings.get(&f.system_name),
            filename: strings.get(&f.filename),
        })
        .collect();
    let locations = stacks
        .locations
        .iter()
        .enumerate()
        .map(|(i, l)| Location {
            id: i as u64 + 1,
            mapping_id: l.mapping.map_or(0, |m| m as u64 + 1),
            address: l.address,
            lines: l
                .lines
                .iter()
                .map(|line| Line {
                    function_id: line.function as u64 + 1,
                    line: i64::try_from(line.line).unwrap_or(0),
                })
                .collect(),
            is_folded: false,
        })
        .collect();
    let (thread, thread_id, pid) = (
        strings.get("thread"),
        strings.get("thread_id"),
        strings.get("pid"),
    );
    let thread_names: Vec<i64> = stacks.threads.iter().map(|t| strings.get(t)).collect();
    let samples = stacks
        .samples
        .iter()
        .map(|s| Sample {
            location_ids: s.locations.iter().map(|&l| l as u64 + 1).collect(),
            values: header.values(meta, i64::try_from(s.count).unwrap_or(i64::MAX), s.waiting),
            labels: vec![
                Label {
                    key: thread,
                    str: thread_names[s.thread],
                    ..Label::default()
                },
                Label {
                    key: thread_id,
                    num: s.tid,
                    ..Label::default()
                },
                Label {
                    key: pid,
                    num: s.pid,
                    ..Label::default()
                },
            ],
        })
        .collect();
    header.profile(strings, meta, (samples, mappings, locations, functions))
}

/// The pprof profile of folded stacks (lines that are not `frames count`
/// are left out, as everywhere).
pub fn profile(folded: &str, meta: &Meta) -> Profile {
    let mut strings = Strings::new();
    let header = Header::new(&mut strings, meta);
    // A waiting stack (`--off-cpu`) has no cpu time.
    let values_of = |frames: &str, count: i64| -> Vec<i64> {
        let waiting = frames
            .rsplit(';')
            .next()
            .is_some_and(|f| f.starts_with("[off-cpu"));
        header.values(meta, count, waiting)
    };
    let mut functions: Vec<Function> = Vec::new();
    let mut ids: HashMap<&str, u64> = HashMap::new();
    let mut samples: Vec<Sample> = Vec::new();
    // One sample per distinct stack (the input may repeat one: merged here).
    let mut by_stack: HashMap<&str, usize> = HashMap::new();
    let thread_key = strings.get("thread");
    for (stack, count) in folded.lines().filter_map(parse_line) {
        // The thread, as a label, and the frames below it.
        let (thread, frames) = match stack.split_once(';') {
            Some((root, frames)) if meta.thread_roots => (Some(root), frames),
            _ => (None, stack),
        };
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        if let Some(&i) = by_stack.get(stack) {
            let values = &mut samples[i].values;
            for (value, add) in values.iter_mut().zip(values_of(frames, count)) {
                *value = value.saturating_add(add);
            }
            continue;
        }
        let location_ids = frames
            .rsplit(';')
            .map(|name| {
                *ids.entry(name).or_insert_with(|| {
                    let id = functions.len() as u64 + 1;
                    let name = strings.get(name);
                    functions.push(Function {
                        id,
                        name,
                        // Unknown (the frames are demangled already): left
                        // empty, pprof shows `name` as it is instead of
                        // simplifying it like a C++ name (`<T>::f` → `::f`).
                        system_name: 0,
                        filename: 0,
                    });
                    id
                })
            })
            .collect();
        by_stack.insert(stack, samples.len());
        samples.push(Sample {
            location_ids,
            values: values_of(frames, count),
            labels: thread
                .map(|t| Label {
                    key: thread_key,
                    str: strings.get(t),
                    ..Label::default()
                })
                .into_iter()
                .collect(),
        });
    }
    // A location per function (ids alike): names are all folded stacks have.
    let locations = functions
        .iter()
        .map(|f| Location {
            id: f.id,
            mapping_id: 0,
            address: 0,
            lines: vec![Line {
                function_id: f.id,
                line: 0,
            }],
            is_folded: false,
        })
        .collect();
    header.profile(strings, meta, (samples, Vec::new(), locations, functions))
}

/// Writes `profile` as pprof reads it: protobuf, gzipped.
pub fn write(profile: &Profile, out: &mut dyn Write) -> std::io::Result<()> {
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    gz.write_all(&profile.encode_to_vec())?;
    gz.finish()?;
    Ok(())
}

/// `profile.pb.gz` of folded stacks: [`profile`], then [`write()`].
pub fn encode(folded: &[u8], meta: &Meta) -> anyhow::Result<Vec<u8>> {
    encode_profile(&profile(&String::from_utf8_lossy(folded), meta))
}

/// `profile.pb.gz` of `profile`, in memory ([`write()`]).
pub fn encode_profile(profile: &Profile) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    write(profile, &mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot encode the pprof profile: {e}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOLDED: &str = "\
demo;main;work;leaf 7
demo;main;work 3
demo;main;other;leaf 5
demo;main;work;leaf 2
not a stack
thread 3;spin 4
";

    fn meta() -> Meta {
        Meta {
            freq: 1000,
            start: Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(5)),
            duration: Some(std::time::Duration::from_millis(1500)),
            comment: "demo".into(),
            nanoseconds: false,
            thread_roots: false,
        }
    }

    #[test]
    fn off_cpu_profiles_have_cpu_and_wall_time() {
        let off = Meta {
            nanoseconds: true,
            ..meta()
        };
        let p = profile("main;work 3000\nmain;sleep;[off-cpu: sleep] 5000\n", &off);
        let st = |i: i64| p.string_table[i as usize].as_str();
        let types: Vec<_> = p
            .sample_types
            .iter()
            .map(|t| (st(t.r#type), st(t.unit)))
            .collect();
        assert_eq!(types, [("cpu", "nanoseconds"), ("wall", "nanoseconds")]);
        let mut values: Vec<_> = p.samples.iter().map(|s| s.values.clone()).collect();
        values.sort();
        assert_eq!(values, [vec![0, 5000], vec![3000, 3000]]);
    }

    /// Reads a `profile.pb.gz` back.
    fn read(gzipped: &[u8]) -> Profile {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gzipped), &mut bytes).unwrap();
        Profile::decode(bytes.as_slice()).unwrap()
    }

    /// (leaf-first names, values) of each sample.
    fn samples(p: &Profile) -> Vec<(Vec<&str>, Vec<i64>)> {
        let name = |loc: u64| {
            let l = p.locations.iter().find(|l| l.id == loc).unwrap();
            let f = p
                .functions
                .iter()
                .find(|f| f.id == l.lines[0].function_id)
                .unwrap();
            p.string_table[f.name as usize].as_str()
        };
        p.samples
            .iter()
            .map(|s| {
                (
                    s.location_ids.iter().map(|&l| name(l)).collect(),
                    s.values.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn each_distinct_stack_is_a_sample_leaf_first_with_both_values() {
        let p = read(&{
            let mut out = Vec::new();
            write(&profile(FOLDED, &meta()), &mut out).unwrap();
            out
        });
        assert_eq!(
            samples(&p),
            vec![
                (vec!["leaf", "work", "main", "demo"], vec![9, 9_000_000]),
                (vec!["work", "main", "demo"], vec![3, 3_000_000]),
                (vec!["leaf", "other", "main", "demo"], vec![5, 5_000_000]),
                (vec!["spin", "thread 3"], vec![4, 4_000_000]),
            ]
        );
        // Functions (and their locations) once each.
        let names: Vec<&str> = p
            .functions
            .iter()
            .map(|f| p.string_table[f.name as usize].as_str())
            .collect();
        assert_eq!(
            names,
            ["leaf", "work", "main", "demo", "other", "spin", "thread 3"]
        );
        assert_eq!(p.locations.len(), names.len());
        assert_eq!(p.string_table[0], "");
        let st = |i: i64| p.string_table[i as usize].as_str();
        let types: Vec<(&str, &str)> = p
            .sample_types
            .iter()
            .map(|t| (st(t.r#type), st(t.unit)))
            .collect();
        assert_eq!(types, [("samples", "count"), ("cpu", "nanoseconds")]);
        assert_eq!(p.period, 1_000_000);
        assert_eq!(p.time_nanos, 5_000_000_000);
        assert_eq!(p.duration_nanos, 1_500_000_000);
        assert_eq!(st(p.comment[0]), "demo");
    }

    /// Stacks by address become mappings, locations with their lines
    /// (innermost first), functions and labelled samples, ids from 1.
    #[test]
    fn address_stacks_become_mappings_locations_lines_and_labels() {
        use crate::model::profile::{self as m, AddressStacks};
        let f = |name: &str, file: &str| m::Function {
            name: name.into(),
            system_name: format!("_R{name}"),
            filename: file.into(),
        };
        let stacks = AddressStacks {
            mappings: vec![m::Mapping {
                path: "/bin/demo".into(),
                start: 0x1000,
                limit: 0x9000,
                offset: 0x800,
                build_id: Some("abcd".into()),
                has_lines: true,
                has_inline_frames: true,
            }],
            functions: vec![
                f("demo::inner<T>", "src/main.rs"),
                f("demo::outer", "src/main.rs"),
            ],
            locations: vec![
                m::Location {
                    mapping: Some(0),
                    address: 0x1234,
                    lines: vec![
                        m::Line {
                            function: 0,
                            line: 7,
                        },
                        m::Line {
                            function: 1,
                            line: 20,
                        },
                    ],
                },
                m::Location {
                    mapping: None,
                    address: 0,
                    lines: vec![m::Line {
                        function: 1,
                        line: 0,
                    }],
                },
            ],
            threads: vec!["main".into(), "encoder".into()],
            samples: vec![
                m::StackSample {
                    locations: vec![0, 1],
                    thread: 1,
                    tid: 12,
                    pid: 11,
                    count: 5,
                    waiting: false,
                },
                m::StackSample {
                    locations: vec![1],
                    thread: 0,
                    tid: 11,
                    pid: 11,
                    count: 400,
                    waiting: true,
                },
            ],
        };
        let short = |n: &str| n.replace("<T>", "");
        let p = read(&encode_profile(&from_stacks(&stacks, &meta(), &short)).unwrap());
        let st = |i: i64| p.string_table[i as usize].as_str();
        let map = &p.mappings[0];
        assert_eq!(
            (map.id, map.memory_start, map.memory_limit, map.file_offset),
            (1, 0x1000, 0x9000, 0x800)
        );
        assert_eq!((st(map.filename), st(map.build_id)), ("/bin/demo", "abcd"));
        assert!(map.has_functions && map.has_filenames && map.has_line_numbers);
        let loc = &p.locations[0];
        assert_eq!((loc.id, loc.mapping_id, loc.address), (1, 1, 0x1234));
        assert_eq!(p.locations[1].mapping_id, 0, "no mapping");
        let lines: Vec<(&str, &str, &str, i64)> = loc
            .lines
            .iter()
            .map(|l| {
                let f = &p.functions[l.function_id as usize - 1];
                assert_eq!(f.id, l.function_id);
                (st(f.name), st(f.system_name), st(f.filename), l.line)
            })
            .collect();
        assert_eq!(
            lines,
            [
                ("demo::inner", "_Rdemo::inner<T>", "src/main.rs", 7),
                ("demo::outer", "_Rdemo::outer", "src/main.rs", 20)
            ]
        );
        let labels = |s: &Sample| -> Vec<(String, String, i64)> {
            s.labels
                .iter()
                .map(|l| (st(l.key).into(), st(l.str).into(), l.num))
                .collect()
        };
        assert_eq!(p.samples[0].location_ids, [1, 2]);
        assert_eq!(p.samples[0].values, [5, 5_000_000]);
        assert_eq!(
            labels(&p.samples[0]),
            [
                ("thread".into(), "encoder".into(), 0),
                ("thread_id".into(), String::new(), 12),
                ("pid".into(), String::new(), 11)
            ]
        );
        // --off-cpu: a wait has wall time and no cpu time.
        let off = Meta {
            nanoseconds: true,
            ..meta()
        };
        let p = from_stacks(&stacks, &off, &|n| n.to_string());
        assert_eq!(p.samples[0].values, [5, 5]);
        assert_eq!(p.samples[1].values, [0, 400]);
        assert_eq!(p.string_table[p.comment[0] as usize], "demo");
        assert_eq!((p.period, p.time_nanos), (1_000_000, 5_000_000_000));
    }

    /// A recording read by `perf script`: its roots are threads, labels.
    #[test]
    fn thread_roots_become_thread_labels() {
        let threads = Meta {
            thread_roots: true,
            ..meta()
        };
        let p = profile(
            "demo;main;work 3\nencoder;run;work 2\ndemo;main;work 1\n",
            &threads,
        );
        let st = |i: i64| p.string_table[i as usize].as_str();
        let got: Vec<(&str, Vec<&str>, i64)> = p
            .samples
            .iter()
            .map(|s| {
                assert_eq!(s.labels.len(), 1);
                assert_eq!(st(s.labels[0].key), "thread");
                let names = s
                    .location_ids
                    .iter()
                    .map(|&l| st(p.functions[l as usize - 1].name))
                    .collect();
                (st(s.labels[0].str), names, s.values[0])
            })
            .collect();
        assert_eq!(
            got,
            [
                ("demo", vec!["work", "main"], 4),
                ("encoder", vec!["work", "run"], 2)
            ]
        );
    }

    #[test]
    fn unknown_times_are_zero_and_an_empty_input_is_an_empty_profile() {
        let unknown = Meta {
            start: None,
            duration: None,
            ..meta()
        };
        let p = profile("", &unknown);
        assert_eq!((p.time_nanos, p.duration_nanos), (0, 0));
        assert!(p.samples.is_empty() && p.functions.is_empty());
    }
}
