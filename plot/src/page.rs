//! The plot page's web server: `/` is one HTML file with a small script
//! (no outside resources) that asks `/charts.json` every second and brings
//! the page up to date; `/charts/<file>.svg` and `.png` are the pictures,
//! `/favicon.svg` the page's icon.
//!
//! The page shows the charts by job, the newest job first, each job under a
//! short run label (the first 8 digits of its id, as `rtl run` prints it)
//! and its local time, in a grid of as many per row as the window holds;
//! a click enlarges a chart. An update adds and removes only what changed,
//! never rebuilds a figure that did not, and keeps what the reader looks at
//! in place. When the plot node stops answering, the page says so in red.
//!
//! hyper serves it, on a single-threaded tokio runtime of its own: every
//! connection is a task, so a slow or silent client holds nothing but its
//! own socket, and hyper enforces the limits a public port needs (a 16 KiB
//! request head that must arrive within 2 s). Connections are capped, and
//! each lives at most `CONNECTION_LIFE` (60 s), so a client that never reads
//! its answer is dropped too.

use crate::gallery;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rtl_log::Log;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Longest request head (request line and headers) read.
const HEAD_BYTES: usize = 16 << 10;
/// How long a client has for its request head.
const HEAD_TIME: Duration = Duration::from_secs(2);
/// Connections served at once; past this a new one is closed at once.
const CONNECTIONS: usize = 256;
/// Longest a connection is kept, whatever it does.
const CONNECTION_LIFE: Duration = Duration::from_secs(60);
/// How often the server looks whether the node is stopping.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Serves the page on `listener` until `stop` is set.
pub fn serve(
    listener: std::net::TcpListener,
    dir: PathBuf,
    log: Log,
    stop: &AtomicBool,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the page server: {e}"))?;
    runtime.block_on(accept(listener, Arc::new(dir), log, stop))
}

async fn accept(
    listener: std::net::TcpListener,
    dir: Arc<PathBuf>,
    log: Log,
    stop: &AtomicBool,
) -> Result<(), String> {
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot configure the plot page socket: {e}"))?;
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| format!("cannot serve the plot page: {e}"))?;
    let room = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIME)
        .max_buf_size(HEAD_BYTES);
    let mut check = tokio::time::interval(STOP_CHECK);
    while !stop.load(Ordering::Relaxed) {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    log.warn(format!("page connection failed: {e}"));
                    continue;
                }
            },
            _ = check.tick() => continue,
        };
        let Ok(permit) = room.clone().try_acquire_owned() else {
            log.debug(|| "page connection refused: too many open".to_string());
            continue;
        };
        let (dir, log) = (dir.clone(), log.clone());
        let connection = http.serve_connection(
            TokioIo::new(stream),
            hyper::service::service_fn(move |request| {
                let dir = dir.clone();
                async move { Ok::<_, Infallible>(answer(&request, &dir)) }
            }),
        );
        tokio::spawn(async move {
            match tokio::time::timeout(CONNECTION_LIFE, connection).await {
                Ok(Err(e)) => log.debug(|| format!("page request failed: {e}")),
                Err(_) => log.debug(|| "page connection closed: open too long".to_string()),
                Ok(Ok(())) => {}
            }
            drop(permit);
        });
    }
    Ok(())
}

/// The answer to one request.
fn answer(request: &Request<Incoming>, dir: &Path) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let (status, kind, body): (StatusCode, &str, Vec<u8>) = if request.method() != Method::GET {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            b"only GET\n".to_vec(),
        )
    } else if path == "/" || path == "/index.html" {
        (
            StatusCode::OK,
            "text/html; charset=utf-8",
            PAGE.as_bytes().to_vec(),
        )
    } else if path == "/favicon.svg" || path == "/favicon.ico" {
        (StatusCode::OK, "image/svg+xml", FAVICON.as_bytes().to_vec())
    } else if path == "/charts.json" {
        let list = serde_json::to_vec(&gallery::list(dir)).unwrap_or_else(|_| b"[]".to_vec());
        (StatusCode::OK, "application/json", list)
    } else if let Some((bytes, ext)) = path
        .strip_prefix("/charts/")
        .and_then(|f| f.rsplit_once('.'))
        .and_then(|(stem, ext)| gallery::picture(dir, stem, ext).zip(Some(ext)))
        .and_then(|(p, ext)| std::fs::read(p).ok().zip(Some(ext)))
    {
        let kind = if ext == "svg" {
            "image/svg+xml"
        } else {
            "image/png"
        };
        (StatusCode::OK, kind, bytes)
    } else {
        (StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec())
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static(kind));
    headers.insert(
        CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}

