//! The plot node: joins the relay like a task node (so `rtl status` sees it
//! alive) and serves the chart page on `plot_listen:plot_port`.
//!
//! It takes no stage work (capacity 0). The page lists the charts stored
//! under `<home>/plots/`, newest first; rendering charts into that folder is
//! the plot renderer's job.

use crate::link::{hostname, RelayLink};
use crate::log::Log;
use crate::wire::{Envelope, Kind, NodeInfo};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};
use uuid::Uuid;

/// Settings of the plot node.
pub struct PlotNodeConfig {
    pub relay: String,
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
    let listener = TcpListener::bind(&settings.listen)
        .map_err(|e| format!("cannot serve the plot page on {}: {e}", settings.listen))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot configure the plot page socket: {e}"))?;
    std::fs::create_dir_all(&settings.plots_dir)
        .map_err(|e| format!("cannot create {}: {e}", settings.plots_dir.display()))?;
    let mut link = RelayLink::connect(ctx, "plotnode", &settings.relay)?;
    let id = link.id.clone();
    log.info(format!(
        "plot node {id}: page at http://{}/",
        settings.listen
    ));
    let info = NodeInfo {
        service: "plotnode".into(),
        pid: std::process::id(),
        host: hostname(),
        capacity: 0,
        cache_id: None,
        envelopes: 0,
    };
    while !stop.load(Ordering::Relaxed) {
        link.heartbeat_if_due(&info, &log);
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = serve(stream, &settings.plots_dir) {
                    log.debug(|| format!("page request failed: {e}"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => log.warn(format!("page connection failed: {e}")),
        }
    }
    link.send(Envelope::control(Kind::Bye, Uuid::nil()), &log);
    log.info(format!("plot node {id} stopped"));
    Ok(())
}

fn serve(stream: TcpStream, plots: &Path) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = String::new();
    BufReader::new(&stream).read_line(&mut request)?;
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match path {
        "/" | "/index.html" => ("200 OK", page(plots)),
        _ => ("404 Not Found", "not found\n".to_string()),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn page(plots: &Path) -> String {
    let mut charts: Vec<(SystemTime, String)> = std::fs::read_dir(plots)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let modified = e.metadata().and_then(|m| m.modified()).ok()?;
            Some((modified, e.file_name().to_string_lossy().into_owned()))
        })
        .collect();
    charts.sort_by_key(|c| std::cmp::Reverse(c.0));
    let items: String = if charts.is_empty() {
        "<p>No charts yet.</p>".into()
    } else {
        charts
            .iter()
            .map(|(at, name)| format!("<li>{} ({})</li>", escape(name), crate::log::timestamp(*at)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!("<!doctype html>\n<html><head><title>rtl plots</title></head><body><h1>rtl plots</h1>\n<ul>{items}</ul></body></html>\n")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
