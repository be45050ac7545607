//! Shared by the end-to-end tests: finding the tools they need (a test that
//! needs one is `#[ignore = "needs …"]`, and fails without it when run), and
//! checking results.
#![allow(dead_code)] // each test binary uses part of this

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rust_flamegraph::sys::proc;

/// Demo arguments for a run short enough for tests, long enough for ~200 samples.
pub const SMALL_RUN: &[&str] = &["--", "--iters", "300", "--size", "50000"];

/// The workspace root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The profiler under test, started in the workspace root (where it profiles
/// the demo by default), deaf to the `RUST_FLAMEGRAPH_*` variables the image
/// sets, so that a developer's environment cannot change what a test runs.
pub fn profiler() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rust-flamegraph"));
    cmd.current_dir(repo());
    for var in [
        "RUST_FLAMEGRAPH_OUT",
        "RUST_FLAMEGRAPH_MANIFEST",
        "RUST_FLAMEGRAPH_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// [`profiler`] writing its results into `out`.
pub fn profiler_to(out: &Path) -> Command {
    let mut cmd = profiler();
    cmd.arg("--out").arg(out);
    cmd
}

/// The demo binary as the profiler builds it (`--build-only`, once per test
/// binary), at the path the profiler reports: tests that run it themselves
/// (`--exec`, `--pid`) then profile the very build a default run would.
pub fn demo_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let build = run(profiler().arg("--build-only"));
            let log = text(&build);
            assert!(build.status.success(), "{log}");
            let path = log
                .lines()
                .find_map(|l| l.strip_prefix("rust-flamegraph: the program is "))
                .unwrap_or_else(|| panic!("--build-only did not say what it built: {log}"));
            let path = PathBuf::from(path.trim());
            assert!(path.is_file(), "{} was not built: {log}", path.display());
            path
        })
        .clone()
}

/// The `(frames, count)` of each line of folded stacks the profiler wrote;
/// panics on a line that is not one.
pub fn stacks(folded: &str) -> Vec<(&str, u64)> {
    folded
        .lines()
        .map(|l| {
            rust_flamegraph::model::folded::parse_line(l)
                .unwrap_or_else(|| panic!("not a folded stack: {l:?}"))
        })
        .collect()
}

/// All samples of folded stacks.
pub fn total_samples(folded: &str) -> u64 {
    stacks(folded).iter().map(|&(_, count)| count).sum()
}

/// The ignored tests were asked for (`cargo test -- --include-ignored` or
/// `-- --ignored`, as CI runs them), or `CI=true`.
pub fn asked_for_everything() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::args().any(|a| a == "--include-ignored" || a == "--ignored")
}

/// How to get `what`, as a test names it to [`require`].
fn fix_for(what: &str) -> &'static str {
    const FIXES: &[(&str, &str)] = &[
        (
            "perf",
            "apt-get install linux-perf (Debian; linux-tools-$(uname -r) on Ubuntu), \
             and without root: sysctl kernel.perf_event_paranoid=1",
        ),
        (
            "a Docker engine",
            "apt-get install docker.io, start it, and let this user use it",
        ),
        ("Podman", "apt-get install podman"),
        ("podman-compose", "apt-get install podman-compose"),
        (
            "headless Chromium",
            "apt-get install chromium-headless-shell (or chromium), or set CHROMIUM",
        ),
        (
            "chromium and chromedriver",
            "apt-get install chromium chromium-driver",
        ),
        ("go ", "apt-get install golang-go"),
        ("objdump", "apt-get install binutils"),
        ("git", "apt-get install git"),
        (
            "the Debian archive",
            "network access to deb.debian.org from a container",
        ),
        (
            "a private mount namespace",
            "run as root, with util-linux's unshare and a rustup toolchain",
        ),
    ];
    FIXES
        .iter()
        .find(|(name, _)| what == name.trim_end() || what.starts_with(name))
        .map_or("install it", |(_, fix)| fix)
}

