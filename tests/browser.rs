//! The plot page in a real browser: headless Chromium, driven by
//! chromedriver over WebDriver, opens the page of a running daemon. When a
//! job runs, its charts appear on that page without it being reloaded,
//! grouped by job under the run label `rtl run` printed; a later job's
//! charts arrive above without rebuilding the figures already there or
//! moving what the reader looks at; the page has a grid, a click enlarges
//! a chart, it has an icon, and it says so when the plot node stops
//! answering. And the PNG of a chart agrees with its SVG as Chromium draws
//! it.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them); skipped, saying so, where they are missing.

mod common;

use common::{free_ports, http, text, Daemon};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// chromedriver, killed (by the pid we started) on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session, ended on drop so Chromium exits.
struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    fn script_async(&self, source: &str) -> Value {
        self.call(
            "POST",
            "/execute/async",
            json!({"script": source, "args": []}),
        )
    }

    fn window(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            json!({"width": width, "height": height}),
        );
    }

    /// Runs `source` until its answer satisfies `done`, for at most 30 s.
    fn until(&self, what: &str, source: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = self.script(source);
            if done(&seen) {
                return seen;
            }
            assert!(Instant::now() < deadline, "{what}: {seen}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.id);
        let body = body.to_string();
        let (status, _, reply) =
            http(method, self.driver.port, &path, Some(&body)).expect("webdriver request");
        let reply: Value = serde_json::from_slice(&reply).expect("webdriver json");
        assert_eq!(status, 200, "{method} {path}: {reply}");
        reply["value"].clone()
    }

    fn script(&self, source: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": source, "args": []}),
        )
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = http(
            "DELETE",
            self.driver.port,
            &format!("/session/{}", self.id),
            None,
        );
    }
}

/// chromedriver and Chromium, or None where they are missing: then `test`
/// records its skip (see `common::skip`).
fn browser_tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    match (which("chromium"), which("chromedriver")) {
        (Some(chromium), Some(chromedriver)) => Some((chromium, chromedriver)),
        _ => {
            common::skip(
                test,
                "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run installs them)",
            );
            None
        }
    }
}

/// Starts chromedriver on a free port and waits until it answers.
fn start_driver(chromedriver: &PathBuf) -> Driver {
    let port = free_ports(1)[0];
    let driver = Driver {
        child: Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(http("GET", port, "/status", None), Ok((200, _, _))) {
        assert!(Instant::now() < deadline, "chromedriver did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    driver
}

/// A headless Chromium session of `driver`, its profile under `dir`.
fn open_session<'a>(driver: &'a Driver, chromium: &PathBuf, dir: &std::path::Path) -> Session<'a> {
    let capabilities = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", dir.join("chromium-profile").display())]
        }
    }}});
    let (status, _, reply) = http(
        "POST",
        driver.port,
        "/session",
        Some(&capabilities.to_string()),
    )
    .expect("new session");
    let reply: Value = serde_json::from_slice(&reply).expect("session json");
    assert_eq!(status, 200, "no browser session: {reply}");
    Session {
        driver,
        id: reply["value"]["sessionId"]
            .as_str()
            .expect("session id")
            .to_string(),
    }
}

fn pipeline() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pipeline/job.json")
}

