//! Backpressure: a client that submits far faster than the task nodes work
//! is slowed with `busy` answers, the relay's memory stays bounded by its
//! settings, and every job still comes back, right.

mod common;

use common::{anon_rss, Daemon, Home};
use ndarray::Array1;
use rtl_dsl::Plan;
use rtl_tasks::{Column, Table};
use rtl_wire::{Body, Envelope, Kind};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

const JOBS: usize = 100;
const ROWS: usize = 1_000_000; // 8 MB of float64 per job

/// Samples a process's anonymous memory every few milliseconds until
/// dropped; keeps the peak.
struct Sampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(anon_rss(pid));
                std::thread::sleep(Duration::from_millis(2));
            }
            peak
        });
        Sampler {
            stop,
            thread: Some(thread),
        }
    }

    fn peak(mut self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn submit(socket: &mut zmq::Socket, id: Uuid, plan: &Plan, k: usize) {
    let table = Table::from_columns(vec![(
        "x".into(),
        Column::Float64(Array1::from_elem(ROWS, k as f64)),
    )])
    .expect("table");
    Envelope::with_id(id, id, common::submit(plan.clone()), Body::Table(table))
        .send(socket, None)
        .expect("send");
}

#[test]
fn a_flooding_client_is_slowed_and_the_relay_stays_bounded() {
    let memory = 16usize << 20;
    let daemon = Daemon::start_in(
        Home::new("flood")
            .with("RTL_RELAY_MEMORY", &memory.to_string())
            .with("RTL_TASK_WORKERS", "1")
            .with("RTL_MAX_IN_FLIGHT", "1")
            .with("RTL_CHUNKING", "false"),
    );
    let config = daemon.home.config();
    let relay = daemon.home.pids_of("relay")[0];
    let before = anon_rss(relay);
    let sampler = Sampler::start(relay);

    // A client with no manners: a raw socket that sends every job at once
    // and sends a job again as soon as it may.
    let ctx = zmq::Context::new();
    let mut socket = common::proven_client(&ctx, &daemon.home);
    let plan = Plan::parse(
        r#"{"0": {"tasks": {"multiply": {"operations": [{"a": "x", "b": 2, "column": "y"}]}}}}"#,
        "<flood>",
        std::env::temp_dir(),
    )
    .expect("plan");
    let ids: Vec<Uuid> = (0..JOBS).map(|_| Uuid::new_v4()).collect();
    let index: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(k, id)| (*id, k)).collect();
    for (k, id) in ids.iter().enumerate() {
        submit(&mut socket, *id, &plan, k);
    }
    let mut done = [false; JOBS];
    let mut busy = 0;
    // Jobs to send again, and when: the client keeps reading results
    // while it waits.
    let mut resend: Vec<(Instant, usize)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while done.iter().any(|d| !d) {
        assert!(Instant::now() < deadline, "jobs still missing after 120 s");
        let now = Instant::now();
        for (_, k) in resend.iter().filter(|(at, _)| *at <= now) {
            submit(&mut socket, ids[*k], &plan, *k);
        }
        resend.retain(|(at, _)| *at > now);
        if socket.poll(zmq::POLLIN, 5).expect("poll") == 0 {
            continue;
        }
        let env = Envelope::recv(&socket, 0).expect("recv");
        let k = index[&env.job];
        match env.message.kind() {
            Kind::Busy => {
                busy += 1;
                resend.push((Instant::now() + Duration::from_millis(10), k));
            }
            Kind::Result => {
                let table = env.body.into_table().expect("result");
                let Some(Column::Float64(y)) = table.column("y") else {
                    panic!("job {k}: no y column");
                };
                assert_eq!(y.len(), ROWS);
                assert!(y.iter().all(|v| *v == 2.0 * k as f64), "job {k}: wrong y");
                assert!(!done[k], "job {k} answered twice");
                done[k] = true;
            }
            other => panic!("job {k}: unexpected {other:?}: {:?}", env.message),
        }
    }
    let peak = sampler.peak();
    let submitted = JOBS * ROWS * 8;
    eprintln!(
        "relay peak anonymous memory {} MiB (at start {} MiB); {} MiB submitted; {busy} busy answers",
        peak >> 20,
        before >> 20,
        submitted >> 20
    );
    assert!(busy > 0, "the relay never pushed back");
    // The relay holds at most relay_memory for queued work, plus what is
    // on its way in and out: the messages libzmq takes in from the client
    // before the relay reads them (8, the relay's inbound high-water
    // mark), the results queued for a client that reads slowly (16, its
    // outbound mark), and four in the relay's hands (one being decoded,
    // one being encoded, the work out on the node and its answer).
    let bound = before + memory + (8 + 16 + 4) * ROWS * 8;
    assert!(
        peak < bound && peak < submitted / 3,
        "relay peak anonymous memory {} MiB, bound {} MiB",
        peak >> 20,
        bound >> 20
    );
    let log = std::fs::read_to_string(config.log_dir().join("relay.log")).expect("relay log");
    assert!(log.contains("busy: asked clients to resend"), "{log}");
}