/// `Err(reason)` from a probe fails the test, naming `what` is missing and
/// how to get it: never a pass. A test that needs a tool is
/// `#[ignore = "needs …"]`, so that `cargo test` lists it as ignored and
/// `cargo test -- --include-ignored` (what CI runs) runs it; so it gets here
/// without the tool only when asked for.
pub fn require(what: &str, probe: Result<(), String>) -> bool {
    match probe {
        Ok(()) => true,
        Err(reason) => unavailable(what, &reason, fix_for(what)),
    }
}

/// Fails the test: `what` is missing (`reason`), and `fix` gets it.
fn unavailable(what: &str, reason: &str, fix: &str) -> ! {
    if asked_for_everything() {
        panic!(
            "{what} is required by this test but unavailable: {reason}\n\
             Fix: {fix}. Or leave out the tests that need it: plain `cargo test` \
             lists them as ignored."
        );
    }
    // Run without --include-ignored, yet needing a tool: the test lacks its
    // `#[ignore = "needs …"]`. A test that did not run must not pass.
    loud(&format!(
        "{what} is unavailable ({reason}); this test did not run"
    ));
    panic!(
        "{what} is unavailable ({reason}), and this test is not marked \
         #[ignore = \"needs {what}: cargo test -- --include-ignored\"]: mark it so. \
         Fix: {fix}."
    )
}

/// Prints past the test harness's capture (it captures `eprintln!`, not the
/// stderr handle), so that a note shows in a passing run.
pub fn loud(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n!!!! {message} !!!!\n");
}

/// Debian's `go` answers (`go tool pprof` is part of it).
pub fn go_available() -> bool {
    let probe = Command::new("go")
        .arg("version")
        .output()
        .map_err(|e| format!("cannot run go: {e} (apt-get install golang-go)"))
        .and_then(|o| {
            o.status
                .success()
                .then_some(())
                .ok_or_else(|| String::from_utf8_lossy(&o.stderr).into_owned())
        });
    require("go (Debian's golang-go, for `go tool pprof`)", probe)
}

/// perf is installed and may sample here.
pub fn perf_available() -> bool {
    require(
        "perf",
        rust_flamegraph::record::perf::Perf::locate()
            .and_then(|_| rust_flamegraph::record::perf::check_permission())
            .map_err(|e| format!("{e:#}")),
    )
}

/// A Docker engine answers.
pub fn docker_available() -> bool {
    let probe = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))
        .and_then(|o| {
            if o.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
            }
        });
    require("a Docker engine", probe)
}

/// The image the end-to-end tests run: `rust-flamegraph`, built from this
/// tree, or `$RUST_FLAMEGRAPH_TEST_IMAGE` (used as it is).
pub fn image() -> String {
    std::env::var("RUST_FLAMEGRAPH_TEST_IMAGE").unwrap_or_else(|_| "rust-flamegraph".into())
}

/// A Docker engine answers and [`image`] is ready: built from this tree
/// (cached layers make that quick after the first time; the base image is
/// made locally by `.ci/base-image`, as there is no registry here), unless
/// `$RUST_FLAMEGRAPH_TEST_IMAGE` names one, which must then exist. Once per
/// test binary.
pub fn image_ready() -> bool {
    static READY: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    if !docker_available() {
        return false;
    }
    let ready = READY.get_or_init(|| {
        let image = image();
        if std::env::var_os("RUST_FLAMEGRAPH_TEST_IMAGE").is_some() {
            let inspect = run(Command::new("docker").args(["image", "inspect", &image]));
            return match inspect.status.success() {
                true => Ok(()),
                false => Err(format!("no image {image}: {}", text(&inspect))),
            };
        }
        let base = run(Command::new("bash").arg(repo().join(".ci/base-image")));
        if !base.status.success() {
            return Err(format!("creating the base image failed: {}", text(&base)));
        }
        let build = run(Command::new("docker")
            .args(["build", "-q", "-t", &image, "."])
            .current_dir(repo()));
        match build.status.success() {
            true => Ok(()),
            false => Err(format!("docker build failed: {}", text(&build))),
        }
    });
    match ready {
        Ok(()) => true,
        Err(e) => panic!("{e}"),
    }
}