/// Runs the pipeline through `daemon`; the job id `rtl run` printed.
fn run_pipeline(daemon: &Daemon) -> String {
    let out = daemon.rtl(&["run", "--connect", pipeline()]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    let id = printed
        .lines()
        .find_map(|l| l.strip_prefix("Job: "))
        .unwrap_or_else(|| panic!("rtl run printed no job id: {printed}"));
    assert_eq!(id.len(), 36, "{id}");
    id.to_string()
}

/// What the page shows: its job sections and figures.
const LOOK: &str = "const sections = Array.from(document.querySelectorAll('section.job'));
  const figures = Array.from(document.querySelectorAll('figure.chart'));
  return {
    marker: window.rtlMarker || null,
    jobs: sections.map(s => s.dataset.job),
    labels: sections.map(s => s.querySelector('h2').textContent),
    names: figures.map(f => f.dataset.name),
    loaded: figures.filter(f => { const i = f.querySelector('img');
                                  return i.complete && i.naturalWidth > 0; }).length,
    old: figures.filter(f => f.rtlOld).length,
    captions: figures.map(f => f.querySelector('figcaption').textContent),
    tops: figures.map(f => f.offsetTop)
  }";

#[test]
fn charts_arrive_by_job_without_a_reload_or_moving_the_reader() {
    let Some((chromium, chromedriver)) =
        browser_tools("charts_arrive_by_job_without_a_reload_or_moving_the_reader")
    else {
        return;
    };
    let daemon = Daemon::start("browser");
    let port = daemon.home.port("RTL_PLOT_PORT");
    let page = format!("http://127.0.0.1:{port}/");
    let driver = start_driver(&chromedriver);
    let session = open_session(&driver, &chromium, &daemon.home.scratch.0);
    session.window(1400, 1000);
    session.call("POST", "/url", json!({ "url": page }));
    // Mark this page: a reload would lose the mark.
    let before = session.script(
        "window.rtlMarker = 'the same page'; return document.querySelectorAll('figure.chart').length",
    );
    assert_eq!(before, json!(0), "a fresh home has no charts");

    let first = run_pipeline(&daemon);
    let seen = session.until("the charts never appeared", LOOK, |s| {
        s["loaded"].as_u64() >= Some(2)
    });
    assert_eq!(
        seen["marker"],
        json!("the same page"),
        "the page was reloaded"
    );
    assert_eq!(seen["jobs"], json!([first]), "one section, of the job run");
    let label = seen["labels"][0].as_str().expect("label");
    assert!(
        label.starts_with(&format!("run {} \u{b7} ", &first[..8])),
        "{label}"
    );
    assert_eq!(seen["names"], json!(["cpu", "io_per_cpu"]));
    let captions = seen["captions"].to_string();
    assert!(
        !captions.contains("points"),
        "the point count is in the picture, not again under it: {captions}"
    );
    assert_eq!(
        seen["tops"][0], seen["tops"][1],
        "two charts side by side on a wide window"
    );

    // The icon.
    let icon = session.script("return document.querySelector('link[rel=icon]').href");
    let icon = icon.as_str().expect("icon link");
    let path = icon.strip_prefix(&page).map(|p| format!("/{p}"));
    let (status, headers, _) =
        http("GET", port, &path.expect("icon on the page's server"), None).expect("favicon");
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "image/svg+xml"));

    // A click enlarges a chart; Escape closes it.
    let zoomed = session.script(
        "document.querySelector('figure.chart img').click();
         const zoom = document.getElementById('zoom');
         return {hidden: zoom.hidden, src: zoom.querySelector('img').src}",
    );
    assert_eq!(zoomed["hidden"], json!(false), "{zoomed}");
    assert!(zoomed["src"]
        .as_str()
        .is_some_and(|s| s.contains("charts/cpu.svg")));
    let closed = session.script(
        "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}));
         return document.getElementById('zoom').hidden",
    );
    assert_eq!(closed, json!(true));

    // A narrow window: one chart per row, and the reader scrolled down to
    // the second. A later job's charts go above without moving it.
    session.window(700, 600);
    let held = session.until(
        "the page did not scroll",
        "document.querySelectorAll('figure.chart').forEach(f => f.rtlOld = true);
         window.scrollTo(0, 0);
         const second = document.querySelectorAll('figure.chart')[1];
         window.scrollTo(0, second.offsetTop - 100);
         return {y: window.scrollY, top: second.getBoundingClientRect().top}",
        |s| s["y"].as_f64() > Some(0.0),
    );
    let second = run_pipeline(&daemon);
    let seen = session.until("the second run never appeared", LOOK, |s| {
        s["loaded"].as_u64() >= Some(4)
    });
    assert_eq!(seen["marker"], json!("the same page"));
    assert_eq!(seen["jobs"], json!([second, first]), "newest job first");
    assert_eq!(
        seen["old"],
        json!(2),
        "the first run's figures were kept, not rebuilt"
    );
    let now = session.script(
        "const old = Array.from(document.querySelectorAll('figure.chart')).filter(f => f.rtlOld);
         return old[1].getBoundingClientRect().top",
    );
    let moved = (now.as_f64().expect("top") - held["top"].as_f64().expect("top")).abs();
    assert!(moved <= 1.0, "the chart being read moved by {moved} px");
    let earlier = session.script(
        "return Array.from(document.querySelectorAll('figure.chart .earlier a')).map(a => a.textContent)",
    );
    assert!(
        earlier
            .to_string()
            .contains(&format!("run {}", &first[..8])),
        "the new run links to the earlier one: {earlier}"
    );

    // A chart whose name is markup shows as text, never as markup.
    let dir = daemon.home.scratch.0.clone();
    std::fs::write(dir.join("d.csv"), "x,y\n1,2\n2,3\n").expect("data");
    let hostile = common::write_job(
        &dir,
        "hostile",
        r#"{"0": {"tasks": [{"open_array": {"filename": "d"}},
             {"simple_plot": {"plots": {"<b id=\"injected\">bold</b>": [{"x": "x", "y": "y"}]}}}]}}"#,
    );
    let out = daemon.rtl(&["run", "--connect", hostile.to_str().expect("path")]);
    assert!(out.status.success(), "{}", text(&out));
    let seen = session.until(
        "the third chart never appeared",
        "return {
           figures: document.querySelectorAll('figure.chart').length,
           injected: document.getElementById('injected') !== null,
           text: document.body.textContent.includes('<b id=\"injected\">bold</b>')
         }",
        |s| s["figures"].as_u64() >= Some(5),
    );
    assert_eq!(
        seen["injected"],
        json!(false),
        "markup from a job became an element"
    );
    assert_eq!(
        seen["text"],
        json!(true),
        "the name shows as written: {seen}"
    );

    // The plot node is paused (SIGSTOP): it neither answers nor dies, and
    // the page must not wait on it forever.
    let status = daemon.rtl(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status");
    let plot_pid = status["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["name"] == "plotnode")
        .and_then(|s| s["pid"].as_u64())
        .expect("a plot node") as u32;
    common::signal(plot_pid, libc::SIGSTOP);
    let paused = session.until(
        "the page never noticed the paused plot node",
        "return {offline: document.body.classList.contains('offline')}",
        |s| s["offline"] == json!(true),
    );
    common::signal(plot_pid, libc::SIGCONT);
    assert_eq!(paused["offline"], json!(true));
    session.until(
        "the page never came back with the plot node",
        "return {offline: document.body.classList.contains('offline')}",
        |s| s["offline"] == json!(false),
    );

    // The plot node stops: the page says so, plainly.
    let out = daemon.rtl(&["stop"]);
    assert!(out.status.success(), "{}", text(&out));
    let seen = session.until(
        "the page never said the plot node stopped answering",
        "return {offline: document.body.classList.contains('offline'),
                 status: document.getElementById('status').textContent,
                 color: getComputedStyle(document.querySelector('header')).backgroundColor}",
        |s| s["offline"] == json!(true),
    );
    assert!(
        seen["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("plot node not answering")),
        "{seen}"
    );
    assert_eq!(seen["color"], json!("rgb(166, 27, 27)"), "marked in red");
}

#[test]
fn a_charts_png_agrees_with_its_svg_as_the_browser_draws_it() {
    let Some((chromium, chromedriver)) =
        browser_tools("a_charts_png_agrees_with_its_svg_as_the_browser_draws_it")
    else {
        return;
    };
    let daemon = Daemon::start("browser-png");
    let port = daemon.home.port("RTL_PLOT_PORT");
    run_pipeline(&daemon);
    let driver = start_driver(&chromedriver);
    let session = open_session(&driver, &chromium, &daemon.home.scratch.0);
    session.call(
        "POST",
        "/url",
        json!({ "url": format!("http://127.0.0.1:{port}/") }),
    );
    session.until("the charts never appeared", LOOK, |s| {
        s["loaded"].as_u64() >= Some(2)
    });
    for name in ["cpu", "io_per_cpu"] {
        // Both pictures drawn onto a white canvas of the chart's size; per
        // pixel, the largest difference of a color channel.
        let compared = session.script_async(&format!(
            "const done = arguments[arguments.length - 1];
             const load = src => new Promise((ok, fail) => {{
               const i = new Image(); i.onload = () => ok(i); i.onerror = () => fail(src); i.src = src; }});
             const pixels = img => {{
               const c = document.createElement('canvas'); c.width = 960; c.height = 540;
               const g = c.getContext('2d'); g.fillStyle = '#fff'; g.fillRect(0, 0, 960, 540);
               g.drawImage(img, 0, 0, 960, 540); return g.getImageData(0, 0, 960, 540).data; }};
             Promise.all([load('charts/{name}.svg'), load('charts/{name}.png')]).then(([svg, png]) => {{
               const a = pixels(svg), b = pixels(png);
               let sum = 0, far = 0, dark = 0;
               for (let i = 0; i < a.length; i += 4) {{
                 const d = Math.max(Math.abs(a[i] - b[i]), Math.abs(a[i + 1] - b[i + 1]), Math.abs(a[i + 2] - b[i + 2]));
                 sum += d; if (d > 128) far++; if (b[i] < 128) dark++;
               }}
               const n = a.length / 4;
               done({{mean: sum / n, far: far / n, dark: dark / n}});
             }}, e => done({{error: String(e)}}));"
        ));
        eprintln!("{name}: the PNG against the SVG as Chromium draws it: {compared}");
        let mean = compared["mean"]
            .as_f64()
            .unwrap_or_else(|| panic!("{compared}"));
        let far = compared["far"].as_f64().expect("far");
        assert!(
            compared["dark"].as_f64() > Some(0.005),
            "a chart was drawn: {compared}"
        );
        // Two rasterisers: edges are shaded a little apart, nothing more
        // (measured: mean 0.35 and 0.015% far apart; the SVG in another
        // font than the PNG's: mean 1.8, 0.6%).
        assert!(mean < 1.0, "{name}: mean difference {mean}");
        assert!(
            far < 0.001,
            "{name}: {:.3}% of pixels far apart",
            far * 100.0
        );
    }
}
