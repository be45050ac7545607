//! The demo workload: an allocation-heavy checksum whose stack frames show up
//! clearly in a flamegraph.
//!
//! Every iteration allocates a fresh buffer, fills it with seeded random
//! values, transforms it (sorts small blocks, mixes neighbours), encodes part
//! of it into `String`s and folds those bytes into a running checksum. Each
//! step is its own non-inlined function, so the profile shows
//! `main → run → run_iteration → {fill_buffer, transform → sort_blocks, encode → encode_value, checksum}`.
//!
//! With `--phases SECONDS` the run is one phase per second instead, so that
//! report.html's heatmap shows when each ran: even seconds sort
//! (`sorting_phase → sort_blocks`) on the main thread, odd seconds encode
//! (`encoding_phase → encode`) on a thread named `encoder`.
//!
//! With `--waits MILLISECONDS` it waits instead, for `rust-flamegraph
//! --off-cpu`: `sleeping` sleeps that long, then `contending` waits for a
//! mutex that a thread named `holder` keeps for that long while it computes
//! (`holding`); each wait is measured and printed, so that a profile can be
//! compared with the truth.
//!
//! With `--ping-pong SECONDS` the main thread and a thread named `pong` pass
//! a token back and forth that long, each waiting for the other: hundreds of
//! thousands of switches off the CPU a second, the worst case for
//! `--off-cpu`.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Allocation-heavy checksum workload for rust-flamegraph.
#[derive(Parser, Debug)]
#[command(name = "demo", version)]
struct Args {
    /// Iterations: each allocates, fills, transforms and encodes one buffer.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    iters: u64,
    /// Values per buffer (8 bytes each).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    size: u64,
    /// Seed for the random values, so that runs are reproducible.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Run for this many seconds instead of --iters, alternating a second of
    /// sorting (main thread) and a second of encoding (thread `encoder`).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    phases: Option<u64>,
    /// Wait instead: sleep this long, then wait this long for a mutex held
    /// by another thread; prints the waits measured.
    #[arg(long, value_name = "MILLISECONDS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    waits: Option<u64>,
    /// Pass a token between two threads for this many seconds instead
    /// (hundreds of thousands of switches a second); prints the rate.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    ping_pong: Option<u64>,
}

/// Values sorted together by `sort_blocks`: small enough to stay cheap, large
/// enough that sorting shows in the profile.
const BLOCK: usize = 64;
/// One value in `ENCODE_EVERY` is formatted into a `String`.
const ENCODE_EVERY: usize = 16;

