//! Recordings anyone can craft: perf.data files with bytes flipped, cut
//! short, or whose header claims sections of gigabytes (a sparse file takes
//! no room on disk). Reading one must never panic or abort, and never
//! allocate more than the file could justify. Runs everywhere: the seeds are
//! committed recordings (`tests/fixtures/x86_64/*.data`, the demo recorded by
//! perf 6.1 on x86-64, fp and dwarf). Cases: PROPTEST_CASES (default 256).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use proptest::prelude::*;
use rust_flamegraph::collect::stacks::{from_file, Prefetch, StackOptions};

/// The system allocator, remembering each thread's largest single
/// allocation (the recording is parsed on the calling thread).
struct Largest;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // Not during a thread's teardown, when its locals are gone.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

/// The largest allocation on this thread since the last call.
fn largest_since() -> usize {
    LARGEST.with(|largest| largest.replace(0))
}

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// No single allocation may come near this: the seeds are under 100 KB,
/// and /proc/kallsyms (read alongside) is a few MB.
const BOUND: usize = 256 << 20;

fn seed(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/x86_64")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Reads `bytes` as a perf.data file; the error, if refused.
fn read(bytes: &[u8], len: Option<u64>) -> Result<u64, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.data");
    std::fs::write(&path, bytes).unwrap();
    if let Some(len) = len {
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len)
            .unwrap();
    }
    // This machine's files stay out: the reader is under test, not the
    // naming (and reading /proc/kallsyms for every case costs 0.5 s as root).
    let machine = Some(Prefetch::of_machine_in(dir.path()));
    let folded =
        from_file(&path, StackOptions::default(), machine).map_err(|e| format!("{e:#}"))?;
    let text = String::from_utf8(folded.text).unwrap();
    Ok(text
        .lines()
        .filter_map(rust_flamegraph::model::folded::parse_line)
        .map(|(_, n)| n)
        .sum())
}

fn set(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

fn get(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

#[test]
fn the_seeds_are_read_whole() {
    for (name, at_least) in [("demo-fp.data", 30), ("demo-dwarf.data", 10)] {
        let samples = read(&seed(name), None).unwrap();
        assert!(samples >= at_least, "{name}: {samples} samples");
    }
}

#[test]
fn a_sparse_file_claiming_huge_sections_allocates_nothing_of_that_size() {
    let mut bytes = seed("demo-fp.data");
    // The first feature section's entry, just after the data, now claims
    // 1.5 GB at 4 GB into a file of 6 GB that takes no room on disk.
    let features_at = (get(&bytes, 40) + get(&bytes, 48)) as usize;
    set(&mut bytes, features_at, 4 << 30);
    set(&mut bytes, features_at + 8, 1536 << 20);
    largest_since();
    let samples = read(&bytes, Some(6 << 30)).unwrap();
    assert!(samples >= 30, "the samples are still read: {samples}");
    let largest = largest_since();
    assert!(largest < BOUND, "an allocation of {largest} bytes");
}

#[test]
fn a_recording_perf_never_finished_renders_what_it_holds() {
    let full = seed("demo-fp.data");
    let all = read(&full, None).unwrap();
    // As perf leaves it when killed: the data size never written, the
    // feature sections never appended.
    let mut killed = full.clone();
    set(&mut killed, 48, 0);
    let end = (get(&full, 40) + get(&full, 48)) as usize;
    killed.truncate(end);
    assert_eq!(read(&killed, None).unwrap(), all);
    // Cut inside the data: fewer samples, and no error.
    let cut = &full[..(get(&full, 40) as usize + end) / 2];
    let some = read(cut, None).unwrap();
    assert!(some > 0 && some < all, "{some} of {all}");
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn flipped_bytes_are_read_or_refused_never_a_panic(
        dwarf in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
    ) {
        let mut bytes = seed(if dwarf { "demo-dwarf.data" } else { "demo-fp.data" });
        for (at, value) in flips {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        largest_since();
        let _ = read(&bytes, None);
        let largest = largest_since();
        prop_assert!(largest < BOUND, "an allocation of {} bytes", largest);
    }
}
