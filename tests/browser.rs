//! The plot page in a real browser: headless Chromium, driven by
//! chromedriver over WebDriver, opens the page of a running daemon; when a
//! job runs, its charts appear on that page without it being reloaded.
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

#[test]
fn charts_appear_in_the_browser_without_a_reload() {
    let (Some(chromium), Some(chromedriver)) = (which("chromium"), which("chromedriver")) else {
        common::skip(
            "charts_appear_in_the_browser_without_a_reload",
            "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run installs them)",
        );
        return;
    };
    let daemon = Daemon::start("browser");
    let page = format!("http://127.0.0.1:{}/", daemon.home.port("RTL_PLOT_PORT"));
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
    let profile = daemon.home.scratch.0.join("chromium-profile");
    let capabilities = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", profile.display())]
        }
    }}});
    let (status, _, reply) =
        http("POST", port, "/session", Some(&capabilities.to_string())).expect("new session");
    let reply: Value = serde_json::from_slice(&reply).expect("session json");
    assert_eq!(status, 200, "no browser session: {reply}");
    let session = Session {
        driver: &driver,
        id: reply["value"]["sessionId"]
            .as_str()
            .expect("session id")
            .to_string(),
    };

    session.call("POST", "/url", json!({ "url": page }));
    // Mark this page: a reload would lose the mark.
    let before = session.script(
        "window.rtlMarker = 'the same page'; return document.querySelectorAll('figure.chart').length",
    );
    assert_eq!(before, json!(0), "a fresh home has no charts");

    let out = daemon.rtl(&[
        "run",
        "--connect",
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pipeline/job.json"),
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let seen = session.script(
            "const figures = Array.from(document.querySelectorAll('figure.chart'));
             return {
               marker: window.rtlMarker || null,
               names: figures.map(f => f.dataset.name),
               loaded: figures.filter(f => { const i = f.querySelector('img');
                                             return i.complete && i.naturalWidth > 0; }).length,
               captions: figures.map(f => f.querySelector('figcaption').textContent)
             }",
        );
        if seen["loaded"].as_u64() >= Some(2) {
            break seen;
        }
        assert!(Instant::now() < deadline, "charts never appeared: {seen}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        seen["marker"],
        json!("the same page"),
        "the page was reloaded"
    );
    let names: Vec<&str> = seen["names"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        names.contains(&"cpu") && names.contains(&"io_per_cpu"),
        "{names:?}"
    );
    let captions = seen["captions"].to_string();
    assert!(
        captions.contains("job ") && captions.contains("points"),
        "{captions}"
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
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = session.script(
            "return {
               figures: document.querySelectorAll('figure.chart').length,
               injected: document.getElementById('injected') !== null,
               text: document.body.textContent.includes('<b id=\"injected\">bold</b>')
             }",
        );
        if seen["figures"].as_u64() >= Some(3) {
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
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the third chart never appeared: {seen}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