/// A committed fixture unpacked into `dir`: each `NAME.gz` under `from`
/// (folders too) written to `dir` as `NAME`; other files are left out.
pub fn unpack_gz(from: &Path, dir: &Path) {
    use std::io::Read;
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let path = entry.path();
        if path.is_dir() {
            std::fs::create_dir_all(dir.join(&name)).unwrap();
            unpack_gz(&path, &dir.join(&name));
        } else if let Some(name) = name.strip_suffix(".gz") {
            let mut bytes = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
                .read_to_end(&mut bytes)
                .unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

/// Runs a command, returning its output; panics only if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    eprintln!(
        "---- {cmd:?} -> {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// stderr (and stdout) of a run, as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts that a run exited with `code` and said each of `says` (on stdout or stderr).
pub fn assert_exit(out: &Output, code: i32, says: &[&str]) {
    let log = text(out);
    assert_eq!(out.status.code(), Some(code), "{log}");
    for s in says {
        assert!(log.contains(s), "should say {s:?}: {log}");
    }
}

/// Parses `svg` as XML from start to end; panics at the first error.
pub fn assert_well_formed_xml(svg: &str) {
    let mut reader = quick_xml::Reader::from_str(svg);
    let mut elements = 0;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(_)) => elements += 1,
            Ok(_) => {}
            Err(e) => panic!(
                "SVG is not well-formed XML at {}: {e}",
                reader.buffer_position()
            ),
        }
    }
    assert!(elements > 10, "SVG has only {elements} elements");
}

/// Checks a profile of the demo: the SVG is well-formed and shows the demo's
/// nested frames with the sample count of the folded stacks; most samples are
/// under the demo's `main`. Returns the sample count.
pub fn assert_demo_profile(out: &Path) -> u64 {
    let folded = std::fs::read_to_string(out.join("stacks.folded")).expect("stacks.folded written");
    let mut total = 0;
    let mut under_main = 0;
    for (stack, count) in stacks(&folded) {
        total += count;
        if stack.contains(";demo::main;demo::run;demo::run_iteration") {
            under_main += count;
        }
    }
    assert!(total >= 20, "only {total} samples");
    assert!(
        under_main * 100 >= total * 70,
        "only {under_main} of {total} samples under demo::main → run → run_iteration"
    );
    let nested = folded.lines().any(|l| {
        l.contains("demo::main;demo::run;demo::run_iteration;demo::transform;demo::sort_blocks")
    });
    assert!(
        nested,
        "no main→run→run_iteration→transform→sort_blocks stack:\n{folded}"
    );
    let svg = std::fs::read_to_string(out.join("flamegraph.svg")).expect("flamegraph.svg written");
    assert_well_formed_xml(&svg);
    for name in [
        "demo::run_iteration",
        "demo::fill_buffer",
        "demo::sort_blocks",
        "demo::encode",
    ] {
        assert!(svg.contains(name), "{name} missing from the SVG");
    }
    assert!(
        svg.contains(&format!("{total} samples")),
        "SVG does not show {total} samples"
    );
    // A recording's report.html carries its heatmap: cells of the timeline,
    // and the demo's functions among its frames.
    if let Ok(page) = std::fs::read_to_string(out.join("report.html")) {
        let cells = page.split("\"cells\":[").nth(1).unwrap_or("");
        assert!(
            cells.starts_with(|c: char| c.is_ascii_digit()),
            "report.html has no heatmap cells"
        );
        assert!(
            page.contains("demo::sort_blocks"),
            "sort_blocks missing from report.html"
        );
    }
    total
}

/// A hot function that spins for `ms` milliseconds of its thread's CPU time
/// (wall time where `/proc` does not tell) under its own name (its own
/// constant, so that the compiler cannot merge it with another). CPU time,
/// because perf samples CPU time: a loaded machine stretches the spin but
/// does not shrink its share of the samples.
pub fn spin(name: &str, ms: u64) -> String {
    let salt: u64 = name.bytes().map(u64::from).sum();
    format!(
        r#"
#[inline(never)]
pub fn {name}() -> u64 {{
    fn cpu_ns() -> Option<u64> {{
        let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        stat.split_whitespace().next()?.parse().ok()
    }}
    let (wall, cpu) = (std::time::Instant::now(), cpu_ns());
    let mut x = 1u64;
    loop {{
        let spent_ms = match (cpu, cpu_ns()) {{
            (Some(start), Some(now)) => now.saturating_sub(start) / 1_000_000,
            _ => wall.elapsed().as_millis() as u64,
        }};
        if spent_ms >= {ms} {{
            return x;
        }}
        for i in 0..1_000_000u64 {{
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i ^ {salt}));
        }}
    }}
}}
"#
    )
}

