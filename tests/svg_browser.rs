//! The SVG in a real browser: headless Chromium opens the flamegraph the
//! profiler wrote (from file://), a script added to it presses keys and
//! clicks, and Chromium's `--dump-dom` shows what happened. Needs
//! `chromium-headless-shell` or `chromium` (Debian packages of those names);
//! ignored unless asked for (`-- --include-ignored`), then failing without one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The first of these that runs, or `$CHROMIUM`.
const BROWSERS: &[&str] = &[
    "chromium-headless-shell",
    "chromium",
    "chromium-browser",
    "google-chrome",
];

fn chromium() -> Option<PathBuf> {
    let candidates: Vec<String> = match std::env::var("CHROMIUM") {
        Ok(path) => vec![path],
        Err(_) => BROWSERS.iter().map(|s| s.to_string()).collect(),
    };
    let found = candidates.iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let probe = found.map(|_| ()).ok_or_else(|| {
        format!(
            "none of {candidates:?} runs: `apt-get install chromium-headless-shell` \
             (or chromium), or set CHROMIUM"
        )
    });
    require("headless Chromium", probe).then(|| PathBuf::from(found.unwrap()))
}

/// Writes a flamegraph of `folded` with the profiler (`--from-folded`).
fn flamegraph(dir: &Path, folded: &[u8]) -> String {
    let input = dir.join("stacks.folded");
    std::fs::write(&input, folded).unwrap();
    let out = dir.join("out");
    let result = run(Command::new(env!("CARGO_BIN_EXE_rust-flamegraph"))
        .arg("--out")
        .arg(&out)
        .arg("--from-folded")
        .arg(&input));
    assert_exit(&result, 0, &[]);
    std::fs::read_to_string(out.join("flamegraph.svg")).unwrap()
}

/// Runs in the page after the flamegraph's own script has set up (on load,
/// then a turn later): `window.prompt` (how inferno asks for a search term)
/// only records that it was called; each probe reports `prompt` or `none`,
/// and whether the key's default (the browser's find bar) was prevented.
const PROBE: &str = r#"
(function () {
  var prompts = 0;
  window.prompt = function () { prompts += 1; return null; };
  function outcome(before, event) {
    return (prompts > before ? "prompt" : "none") + (event.defaultPrevented ? "+prevented" : "");
  }
  function key(init) {
    var before = prompts;
    init.bubbles = true;
    init.cancelable = true;
    var event = new KeyboardEvent("keydown", init);
    document.documentElement.dispatchEvent(event);
    return outcome(before, event);
  }
  window.addEventListener("load", function () {
    setTimeout(function () {
      var r = [];
      r.push("cmd_f=" + key({key: "f", code: "KeyF", metaKey: true}));
      r.push("ctrl_f=" + key({key: "f", code: "KeyF", ctrlKey: true, keyCode: 70}));
      r.push("slash=" + key({key: "/", code: "Slash"}));
      r.push("plain_f=" + key({key: "f", code: "KeyF"}));
      var button = document.getElementById("search");
      r.push("opacity=" + getComputedStyle(button).opacity);
      var before = prompts;
      var click = new MouseEvent("click", {bubbles: true, cancelable: true});
      button.dispatchEvent(click);
      r.push("click=" + outcome(before, click));
      document.documentElement.setAttribute("data-probe", r.join(" "));
    }, 0);
  });
})();
"#;

/// `svg` with [`PROBE`] as the first element of its root.
fn with_probe(svg: &str) -> String {
    let root = svg.find("<svg ").expect("an <svg> element");
    let open = root + svg[root..].find('>').unwrap() + 1;
    assert!(!PROBE.contains("]]>"));
    format!(
        "{}<script type=\"text/ecmascript\"><![CDATA[{PROBE}]]></script>{}",
        &svg[..open],
        &svg[open..]
    )
}

/// Opens `file` in headless Chromium and returns the DOM once its scripts
/// have run (`--virtual-time-budget` lets the page's timers fire first).
fn dump_dom(browser: &Path, file: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox", // as root, and in containers
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", browser.display()));
    // Read both pipes while waiting, under a deadline.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).map(|_| s)
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} did not finish within 120 s", browser.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = out.join().unwrap().unwrap_or_default();
    let log = err.join().unwrap().unwrap_or_default();
    assert!(
        status.success() && !dom.is_empty(),
        "{} failed ({status}):\n{log}",
        browser.display()
    );
    dom
}

/// The probe's report, after checking that the SVG parsed.
fn probe(browser: &Path, dir: &Path, svg: &str) -> String {
    let file = dir.join("probed.svg");
    std::fs::write(&file, with_probe(svg)).unwrap();
    let dom = dump_dom(browser, &file);
    assert!(
        !dom.contains("<parsererror"),
        "the browser could not parse the SVG: {}",
        parser_error(&dom)
    );
    let start = dom
        .find("data-probe=\"")
        .unwrap_or_else(|| panic!("the probe did not run:\n{}", &dom[..dom.len().min(3000)]))
        + "data-probe=\"".len();
    let report = &dom[start..start + dom[start..].find('"').unwrap()];
    eprintln!("probe: {report}");
    report.to_string()
}

fn parser_error(dom: &str) -> &str {
    let start = dom.find("<parsererror").unwrap_or(0);
    &dom[start..dom.len().min(start + 600)]
}

#[test]
#[ignore = "needs headless Chromium: cargo test -- --include-ignored"]
fn search_opens_on_cmd_f_ctrl_f_and_slash_and_its_button_is_visible() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let svg = flamegraph(dir.path(), b"main;work;hot 50\nmain;idle 20\n");
    let report = probe(&browser, dir.path(), &svg);
    for expected in [
        // Cmd+F on a Mac: our search, not the browser's find bar.
        "cmd_f=prompt+prevented",
        "ctrl_f=prompt+prevented",
        "slash=prompt+prevented",
        // A key without Ctrl or Cmd does nothing.
        "plain_f=none",
        // The Search button is drawn plainly, not at opacity 0.1.
        "opacity=1",
        "click=prompt",
    ] {
        assert!(
            report.split(' ').any(|r| r == expected),
            "expected {expected} in {report:?}"
        );
    }
}

#[test]
#[ignore = "needs headless Chromium: cargo test -- --include-ignored"]
fn names_with_control_characters_open_in_a_browser() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let svg = flamegraph(
        dir.path(),
        "main;bell\x07;esc\x1b[0m 30\nmain;nul\0\u{ffff} 10\nmain;fine é 10\n".as_bytes(),
    );
    let file = dir.path().join("flamegraph.svg");
    std::fs::write(&file, &svg).unwrap();
    let dom = dump_dom(&browser, &file);
    assert!(
        !dom.contains("<parsererror"),
        "the browser refused the SVG: {}",
        parser_error(&dom)
    );
    for name in [
        "bell\\x07 (30 samples",
        "esc\\x1b[0m (30 samples",
        "nul\\x00\\u{ffff} (10 samples",
        "fine é (10 samples",
    ] {
        assert!(dom.contains(name), "{name} not in the page");
    }
    // And its script runs (the probe reports).
    let report = probe(&browser, dir.path(), &svg);
    assert!(report.contains("cmd_f=prompt"), "{report}");
}
