//! Issue 19, paths and bounds: the owner of a folder we read or write as
//! root plants symlinks, FIFOs, sparse giants, decompression bombs and
//! locks. Each test runs the real binary against one such trap and checks
//! that it neither follows, hangs, nor grows without bound; the ones that
//! record need perf (ignored unless asked for, then failing without it).

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The uid and gid of the folder owner (the attacker) in these tests.
const USER: u32 = 1234;

/// Folded stacks enough for a flamegraph.
const STACKS: &str = "main;work;leaf 40\nmain;other 20\n";

/// How a run ended: exit code (None: killed at the deadline), its output,
/// and its peak memory in MB (`wait4`'s `ru_maxrss`).
struct Ended {
    code: Option<i32>,
    log: String,
    timed_out: bool,
    peak_mb: u64,
}

/// Runs `cmd` (stdin: `input`, if any), killed after `limit`; measures the
/// peak memory of that process alone.
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives its peak memory
fn run_bounded(cmd: &mut Command, input: Option<Vec<u8>>, limit: Duration) -> Ended {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let feeder = input.map(|bytes| {
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        })
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let mut timed_out = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: plain wait4 on our own child, into locals.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let done = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if done == pid {
            break (status, usage);
        }
        if Instant::now() > deadline && !timed_out {
            timed_out = true;
            // SAFETY: a signal to our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.join().unwrap()),
        String::from_utf8_lossy(&err.join().unwrap())
    );
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let peak_mb = usage.ru_maxrss as u64 / 1024;
    eprintln!("---- {cmd:?} -> {code:?} (timed out: {timed_out}, peak {peak_mb} MB)\n{log}");
    Ended {
        code,
        log,
        timed_out,
        peak_mb,
    }
}

/// A root-owned base (0755) with a root-only victim file and folder in it.
struct Scene {
    base: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let base = tempfile::tempdir().unwrap();
        fs::set_permissions(base.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let scene = Scene { base };
        fs::write(scene.victim(), "secret").unwrap();
        fs::set_permissions(scene.victim(), fs::Permissions::from_mode(0o600)).unwrap();
        fs::create_dir(scene.victim_dir()).unwrap();
        fs::set_permissions(scene.victim_dir(), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(scene.victim_dir().join("perf.data"), "root's").unwrap();
        fs::write(scene.stacks(), STACKS).unwrap();
        scene
    }

    fn path(&self, name: &str) -> PathBuf {
        self.base.path().join(name)
    }

    fn victim(&self) -> PathBuf {
        self.path("victim")
    }

    fn victim_dir(&self) -> PathBuf {
        self.path("victim-dir")
    }

    /// Valid folded stacks, root's.
    fn stacks(&self) -> PathBuf {
        self.path("input.folded")
    }

    /// A folder `name` owned by USER.
    fn users_folder(&self, name: &str) -> PathBuf {
        let dir = self.path(name);
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(USER), Some(USER)).unwrap();
        dir
    }

    fn assert_victims_untouched(&self) {
        assert_eq!(fs::read_to_string(self.victim()).unwrap(), "secret");
        let meta = fs::symlink_metadata(self.victim()).unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o600, 0));
        let mut names: Vec<String> = fs::read_dir(self.victim_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["perf.data"], "written into the victim folder");
        assert_eq!(
            fs::read_to_string(self.victim_dir().join("perf.data")).unwrap(),
            "root's",
            "the victim folder's perf.data was touched"
        );
    }
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) {
    let _ = fs::remove_file(path);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o666),
        0,
    )
    .unwrap();
}

fn render(stacks: &Path, out: &Path) -> Command {
    let mut cmd = profiler_to(out);
    cmd.arg("--from-folded").arg(stacks);
    cmd
}

// ---- item 2: writes leave the output folder ---------------------------------

#[test]
#[ignore = "needs root: cargo test -- --include-ignored"]
fn an_svg_name_that_is_a_symlink_to_another_folder_is_not_written_through() {
    if !as_root("writing as root into a folder owned by another uid") {
        return;
    }
    let scene = Scene::new();
    let dir = scene.users_folder("out");
    std::os::unix::fs::symlink(scene.victim_dir(), dir.join("my.svg")).unwrap();
    let run = run_bounded(
        &mut render(&scene.stacks(), &dir.join("my.svg")),
        None,
        Duration::from_secs(60),
    );
    assert_eq!(run.code, Some(0), "{}", run.log);
    scene.assert_victims_untouched();
    // The symlink's name is the flamegraph's: replaced by it, beside it the rest.
    let svg = fs::symlink_metadata(dir.join("my.svg")).unwrap();
    assert!(svg.is_file(), "my.svg is still a symlink");
    assert!(dir.join("my.stacks.folded").is_file());
}