pub fn write(root: &Path, files: &[(&str, String)]) {
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// Running as root (needed to chown folders and act as another user), for
/// `what`; otherwise a failure, as [`require`]'s.
pub fn as_root(what: &str) -> bool {
    if !rustix::process::geteuid().is_root() {
        let what = match what.starts_with("root") {
            true => what.to_string(),
            false => format!("root ({what})"),
        };
        unavailable(
            &what,
            "not running as root",
            "run the tests as root: sudo -E cargo test -- --include-ignored",
        );
    }
    true
}

/// The names in `dir`, sorted, but for the markers an output folder of ours
/// gets (`rust_flamegraph::artifacts::MARKERS`): they are not results.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !rust_flamegraph::artifacts::MARKERS
                .iter()
                .any(|(m, _)| m == n)
        })
        .collect();
    v.sort();
    v
}

/// What quick-xml does not check but every browser does: each character is
/// one XML 1.0 allows (no control characters but tab and line breaks, no
/// U+FFFE/U+FFFF), and each `&` outside CDATA and comments starts a predefined
/// entity or a character reference to such a character. A browser refuses the
/// whole SVG otherwise ("Invalid character U+0007"). Panics at the first fault.
pub fn assert_xml_chars(svg: &str) {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
            || c >= '\u{10000}'
    };
    if let Some((at, c)) = svg.char_indices().find(|&(_, c)| !allowed(c)) {
        panic!(
            "SVG holds {c:?} (U+{:04X}), which XML forbids, at byte {at}: …{}…",
            c as u32,
            excerpt_around(svg, at)
        );
    }
    let mut rest = svg;
    let mut offset = 0;
    while let Some(i) = rest.find(['&', '<']) {
        let tail = &rest[i..];
        let skip = if let Some(section) = tail.strip_prefix("<![CDATA[") {
            9 + section.find("]]>").expect("unterminated CDATA") + 3
        } else if let Some(comment) = tail.strip_prefix("<!--") {
            4 + comment.find("-->").expect("unterminated comment") + 3
        } else if tail.starts_with('&') {
            let end = tail
                .find(';')
                .unwrap_or_else(|| panic!("bare & at byte {}", offset + i));
            let name = &tail[1..end];
            let ok = match name.strip_prefix('#') {
                Some(num) => num
                    .strip_prefix('x')
                    .map_or_else(
                        || num.parse::<u32>().ok(),
                        |h| u32::from_str_radix(h, 16).ok(),
                    )
                    .and_then(char::from_u32)
                    .is_some_and(allowed),
                None => ["lt", "gt", "amp", "quot", "apos"].contains(&name),
            };
            assert!(
                ok,
                "SVG has a reference &{name}; that no browser resolves, at byte {}",
                offset + i
            );
            end + 1
        } else {
            1
        };
        rest = &tail[skip..];
        offset += i + skip;
    }
}

fn excerpt_around(s: &str, at: usize) -> String {
    let mut start = at.saturating_sub(40);
    while !s.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + 40).min(s.len());
    while !s.is_char_boundary(end) {
        end += 1;
    }
    format!("{:?}", &s[start..end])
}

/// The SVG opens in a browser: well-formed ([`assert_well_formed_xml`]) and
/// made of characters XML allows ([`assert_xml_chars`]).
pub fn assert_svg_parses(svg: &str) {
    assert_well_formed_xml(svg);
    assert_xml_chars(svg);
}

/// The children of `pid` (of all its threads), from /proc.
pub fn children_of(pid: u32) -> Vec<u32> {
    rust_flamegraph::sys::proc::children(pid)
}

