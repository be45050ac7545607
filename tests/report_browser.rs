//! report.html in a real browser: headless Chromium driven through
//! chromedriver (WebDriver), with real mouse drags, clicks and typing.
//!
//! What the page shows is checked against counts made here, independently of
//! the profiler's post-processing: the test reads the kept perf.data itself
//! (`--keep-perf-data`), takes each sample's time and thread name, and
//! counts the samples that fall in the selected 20 ms cells.
//!
//! Needs Debian's `chromium` and `chromium-driver` (and perf for the
//! recorded runs): ignored unless asked for, then failing without them.
//! `UPDATE_SCREENSHOT=1` writes docs/report.png, the picture in docs/report.md.

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use linux_perf_data::linux_perf_event_reader::EventRecord;
use linux_perf_data::{PerfFileReader, PerfFileRecord};
use serde_json::{json, Value};

/// One heatmap cell, as the page draws it.
const CELL_NS: u64 = 20_000_000;
const ROWS: u64 = 50;

/// A chromedriver this test started, in a process group of its own with the
/// browsers it starts: the group is ended when dropped, so that a failing
/// test (which never closes its session) leaves no browser behind.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the group this test created for chromedriver.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn runs(program: &str) -> Result<(), String> {
    match Command::new(program).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("`{program} --version` failed: {}", o.status)),
        Err(e) => Err(format!(
            "cannot run {program} ({e}): apt-get install chromium chromium-driver"
        )),
    }
}

/// Starts chromedriver on a free port, or skips (loudly) without one.
fn driver() -> Option<Driver> {
    let probe = runs("chromium").and_then(|_| runs("chromedriver"));
    if !require("chromium and chromedriver", probe) {
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}/"),
    };
    let up = wait_until(Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "chromedriver did not listen on port {port} within 20 s");
    Some(driver)
}

/// A headless Chromium session, 1100×800, keeping the console log.
async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1100,800",
            "--hide-scrollbars",
        ]}),
    );
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromedriver session")
}