#[test]
#[ignore = "needs root: cargo test -- --include-ignored"]
fn swapping_the_output_folder_for_a_symlink_never_redirects_a_run() {
    if !as_root("writing as root into a folder owned by another uid") {
        return;
    }
    let scene = Scene::new();
    let parent = scene.users_folder("parent");
    let out = parent.join("fg");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attacker = {
        let (parent, victim_dir, stop) = (parent.clone(), scene.victim_dir(), stop.clone());
        std::thread::spawn(move || {
            use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};
            let (uid, gid) = (
                rustix::fs::Uid::from_raw(USER),
                rustix::fs::Gid::from_raw(USER),
            );
            set_thread_groups(&[gid]).unwrap();
            set_thread_res_gid(gid, gid, gid).unwrap();
            set_thread_res_uid(uid, uid, uid).unwrap();
            let (fg, away) = (parent.join("fg"), parent.join("away"));
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = fs::create_dir(&fg);
                if fs::rename(&fg, away.with_extension(swaps.to_string())).is_ok() {
                    let _ = std::os::unix::fs::symlink(&victim_dir, &fg);
                    swaps += 1;
                    std::thread::yield_now();
                    let _ = fs::remove_file(&fg);
                }
            }
            swaps
        })
    };
    for _ in 0..40 {
        run_bounded(
            &mut render(&scene.stacks(), &out),
            None,
            Duration::from_secs(60),
        );
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let swaps = attacker.join().unwrap();
    assert!(swaps > 40, "the attacker swapped {swaps} times");
    scene.assert_victims_untouched();
}

// ---- item 3: blocking and unbounded reads -------------------------------------

#[test]
fn a_fifo_or_a_sparse_giant_as_the_output_folders_cargo_toml_neither_hangs_nor_eats_memory() {
    let scene = Scene::new();
    let out = scene.path("out");
    fs::create_dir(&out).unwrap();
    mkfifo(&out.join("Cargo.toml"));
    let run = run_bounded(
        &mut render(&scene.stacks(), &out),
        None,
        Duration::from_secs(30),
    );
    assert!(!run.timed_out, "a FIFO named Cargo.toml hung the run");
    assert_eq!(run.code, Some(0), "{}", run.log);

    fs::remove_file(out.join("Cargo.toml")).unwrap();
    let giant = fs::File::create(out.join("Cargo.toml")).unwrap();
    giant.set_len(3 << 30).unwrap(); // 3 GB, no block on disk
    drop(giant);
    let run = run_bounded(
        &mut render(&scene.stacks(), &out),
        None,
        Duration::from_secs(60),
    );
    assert_eq!(run.code, Some(0), "{}", run.log);
    assert!(
        run.peak_mb < 300,
        "a sparse 3 GB Cargo.toml took {} MB",
        run.peak_mb
    );
}

#[test]
fn a_fifo_as_the_earlier_runs_stacks_is_refused_at_once() {
    let scene = Scene::new();
    let old = scene.path("old");
    fs::create_dir(&old).unwrap();
    mkfifo(&old.join("stacks.folded"));
    let out = scene.path("out");
    let run = run_bounded(
        render(&scene.stacks(), &out)
            .arg("--diff-against")
            .arg(&old),
        None,
        Duration::from_secs(30),
    );
    assert!(!run.timed_out, "a FIFO at --diff-against hung the run");
    assert_eq!(run.code, Some(1), "{}", run.log);
    assert!(run.log.contains("not a regular file"), "{}", run.log);
}

// ---- item 7: leaks and smaller holes -----------------------------------------

