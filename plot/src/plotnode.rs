//! The plot node: draws the charts jobs make and serves them as a live web
//! page on `plot_listen:plot_port`.
//!
//! It joins the relay like a task node but with capacity 0: it never gets
//! stage work, only `chart` messages, which the relay copies to every plot
//! node. Each chart is drawn as SVG and PNG into `<home>/plots/`
//! ([`crate::gallery`]). A second thread serves the page: `/` is one HTML
//! file with a small script (no outside resources) that asks
//! `/charts.json` every second and redraws the list when it changed, so a
//! new chart shows up without a reload; `/charts/<file>.svg` and `.png`
//! are the pictures.
//!
//! The page server is written here by hand: three GET routes, nothing an
//! HTTP crate would add but weight. It defends itself: each request gets a
//! thread of its own (at most 16), its head is capped at 16 KiB and must
//! arrive within 2 s, so one slow or huge client holds or bloats nothing.

use crate::gallery;
use rtl_log::Log;
use rtl_wire::link::{hostname, RelayLink};
use rtl_wire::{Body, Done, Envelope, Message, NodeInfo};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Settings of the plot node.
pub struct PlotNodeConfig {
    pub relay: String,
    pub heartbeat: Duration,
    pub relay_timeout: Duration,
    pub secret: Option<rtl_wire::auth::Secret>,
    /// `host:port` the page binds to.
    pub listen: String,
    pub plots_dir: PathBuf,
}

/// Runs the plot node until `stop` is set.
pub fn run(
    ctx: &zmq::Context,
    settings: PlotNodeConfig,
    log: Log,
    stop: &AtomicBool,
) -> Result<(), String> {
    // The plot node this one replaces may hold the port a moment longer.
    let deadline = Instant::now() + Duration::from_secs(2);
    let listener = loop {
        match TcpListener::bind(&settings.listen) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => {
                break other.map_err(|e| {
                    format!("cannot serve the plot page on {}: {e}", settings.listen)
                })?
            }
        }
    };
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot configure the plot page socket: {e}"))?;
    std::fs::create_dir_all(&settings.plots_dir)
        .map_err(|e| format!("cannot create {}: {e}", settings.plots_dir.display()))?;
    let mut link = RelayLink::connect(
        ctx,
        "plotnode",
        &settings.relay,
        settings.heartbeat,
        settings.relay_timeout,
        settings.secret.clone(),
    )?;
    let id = link.id.clone();
    log.info(format!(
        "plot node {id}: page at http://{}/",
        settings.listen
    ));
    let mut info = NodeInfo {
        service: "plotnode".into(),
        pid: std::process::id(),
        host: hostname(),
        capacity: 0,
        cache_id: None,
        envelopes: 0,
    };
    std::thread::scope(|scope| {
        let page = {
            let (log, dir) = (log.clone(), settings.plots_dir.clone());
            scope.spawn(move || serve_page(&listener, &dir, &log, stop))
        };
        while !stop.load(Ordering::Relaxed) {
            link.heartbeat_if_due(&info, &log);
            let wait = link.until_heartbeat().min(Duration::from_millis(200));
            match link
                .connection
                .socket()
                .poll(zmq::POLLIN, wait.as_millis() as i64)
            {
                Ok(0) | Err(zmq::Error::EINTR) => continue,
                Ok(_) => {}
                Err(e) => {
                    log.error(format!("poll failed: {e}"));
                    break;
                }
            }
            while let Some(env) = link.next_message(&log) {
                let (id, chart) = (env.id, matches!(env.message, Message::Chart { .. }));
                if draw(env, &settings.plots_dir, &log) {
                    info.envelopes += 1;
                }
                // The relay keeps each chart until it hears it was dealt
                // with (drawn, or failed to draw: sending it again would
                // not help), so a plot node that dies loses none.
                if chart {
                    let done = Message::Done(Done::default());
                    link.send(Envelope::with_id(id, Uuid::nil(), done, Body::Empty), &log);
                }
            }
        }
        if page.join().is_err() {
            log.error("the page thread panicked");
        }
    });
    link.send(Envelope::control(Message::Bye), &log);
    log.info(format!("plot node {id} stopped"));
    Ok(())
}

/// Draws a `chart` message into the gallery; true when it did.
fn draw(env: Envelope, dir: &Path, log: &Log) -> bool {
    let job = env.job;
    let Message::Chart { chart, .. } = env.message else {
        log.warn(format!(
            "ignored a {:?} message from the relay",
            env.message.kind()
        ));
        return false;
    };
    match gallery::store(dir, &chart, job) {
        Ok(entry) => {
            log.info(format!(
                "job {job}: chart {:?} drawn ({})",
                entry.name, entry.caption
            ));
            true
        }
        Err(e) => {
            log.error(format!("job {job}: chart {:?} not drawn: {e}", chart.name));
            false
        }
    }
}

/// Longest request head (request line and headers) the page reads.
const HEAD_BYTES: usize = 16 << 10;
/// How long a client has for its whole request head: a slow one (a byte a
/// second) is cut off, not waited for.
const HEAD_TIME: Duration = Duration::from_secs(2);
/// Requests answered at once; past this a request is told to come back.
const CONNECTIONS: usize = 16;

