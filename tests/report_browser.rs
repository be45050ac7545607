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

/// Scrolls the heatmap (and its lanes) to the top of the window.
async fn show_heatmap(client: &Client) {
    client
        .execute(
            "document.getElementById('heatmap').scrollIntoView({block: 'start'});",
            vec![],
        )
        .await
        .unwrap();
}

/// Presses the mouse on cell `from`, moves to cell `to` and releases it.
async fn drag(client: &Client, from: u64, to: u64) {
    show_heatmap(client).await;
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
    // The screenshot in docs/report.md: the heatmap and the lanes, a
    // sorting second (A) against an encoding one (B).
    search(&client, "").await;
    click_cell(&client, 25).await;
    click(&client, "target-b").await;
    click_cell(&client, ROWS + 25).await;
    // Tall enough for the top of the flamegraph too.
    client.set_window_size(1000, 1300).await.unwrap();
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

/// The second range, as the page says.
async fn selection_b(client: &Client) -> Option<(u64, u64)> {
    let sel = client
        .execute("return document.body.getAttribute('data-sel-b');", vec![])
        .await
        .unwrap();
    let (a, b) = sel.as_str()?.split_once(',')?;
    Some((a.parse().unwrap(), b.parse().unwrap()))
}

async fn click(client: &Client, id: &str) {
    client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn attr(client: &Client, css: &str, name: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .attr(name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{css} has no {name}"))
}

/// The page's URL fragment, without `#`.
async fn fragment(client: &Client) -> String {
    let hash = client
        .execute("return location.hash;", vec![])
        .await
        .unwrap();
    hash.as_str().unwrap().trim_start_matches('#').to_string()
}

/// Moves the pointer to `(x, y)` (viewport pixels).
async fn point_at(client: &Client, x: f64, y: f64) {
    let mouse = MouseActions::new("mouse".into()).then(PointerAction::MoveTo {
        duration: None,
        x,
        y,
    });
    client.perform_actions(mouse).await.unwrap();
}

/// What the tooltip says of a cell: its text and data attributes.
struct Tip {
    text: String,
    cell: u64,
    thread: String,
    cpu: f64,
    off: f64,
    top: String,
}

async fn tip(client: &Client) -> Tip {
    let t = client
        .execute(
            "const t = document.getElementById('tip');
             if (t.hidden) return null;
             return [t.textContent, t.dataset.cell, t.dataset.thread, t.dataset.cpu, t.dataset.off, t.dataset.top];",
            vec![],
        )
        .await
        .unwrap();
    let t = t.as_array().expect("the tooltip is shown");
    let s = |i: usize| t[i].as_str().unwrap().to_string();
    Tip {
        text: s(0),
        cell: s(1).parse().unwrap(),
        thread: s(2),
        cpu: s(3).parse().unwrap(),
        off: s(4).parse().unwrap(),
        top: s(5),
    }
}

/// Where the page draws thread `thread`'s lane (the top of its first row).
async fn lane_y(client: &Client, thread: &str) -> f64 {
    let g = client
        .execute("return window.report.geometry();", vec![])
        .await
        .unwrap();
    g["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["thread"] == thread)
        .unwrap_or_else(|| panic!("no lane for thread {thread}: {g}"))["y"]
        .as_f64()
        .unwrap()
}

/// The middle of cell `cell` in thread `thread`'s lane.
async fn lane_point(client: &Client, thread: &str, cell: u64) -> (f64, f64) {
    let (x, _, w, _) = geometry(client).await;
    let g = client
        .execute("return window.report.geometry().laneRowH;", vec![])
        .await
        .unwrap();
    let row_h = g.as_f64().unwrap();
    let y = lane_y(client, thread).await;
    let (col, row) = (cell / ROWS, cell % ROWS);
    (
        x + col as f64 * w + w / 2.0,
        y + row as f64 * row_h + row_h / 2.0,
    )
}

/// Hovers cell `cell` of `thread`'s lane and reads the tooltip.
async fn hover_lane(client: &Client, thread: &str, cell: u64) -> Tip {
    show_heatmap(client).await;
    let (x, y) = lane_point(client, thread, cell).await;
    point_at(client, x, y).await;
    let t = tip(client).await;
    assert_eq!((t.cell, t.thread.as_str()), (cell, thread), "{}", t.text);
    t
}

/// The colour drawn at `(x, y)` (viewport pixels) of canvas `id`.
async fn pixel(client: &Client, id: &str, x: f64, y: f64) -> [u8; 3] {
    let rgb = client
        .execute(
            "const [id, x, y] = arguments;
             const c = document.getElementById(id), r = c.getBoundingClientRect();
             const one = document.createElement('canvas');
             one.width = one.height = 1;
             const ctx = one.getContext('2d', {willReadFrequently: true});
             ctx.drawImage(c, Math.floor((x - r.left) * c.width / r.width),
               Math.floor((y - r.top) * c.height / r.height), 1, 1, 0, 0, 1, 1);
             const px = ctx.getImageData(0, 0, 1, 1).data;
             return [px[0], px[1], px[2]];",
            vec![json!(id), json!(x), json!(y)],
        )
        .await
        .unwrap();
    let v: Vec<u8> = serde_json::from_value(rgb).unwrap();
    [v[0], v[1], v[2]]
}

/// Presses and releases `key` (a WebDriver key code for special keys).
async fn press(client: &Client, key: char) {
    let keys = fantoccini::actions::KeyActions::new("keys".into())
        .then(fantoccini::actions::KeyAction::Down { value: key })
        .then(fantoccini::actions::KeyAction::Up { value: key });
    client.perform_actions(keys).await.unwrap();
}

const ESCAPE: char = '\u{e00c}';

/// `+12.3` or `−12.3` as the page writes a change.
fn points(text: &str) -> f64 {
    let (sign, rest) = match text.strip_prefix('−') {
        Some(rest) => (-1.0, rest),
        None => (1.0, text.trim_start_matches('+')),
    };
    sign * rest
        .trim()
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("{text:?}"))
}

/// The flamegraph's top-left corner in the viewport, scrolled into view,
/// and its width.
async fn flame_box(client: &Client) -> (f64, f64, f64) {
    let r = client
        .execute(
            "const f = document.getElementById('flame');
             f.scrollIntoView({block: 'start'});
             const r = f.getBoundingClientRect();
             return [r.left, r.top, r.width];",
            vec![],
        )
        .await
        .unwrap();
    let f = |i: usize| r[i].as_f64().unwrap();
    (f(0), f(1), f(2))
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Chromium, chromedriver and perf: cargo test -- --include-ignored"]
async fn range_b_against_range_a_is_a_differential_flamegraph() {
    let Some(driver) = driver() else { return };
    let Some(run) = phases_run() else { return };
    let client = browser(&driver).await;
    open(&client, &page(run)).await;
    // A: the first second (sorting, on `demo`); B: the next one (encoding,
    // on `encoder`), chosen with the "range B" switch.
    click_cell(&client, 25).await;
    click(&client, "target-b").await;
    click_cell(&client, ROWS + 25).await;
    let (a, b) = ((0, ROWS - 1), (ROWS, 2 * ROWS - 1));
    assert_eq!(selection(&client).await, Some(a));
    assert_eq!(selection_b(&client).await, Some(b));
    let (a_all, b_all) = (run.count(a.0, a.1, None), run.count(b.0, b.1, None));
    assert!(a_all > 100 && b_all > 100, "{a_all} and {b_all} samples");
    // The flamegraph has B's widths; the table compares shares of each total.
    assert_eq!(flame_total(&client).await, b_all);
    assert_eq!(
        attr(&client, "#top-diff", "data-a-total").await,
        a_all.to_string()
    );
    assert_eq!(
        attr(&client, "#top-diff", "data-b-total").await,
        b_all.to_string()
    );
    let mut shares = HashMap::new();
    for thread in ["demo", "encoder"] {
        let (n_a, n_b) = (
            run.count(a.0, a.1, Some(thread)),
            run.count(b.0, b.1, Some(thread)),
        );
        let row = format!("#top-diff tr[data-frame='{thread}']");
        assert_eq!(
            attr(&client, &row, "data-a").await,
            n_a.to_string(),
            "{thread}"
        );
        assert_eq!(
            attr(&client, &row, "data-b").await,
            n_b.to_string(),
            "{thread}"
        );
        let change = client
            .find(Locator::Css(&format!("{row} td")))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let expected = (n_b as f64 / b_all as f64 - n_a as f64 / a_all as f64) * 100.0;
        eprintln!("{thread}: A {n_a} of {a_all}, B {n_b} of {b_all}: {change} points");
        assert!(
            (points(&change) - expected).abs() < 0.051,
            "{thread}: {change} against {expected:.3}"
        );
        shares.insert(thread, expected);
    }
    // Phases, not noise: each thread's share moved by most of the whole.
    assert!(
        shares["encoder"] > 80.0 && shares["demo"] < -80.0,
        "{shares:?}"
    );

    // Hovering `encoder` (right under `all`, most of B's width): its
    // numbers, and red (a larger share of B).
    let (left, top, width) = flame_box(&client).await;
    let (x, y) = (left + width * 0.75, top + 17.0 + 8.0);
    point_at(&client, x, y).await;
    let details = text_of(&client, "details").await;
    let (n_a, n_b) = (
        run.count(a.0, a.1, Some("encoder")),
        run.count(b.0, b.1, Some("encoder")),
    );
    assert!(
        details.starts_with("encoder — A: ")
            && details.contains(&format!("({n_a} samples), B: "))
            && details.contains(&format!("({n_b} samples), +")),
        "{details}"
    );
    let [r, g, bl] = pixel(&client, "flame", x, y).await;
    assert!(
        r == 255 && g < 120 && bl < 120,
        "encoder is red: {:?}",
        [r, g, bl]
    );
    // A's widths: `demo` is most of them, and blue (a smaller share of B).
    let shape = client.find(Locator::Id("shape")).await.unwrap();
    shape.select_by_value("a").await.unwrap();
    assert_eq!(flame_total(&client).await, a_all);
    let (left, top, width) = flame_box(&client).await;
    let (x, y) = (left + width * 0.25, top + 17.0 + 8.0);
    point_at(&client, x, y).await;
    assert!(text_of(&client, "details").await.starts_with("demo — A: "));
    let [r, g, bl] = pixel(&client, "flame", x, y).await;
    assert!(
        bl == 255 && r < 120 && g < 120,
        "demo is blue: {:?}",
        [r, g, bl]
    );
    // Searching names A's and B's shares of what matched.
    assert!(search(&client, "sort_blocks").await * 100 > a_all * 60);
    let matched = text_of(&client, "matched").await;
    assert!(
        matched.contains("% of A") && matched.contains("% of B"),
        "{matched}"
    );
    search(&client, "").await;

    // The URL says it all; opened again with another thread, it shows that.
    assert_eq!(fragment(&client).await, "a=0-49&b=50-99&shape=a");
    let url = format!(
        "file://{}#a=0-49&b=50-99&thread=encoder",
        page(run).display()
    );
    client.goto("about:blank").await.unwrap();
    client.goto(&url).await.unwrap();
    open_current(&client).await;
    assert_eq!(selection(&client).await, Some(a));
    assert_eq!(selection_b(&client).await, Some(b));
    let chosen = client
        .find(Locator::Id("thread"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    let label = client
        .find(Locator::Css(&format!(
            "#thread option[value='{}']",
            chosen.unwrap()
        )))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(label.starts_with("encoder ("), "{label}");
    assert_eq!(
        flame_total(&client).await,
        run.count(b.0, b.1, Some("encoder"))
    );
    assert_eq!(
        attr(&client, "#top-diff", "data-a-total").await,
        run.count(a.0, a.1, Some("encoder")).to_string()
    );

    // Escape drops both ranges (the thread stays).
    client
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    press(&client, ESCAPE).await;
    assert_eq!(
        (selection(&client).await, selection_b(&client).await),
        (None, None)
    );
    let last = run.samples.iter().map(|s| s.0).max().unwrap();
    assert_eq!(
        flame_total(&client).await,
        run.count(0, last, Some("encoder"))
    );
    assert!(!client
        .find(Locator::Id("top-diff"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());
    assert_eq!(fragment(&client).await, "thread=encoder");
    assert_clean(&client).await;
    client.close().await.unwrap();
}

/// Waits for the page now loaded to finish drawing.
async fn open_current(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .execute(
            "return document.body && document.body.getAttribute('data-ready');",
            vec![],
        )
        .await
        .unwrap()
        != json!("1")
    {
        assert!(
            Instant::now() < deadline,
            "the page did not finish drawing within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Chromium, chromedriver and perf: cargo test -- --include-ignored"]
async fn a_lane_per_thread_shows_its_phases_and_a_hover_tells_the_cell() {
    let Some(driver) = driver() else { return };
    let Some(run) = phases_run() else { return };
    let folded = std::fs::read_to_string(run.out.join("stacks.folded")).unwrap();
    let client = browser(&driver).await;
    open(&client, &page(run)).await;
    // With all threads (the default), each thread's lane shows its phases:
    // `demo` sorts in seconds 0 and 2, `encoder` encodes in 1 and 3.
    const GREY: [u8; 3] = [244, 244, 244];
    for second in 0..4 {
        let (busy, idle) = if second % 2 == 0 {
            ("demo", "encoder")
        } else {
            ("encoder", "demo")
        };
        let mut busy_samples = 0;
        for row in [10, 30, 40] {
            let cell = second * ROWS + row;
            for thread in [busy, idle] {
                let t = hover_lane(&client, thread, cell).await;
                let expected = run.count(cell, cell, Some(thread));
                assert_eq!(
                    t.cpu, expected as f64,
                    "{thread} in cell {cell}: {}",
                    t.text
                );
                assert!(
                    t.text.contains(&format!("{expected} samples")),
                    "{}",
                    t.text
                );
                let (x, y) = lane_point(&client, thread, cell).await;
                let colour = pixel(&client, "heatmap", x, y).await;
                assert_eq!(
                    colour == GREY,
                    expected == 0,
                    "{thread} in cell {cell}: {colour:?}"
                );
                if thread == busy {
                    busy_samples += expected;
                    // The hottest function is one of that thread's.
                    if expected > 0 {
                        let prefix = format!("{thread};");
                        assert!(
                            stacks(&folded)
                                .iter()
                                .any(|(s, _)| s.starts_with(&prefix)
                                    && s.split(';').any(|f| f == t.top)),
                            "top {:?} is no frame of {thread}",
                            t.top
                        );
                    }
                } else {
                    assert_eq!(expected, 0, "{thread} idle in second {second}");
                }
            }
        }
        assert!(
            busy_samples > 10,
            "{busy} in second {second}: {busy_samples} samples"
        );
    }
    // The heatmap of all threads: the cell's time and samples.
    let cell = ROWS + 25;
    show_heatmap(&client).await;
    let (x, y) = cell_point(&client, cell).await;
    point_at(&client, x, y).await;
    let t = tip(&client).await;
    assert_eq!((t.cell, t.thread.as_str()), (cell, ""));
    assert_eq!(t.cpu, run.count(cell, cell, None) as f64);
    assert!(
        t.text.starts_with("1.50 s to 1.52 s (second 1, 500 ms in)"),
        "{}",
        t.text
    );
    // The legend says what the colours count.
    let legend = text_of(&client, "legend").await;
    assert!(legend.contains("samples per cell"), "{legend}");
    assert_clean(&client).await;
    client.close().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Chromium, chromedriver and perf: cargo test -- --include-ignored"]
async fn hottest_by_total_time_leaves_out_what_every_sample_of_a_thread_has() {
    let Some(driver) = driver() else { return };
    let Some(run) = phases_run() else { return };
    let client = browser(&driver).await;
    open(&client, &page(run)).await;
    let rows = |client: &Client| {
        let client = client.clone();
        async move {
            let mut out = Vec::new();
            for tr in client
                .find_all(Locator::Css("#top-total tbody tr"))
                .await
                .unwrap()
            {
                let text = tr.text().await.unwrap();
                let mut parts = text.splitn(3, ' ');
                let share: f64 = parts.next().unwrap().parse().unwrap();
                let name = parts.nth(1).unwrap().to_string();
                out.push((share, name));
            }
            out
        }
    };
    let wrappers = [
        "demo",
        "encoder",
        "_start",
        "main",
        "clone3",
        "start_thread",
        "std::rt::lang_start_internal",
    ];
    // The whole run: each thread's runtime frames are in all its samples.
    let whole = rows(&client).await;
    assert_eq!(whole.len(), 10, "{whole:?}");
    for (share, name) in &whole {
        assert!(
            !wrappers.contains(&name.as_str()),
            "{name} ({share} %) listed: {whole:?}"
        );
    }
    let note = client.find(Locator::Id("wrappers")).await.unwrap();
    let hidden = note.attr("title").await.unwrap().unwrap();
    for name in wrappers {
        assert!(
            hidden.lines().any(|l| l == name),
            "{name} not among {hidden}"
        );
    }
    assert!(note.text().await.unwrap().starts_with("Not listed: "));
    // A sorting second: what sorts, not what every sample passes through.
    click_cell(&client, 2 * ROWS + 25).await;
    let second = rows(&client).await;
    assert!(second.iter().all(|(share, _)| *share < 99.5), "{second:?}");
    assert!(
        second.iter().any(|(_, n)| n == "demo::sort_blocks"),
        "{second:?}"
    );
    assert_clean(&client).await;
    client.close().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Chromium and chromedriver: cargo test -- --include-ignored"]
async fn a_thread_root_that_another_thread_calls_is_still_left_out() {
    let Some(driver) = driver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.folded");
    // `clone3` and `start` are all of t1's samples; t2 calls `clone3` once,
    // when it spawns t1; `main` is all of t2's.
    std::fs::write(
        &input,
        "t1;clone3;start;job 60\nt1;clone3;start;other 37\nt2;main;spawn;clone3 1\nt2;main;work 40\nt2;main;idle 12\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    assert_exit(
        &run(profiler_to(&out).arg("--from-folded").arg(&input)),
        0,
        &[],
    );
    let client = browser(&driver).await;
    open(&client, &out.join("report.html")).await;
    let mut listed = Vec::new();
    for tr in client
        .find_all(Locator::Css("#top-total tbody tr"))
        .await
        .unwrap()
    {
        listed.push(tr.text().await.unwrap());
    }
    assert_eq!(
        listed,
        [
            "40.0 60 job",
            "26.7 40 work",
            "24.7 37 other",
            "8.0 12 idle",
            "0.7 1 spawn"
        ]
    );
    let hidden = attr(&client, "#wrappers", "title").await;
    let mut hidden: Vec<&str> = hidden.lines().collect();
    hidden.sort_unstable();
    assert_eq!(hidden, ["clone3", "main", "start", "t1", "t2"]);
    assert_clean(&client).await;
    client.close().await.unwrap();
}

/// The demo's `--waits 400` profiled with `--off-cpu`, and what perf.data
/// says of it: each sample's time, thread names, and the switches.
struct WaitsRun {
    out: PathBuf,
    /// The first sample's time: where cell 0 starts.
    t0: u64,
    /// The waits the demo measured itself: sleep and mutex, in ms.
    measured: (f64, f64),
    /// Off the CPU intervals `[out, in)` of each thread, by name.
    off: HashMap<String, Vec<(u64, u64)>>,
}

fn waits_run() -> Option<&'static WaitsRun> {
    static RUN: OnceLock<Option<WaitsRun>> = OnceLock::new();
    RUN.get_or_init(|| {
        if !perf_available() {
            return None;
        }
        let out = tempfile::tempdir().unwrap().keep().join("out");
        // Frame-pointer stacks, and recorded again should perf lose records
        // all the same: the checks below account for every nanosecond, and
        // the other browser tests load the machine meanwhile.
        let result = with_no_records_lost(|| {
            run(profiler_to(&out).args([
                "--off-cpu",
                "--call-graph",
                "fp",
                "--keep-perf-data",
                "--",
                "--waits",
                "400",
            ]))
        });
        assert_exit(&result, 0, &["report.html", "waited: sleep "]);
        let log = text(&result);
        let line = log
            .lines()
            .find(|l| l.starts_with("waited: sleep "))
            .unwrap();
        let ms: Vec<f64> = line
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter_map(|w| w.parse().ok())
            .collect();
        let file = std::io::BufReader::new(std::fs::File::open(out.join("perf.data")).unwrap());
        let PerfFileReader {
            mut perf_file,
            mut record_iter,
        } = PerfFileReader::parse_file(file).unwrap();
        let mut comms: HashMap<i32, String> = HashMap::new();
        let mut t0 = u64::MAX;
        let mut switches: Vec<(i32, u64, bool)> = Vec::new();
        while let Some(record) = record_iter.next_record(&mut perf_file).unwrap() {
            let PerfFileRecord::EventRecord { record, .. } = record else {
                continue;
            };
            match record.parse().unwrap() {
                EventRecord::Comm(c) => {
                    comms.insert(
                        c.tid,
                        String::from_utf8_lossy(&c.name.as_slice()).into_owned(),
                    );
                }
                EventRecord::Sample(s) => t0 = t0.min(s.timestamp.unwrap()),
                EventRecord::ContextSwitch(sw) => {
                    let common = record.common_data().unwrap();
                    let out = matches!(
                        sw,
                        linux_perf_data::linux_perf_event_reader::ContextSwitchRecord::Out { .. }
                    );
                    switches.push((common.tid.unwrap(), common.timestamp.unwrap(), out));
                }
                _ => {}
            }
        }
        switches.sort_by_key(|s| s.1);
        let mut off: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
        let mut since: HashMap<i32, u64> = HashMap::new();
        for (tid, time, out) in switches {
            if out {
                since.insert(tid, time);
            } else if let Some(from) = since.remove(&tid) {
                let name = comms.get(&tid).cloned().unwrap_or_default();
                off.entry(name).or_default().push((from, time));
            }
        }
        Some(WaitsRun {
            out,
            t0,
            measured: (ms[0], ms[1]),
            off,
        })
    })
    .as_ref()
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Chromium, chromedriver and perf: cargo test -- --include-ignored"]
async fn the_wall_time_view_shows_when_each_thread_waited() {
    let Some(driver) = driver() else { return };
    let Some(run) = waits_run() else { return };
    // The main thread's two longest times off the CPU are the demo's sleep
    // and mutex wait, as it measured them.
    let mut main = run.off["demo"].clone();
    main.sort_by_key(|(a, b)| std::cmp::Reverse(b - a));
    let (mut sleep, mut mutex) = (main[0], main[1]);
    if mutex.0 < sleep.0 {
        std::mem::swap(&mut sleep, &mut mutex);
    }
    let ms = |(a, b): (u64, u64)| (b - a) as f64 / 1e6;
    eprintln!(
        "perf.data: sleep {:.1} ms, mutex {:.1} ms; the demo: {:?}",
        ms(sleep),
        ms(mutex),
        run.measured
    );
    assert!(
        (ms(sleep) - run.measured.0).abs() < 5.0,
        "sleep {:.1} ms",
        ms(sleep)
    );
    assert!(
        (ms(mutex) - run.measured.1).abs() < 5.0,
        "mutex {:.1} ms",
        ms(mutex)
    );
    // The cells wholly inside an interval, a cell's margin at each end.
    let inside = |(a, b): (u64, u64)| {
        let first = (a - run.t0).div_ceil(CELL_NS) + 1;
        let last = (b - run.t0) / CELL_NS - 2;
        first..=last
    };
    let folded = std::fs::read_to_string(run.out.join("stacks.folded")).unwrap();

    let client = browser(&driver).await;
    open(&client, &run.out.join("report.html")).await;
    // Wall time by default: the whole run's flamegraph holds every
    // nanosecond of stacks.folded, waits included.
    let checked = "return document.getElementById('view-wall').checked;";
    assert_eq!(client.execute(checked, vec![]).await.unwrap(), json!(true));
    assert_eq!(fragment(&client).await, "view=wall");
    assert_eq!(
        attr(&client, "#flame", "data-total").await,
        total_samples(&folded).to_string()
    );
    // The main thread waits all through both intervals: asleep, then on the lock.
    for (interval, why) in [(sleep, "[off-cpu: sleep]"), (mutex, "[off-cpu: futex]")] {
        let cells: Vec<u64> = inside(interval).collect();
        assert!(cells.len() > 10, "{cells:?}");
        for &cell in cells.iter().step_by(4) {
            let t = hover_lane(&client, "demo", cell).await;
            assert_eq!(t.cpu, 0.0, "{}", t.text);
            assert!(t.off > 19.5e6 && t.off <= 20e6, "{}", t.text);
            assert!(t.top.starts_with(why), "{}", t.text);
            let (x, y) = lane_point(&client, "demo", cell).await;
            let [r, _, b] = pixel(&client, "heatmap", x, y).await;
            assert!(b > 150 && r < 100, "waiting is blue: {:?}", [r, b]);
        }
    }
    // The holder did not exist while main slept; during the mutex wait its
    // time is all accounted for, and it ran as long as perf.data says.
    let t = hover_lane(&client, "holder", *inside(sleep).start() + 2).await;
    assert_eq!((t.cpu, t.off), (0.0, 0.0), "{}", t.text);
    let (mut cpu, mut off, mut expected_off) = (0.0, 0.0, 0.0);
    let cells = inside(mutex);
    for cell in cells.clone() {
        let t = hover_lane(&client, "holder", cell).await;
        // A CPU sample's period falls in the cell of its time: a cell may
        // gain or lose up to a period (about 1 ms) at each edge.
        assert!((t.cpu + t.off - 20e6).abs() < 3e6, "{}", t.text);
        cpu += t.cpu;
        off += t.off;
        let (a, b) = (run.t0 + cell * CELL_NS, run.t0 + (cell + 1) * CELL_NS);
        for &(x, y) in &run.off["holder"] {
            expected_off += (y.min(b) as f64 - x.max(a) as f64).max(0.0);
        }
    }
    let n = cells.count() as f64;
    eprintln!(
        "holder: {:.1} ms running, {:.1} ms off (perf.data: {:.1}) in {n} cells",
        cpu / 1e6,
        off / 1e6,
        expected_off / 1e6
    );
    assert!(
        (off - expected_off).abs() < 2e6 + 0.02 * n * 20e6,
        "{off} against {expected_off}"
    );
    assert!(
        (cpu - (n * 20e6 - expected_off)).abs() < 3e6 + 0.05 * n * 20e6,
        "{cpu}"
    );

    // CPU time: the sleeping main thread is an empty lane.
    click(&client, "view-cpu").await;
    assert_eq!(fragment(&client).await, "view=cpu");
    let cell = *inside(sleep).start() + 3;
    let t = hover_lane(&client, "demo", cell).await;
    assert_eq!((t.cpu, t.off), (0.0, 0.0), "{}", t.text);
    let (x, y) = lane_point(&client, "demo", cell).await;
    assert_eq!(pixel(&client, "heatmap", x, y).await, [244, 244, 244]);
    assert!(!folded.is_empty());
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
            // Samples, or nanoseconds under --off-cpu.
            let samples = attr(&client, "#flame", "data-total").await;
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

/// Names from the recording are keys of the page's tables, never of an
/// object's prototype: a program named `hasOwnProperty` (its main thread
/// too), picked through the URL, opens as any thread does.
#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Chromium, chromedriver and perf: cargo test -- --include-ignored"]
async fn a_thread_named_like_an_object_property_opens_from_a_link() {
    let Some(driver) = driver() else { return };
    if !perf_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("hasOwnProperty");
    std::fs::copy(demo_binary(), &program).unwrap();
    let out = dir.path().join("out");
    let result = run(profiler_to(&out)
        .arg("--exec")
        .arg("--")
        .arg(&program)
        .args(["--iters", "300", "--size", "20000"]));
    assert_exit(&result, 0, &[]);
    let page = out.join("report.html");
    let client = browser(&driver).await;
    client
        .goto(&format!("file://{}#thread=hasOwnProperty", page.display()))
        .await
        .unwrap();
    open_current(&client).await;
    assert_clean(&client).await;
    assert!(
        fragment(&client).await.contains("thread=hasOwnProperty"),
        "the thread stays picked"
    );
    client.close().await.unwrap();
}