/// A process, told apart from a later one that reuses its pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    start: u64,
}

impl Proc {
    pub fn of(pid: u32) -> Option<Proc> {
        let start = proc::stat(pid)?.start;
        Some(Proc { pid, start })
    }

    /// Its command name (`comm`), while it lives.
    pub fn comm(&self) -> Option<String> {
        if self.gone() {
            return None;
        }
        proc::comm(self.pid).map(|s| s.trim().to_string())
    }

    /// Exited (a zombie counts: it runs no more) or replaced.
    pub fn gone(&self) -> bool {
        proc::stat(self.pid).is_none_or(|st| st.exited() || st.start != self.start)
    }
}

/// Polls `cond` every 20 ms for up to `limit`; whether it came true.
pub fn wait_until(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// SIGKILLs a process group when dropped: a failing test must not leave a
/// profiler, perf or a spinning workload behind.
pub struct KillGroupOnDrop(pub u32);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if let Some(pgid) = rustix::process::Pid::from_raw(self.0 as i32) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }
}

/// The demo's waits, as it measured them (`--waits`): the lines
/// `waited: sleep X ms, mutex Y ms` and
/// `computed: holding H ms; alive: main M ms, holder L ms`.
#[derive(Debug, Clone, Copy)]
pub struct DemoWaits {
    /// Milliseconds `demo::sleeping` slept.
    pub slept: f64,
    /// Milliseconds `demo::contending` waited for the mutex.
    pub contended: f64,
    /// Milliseconds thread `holder` lived (computing while it held the mutex).
    pub holder_alive: f64,
}

/// The demo's own measurement of its `--waits`, from its stdout.
pub fn demo_waits(stdout: &str) -> DemoWaits {
    let after = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest.to_string()))
            .unwrap_or_else(|| panic!("the demo prints {prefix:?}: {stdout}"))
    };
    let ms = |text: &str| -> f64 {
        let number = text.split(" ms").next().unwrap().trim();
        number
            .parse()
            .unwrap_or_else(|e| panic!("{number:?} is not milliseconds ({e}): {stdout}"))
    };
    let waited = after("waited: sleep ");
    let (sleep, mutex) = waited.split_once(" ms, mutex ").unwrap();
    DemoWaits {
        slept: ms(sleep),
        contended: ms(mutex),
        holder_alive: ms(&after(", holder ")),
    }
}

/// Milliseconds of the folded stacks (nanoseconds, as `--off-cpu` writes
/// them) through `function` that end in `leaf`.
pub fn waited_ms(folded: &str, function: &str, leaf: &str) -> f64 {
    stacks(folded)
        .iter()
        .filter(|(frames, _)| frames.contains(function) && frames.ends_with(leaf))
        .map(|&(_, ns)| ns as f64 / 1e6)
        .sum()
}

/// Milliseconds of all the folded stacks through `function`.
pub fn ms_through(folded: &str, function: &str) -> f64 {
    stacks(folded)
        .iter()
        .filter(|(frames, _)| frames.split(';').any(|f| f == function))
        .map(|&(_, ns)| ns as f64 / 1e6)
        .sum()
}

/// The frames an SVG draws: `(name, fg:x, fg:w, y)`, `fg:` in the counts of
/// the stacks (nanoseconds with `--off-cpu`), `y` growing towards the roots.
pub fn svg_frames(svg: &str) -> Vec<(String, u64, u64, f64)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        Some(tag[start..].split('"').next()?.to_string())
    };
    svg.split("<g><title>")
        .skip(1)
        .filter_map(|g| {
            let (title, rest) = g.split_once("</title>")?;
            let name = title.rsplit_once(" (").map_or(title, |(n, _)| n);
            let rect = &rest[..rest.find("/>")?];
            Some((
                name.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&"),
                attr(rect, "fg:x")?.parse().ok()?,
                attr(rect, "fg:w")?.parse().ok()?,
                attr(rect, "y")?.parse().ok()?,
            ))
        })
        .collect()
}