/// Answers page requests, each on a thread of its own (at most
/// [`CONNECTIONS`]), until `stop` is set.
fn serve_page(listener: &TcpListener, dir: &Path, log: &Log, stop: &AtomicBool) {
    let open = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) if open.load(Ordering::Relaxed) >= CONNECTIONS => {
                    let _ = stream
                        .set_write_timeout(Some(Duration::from_secs(1)))
                        .and_then(|_| {
                            reply(
                                &stream,
                                "503 Service Unavailable",
                                "text/plain",
                                b"busy; try again\n",
                            )
                        });
                }
                Ok((stream, _)) => {
                    open.fetch_add(1, Ordering::Relaxed);
                    let open = &open;
                    scope.spawn(move || {
                        if let Err(e) = answer(stream, dir) {
                            log.debug(|| format!("page request failed: {e}"));
                        }
                        open.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => log.warn(format!("page connection failed: {e}")),
            }
        }
    });
}

/// The request head, read within [`HEAD_TIME`]; None when it is longer
/// than [`HEAD_BYTES`].
fn read_head(stream: &TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + HEAD_TIME;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() >= HEAD_BYTES {
            return Ok(None);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request took too long to arrive",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        let room = buf.len().min(HEAD_BYTES - head.len());
        let n = (&*stream).read(&mut buf[..room])?;
        if n == 0 {
            return Ok(Some(head));
        }
        head.extend_from_slice(&buf[..n]);
    }
}

fn reply(mut stream: &TcpStream, status: &str, kind: &str, body: &[u8]) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)
}

fn answer(stream: TcpStream, dir: &Path) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let Some(head) = read_head(&stream)? else {
        return reply(
            &stream,
            "431 Request Header Fields Too Large",
            "text/plain",
            b"request too large\n",
        );
    };
    let request = String::from_utf8_lossy(head.split(|b| *b == b'\n').next().unwrap_or_default());
    let mut words = request.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let path = target.split('?').next().unwrap_or("/");
    let (status, kind, body): (&str, &str, Vec<u8>) = if method != "GET" {
        (
            "405 Method Not Allowed",
            "text/plain",
            b"only GET\n".to_vec(),
        )
    } else if path == "/" || path == "/index.html" {
        (
            "200 OK",
            "text/html; charset=utf-8",
            PAGE.as_bytes().to_vec(),
        )
    } else if path == "/charts.json" {
        let list = serde_json::to_vec(&gallery::list(dir)).unwrap_or_else(|_| b"[]".to_vec());
        ("200 OK", "application/json", list)
    } else if let Some(file) = path
        .strip_prefix("/charts/")
        .and_then(|f| f.rsplit_once('.'))
        .and_then(|(stem, ext)| gallery::picture(dir, stem, ext).zip(Some(ext)))
        .and_then(|(p, ext)| std::fs::read(p).ok().zip(Some(ext)))
    {
        let (bytes, ext) = file;
        let kind = if ext == "svg" {
            "image/svg+xml"
        } else {
            "image/png"
        };
        ("200 OK", kind, bytes)
    } else {
        ("404 Not Found", "text/plain", b"not found\n".to_vec())
    };
    reply(&stream, status, kind, &body)
}

/// The page: everything it needs is in this one file. Strings from jobs
/// reach the page only through `textContent` and attribute setters, never
/// as HTML.
const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>rtl charts</title>
<style>
  body { font-family: "DejaVu Sans", sans-serif; margin: 0; background: #f4f4f4; color: #222; }
  header { background: #1f3b57; color: #fff; padding: 12px 24px; display: flex; align-items: baseline; gap: 24px; }
  header h1 { font-size: 20px; margin: 0; }
  #status { font-size: 13px; opacity: 0.8; }
  main { padding: 16px 24px; display: grid; gap: 16px; }
  figure.chart { background: #fff; margin: 0; padding: 12px; border: 1px solid #ddd; max-width: 980px; }
  figure.chart img { width: 100%; height: auto; display: block; }
  figcaption { font-size: 13px; color: #555; margin-top: 6px; }
  figcaption a { color: #1f3b57; margin-left: 8px; }
  #empty { color: #666; }
</style>
</head>
<body>
<header><h1>rtl charts</h1><span id="status">connecting...</span></header>
<main id="charts"><p id="empty">No charts yet. A job with a simple_plot task draws them here.</p></main>
<script>
"use strict";
let shown = "";
function figure(c) {
  const f = document.createElement("figure");
  f.className = "chart";
  f.dataset.name = c.name;
  const img = document.createElement("img");
  img.src = "charts/" + encodeURIComponent(c.file) + ".svg?v=" + c.stamp;
  img.alt = c.title;
  const cap = document.createElement("figcaption");
  cap.textContent = c.name + " \u2014 job " + c.job + ", " + c.time + " \u2014 " + c.caption;
  for (const ext of ["svg", "png"]) {
    const a = document.createElement("a");
    a.href = "charts/" + encodeURIComponent(c.file) + "." + ext;
    a.textContent = ext.toUpperCase();
    cap.appendChild(a);
  }
  f.append(img, cap);
  return f;
}
async function refresh() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("charts.json", { cache: "no-store" });
    const charts = await response.json();
    const key = charts.map(c => c.file + "@" + c.stamp).join(",");
    if (key !== shown) {
      shown = key;
      const main = document.getElementById("charts");
      main.replaceChildren(...charts.map(figure));
      if (charts.length === 0) {
        const p = document.createElement("p");
        p.id = "empty";
        p.textContent = "No charts yet. A job with a simple_plot task draws them here.";
        main.append(p);
      }
    }
    status.textContent = charts.length + " chart(s), updated " + new Date().toLocaleTimeString();
  } catch (e) {
    status.textContent = "plot node not answering; trying again";
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
"##;
