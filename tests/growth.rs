//! What a daemon that runs for months keeps: parameterised jobs bring a new
//! plan each time, and neither the relay, the task nodes nor the cache may
//! grow with the number of plans they have seen.

mod common;

use common::{anon_rss, Daemon, Home};
use rtl_client::{Column, Plan, Table, Transform};
use std::collections::VecDeque;

/// Distinct plans run through the daemon.
const PLANS: usize = 20_000;

/// Jobs kept in flight at once, so the run takes seconds.
const IN_FLIGHT: usize = 32;

/// Growth allowed to each process, in bytes of anonymous memory, between
/// the end of the warm-up and the end of the run. Measured on this run:
/// with bounded memos and plans released with their last job, the relay
/// grew 300 KiB and each task node 32 KiB; remembering every plan grew the
/// relay 2.8 MiB and each task node 18 MiB.
const BOUND: usize = 2 << 20;

/// A plan no other job has: the constant it adds is `k`.
fn plan(k: usize, dir: &std::path::Path) -> Plan {
    let job = format!(
        r#"{{"0": {{"tasks": {{"add": {{"operations": [{{"a": "x", "b": {k}, "column": "y"}}]}}}}}}}}"#
    );
    Plan::parse(&job, "<growth>", dir.to_path_buf()).expect("plan")
}

/// Runs plans `range` with at most [`IN_FLIGHT`] at once, checking each
/// result.
fn run(transform: &mut Transform, range: std::ops::Range<usize>, dir: &std::path::Path) {
    let input = Table::from_columns(vec![("x".into(), Column::Float64(ndarray::array![1.0]))])
        .expect("table");
    let mut waiting = VecDeque::new();
    for k in range {
        let handle = transform
            .submit_with(&plan(k, dir), Some(input.clone()))
            .expect("submit");
        waiting.push_back((k, handle));
        if waiting.len() >= IN_FLIGHT {
            check(transform, waiting.pop_front());
        }
    }
    while let Some(job) = waiting.pop_front() {
        check(transform, Some(job));
    }
}

fn check(transform: &mut Transform, job: Option<(usize, rtl_client::JobHandle)>) {
    let Some((k, handle)) = job else { return };
    let table = transform.wait(handle).expect("the job runs");
    let Some(Column::Float64(y)) = table.column("y") else {
        panic!("job {k}: no y column");
    };
    assert_eq!(y[0], 1.0 + k as f64, "job {k}");
}

/// Bytes a file takes on disk (the cache file is sparse).
fn disk_bytes(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("the cache file").blocks() * 512
}

/// Anonymous memory of the relay and of each task node.
fn memory(daemon: &Daemon) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = daemon
        .home
        .pids_of("relay")
        .into_iter()
        .map(|pid| (format!("relay {pid}"), anon_rss(pid)))
        .collect();
    out.extend(
        daemon
            .home
            .pids_of("tasknode")
            .into_iter()
            .map(|pid| (format!("task node {pid}"), anon_rss(pid))),
    );
    out
}

#[test]
fn twenty_thousand_distinct_plans_leave_memory_and_the_cache_where_they_were() {
    let daemon = Daemon::start_in(
        Home::new("plan-growth")
            .with("RTL_TASK_WORKERS", "2")
            .with("RTL_PLOT_WORKERS", "0"),
    );
    let config = daemon.home.config();
    let dir = daemon.home.scratch.0.clone();
    let mut transform = Transform::connect(&config).expect("connect");
    // Warm-up: allocators, the nodes' plan memos and the cache's pages
    // reach their working size.
    run(&mut transform, 0..1_000, &dir);
    let data = config.cache_dir().join("data.mdb");
    let (before, cache_before) = (memory(&daemon), disk_bytes(&data));

    run(&mut transform, 1_000..1_000 + PLANS, &dir);
    let (after, cache_after) = (memory(&daemon), disk_bytes(&data));
    let status = Transform::status(&config, std::time::Duration::from_secs(5)).expect("status");
    for ((who, was), (_, is)) in before.iter().zip(&after) {
        eprintln!(
            "{who}: {} KiB after the warm-up, {} KiB after {PLANS} more plans",
            was >> 10,
            is >> 10
        );
    }
    eprintln!("cache file {cache_before} -> {cache_after} bytes on disk");
    for ((who, was), (_, is)) in before.iter().zip(&after) {
        assert!(
            is.saturating_sub(*was) < BOUND,
            "{who} grew from {} KiB to {} KiB over {PLANS} plans",
            was >> 10,
            is >> 10
        );
    }
    assert_eq!(status.cache.plans, 0, "plans left in the cache: {status:?}");
    assert_eq!(
        status.cache.tables, 0,
        "tables left in the cache: {status:?}"
    );
    // Freed pages are reused: the file's pages on disk grow by at most a
    // little (its length is the map size from the start).
    assert!(
        cache_after < cache_before + (1 << 20),
        "the cache file grew from {cache_before} to {cache_after} bytes on disk"
    );
}
