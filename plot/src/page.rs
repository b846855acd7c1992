//! The plot page's web server: `/` is one HTML file with a small script
//! (no outside resources) that asks `/charts.json` every second and
//! redraws the list when it changed; `/charts/<file>.svg` and `.png` are
//! the pictures.
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