fn main() -> ExitCode {
    let started = Instant::now();
    let args = Args::parse();
    let size = match check_size(args.size) {
        Ok(size) => size,
        Err(message) => {
            eprintln!("demo: {message}");
            return ExitCode::from(2);
        }
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    if let Some(wait) = args.waits {
        let w = waits(Duration::from_millis(wait));
        println!(
            "waited: sleep {:.1} ms, mutex {:.1} ms",
            ms(w.slept),
            ms(w.contended)
        );
        println!(
            "computed: holding {:.1} ms; alive: main {:.1} ms, holder {:.1} ms",
            ms(w.held),
            ms(started.elapsed()),
            ms(w.holder_alive)
        );
        return ExitCode::SUCCESS;
    }
    if let Some(seconds) = args.ping_pong {
        let (trips, pong_alive) = ping_pong(Duration::from_secs(seconds));
        println!(
            "round trips: {trips} ({:.0} a second); alive: main {:.1} ms, pong {:.1} ms",
            trips as f64 / seconds as f64,
            ms(started.elapsed()),
            ms(pong_alive)
        );
        return ExitCode::SUCCESS;
    }
    if let Some(seconds) = args.phases {
        return match phases(seconds, size, args.seed) {
            Ok(sum) => {
                println!("checksum {sum:016x} ({seconds} phases of 1 s over {size} values)");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("demo: {message}");
                ExitCode::FAILURE
            }
        };
    }
    match run(args.iters, size, args.seed) {
        Ok(sum) => {
            println!(
                "checksum {sum:016x} ({} iterations of {size} values)",
                args.iters
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("demo: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Refuses a `--size` whose buffer cannot fit in memory, before allocating it.
fn check_size(size: u64) -> Result<usize, String> {
    let bytes = size.checked_mul(8).filter(|&b| b <= isize::MAX as u64);
    let limit = available_memory().unwrap_or(isize::MAX as u64);
    match bytes {
        Some(b) if b <= limit / 2 => Ok(size as usize),
        _ => Err(format!(
            "--size {size} needs {} for its buffer, but only {} of memory is available; \
             use --size {} or less",
            human_bytes(size.saturating_mul(8)),
            human_bytes(limit),
            limit / 2 / 8
        )),
    }
}

/// `MemAvailable` from /proc/meminfo, where there is one.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn human_bytes(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[inline(never)]
fn run(iters: u64, size: usize, seed: u64) -> Result<u64, String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut sum = 0u64;
    for _ in 0..iters {
        sum = sum.rotate_left(5) ^ run_iteration(&mut rng, size)?;
    }
    Ok(sum)
}

#[inline(never)]
fn run_iteration(rng: &mut SmallRng, size: usize) -> Result<u64, String> {
    let mut buffer = fill_buffer(rng, size)?;
    transform(&mut buffer);
    let encoded = encode(&buffer);
    Ok(checksum(&encoded))
}

/// A fresh allocation every iteration: that is the point of the demo.
#[inline(never)]
fn fill_buffer(rng: &mut SmallRng, size: usize) -> Result<Vec<u64>, String> {
    let mut buffer = Vec::new();
    buffer
        .try_reserve_exact(size)
        .map_err(|e| format!("cannot allocate {size} values: {e}"))?;
    buffer.extend((0..size).map(|_| rng.random::<u64>()));
    Ok(buffer)
}

#[inline(never)]
fn transform(buffer: &mut [u64]) {
    sort_blocks(buffer);
    mix_neighbours(buffer);
}

#[inline(never)]
fn sort_blocks(buffer: &mut [u64]) {
    for block in buffer.chunks_mut(BLOCK) {
        block.sort_unstable();
    }
}

#[inline(never)]
fn mix_neighbours(buffer: &mut [u64]) {
    for i in 1..buffer.len() {
        buffer[i] ^= buffer[i - 1].rotate_right(7);
    }
}

#[inline(never)]
fn encode(buffer: &[u64]) -> Vec<String> {
    buffer
        .iter()
        .step_by(ENCODE_EVERY)
        .map(|&v| encode_value(v))
        .collect()
}

#[inline(never)]
fn encode_value(value: u64) -> String {
    let mut s = String::new();
    let _ = write!(s, "{value:x}:{}", value % 1000);
    s
}

/// `seconds` phases of one second each, from the start: sorting in even
/// seconds on this thread, encoding in odd ones on a thread named `encoder`.
#[inline(never)]
fn phases(seconds: u64, size: usize, seed: u64) -> Result<u64, String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut buffer = fill_buffer(&mut rng, size)?;
    let start = Instant::now();
    let mut sum = 0u64;
    for second in 0..seconds {
        let until = start + Duration::from_secs(second + 1);
        if second % 2 == 0 {
            sum ^= sorting_phase(&mut buffer, until);
        } else {
            let taken = std::mem::take(&mut buffer);
            let encoder = std::thread::Builder::new()
                .name("encoder".into())
                .spawn(move || {
                    let sum = encoding_phase(&taken, until);
                    (taken, sum)
                })
                .map_err(|e| format!("cannot start the encoder thread: {e}"))?;
            let (taken, s) = encoder
                .join()
                .map_err(|_| "the encoder thread panicked".to_string())?;
            buffer = taken;
            sum ^= s;
        }
        sum = sum.rotate_left(5);
    }
    Ok(sum)
}

/// Sorts blocks until `until`, scrambling them between rounds.
#[inline(never)]
fn sorting_phase(buffer: &mut [u64], until: Instant) -> u64 {
    let mut key = 0x9e37_79b9_7f4a_7c15u64;
    let mut sum = 0;
    loop {
        scramble(buffer, key);
        sort_blocks(buffer);
        sum ^= buffer[0];
        key = key.rotate_left(1) ^ 1;
        if Instant::now() >= until {
            return sum;
        }
    }
}

/// Cheap next to a sort: every value changes, so the blocks are unsorted again.
#[inline(never)]
fn scramble(buffer: &mut [u64], key: u64) {
    for v in buffer {
        *v = (*v ^ key).rotate_left(13);
    }
}

/// Encodes the buffer again and again until `until`.
#[inline(never)]
fn encoding_phase(buffer: &[u64], until: Instant) -> u64 {
    let mut sum = 0;
    loop {
        sum ^= checksum(&encode(buffer));
        if Instant::now() >= until {
            return sum;
        }
    }
}

/// FNV-1a over every encoded byte.
#[inline(never)]
/// Sleeps for `wait`, then waits for a mutex that thread `holder` keeps
/// for `wait` while it computes: returns what it measured.
fn waits(wait: Duration) -> Waits {
    let slept = sleeping(wait);
    let lock = std::sync::Arc::new(std::sync::Mutex::new(0u64));
    let (taken, has_taken) = std::sync::mpsc::channel();
    let holder = {
        let lock = lock.clone();
        std::thread::Builder::new()
            .name("holder".into())
            .spawn(move || {
                let born = Instant::now();
                let held = holding(&lock, wait, &taken);
                (held, born.elapsed())
            })
            .expect("cannot start the holder thread")
    };
    let _ = has_taken.recv();
    let contended = contending(&lock);
    let (held, holder_alive) = holder.join().unwrap_or_default();
    Waits {
        slept,
        contended,
        held,
        holder_alive,
    }
}

/// What `--waits` measured: its waits, the holder's computing, and how long
/// the holder thread lived.
struct Waits {
    slept: Duration,
    contended: Duration,
    held: Duration,
    holder_alive: Duration,
}

/// Passes a token between the main thread and thread `pong` for `time`,
/// each blocking until the other answers: returns the round trips made and
/// how long `pong` lived.
fn ping_pong(time: Duration) -> (u64, Duration) {
    let (to_pong, from_ping) = std::sync::mpsc::sync_channel::<u64>(0);
    let (to_ping, from_pong) = std::sync::mpsc::sync_channel::<u64>(0);
    let pong = std::thread::Builder::new()
        .name("pong".into())
        .spawn(move || {
            let born = Instant::now();
            ponging(&from_ping, &to_ping);
            born.elapsed()
        })
        .expect("cannot start the pong thread");
    let trips = pinging(&to_pong, &from_pong, time);
    drop(to_pong);
    (trips, pong.join().unwrap_or_default())
}

#[inline(never)]
fn pinging(
    to_pong: &std::sync::mpsc::SyncSender<u64>,
    from_pong: &std::sync::mpsc::Receiver<u64>,
    time: Duration,
) -> u64 {
    let start = Instant::now();
    let mut trips = 0;
    while start.elapsed() < time {
        if to_pong.send(trips).is_err() {
            break;
        }
        match from_pong.recv() {
            Ok(n) => trips = n,
            Err(_) => break,
        }
    }
    trips
}

#[inline(never)]
fn ponging(from_ping: &std::sync::mpsc::Receiver<u64>, to_ping: &std::sync::mpsc::SyncSender<u64>) {
    while let Ok(n) = from_ping.recv() {
        if to_ping.send(n + 1).is_err() {
            break;
        }
    }
}

#[inline(never)]
fn sleeping(wait: Duration) -> Duration {
    let start = Instant::now();
    std::thread::sleep(wait);
    start.elapsed()
}

#[inline(never)]
fn holding(
    lock: &std::sync::Mutex<u64>,
    wait: Duration,
    taken: &std::sync::mpsc::Sender<()>,
) -> Duration {
    let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let _ = taken.send(());
    let start = Instant::now();
    let mut x = *guard;
    while start.elapsed() < wait {
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
    *guard = x;
    start.elapsed()
}

#[inline(never)]
fn contending(lock: &std::sync::Mutex<u64>) -> Duration {
    let start = Instant::now();
    let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let waited = start.elapsed();
    std::hint::black_box(*guard);
    waited
}

fn checksum(encoded: &[String]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in encoded.iter().flat_map(|s| s.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_checksum_and_seed_matters() {
        let a = run(3, 1000, 7).unwrap();
        assert_eq!(a, run(3, 1000, 7).unwrap());
        assert_ne!(a, run(3, 1000, 8).unwrap());
    }

    #[test]
    fn sort_blocks_sorts_each_block_only() {
        let mut v: Vec<u64> = (0..(BLOCK as u64 * 2)).rev().collect();
        sort_blocks(&mut v);
        assert!(v[..BLOCK].windows(2).all(|w| w[0] <= w[1]));
        assert!(v[BLOCK..].windows(2).all(|w| w[0] <= w[1]));
        assert!(v[0] > v[BLOCK], "blocks are sorted independently");
    }

    #[test]
    fn encode_takes_every_nth_value() {
        let v: Vec<u64> = (0..33).collect();
        let e = encode(&v);
        assert_eq!(e.len(), 3);
        assert_eq!(e[1], "10:16");
    }

    #[test]
    fn a_sorting_phase_leaves_every_block_sorted_and_ends_on_time() {
        let mut v: Vec<u64> = (0..(BLOCK as u64 * 4)).rev().collect();
        let until = Instant::now() + Duration::from_millis(50);
        sorting_phase(&mut v, until);
        assert!(Instant::now() >= until);
        assert!(v.chunks(BLOCK).all(|b| b.windows(2).all(|w| w[0] <= w[1])));
    }

    #[test]
    fn oversized_buffers_are_refused_with_the_limit() {
        let err = check_size(u64::MAX / 4).unwrap_err();
        assert!(err.contains("use --size"), "{err}");
        assert!(check_size(1000).is_ok());
    }
}
