//! What the cluster secret costs: two real daemons started from the built
//! `rtl`, one with a secret (`rtl keygen`) and one without, each with one
//! task node; null jobs alternate between them in the same run, so the
//! ratio holds on a noisy machine. Also the time to connect (the handshake
//! is two round trips and three HMACs, once per connection).
//!
//! `cargo bench --bench auth` (BENCH_ROUNDS sets the job count).

#[path = "common/daemon.rs"]
mod daemon;

use daemon::Daemon;
use rtl_client::Transform;
use rtl_dsl::Plan;
use std::path::Path;
use std::time::{Duration, Instant};

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    (at(0.50), at(0.99))
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000);
    let open = Daemon::start("auth-open", false, "task_workers = 1");
    let closed = Daemon::start("auth-secret", true, "task_workers = 1");
    let plan = Plan::parse(
        r#"{"0": {"tasks": {"null": {}}}}"#,
        "<bench>",
        Path::new("/").into(),
    )
    .expect("plan");
    let (open_config, closed_config) = (open.config(), closed.config());

    let mut connect = (Vec::new(), Vec::new());
    for _ in 0..50 {
        let start = Instant::now();
        drop(Transform::connect(&open_config).expect("connect"));
        connect.0.push(start.elapsed());
        let start = Instant::now();
        drop(Transform::connect(&closed_config).expect("connect with the secret"));
        connect.1.push(start.elapsed());
    }

    let mut a = Transform::connect(&open_config).expect("connect");
    let mut b = Transform::connect(&closed_config).expect("connect");
    let mut jobs = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for round in 0..rounds {
        // Alternate which goes first, so neither always runs warm.
        for side in [round % 2, 1 - round % 2] {
            let (transform, samples) = if side == 0 {
                (&mut a, &mut jobs.0)
            } else {
                (&mut b, &mut jobs.1)
            };
            let start = Instant::now();
            transform.execute(&plan).expect("null job");
            samples.push(start.elapsed());
        }
    }
    let (jo, jc) = (percentiles(jobs.0), percentiles(jobs.1));
    let (co, cc) = (percentiles(connect.0), percentiles(connect.1));
    println!("null job through a daemon over TCP loopback, {rounds} each, microseconds");
    println!("{:<34} {:>10} {:>10}", "", "p50", "p99");
    println!("{:<34} {:>10.1} {:>10.1}", "job, no secret", jo.0, jo.1);
    println!(
        "{:<34} {:>10.1} {:>10.1}",
        "job, with the cluster secret", jc.0, jc.1
    );
    println!(
        "{:<34} {:>10.2} {:>10.2}",
        "ratio",
        jc.0 / jo.0,
        jc.1 / jo.1
    );
    println!("{:<34} {:>10.1} {:>10.1}", "connect, no secret", co.0, co.1);
    println!(
        "{:<34} {:>10.1} {:>10.1}",
        "connect, with the handshake", cc.0, cc.1
    );
}
