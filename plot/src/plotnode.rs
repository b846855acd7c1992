//! The plot node: draws the charts jobs make and serves them as a live web
//! page on `plot_listen:plot_port`.
//!
//! It joins the relay like a task node but with capacity 0: it never gets
//! stage work, only `chart` messages, which the relay copies to every plot
//! node. Each chart is drawn as SVG and PNG into `<home>/plots/`
//! ([`crate::gallery`]). A second thread serves the page ([`crate::page`]),
//! where a new chart shows up without a reload.

use crate::{gallery, page};
use rtl_log::Log;
use rtl_wire::link::{hostname, RelayLink};
use rtl_wire::{Body, Done, Envelope, Message, NodeInfo};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Settings of the plot node.
pub struct PlotNodeConfig {
    /// The relay's node endpoint.
    pub relay: String,
    /// How often to tell the relay this node is alive.
    pub heartbeat: Duration,
    /// How long the relay may stay silent before the node reconnects.
    pub relay_timeout: Duration,
    /// The cluster secret, when the relay asks for it.
    pub secret: Option<rtl_wire::auth::Secret>,
    /// `host:port` the page binds to.
    pub listen: String,
    /// Where charts are written and served from.
    pub plots_dir: PathBuf,
    /// Runs of each chart kept (`plot_history`).
    pub history: usize,
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
        tasks: Vec::new(),
    };
    std::thread::scope(|scope| {
        let page = {
            let (log, dir) = (log.clone(), settings.plots_dir.clone());
            scope.spawn(move || {
                if let Err(e) = page::serve(listener, dir, log.clone(), stop) {
                    log.error(e);
                }
            })
        };
        while !stop.load(Ordering::Relaxed) {
            link.heartbeat_if_due(&info, &log);
            let wait = link.until_heartbeat().min(Duration::from_millis(200));
            match link
                .connection
                .socket()
                .poll(link.poll_events(), wait.as_millis() as i64)
            {
                Ok(0) | Err(zmq::Error::EINTR) => continue,
                Ok(_) => link.flush(&log, &mut |_| {}),
                Err(e) => {
                    log.error(format!("poll failed: {e}"));
                    break;
                }
            }
            while let Some(env) = link.next_message(&log) {
                let (id, chart) = (env.id, matches!(env.message, Message::Chart { .. }));
                if draw(env, &settings, &log) {
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
fn draw(env: Envelope, settings: &PlotNodeConfig, log: &Log) -> bool {
    let job = env.job;
    let Message::Chart { chart, .. } = env.message else {
        log.warn(format!(
            "ignored a {:?} message from the relay",
            env.message.kind()
        ));
        return false;
    };
    match gallery::store(&settings.plots_dir, &chart, job, settings.history) {
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
