//! Null-job round trip through the embedded relay and a task node, next to
//! the raw floor: the same four ZeroMQ hops (client DEALER -> relay ROUTER,
//! relay ROUTER -> node DEALER, and back) over inproc with messages of the
//! same shape, doing no work. Both run in this process, in the same run, so
//! the ratio holds on a noisy machine.
//!
//! `cargo bench --bench roundtrip` (set BENCH_ROUNDS to change the count).

use rtl_client::Transform;
use rtl_dsl::Plan;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: rtl_tasks::alloc::HugePageAlloc = rtl_tasks::alloc::HugePageAlloc;

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let home = std::env::temp_dir().join(format!("rtl-bench-{}", std::process::id()));
    let mut config = rtl_config::Config::defaults(&home);
    config.home = home.clone();
    config.task_workers = 1;

    let floor = percentiles(raw_floor(rounds));
    let mut transform = Transform::embedded(&config).expect("embedded cluster");
    let plan =
        Plan::parse(r#"{"0": {"tasks": {"null": {}}}}"#, "<bench>", home.clone()).expect("plan");
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        transform.execute(&plan).expect("null job");
        samples.push(start.elapsed());
    }
    drop(transform);
    let rtl = percentiles(samples);
    println!("null job round trip, embedded, {rounds} rounds (microseconds)");
    println!("{:<24} {:>10} {:>10}", "", "p50", "p99");
    println!("{:<24} {:>10.1} {:>10.1}", "rtl null job", rtl.0, rtl.1);
    println!(
        "{:<24} {:>10.1} {:>10.1}",
        "raw 4-hop floor", floor.0, floor.1
    );
    println!(
        "{:<24} {:>10.2} {:>10.2}",
        "ratio rtl / floor",
        rtl.0 / floor.0,
        rtl.1 / floor.1
    );
    let _ = std::fs::remove_dir_all(&home);
}

/// (p50, p99) in microseconds.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    (at(0.50), at(0.99))
}

/// The same socket pattern as a null job, with a relay thread that only
/// forwards and a node thread that only echoes.
fn raw_floor(rounds: usize) -> Vec<Duration> {
    let ctx = zmq::Context::new();
    let clients = ctx.socket(zmq::ROUTER).expect("socket");
    clients.bind("inproc://floor-clients").expect("bind");
    let nodes = ctx.socket(zmq::ROUTER).expect("socket");
    nodes.bind("inproc://floor-nodes").expect("bind");
    let node = ctx.socket(zmq::DEALER).expect("socket");
    node.set_identity(b"node").expect("identity");
    node.connect("inproc://floor-nodes").expect("connect");
    node.send(&b"hello"[..], 0).expect("hello");
    let _ = nodes.recv_multipart(0).expect("hello");

    let relay = std::thread::spawn(move || {
        for _ in 0..rounds {
            let mut parts = clients.recv_multipart(0).expect("from client");
            let client = parts.remove(0);
            nodes.send(&b"node"[..], zmq::SNDMORE).expect("to node");
            nodes.send_multipart(parts, 0).expect("to node");
            let mut parts = nodes.recv_multipart(0).expect("from node");
            parts.remove(0);
            clients.send(client, zmq::SNDMORE).expect("to client");
            clients.send_multipart(parts, 0).expect("to client");
        }
    });
    let echo = std::thread::spawn(move || {
        for _ in 0..rounds {
            let parts = node.recv_multipart(0).expect("work");
            node.send_multipart(parts, 0).expect("answer");
        }
    });
    let client = ctx.socket(zmq::DEALER).expect("socket");
    client.connect("inproc://floor-clients").expect("connect");
    let header = [0u8; 160]; // about a real submit header
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        client.send(&[7u8; 16][..], zmq::SNDMORE).expect("id");
        client.send(&header[..], 0).expect("header");
        let _ = client.recv_multipart(0).expect("answer");
        samples.push(start.elapsed());
    }
    relay.join().expect("relay thread");
    echo.join().expect("node thread");
    samples
}