#[test]
#[ignore = "needs root: cargo test -- --include-ignored"]
fn diff_against_a_file_the_sudo_user_cannot_read_is_refused() {
    if !as_root("acting for a sudo user") {
        return;
    }
    let scene = Scene::new();
    let secret = scene.path("root-only.folded");
    fs::write(&secret, "main;SECRET_FUNCTION 99\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let out = scene.users_folder("out");
    let run = run_bounded(
        render(&scene.stacks(), &out)
            .arg("--diff-against")
            .arg(&secret)
            .env("SUDO_UID", USER.to_string())
            .env("SUDO_GID", USER.to_string()),
        None,
        Duration::from_secs(60),
    );
    assert!(!run.log.contains("SECRET_FUNCTION"), "{}", run.log);
    assert_eq!(run.code, Some(1), "{}", run.log);
    assert!(run.log.contains("Permission denied"), "{}", run.log);
    assert!(
        !out.join("diff.svg").exists()
            || !fs::read_to_string(out.join("diff.svg"))
                .unwrap()
                .contains("SECRET")
    );
}

#[test]
fn a_foreign_lock_on_the_output_folder_is_waited_for_a_bounded_time_and_named() {
    let scene = Scene::new();
    let out = scene.path("out");
    fs::create_dir(&out).unwrap();
    let mut holder = Command::new("flock")
        .arg(&out)
        .args(["sleep", "120"])
        .spawn()
        .expect("flock (util-linux)");
    std::thread::sleep(Duration::from_millis(300));
    let run = run_bounded(
        &mut render(&scene.stacks(), &out),
        None,
        Duration::from_secs(60),
    );
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(!run.timed_out, "a foreign lock stalled the run");
    assert_eq!(run.code, Some(6), "{}", run.log);
    assert!(
        !run.log.contains("another rust-flamegraph run"),
        "{}",
        run.log
    );
    assert!(run.log.contains("not a rust-flamegraph run"), "{}", run.log);
    assert!(run.log.contains("still locked"), "{}", run.log);
}

#[test]
fn from_folded_memory_is_bounded_by_distinct_stacks_even_from_a_pipe() {
    // 2.5 M distinct stacks, 75 MB: past the 2 M kept.
    let mut input = Vec::new();
    for i in 0..2_500_000u32 {
        writeln!(input, "main;w{};l{i} 1", i % 97).unwrap();
    }
    let scene = Scene::new();
    let run = run_bounded(
        &mut render(Path::new("/dev/stdin"), &scene.path("out")),
        Some(input),
        Duration::from_secs(300),
    );
    assert!(
        run.log.contains("more distinct stacks than the 2000000"),
        "{}",
        run.log
    );
    assert_eq!(run.code, Some(1), "{}", run.log);
    assert!(
        run.peak_mb < 600,
        "75 MB of distinct stacks took {} MB",
        run.peak_mb
    );
}

// ---- items 1, 3, 4: with a recording ----------------------------------------

/// A C program that spins ~400 ms in `hot_loop`, built in `dir` with
/// `flags`; returns its path.
fn c_program(dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    fs::write(
        &src,
        "#include <time.h>\n\
         __attribute__((noinline)) unsigned long hot_loop(void) {\n\
           unsigned long x = 1; clock_t end = clock() + CLOCKS_PER_SEC * 2 / 5;\n\
           while (clock() < end) for (int i = 0; i < 100000; i++) x = x * 6364136223846793005UL + i;\n\
           return x; }\n\
         volatile unsigned long sink;\n\
         int main(void) { sink = hot_loop(); return 0; }\n",
    )
    .unwrap();
    let exe = dir.join(name);
    let out = Command::new("gcc")
        .current_dir(dir)
        .args(flags)
        .arg("-O1")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("gcc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Records `exe` with `--keep-perf-data` into `out`; returns perf.data's path.
fn record(exe: &Path, out: &Path) -> PathBuf {
    let run = run_bounded(
        profiler_to(out)
            .args(["--keep-perf-data", "--exec", "--"])
            .arg(exe),
        None,
        Duration::from_secs(120),
    );
    assert_eq!(run.code, Some(0), "{}", run.log);
    out.join("perf.data")
}

#[test]
#[ignore = "needs root, perf and gcc: cargo test -- --include-ignored"]
fn put_aside_stacks_never_follow_a_planted_symlink_and_stay_private() {
    if !as_root("writing as root into a folder owned by another uid") || !perf_available() {
        return;
    }
    let scene = Scene::new();
    let out = scene.users_folder("out");
    // The folder's owner makes the results fail to be written…
    fs::create_dir(out.join("stacks.folded")).unwrap();
    // …and plants the put-aside names of the next minutes in $TMPDIR.
    let tmp = scene.path("tmp");
    fs::create_dir(&tmp).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for t in now - 5..now + 300 {
        let _ = std::os::unix::fs::symlink(
            scene.victim(),
            tmp.join(format!("stacks.rust-flamegraph-{t}.folded")),
        );
    }
    let exe = c_program(&scene.path(""), "spin", &["-g"]);
    let run = run_bounded(
        profiler_to(&out)
            .env("TMPDIR", &tmp)
            .args(["--exec", "--"])
            .arg(&exe),
        None,
        Duration::from_secs(120),
    );
    assert_eq!(run.code, Some(6), "{}", run.log);
    scene.assert_victims_untouched();
    let kept = run
        .log
        .split("the stacks are kept at ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no put-aside path in: {}", run.log));
    let file = fs::symlink_metadata(&kept).unwrap();
    assert!(file.is_file());
    assert_eq!(file.mode() & 0o777, 0o600, "the kept stacks' mode");
    if rust_flamegraph::sys::container::in_container() {
        // The container's /tmp goes with it: beside the results, the owner's.
        assert_eq!(kept.parent().unwrap(), out);
        assert_eq!(file.uid(), USER);
    } else {
        let folder = fs::symlink_metadata(kept.parent().unwrap()).unwrap();
        assert_eq!(folder.mode() & 0o777, 0o700, "the kept stacks' folder");
        assert!(kept.starts_with(&tmp));
    }
    assert!(fs::read_to_string(&kept).unwrap().contains("hot_loop"));
}

#[test]
#[ignore = "needs perf and gcc: cargo test -- --include-ignored"]
fn fifos_at_a_binarys_or_its_debug_files_paths_do_not_hang_rendering() {
    if !perf_available() {
        return;
    }
    let scene = Scene::new();
    let work = scene.path("work");
    fs::create_dir(&work).unwrap();
    let exe = c_program(&work, "split", &["-g", "-gsplit-dwarf"]);
    let data = record(&exe, &scene.path("rec"));
    let again = |what: &str| {
        let run = run_bounded(
            profiler_to(&scene.path("again"))
                .arg("--perfdata")
                .arg(&data),
            None,
            Duration::from_secs(60),
        );
        assert!(!run.timed_out, "a FIFO at {what} hung the rendering");
        assert_eq!(run.code, Some(0), "{what}: {}", run.log);
    };
    // The .dwo gcc wrote beside the object, and a .dwp.
    let dwo = fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "dwo"))
        .expect("gcc -gsplit-dwarf wrote a .dwo");
    mkfifo(&dwo);
    again("the .dwo");
    mkfifo(&work.join("split.dwp"));
    again("split.dwp");
    mkfifo(&exe);
    again("the binary");
}

