//! Soak: 100,000 small jobs back to back from 4 clients, then one job over
//! a 1 GB table, through a real daemon; every result checked. Prints the
//! relay's and the task nodes' resident memory after a warm-up and at the
//! end, and the LMDB file's size on disk, so that growth shows.
//!
//! `cargo bench --bench soak` (SOAK_JOBS sets the small-job count).

#[path = "common/daemon.rs"]
mod daemon;

use daemon::Daemon;
use ndarray::Array1;
use rtl_client::Transform;
use rtl_dsl::Plan;
use rtl_tasks::{Column, Table};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

#[global_allocator]
static ALLOC: rtl_tasks::alloc::ColumnAlloc = rtl_tasks::alloc::ColumnAlloc;

/// (anonymous resident, file-backed resident, peak resident) of a process,
/// in MiB. File-backed pages are the LMDB map's, shared with every process
/// of the host and dropped by the kernel when memory is short; anonymous
/// ones are what the process itself holds.
fn memory(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    (
        field("RssAnon:"),
        field("RssFile:") + field("RssShmem:"),
        field("VmHWM:"),
    )
}

fn report(when: &str, daemon: &Daemon) {
    let disk = std::fs::metadata(daemon.home.join("cache/data.mdb"))
        .map_or(0, |m| m.blocks() * 512 / (1 << 20));
    let mut line = format!("{when:<28} lmdb on disk {disk:>5} MiB");
    for service in ["relay", "tasknode"] {
        for pid in daemon.pids(service) {
            let (anon, file, peak) = memory(pid);
            line.push_str(&format!(
                "  {service} anon {anon} + map {file} MiB (peak rss {peak})"
            ));
        }
    }
    println!("{line}");
}

fn main() {
    let jobs: usize = std::env::var("SOAK_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let daemon = Daemon::start("soak", false, "task_workers = 2\ncache_map_size = \"4GiB\"");
    let config = daemon.config();
    let plan = Plan::parse(
        r#"{"0": {"tasks": {"multiply": {"operations": [{"a": "x", "b": 2, "column": "y"}]}}}}"#,
        "<soak>",
        Path::new("/").into(),
    )
    .expect("plan");
    let small = |k: usize| {
        Table::from_columns(vec![(
            "x".into(),
            Column::Float64(Array1::from_elem(8, k as f64)),
        )])
        .expect("table")
    };
    let run = |count: usize, offset: usize| {
        let (config, plan) = (config.clone(), plan.clone());
        std::thread::spawn(move || {
            let mut transform = Transform::connect(&config).expect("connect");
            for k in offset..offset + count {
                let out = transform
                    .execute_with(&plan, Some(small(k)), &mut |_| {})
                    .expect("small job");
                let Some(Column::Float64(y)) = out.column("y") else {
                    panic!("job {k}: no y");
                };
                assert!(
                    y.iter().all(|v| *v == 2.0 * k as f64),
                    "job {k}: wrong result"
                );
            }
        })
    };
    // Warm up, then measure from there.
    for t in (0..4).map(|c| run(250, c * 250)).collect::<Vec<_>>() {
        t.join().expect("warm-up");
    }
    report("after 1,000 warm-up jobs", &daemon);
    let started = Instant::now();
    let per = jobs / 4;
    for t in (0..4)
        .map(|c| run(per, 1_000 + c * per))
        .collect::<Vec<_>>()
    {
        t.join().expect("client");
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{} small jobs from 4 clients in {elapsed:.1} s ({:.0} jobs/s), every result checked",
        per * 4,
        (per * 4) as f64 / elapsed
    );
    report("after the small jobs", &daemon);

    let rows = (1usize << 30) / 8 / 4;
    let big = Table::from_columns(
        ["a", "b", "c", "x"]
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    Column::Float64(Array1::from_iter((0..rows).map(|i| i as f64))),
                )
            })
            .collect(),
    )
    .expect("1 GB table");
    let started = Instant::now();
    let out = Transform::connect(&config)
        .expect("connect")
        .execute_with(&plan, Some(big), &mut |_| {})
        .expect("1 GB job");
    let Some(Column::Float64(y)) = out.column("y") else {
        panic!("1 GB job: no y");
    };
    assert_eq!(y.len(), rows);
    assert!(
        y.iter().enumerate().all(|(i, v)| *v == 2.0 * i as f64),
        "1 GB job: wrong result"
    );
    println!(
        "one job over {rows} rows x 4 float64 (1 GiB) in {:.1} s, result checked",
        started.elapsed().as_secs_f64()
    );
    drop(out);
    report("after the 1 GiB job", &daemon);
    let cache = rtl_cache::Cache::open(&config.cache_dir(), config.cache_map_size).expect("cache");
    println!(
        "table entries left in the cache: {} (the file keeps its size; LMDB reuses freed pages)",
        cache.table_entries()
    );
}