/// The page's icon: a small bar chart in the page's colors.
const FAVICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f3b57"/><rect x="3" y="8" width="2.5" height="5" fill="#ff7f0e"/><rect x="6.75" y="4" width="2.5" height="9" fill="#fff"/><rect x="10.5" y="6" width="2.5" height="7" fill="#2ca02c"/></svg>
"##;

/// The page: everything it needs is in this one file. Strings from jobs
/// reach the page only through `textContent` and attribute setters, never
/// as HTML.
const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rtl charts</title>
<link rel="icon" href="favicon.svg" type="image/svg+xml">
<style>
  body { font-family: "DejaVu Sans", sans-serif; margin: 0; background: #f4f4f4; color: #222; }
  /* The script keeps the reader's place itself. */
  html { overflow-anchor: none; }
  header { position: sticky; top: 0; z-index: 1; background: #1f3b57; color: #fff; padding: 10px 24px;
           display: flex; align-items: baseline; gap: 24px; }
  header h1 { font-size: 20px; margin: 0; }
  #status { font-size: 13px; opacity: 0.85; }
  body.offline header { background: #a61b1b; }
  body.offline #status { opacity: 1; font-weight: bold; }
  main { padding: 8px 24px 24px; }
  section.job > h2 { font-size: 15px; font-weight: normal; color: #444; margin: 18px 0 8px; }
  section.job > h2 b { color: #1f3b57; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 520px), 1fr)); gap: 16px; }
  figure.chart { background: #fff; margin: 0; padding: 10px; border: 1px solid #ddd; min-width: 0; }
  figure.chart img { width: 100%; height: auto; display: block; cursor: zoom-in; aspect-ratio: 16 / 9; }
  figcaption { font-size: 13px; color: #555; margin-top: 6px; overflow-wrap: anywhere; }
  figcaption a { color: #1f3b57; margin-left: 8px; }
  figcaption .earlier { display: block; margin-top: 3px; }
  figcaption .earlier a { margin-left: 6px; }
  figure.chart:target { outline: 3px solid #ff7f0e; }
  #empty { color: #666; }
  #zoom { position: fixed; inset: 0; z-index: 2; background: rgba(0, 0, 0, 0.8); display: flex;
          align-items: center; justify-content: center; cursor: zoom-out; }
  #zoom[hidden] { display: none; }
  #zoom img { max-width: 96vw; max-height: 96vh; background: #fff; }
</style>
</head>
<body>
<header><h1>rtl charts</h1><span id="status">connecting...</span></header>
<main id="charts"><p id="empty">No charts yet. A job with a simple_plot task draws them here.</p></main>
<div id="zoom" hidden><img alt=""></div>
<script>
"use strict";
const main = document.getElementById("charts");
const status = document.getElementById("status");
const zoom = document.getElementById("zoom");
// Figures by chart file and stamp, sections by job: kept across updates,
// so an unchanged chart is never built (or loaded) again.
const figures = new Map();
const sections = new Map();
let lastAnswer = null;

function picture(c, ext) {
  return "charts/" + encodeURIComponent(c.file) + "." + ext + "?v=" + c.stamp;
}
function runLabel(job) { return "run " + job.slice(0, 8); }
// A chart's figure. A run keeps its figure when a later run of its chart
// takes the plain file name and its own files are renamed: only the
// addresses change.
function figureFor(c) {
  const key = c.job + "/" + c.name + "@" + c.stamp;
  let f = figures.get(key);
  if (!f) {
    f = document.createElement("figure");
    f.className = "chart";
    f.dataset.name = c.name;
    f.dataset.key = key;
    const img = document.createElement("img");
    img.alt = c.title;
    img.title = c.caption;
    img.addEventListener("click", () => {
      zoom.querySelector("img").src = img.src;
      zoom.hidden = false;
    });
    const cap = document.createElement("figcaption");
    const name = document.createElement("span");
    name.textContent = c.name;
    cap.append(name);
    for (const ext of ["svg", "png"]) {
      const a = document.createElement("a");
      a.dataset.ext = ext;
      a.textContent = ext.toUpperCase();
      cap.append(a);
    }
    const earlier = document.createElement("span");
    earlier.className = "earlier";
    cap.append(earlier);
    f.append(img, cap);
    figures.set(key, f);
  }
  if (f.dataset.file !== c.file) {
    f.dataset.file = c.file;
    f.id = "chart-" + c.file;
    f.querySelector("img").src = picture(c, "svg");
    for (const a of f.querySelectorAll("figcaption > a")) a.href = picture(c, a.dataset.ext);
  }
  return f;
}
function sectionFor(job, stamp) {
  let s = sections.get(job);
  if (!s) {
    s = document.createElement("section");
    s.className = "job";
    s.dataset.job = job;
    const h = document.createElement("h2");
    const label = document.createElement("b");
    label.textContent = runLabel(job);
    label.title = "job " + job;
    const when = document.createElement("span");
    h.append(label, when);
    const grid = document.createElement("div");
    grid.className = "grid";
    s.append(h, grid);
    sections.set(job, s);
  }
  s.querySelector("h2 span").textContent = " \u00b7 " + new Date(stamp).toLocaleString();
  return s;
}
// The links under a figure to the runs of its chart before it.
function setEarlier(f, runs) {
  const span = f.querySelector(".earlier");
  const key = runs.map(r => r.file).join(",");
  if (span.dataset.key === key) return;
  span.dataset.key = key;
  span.replaceChildren();
  if (runs.length === 0) return;
  span.append("earlier runs:");
  for (const r of runs) {
    const a = document.createElement("a");
    a.href = "#chart-" + r.file;
    a.textContent = runLabel(r.job) + " (" + new Date(r.stamp).toLocaleTimeString() + ")";
    span.append(a);
  }
}
// Puts `children` into `parent` in this order, moving only what is out of place.
function arrange(parent, children) {
  let at = parent.firstElementChild;
  for (const child of children) {
    if (child !== at) parent.insertBefore(child, at);
    else at = at.nextElementSibling;
  }
  while (at) { const next = at.nextElementSibling; at.remove(); at = next; }
}
// The first figure the reader sees, and where it is.
function anchor() {
  if (window.scrollY <= 0) return null;
  for (const f of main.querySelectorAll("figure.chart")) {
    const top = f.getBoundingClientRect().top;
    if (f.getBoundingClientRect().bottom > 60) return { f, top };
  }
  return null;
}
function show(charts) {
  const jobs = new Map();
  for (const c of charts) {
    if (!jobs.has(c.job)) jobs.set(c.job, { stamp: c.stamp, charts: [] });
    jobs.get(c.job).charts.push(c);
  }
  const runsOf = new Map();
  for (const c of charts) {
    if (!runsOf.has(c.name)) runsOf.set(c.name, []);
    runsOf.get(c.name).push(c);
  }
  const held = anchor();
  const order = [];
  const live = new Set();
  for (const [job, group] of jobs) {
    const s = sectionFor(job, group.stamp);
    group.charts.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    const figs = group.charts.map(c => {
      const f = figureFor(c);
      const runs = runsOf.get(c.name);
      setEarlier(f, runs.slice(runs.indexOf(c) + 1));
      live.add(f.dataset.key);
      return f;
    });
    arrange(s.querySelector(".grid"), figs);
    order.push(s);
  }
  for (const key of [...figures.keys()]) if (!live.has(key)) figures.delete(key);
  for (const job of [...sections.keys()]) if (!jobs.has(job)) sections.delete(job);
  if (order.length === 0) {
    const p = document.createElement("p");
    p.id = "empty";
    p.textContent = "No charts yet. A job with a simple_plot task draws them here.";
    order.push(document.getElementById("empty") || p);
  }
  arrange(main, order);
  if (held && held.f.isConnected) {
    window.scrollBy(0, held.f.getBoundingClientRect().top - held.top);
  }
}
let shown = "";
let asking = false;
async function refresh() {
  // One question at a time, and none waits long: a plot node that is
  // paused neither answers nor closes the connection.
  if (asking) return;
  asking = true;
  try {
    const response = await fetch("charts.json", { cache: "no-store", signal: AbortSignal.timeout(3000) });
    if (!response.ok) throw new Error("status " + response.status);
    const charts = await response.json();
    const key = charts.map(c => c.file + "@" + c.stamp).join(",");
    if (key !== shown) {
      shown = key;
      show(charts);
    }
    lastAnswer = new Date();
    document.body.classList.remove("offline");
    const runs = new Set(charts.map(c => c.job)).size;
    status.textContent = charts.length + " chart(s) of " + runs + " run(s), updated " + lastAnswer.toLocaleTimeString();
  } catch (e) {
    document.body.classList.add("offline");
    status.textContent = "plot node not answering" +
      (lastAnswer ? " since " + lastAnswer.toLocaleTimeString() : "") +
      ": the charts below may be out of date; trying again every second";
  } finally {
    asking = false;
  }
}
zoom.addEventListener("click", () => { zoom.hidden = true; });
document.addEventListener("keydown", e => { if (e.key === "Escape") zoom.hidden = true; });
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
"##;