/// Sets the `ch_size` of `exe`'s compressed `.debug_info` (ELF64, little
/// endian) to `size`.
fn claim_uncompressed_size(exe: &Path, size: u64) {
    let mut bytes = fs::read(exe).unwrap();
    let u16_at =
        |b: &[u8], at: usize| u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as usize;
    let u64_at =
        |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(&bytes, 0x28),
        u16_at(&bytes, 0x3a),
        u16_at(&bytes, 0x3c),
        u16_at(&bytes, 0x3e),
    );
    let header = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(&bytes, header(shstrndx) + 0x18);
    let section = (0..shnum)
        .find(|&i| {
            let name = u32::from_le_bytes(bytes[header(i)..header(i) + 4].try_into().unwrap());
            bytes[strtab + name as usize..].starts_with(b".debug_info\0")
        })
        .expect(".debug_info");
    let flags = u64_at(&bytes, header(section) + 8);
    assert!(flags & 0x800 != 0, ".debug_info is SHF_COMPRESSED");
    let offset = u64_at(&bytes, header(section) + 0x18);
    // Elf64_Chdr: ch_type (4), reserved (4), ch_size (8), ch_addralign (8).
    bytes[offset + 8..offset + 16].copy_from_slice(&size.to_le_bytes());
    fs::write(exe, bytes).unwrap();
}

#[test]
#[ignore = "needs perf and gcc: cargo test -- --include-ignored"]
fn a_decompression_bomb_is_named_from_its_symbols_within_bounded_memory() {
    if !perf_available() {
        return;
    }
    let scene = Scene::new();
    let exe = c_program(&scene.path(""), "bomb", &["-g", "-gz=zlib"]);
    claim_uncompressed_size(&exe, 1_500_000_000);
    let data = record(&exe, &scene.path("rec"));
    let run = run_bounded(
        profiler_to(&scene.path("again"))
            .arg("--perfdata")
            .arg(&data),
        None,
        Duration::from_secs(120),
    );
    assert_eq!(run.code, Some(0), "{}", run.log);
    assert!(
        run.peak_mb < 400,
        "a binary claiming 1.5 GB of DWARF took {} MB",
        run.peak_mb
    );
    assert_eq!(
        run.log.matches("its DWARF is skipped").count(),
        1,
        "one warning: {}",
        run.log
    );
    let folded = fs::read_to_string(scene.path("again").join("stacks.folded")).unwrap();
    assert!(folded.contains("hot_loop"), "named from its symbol table");
}
