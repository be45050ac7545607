//! The arm64 VM's threaded target (.ci/arm64-vm): three named threads, each
//! doing its own nested work for about two seconds, so that a profile shows
//! one tower per thread name, each with its own call path.
use std::hint::black_box;
use std::time::{Duration, Instant};

const RUN: Duration = Duration::from_secs(2);

fn main() {
    let workers: [(&str, fn() -> u64); 3] =
        [("hasher", hasher), ("sorter", sorter), ("allocator", allocator)];
    let handles: Vec<_> = workers
        .into_iter()
        .map(|(name, work)| {
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(work)
                .expect("spawn")
        })
        .collect();
    let sum = handles
        .into_iter()
        .fold(0u64, |s, h| s ^ h.join().expect("join"));
    println!("threads: {sum:x}");
}

#[inline(never)]
fn hasher() -> u64 {
    let start = Instant::now();
    let mut h = 0;
    while start.elapsed() < RUN {
        h ^= hash_round(h);
    }
    h
}

#[inline(never)]
fn hash_round(seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for i in 0..20_000u64 {
        h = fnv_step(h, black_box(i));
    }
    h
}

#[inline(never)]
fn fnv_step(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x0100_0000_01b3)
}

#[inline(never)]
fn sorter() -> u64 {
    let start = Instant::now();
    let mut v: Vec<u64> = (0..4096u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
    let mut s = 0;
    while start.elapsed() < RUN {
        s ^= sort_round(&mut v);
    }
    s
}

#[inline(never)]
fn sort_round(v: &mut [u64]) -> u64 {
    for x in v.iter_mut() {
        *x = x.rotate_left(17) ^ 0x5555;
    }
    sort_values(v);
    v[0]
}

#[inline(never)]
fn sort_values(v: &mut [u64]) {
    v.sort_unstable();
}

#[inline(never)]
fn allocator() -> u64 {
    let start = Instant::now();
    let mut s = 0;
    while start.elapsed() < RUN {
        s ^= alloc_round();
    }
    s
}

#[inline(never)]
fn alloc_round() -> u64 {
    let mut total = 0u64;
    for i in 0..200usize {
        let buf = make_buffer(64 + i * 13);
        total = total.wrapping_add(buf.len() as u64 + u64::from(buf[i % buf.len()]));
    }
    total
}

#[inline(never)]
fn make_buffer(len: usize) -> Vec<u8> {
    black_box(vec![len as u8; len])
}