/// chromedriver's browser log (the console), a command WebDriver lacks.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// Opens `page` from file:// and waits for its script to draw.
async fn open(client: &Client, page: &Path) {
    client
        .goto(&format!("file://{}", page.display()))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client
            .execute("return document.body.getAttribute('data-ready');", vec![])
            .await
            .unwrap();
        if ready == json!("1") {
            break;
        }
        if Instant::now() > deadline {
            assert_clean(client).await;
            panic!("{} did not finish drawing within 60 s", page.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// No console errors and no request beyond the page itself.
async fn assert_clean(client: &Client) {
    let log = client.issue_cmd(BrowserLog).await.unwrap();
    let errors: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let requests = client
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(requests, json!([]), "the page fetched something");
}

async fn text_of(client: &Client, id: &str) -> String {
    client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Samples in the flamegraph drawn now.
async fn flame_total(client: &Client) -> u64 {
    text_of(client, "flame-total").await.parse().unwrap()
}

/// The selected cells, as the page says.
async fn selection(client: &Client) -> Option<(u64, u64)> {
    let sel = client
        .execute("return document.body.getAttribute('data-sel');", vec![])
        .await
        .unwrap();
    let (a, b) = sel.as_str()?.split_once(',')?;
    Some((a.parse().unwrap(), b.parse().unwrap()))
}

/// Where the page draws cells: `(x, y, column width, row height)`, viewport pixels.
async fn geometry(client: &Client) -> (f64, f64, f64, f64) {
    let g = client
        .execute("return window.report.geometry();", vec![])
        .await
        .unwrap();
    let f = |k: &str| g[k].as_f64().unwrap();
    (f("x"), f("y"), f("colW"), f("rowH"))
}

/// The middle of cell `cell` (column-major: a column is a second).
async fn cell_point(client: &Client, cell: u64) -> (f64, f64) {
    let (x, y, w, h) = geometry(client).await;
    let (col, row) = (cell / ROWS, cell % ROWS);
    (x + col as f64 * w + w / 2.0, y + row as f64 * h + h / 2.0)
}

/// Presses the mouse on cell `from`, moves to cell `to` and releases it.
async fn drag(client: &Client, from: u64, to: u64) {
    let (x0, y0) = cell_point(client, from).await;
    let (x1, y1) = cell_point(client, to).await;
    let mouse = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo {
            duration: None,
            x: x0,
            y: y0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveTo {
            duration: Some(Duration::from_millis(150)),
            x: x1,
            y: y1,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    client.perform_actions(mouse).await.unwrap();
}

/// Clicks cell `cell` (selecting its whole second).
async fn click_cell(client: &Client, cell: u64) {
    drag(client, cell, cell).await;
}

/// Types `term` into the search box; returns the samples it matched.
async fn search(client: &Client, term: &str) -> u64 {
    let input = client.find(Locator::Id("search")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(term).await.unwrap();
    let matched = client.find(Locator::Id("matched")).await.unwrap();
    matched
        .attr("data-samples")
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no match count after typing {term:?}"))
        .parse()
        .unwrap()
}

/// Chooses thread `name` in the thread filter (by clicking its option).
async fn choose_thread(client: &Client, name: &str) {
    client
        .find(Locator::Id("thread"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for option in client
        .find_all(Locator::Css("#thread option"))
        .await
        .unwrap()
    {
        let label = option.text().await.unwrap();
        if label.starts_with(&format!("{name} (")) || (name == "all" && label == "all threads") {
            option.click().await.unwrap();
            return;
        }
    }
    panic!("no thread {name:?} in the filter");
}

/// A recorded run, with each sample's cell and thread read from perf.data.
struct Recorded {
    out: PathBuf,
    /// `(cell, thread name)` of every sample.
    samples: Vec<(u64, String)>,
}

impl Recorded {
    /// Samples in cells `a..=b`, on `thread` if given.
    fn count(&self, a: u64, b: u64, thread: Option<&str>) -> u64 {
        self.samples
            .iter()
            .filter(|(c, t)| (a..=b).contains(c) && thread.is_none_or(|n| n == t))
            .count() as u64
    }
}

/// Each sample's time and its thread's name at that time, straight from the
/// recording.
fn read_samples(data: &Path) -> Vec<(u64, String)> {
    let file = std::io::BufReader::new(std::fs::File::open(data).unwrap());
    let PerfFileReader {
        mut perf_file,
        mut record_iter,
    } = PerfFileReader::parse_file(file).unwrap();
    let mut comms: HashMap<i32, String> = HashMap::new();
    let mut timed = Vec::new();
    while let Some(record) = record_iter.next_record(&mut perf_file).unwrap() {
        let PerfFileRecord::EventRecord { record, .. } = record else {
            continue;
        };
        match record.parse().unwrap() {
            EventRecord::Comm(c) => {
                let name = String::from_utf8_lossy(&c.name.as_slice()).into_owned();
                comms.insert(c.tid, name);
            }
            EventRecord::Sample(s) => {
                let (Some(pid), Some(tid)) = (s.pid, s.tid) else {
                    continue;
                };
                let name = comms
                    .get(&tid)
                    .or_else(|| comms.get(&pid))
                    .cloned()
                    .unwrap_or_else(|| "[unknown]".into());
                timed.push((s.timestamp.expect("perf records sample times"), name));
            }
            _ => {}
        }
    }
    let t0 = timed.iter().map(|s| s.0).min().expect("samples");
    timed
        .into_iter()
        .map(|(t, name)| ((t - t0) / CELL_NS, name))
        .collect()
}

/// The demo profiled with `--phases 4` (sorting in seconds 0 and 2 on
/// thread `demo`, encoding in 1 and 3 on thread `encoder`), once per test
/// binary; `None` (a loud skip) without perf.
fn phases_run() -> Option<&'static Recorded> {
    static RUN: OnceLock<Option<Recorded>> = OnceLock::new();
    RUN.get_or_init(|| {
        if !perf_available() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap().keep();
        let out = dir.join("out");
        let result = run(profiler_to(&out).args(["--keep-perf-data", "--", "--phases", "4"]));
        assert_exit(&result, 0, &["report.html"]);
        let samples = read_samples(&out.join("perf.data"));
        let folded = std::fs::read_to_string(out.join("stacks.folded")).unwrap();
        assert_eq!(
            samples.len() as u64,
            total_samples(&folded),
            "perf.data and stacks.folded hold the same samples"
        );
        Some(Recorded { out, samples })
    })
    .as_ref()
}

fn page(run: &Recorded) -> PathBuf {
    run.out.join("report.html")
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Chromium, chromedriver and perf: cargo test -- --include-ignored"]
async fn a_selection_shows_exactly_the_samples_of_its_cells() {
    let Some(driver) = driver() else { return };
    let Some(run) = phases_run() else { return };
    let client = browser(&driver).await;
    open(&client, &page(run)).await;
    let all = run.samples.len() as u64;
    assert_eq!(selection(&client).await, None);
    assert_eq!(flame_total(&client).await, all, "the whole run at first");
    // The page's summary of the whole run is the one printed after the run.
    let folded = std::fs::read_to_string(run.out.join("stacks.folded")).unwrap();
    let summary = rust_flamegraph::output::summary::Summary::from_folded(&folded, 10);
    let table = text_of(&client, "summary").await;
    let complete = format!("{:.1} %", summary.complete_share());
    assert!(table.contains(&complete), "{complete}: {table}");
    let first = client
        .find(Locator::Css("#top-self tbody tr"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (name, count) = &summary.hottest[0];
    assert!(
        first.ends_with(&format!(" {count} {name}")),
        "{first} against {name} {count}"
    );

    // Across a column boundary, backwards: cells 1.2 s … 2.6 s.
    let (a, b) = (ROWS + 10, 2 * ROWS + 30);
    drag(&client, b, a).await;
    assert_eq!(selection(&client).await, Some((a, b)));
    let expected = run.count(a, b, None);
    // ~1400 on an idle machine; a loaded one runs the demo less.
    assert!(expected > 100, "{expected} samples in 1.4 s");
    assert_eq!(flame_total(&client).await, expected);

    // A click selects its column's second.
    click_cell(&client, 2 * ROWS + 7).await;
    assert_eq!(selection(&client).await, Some((2 * ROWS, 3 * ROWS - 1)));
    assert_eq!(
        flame_total(&client).await,
        run.count(2 * ROWS, 3 * ROWS - 1, None)
    );

    // A two-cell drag inside a second: a few samples, exactly.
    drag(&client, 3 * ROWS + 20, 3 * ROWS + 21).await;
    assert_eq!(
        flame_total(&client).await,
        run.count(3 * ROWS + 20, 3 * ROWS + 21, None)
    );

    // Zoom, in a second that has samples: clicking a frame (the thread's,
    // the row under `all`) zooms in; the reset button zooms out.
    click_cell(&client, 3 * ROWS).await;
    let (a, b) = (3 * ROWS, 4 * ROWS - 1);
    assert!(run.count(a, b, None) > 0);
    let unzoom = client.find(Locator::Id("unzoom")).await.unwrap();
    let flame = client.find(Locator::Id("flame")).await.unwrap();
    assert_eq!(
        unzoom.attr("disabled").await.unwrap().as_deref(),
        Some("true")
    );
    // The flamegraph's top (`all`, then the thread's frame under it)
    // scrolled into view.
    let top = client
        .execute(
            "const f = document.getElementById('flame');
             f.scrollIntoView({block: 'start'});
             const r = f.getBoundingClientRect();
             return [r.left, r.top];",
            vec![],
        )
        .await
        .unwrap();
    let (left, top) = (top[0].as_f64().unwrap(), top[1].as_f64().unwrap());
    let mouse = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo {
            duration: None,
            x: left + 40.0,
            y: top + 17.0 + 8.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    client.perform_actions(mouse).await.unwrap();
    assert_eq!(unzoom.attr("disabled").await.unwrap(), None, "zoomed in");
    let focus = flame.attr("data-focus").await.unwrap().unwrap();
    let threads: std::collections::BTreeSet<&str> = run
        .samples
        .iter()
        .filter(|(c, _)| (a..=b).contains(c))
        .map(|(_, t)| t.as_str())
        .collect();
    assert!(
        threads.contains(focus.as_str()),
        "zoomed into {focus}, not a thread of {threads:?}"
    );
    assert_eq!(flame_total(&client).await, run.count(a, b, None));
    unzoom.click().await.unwrap();
    assert_eq!(
        flame.attr("data-focus").await.unwrap().as_deref(),
        Some("all")
    );
    assert_eq!(
        unzoom.attr("disabled").await.unwrap().as_deref(),
        Some("true")
    );
    client
        .execute("window.scrollTo(0, 0);", vec![])
        .await
        .unwrap();

    // Back to the whole run.
    client
        .find(Locator::Id("reset"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(selection(&client).await, None);
    assert_eq!(flame_total(&client).await, all);
    assert_clean(&client).await;
    client.close().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Chromium, chromedriver and perf: cargo test -- --include-ignored"]
async fn a_sorting_second_shows_sort_blocks_and_an_encoding_second_encode() {
    let Some(driver) = driver() else { return };
    let Some(run) = phases_run() else { return };
    let client = browser(&driver).await;
    open(&client, &page(run)).await;
    for (second, hot, cold) in [
        (0, "sort_blocks", "demo::encode$"),
        (1, "demo::encode$", "sort_blocks"),
        (2, "sort_blocks", "demo::encode$"),
    ] {
        click_cell(&client, second * ROWS + 25).await;
        let total = flame_total(&client).await;
        assert_eq!(
            total,
            run.count(second * ROWS, second * ROWS + ROWS - 1, None)
        );
        let (h, c) = (search(&client, hot).await, search(&client, cold).await);
        eprintln!("second {second}: {hot} {h}, {cold} {c} of {total}");
        // A phase lasts the whole second but the first sample may come a
        // little after the program started, so a column may hold a few
        // tens of ms of the next phase: still far from these margins.
        assert!(
            h * 100 > total * 60,
            "second {second}: {hot} has {h} of {total}"
        );
        assert!(
            c * 100 < total * 15,
            "second {second}: {cold} has {c} of {total}"
        );
    }
    // The screenshot in docs/report.md: the heatmap with a selection.
    search(&client, "sort_blocks").await;
    drag(&client, 25, 2 * ROWS + 24).await;
    // Tall enough for the bottom of the flamegraph too.
    client.set_window_size(1000, 1150).await.unwrap();
    client
        .execute("window.scrollTo(0, 0);", vec![])
        .await
        .unwrap();
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        let path = repo().join("docs/report.png");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &png).unwrap();
        loud(&format!("wrote {} ({} bytes)", path.display(), png.len()));
    }
    assert_clean(&client).await;
    client.close().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Chromium, chromedriver and perf: cargo test -- --include-ignored"]
async fn the_thread_filter_keeps_that_threads_samples() {
    let Some(driver) = driver() else { return };
    let Some(run) = phases_run() else { return };
    let client = browser(&driver).await;
    open(&client, &page(run)).await;
    let all = run.samples.len() as u64;
    let last = run.samples.iter().map(|s| s.0).max().unwrap();

    choose_thread(&client, "encoder").await;
    let encoder = run.count(0, last, Some("encoder"));
    assert!(encoder > 150, "{encoder} encoder samples in 2 s");
    assert_eq!(flame_total(&client).await, encoder);
    assert_eq!(search(&client, "sort_blocks").await, 0, "no sorting there");
    assert!(search(&client, "encoding_phase").await * 100 > encoder * 80);

    // The filter holds for a selection too.
    click_cell(&client, ROWS + 25).await;
    assert_eq!(
        flame_total(&client).await,
        run.count(ROWS, 2 * ROWS - 1, Some("encoder"))
    );

    choose_thread(&client, "demo").await;
    assert_eq!(
        flame_total(&client).await,
        run.count(ROWS, 2 * ROWS - 1, Some("demo"))
    );
    client
        .find(Locator::Id("reset"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let demo = run.count(0, last, Some("demo"));
    assert_eq!(flame_total(&client).await, demo);
    assert_eq!(
        search(&client, "demo::encode$").await,
        0,
        "no encoding there"
    );

    choose_thread(&client, "all").await;
    assert_eq!(flame_total(&client).await, all);
    assert_clean(&client).await;
    client.close().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Chromium and chromedriver: cargo test -- --include-ignored"]
async fn folded_input_gets_the_whole_run_and_says_the_heatmap_needs_a_recording() {
    let Some(driver) = driver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.folded");
    std::fs::write(
        &input,
        "main;work;hot 50\nmain;work;cold 7\nmain;idle 20\nother;</script>x 3\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let result = run(profiler_to(&out).arg("--from-folded").arg(&input));
    assert_exit(&result, 0, &[]);
    let client = browser(&driver).await;
    open(&client, &out.join("report.html")).await;
    assert_eq!(flame_total(&client).await, 80);
    let note = client.find(Locator::Id("no-timeline")).await.unwrap();
    assert!(note.is_displayed().await.unwrap());
    assert!(note.text().await.unwrap().contains("needs a recording"));
    assert!(!client
        .find(Locator::Id("heatmap"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());
    // `/` goes to the search box.
    client
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let focused = "return document.activeElement.id;";
    assert_ne!(client.execute(focused, vec![]).await.unwrap(), "search");
    let keys = fantoccini::actions::KeyActions::new("keys".into())
        .then(fantoccini::actions::KeyAction::Down { value: '/' })
        .then(fantoccini::actions::KeyAction::Up { value: '/' });
    client.perform_actions(keys).await.unwrap();
    assert_eq!(client.execute(focused, vec![]).await.unwrap(), "search");
    assert_eq!(search(&client, "^work$").await, 57);
    assert_eq!(
        search(&client, "</script>").await,
        3,
        "names are data, not markup"
    );
    // The summary table: samples, and the hottest by self time first.
    let summary = text_of(&client, "summary").await;
    assert!(summary.contains("samples 80"), "{summary}");
    let top = text_of(&client, "top-self").await;
    assert!(top.contains("62.5 50 hot"), "{top}");
    let top = text_of(&client, "top-total").await;
    assert!(top.contains("71.3 57 work"), "{top}");
    assert_clean(&client).await;
    client.close().await.unwrap();
}

/// A synthetic run of 1M samples (1000 s at 1 kHz, 4 threads).
fn million(dir: &Path) -> PathBuf {
    use rust_flamegraph::model::folded::Folded;
    use rust_flamegraph::model::timeline::TimelineBuilder;
    use rust_flamegraph::output::report::{self, Page};
    let stacks: Vec<String> = (0..300)
        .map(|i| format!("worker-{};main;run;step_{};leaf_{i}", i % 4, i / 10))
        .collect();
    let mut b = TimelineBuilder::default();
    let mut x = 1u64;
    for i in 0..1_000_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let stack = (x % 300) as u32;
        b.add(Some(i * 1_000_000), stack % 4, stack);
    }
    let folded = Folded {
        timeline: b.finish(|t| format!("worker-{t}"), stacks),
        ..Folded::default()
    };
    let path = dir.join("million.html");
    let mut file = std::fs::File::create(&path).unwrap();
    let page = Page {
        title: "1M samples".into(),
        ..Page::default()
    };
    report::write_html(&folded, &page, &mut file).unwrap();
    file.flush().unwrap();
    path
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Chromium and chromedriver: cargo test -- --include-ignored"]
async fn a_million_samples_open() {
    let Some(driver) = driver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = million(dir.path());
    let client = browser(&driver).await;
    open(&client, &path).await;
    assert_eq!(flame_total(&client).await, 1_000_000);
    let geometry = client
        .execute("return window.report.geometry();", vec![])
        .await
        .unwrap();
    assert_eq!(geometry["cols"], 1000);
    drag(&client, 10, 2 * ROWS + 9).await;
    // 2 s at 1 kHz.
    assert_eq!(flame_total(&client).await, 2000);
    assert_clean(&client).await;
    client.close().await.unwrap();
}

/// For benches/report.sh: opens `$REPORT_HTML` (and a 1M-sample page)
/// `$REPORT_REPEAT` times and prints, per page, its size and the page's own
/// `performance.now()` figures: load → heatmap and flamegraph drawn, and a
/// drag-selection (seconds 3 to 8) → its flamegraph drawn.
#[tokio::test(flavor = "current_thread")]
#[ignore = "a measurement for benches/report.sh; needs Chromium and chromedriver"]
async fn measure() {
    let Some(driver) = driver() else { return };
    let repeat: usize = std::env::var("REPORT_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let mut pages = vec![];
    if let Some(p) = std::env::var_os("REPORT_HTML") {
        pages.push(PathBuf::from(p));
    }
    pages.push(million(dir.path()));
    for page in pages {
        let size = std::fs::metadata(&page).unwrap().len();
        for _ in 0..repeat {
            let client = browser(&driver).await;
            open(&client, &page).await;
            let cols = client
                .execute("return window.report.geometry().cols;", vec![])
                .await
                .unwrap()
                .as_u64()
                .unwrap();
            let (a, b) = (3.min(cols - 1) * ROWS, 8.min(cols - 1) * ROWS + ROWS - 1);
            drag(&client, a, b).await;
            let times = client
                .execute("return window.report.times;", vec![])
                .await
                .unwrap();
            let samples = flame_total(&client).await;
            println!(
                "MEASURE {} {size} {:.1} {:.1} {samples}",
                page.display(),
                times["heatmap"].as_f64().unwrap(),
                times["selection"].as_f64().unwrap(),
            );
            assert_clean(&client).await;
            client.close().await.unwrap();
        }
    }
}
