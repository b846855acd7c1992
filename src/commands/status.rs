//! `rtl status`: one row per rtl process; exit 0 when rtl runs (its relay
//! answers), 3 when not, 4 when the relay's process is alive but does not
//! answer (the LSB convention).

use crate::supervisor::{self, Service, Status};
use rtl_config::Config;
use serde_json::json;
use std::process::ExitCode;

pub fn run(config: &Config, as_json: bool) -> Result<ExitCode, String> {
    let current = supervisor::status(config);
    if as_json {
        let here = rtl_wire::link::hostname();
        let services: Vec<_> = current
            .services
            .iter()
            .map(|s| {
                json!({
                    "name": s.service.name(),
                    "pid": s.pid,
                    "alive": s.alive,
                    "answering": s.service != Service::Relay || current.relay.is_some(),
                    "envelopes": s.envelopes.unwrap_or(0),
                    "in_flight": s.in_flight,
                    "uptime_s": s.uptime.map(|u| u.as_secs_f64()),
                    "host": s.host,
                    // Started by `rtl node`, not by `rtl start`; kept
                    // under its first name for scripts that read it.
                    "joined": !s.started_here,
                    "remote": s.host.as_ref().is_some_and(|h| *h != here),
                })
            })
            .collect();
        let relay = current.relay.as_ref().map(
            |r| json!({"jobs_running": r.jobs_running, "queued": r.queued, "nodes": r.nodes.len(),
                       "cache": {"tables": r.cache.tables, "plans": r.cache.plans, "readers": r.cache.readers, "max_readers": r.cache.max_readers}}),
        );
        let out = json!({"running": current.running(), "home": config.home, "services": services, "relay": relay, "relay_silent": current.relay_silent, "charts_drawn": charts_drawn(&current)});
        println!("{out}");
    } else if current.services.is_empty() {
        println!("rtl is not running (home {})", config.home.display());
    } else {
        print_table(&current);
    }
    Ok(match (&current.relay_silent, current.running()) {
        (_, true) => ExitCode::SUCCESS,
        // LSB: the state is unknown.
        (Some(_), false) => ExitCode::from(4),
        (None, false) => ExitCode::from(3),
    })
}

/// The status table shared by `rtl status` and `rtl start`.
pub fn print_table(current: &Status) {
    println!(
        "{:<9} {:>8}  {:<6} {:>10} {:>10}",
        "SERVICE", "PID", "STATE", "UPTIME", "ENVELOPES"
    );
    for s in &current.services {
        let state = match (s.alive, s.service) {
            (false, _) => "dead",
            (true, Service::Relay) if current.relay.is_none() => "silent",
            (true, _) => "alive",
        };
        let uptime = s
            .uptime
            .map_or("-".to_string(), |u| format_uptime(u.as_secs()));
        let envelopes = s.envelopes.map_or("-".to_string(), |n| n.to_string());
        let origin = match (&s.host, s.started_here) {
            (Some(host), false) => format!("  joined from {host}"),
            _ => String::new(),
        };
        println!(
            "{:<9} {:>8}  {state:<6} {uptime:>10} {envelopes:>10}{origin}",
            s.service.name(),
            s.pid
        );
    }
    if let Some(why) = &current.relay_silent {
        println!(
            "the relay's process is alive but it did not answer: {why}; if it stays so, `rtl restart`"
        );
    }
    if let Some(drawn) = charts_drawn(current) {
        println!("charts drawn by the plot node since it started: {drawn}");
    }
    if let Some(relay) = &current.relay {
        let cache = &relay.cache;
        println!(
            "jobs running: {}, envelopes queued: {}; cache: {} table(s), {} plan(s), {} of {} readers in use",
            relay.jobs_running, relay.queued, cache.tables, cache.plans, cache.readers, cache.max_readers
        );
    }
}

/// The charts the plot nodes have drawn (their envelopes are charts, one
/// each, counted only once drawn), when the relay knows any plot node.
fn charts_drawn(current: &Status) -> Option<u64> {
    current
        .services
        .iter()
        .filter(|s| s.service == Service::PlotNode)
        .filter_map(|s| s.envelopes)
        .reduce(|a, b| a + b)
}

fn format_uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}
