//! For benches/pprof-shape.sh.
//!
//! `pprof-rs-shape record OUT SECONDS`: a workload like the demo's
//! `--phases` (the main thread sorts, a thread named `encoder` formats
//! numbers), profiled in-process by pprof-rs at 999 Hz; its profile written
//! gzipped to OUT, as a service using the crate would write it.
//!
//! `pprof-rs-shape shape NAME=FILE...`: what each profile.pb.gz holds, side
//! by side: functions with a file name, locations with addresses and with
//! line numbers, inlined frames, mappings, labels.

use std::collections::{BTreeSet, HashSet};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use pprof::protos::{Message, Profile};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("record") if args.len() == 3 => {
            let seconds = args[2].parse().expect("SECONDS: a number");
            record(&args[1], Duration::from_secs(seconds));
        }
        Some("shape") if args.len() > 1 => shape(&args[1..]),
        _ => {
            eprintln!("usage: pprof-rs-shape record OUT SECONDS | shape NAME=FILE...");
            std::process::exit(2);
        }
    }
}

#[inline(never)]
fn sort_blocks(values: &mut [u64]) {
    for block in values.chunks_mut(64) {
        block.sort_unstable();
    }
}

#[inline(never)]
fn encode(values: &[u64]) -> Vec<String> {
    values.iter().step_by(7).map(|v| format!("{v:x}")).collect()
}

fn record(out: &str, length: Duration) {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(999)
        .build()
        .expect("pprof-rs starts");
    let until = Instant::now() + length;
    let mut values: Vec<u64> = (0..50_000u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();
    let encoder = {
        let values = values.clone();
        std::thread::Builder::new()
            .name("encoder".into())
            .spawn(move || {
                let mut n = 0;
                while Instant::now() < until {
                    n += encode(&values).len();
                }
                n
            })
            .unwrap()
    };
    let mut round = 0u64;
    while Instant::now() < until {
        for v in values.iter_mut() {
            *v = v.rotate_left(7) ^ round;
        }
        sort_blocks(&mut values);
        round += 1;
    }
    let encoded = encoder.join().unwrap();
    let report = guard.report().build().expect("a report");
    let profile = report.pprof().expect("a pprof profile");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(out).expect("OUT can be written"),
        flate2::Compression::default(),
    );
    gz.write_all(&profile.encode_to_vec()).unwrap();
    gz.finish().unwrap();
    println!("{round} rounds sorted, {encoded} values encoded; wrote {out}");
}

/// A sample's labels: (key, string, number) each.
type Labels = Vec<(i64, i64, i64)>;

/// `part` of `whole`, in percent.
fn pct(part: usize, whole: usize) -> String {
    match whole {
        0 => "-".into(),
        _ => format!("{:.0} %", part as f64 * 100.0 / whole as f64),
    }
}

fn shape(files: &[String]) {
    let mut columns: Vec<(String, Vec<String>)> = Vec::new();
    let rows = [
        "samples (distinct stacks)",
        "sample values summed",
        "repeated (locations, labels)",
        "functions",
        "  with a file name",
        "  with a system name",
        "locations",
        "  with an address",
        "  with a line number",
        "  with inlined frames",
        "  of the main binary: lines",
        "mappings",
        "  with a build id",
        "label keys",
    ];
    for arg in files {
        let (name, path) = arg.split_once('=').expect("NAME=FILE");
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).expect("FILE can be read"))
            .read_to_end(&mut bytes)
            .expect("gzip");
        let p = Profile::decode(bytes.as_slice()).expect("a pprof profile");
        let st = |i: i64| p.string_table[i as usize].as_str();
        let keys: BTreeSet<&str> = p
            .sample
            .iter()
            .flat_map(|s| s.label.iter().map(|l| st(l.key)))
            .collect();
        let distinct: HashSet<(Vec<u64>, Labels)> = p
            .sample
            .iter()
            .map(|s| {
                let labels = s.label.iter().map(|l| (l.key, l.str, l.num)).collect();
                (s.location_id.clone(), labels)
            })
            .collect();
        let total: i64 = p.sample.iter().map(|s| s.value[0]).sum();
        let f = &p.function;
        let l = &p.location;
        let m = &p.mapping;
        let values = vec![
            p.sample.len().to_string(),
            total.to_string(),
            (p.sample.len() - distinct.len()).to_string(),
            f.len().to_string(),
            pct(
                f.iter().filter(|f| !st(f.filename).is_empty()).count(),
                f.len(),
            ),
            pct(
                f.iter()
                    .filter(|f| f.system_name != 0 && st(f.system_name) != st(f.name))
                    .count(),
                f.len(),
            ),
            l.len().to_string(),
            pct(l.iter().filter(|l| l.address != 0).count(), l.len()),
            pct(
                l.iter()
                    .filter(|l| l.line.iter().any(|line| line.line > 0))
                    .count(),
                l.len(),
            ),
            pct(l.iter().filter(|l| l.line.len() > 1).count(), l.len()),
            {
                // The first mapping's (pprof's main binary), if any.
                let main: Vec<_> = l
                    .iter()
                    .filter(|l| m.first().is_some_and(|m| m.id == l.mapping_id))
                    .collect();
                pct(
                    main.iter()
                        .filter(|l| l.line.iter().any(|line| line.line > 0))
                        .count(),
                    main.len(),
                )
            },
            m.len().to_string(),
            pct(m.iter().filter(|m| m.build_id != 0).count(), m.len()),
            keys.into_iter().collect::<Vec<_>>().join(","),
        ];
        columns.push((name.to_string(), values));
    }
    print!("| {:<28} |", "");
    for (name, _) in &columns {
        print!(" {name:>20} |");
    }
    println!();
    print!("|{}|", "-".repeat(30));
    for _ in &columns {
        print!("{}:|", "-".repeat(21));
    }
    println!();
    for (i, row) in rows.iter().enumerate() {
        print!("| {row:<28} |");
        for (_, values) in &columns {
            print!(" {:>20} |", values[i]);
        }
        println!();
    }
}