/// Milliseconds the SVG draws as `leaf` frames above (called by) a frame
/// named `ancestor`: the picture, not only the folded stacks, puts the wait
/// under the function that waited.
pub fn svg_ms_under(svg: &str, ancestor: &str, leaf: &str) -> f64 {
    let frames = svg_frames(svg);
    frames
        .iter()
        .filter(|(name, ..)| name == leaf)
        .filter(|&&(_, x, w, y)| {
            frames.iter().any(|(name, ax, aw, ay)| {
                name == ancestor && *ay > y && *ax <= x && x + w <= ax + aw
            })
        })
        .map(|&(_, _, w, _)| w as f64 / 1e6)
        .sum()
}

/// Held by the recordings that must not share the machine with each other
/// (within one test binary; cargo runs the binaries one after another): the
/// off-CPU ones, whose perf loses records when another recording (the
/// ping-pong's hundreds of thousands of switches a second) keeps both cores
/// busy. A test that panicked while holding it does not poison the others.
pub fn quiet() -> std::sync::MutexGuard<'static, ()> {
    static QUIET: std::sync::Mutex<()> = std::sync::Mutex::new(());
    QUIET.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `attempt`, an `--off-cpu` recording, until perf loses no records
/// (the summary says `none lost`), at most three times: a recording perf
/// lost records of (its buffer was full: a machine busy with other
/// recordings) is incomplete, and checking it against the truth would test
/// the machine's load. Panics, saying so, when all three lost some.
pub fn with_no_records_lost(mut attempt: impl FnMut() -> Output) -> Output {
    let _quiet = quiet();
    for n in 1..=3 {
        let out = attempt();
        let log = text(&out);
        if !out.status.success() || log.contains("(none lost)") {
            return out;
        }
        loud(&format!(
            "NOTE: perf lost records in attempt {n} (its buffer was full): recording again"
        ));
    }
    panic!(
        "perf lost records in each of 3 recordings (its buffer was full): this machine is too \
         busy for a complete off-CPU recording"
    )
}

/// Checks an `--off-cpu` profile of `demo --waits MS` in `out` against the
/// demo's own measurement (`stdout`), of a recording perf lost no records
/// of (see [`with_no_records_lost`]): the sleep and the mutex wait, each
/// ending in the frame that says why, under the demo function that waited,
/// within 10 % of what the demo measured, in stacks.folded and in the SVG;
/// the holder's whole life (on the CPU, or preempted) within 10 % of it too.
pub fn assert_off_cpu_demo_profile(out: &Path, stdout: &str) {
    let truth = demo_waits(stdout);
    let folded = std::fs::read_to_string(out.join("stacks.folded")).expect("stacks.folded written");
    let svg = std::fs::read_to_string(out.join("flamegraph.svg")).expect("flamegraph.svg written");
    assert_svg_parses(&svg);
    let near = |got: f64, truth: f64| (got - truth).abs() < truth / 10.0;
    for (function, leaf, measured) in [
        ("demo::sleeping", "[off-cpu: sleep]", truth.slept),
        ("demo::contending", "[off-cpu: futex]", truth.contended),
    ] {
        let in_folded = waited_ms(&folded, function, leaf);
        assert!(
            near(in_folded, measured),
            "{leaf} under {function}: {in_folded:.1} ms in stacks.folded, the demo measured \
             {measured:.1} ms\n{folded}"
        );
        let in_svg = svg_ms_under(&svg, function, leaf);
        assert!(
            near(in_svg, measured),
            "{leaf} under {function}: {in_svg:.1} ms drawn in the SVG, the demo measured \
             {measured:.1} ms"
        );
    }
    // The holder's running time comes from clock samples, whose count a
    // loaded machine can cut short without perf saying it lost any (CI saw
    // 269.3 ms of a 300.1 ms life under Podman, "none lost"): 15 % there;
    // the waits above are timed by switch records, to the microsecond.
    let holder = ms_through(&folded, "demo::holding");
    assert!(
        (holder - truth.holder_alive).abs() < truth.holder_alive * 0.15,
        "thread holder: {holder:.1} ms on and off the CPU, it lived {:.1} ms\n{folded}",
        truth.holder_alive
    );
}
