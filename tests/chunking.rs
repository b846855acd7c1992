//! Chunking: a job over a table ten times `chunking_size` gives the same
//! result chunked (through a real daemon, its chunks spread over the task
//! nodes) as unchunked (embedded, chunking off), for every task.

mod common;

use common::{assert_close, read_csv, text, write_job, Daemon, Home};
use std::path::Path;

/// 1,000 rows: numbers with a few nan, integers, text.
fn data(dir: &Path) {
    let mut csv = String::from("x,y,n,site\n");
    for i in 0..1000u32 {
        let x = if i % 97 == 13 {
            "nan".to_string()
        } else {
            format!("{}", (i as f64 * 7.31) % 113.0 - 20.0)
        };
        let y = (i as f64 * 3.7).sin() * 50.0 + 60.0;
        csv.push_str(&format!(
            "{x},{y},{},{}\n",
            i % 17,
            ["north", "south", "east"][i as usize % 3]
        ));
    }
    std::fs::write(dir.join("data.csv"), csv).expect("data");
}

const EVERY_TASK: &str = r#"{
  "0": {"tasks": {"open_array": {"filename": "data"}}},
  "1": {"tasks": [
    {"filter": {"operations": [{"column": "site", "method": "ne", "value": "east"}]}},
    {"add": {"operations": [{"a": "x", "b": "y", "column": "s"}]}},
    {"subtract": {"operations": [{"a": "y", "b": 1.5, "column": "d"}]}},
    {"multiply": {"operations": [{"a": "n", "b": "y", "column": "m"}]}},
    {"divide": {"operations": [{"a": "y", "b": "n", "column": "q"}]}},
    {"power": {"operations": [{"a": "y", "b": 0.5, "column": "p"}]}},
    {"log": {"operations": [{"a": "y", "column": "l"}]}},
    {"square_root": {"operations": [{"a": "x", "column": "r"}]}},
    {"cross_average": {"operations": [{"columns": ["x", "y", "n"], "column": "ca"}]}},
    {"cross_max": {"operations": [{"columns": ["x", "y"], "column": "cm"}]}},
    {"simple_plot": {"plots": {"p": [{"x": "n", "y": "y"}]}}},
    {"rename": {"columns": {"d": "diff"}}},
    {"select": {"columns": ["x", "y", "n", "site", "s", "diff", "m", "q", "p", "l", "r", "ca", "cm"]}},
    {"normalize": {"model": "Squash", "columns": ["y"]}},
    {"normalize": {"model": "PercentOfMax", "columns": ["m"]}},
    {"normalize": {"model": "DistanceFromMean", "columns": ["diff"], "weight": 0.05}},
    {"average": {"operations": [{"a": "y", "column": "avg"}]}},
    {"classify_static": {"operations": [{"a": ["site", "n"], "column": "k"}]}},
    {"column_space": {"column": "y", "space": "linear"}},
    {"histogram": {"operations": [{"a": "y", "bins": 7, "column": "h"}]}},
    {"regression": {"operations": [{"x": "n", "y": "y", "model": "Poly", "d": 2, "space": "sorted"}]}},
    {"add": {"operations": [{"a": "yNormal", "b": "avg", "column": "after"}]}}
  ]},
  "2": {"tasks": [{"sort": {"column": "x", "descending": true}}, {"multiply": {"operations": [{"a": "x", "b": 2, "column": "x2"}]}}]}
}"#;

const GROUPED: &str = r#"{
  "0": {"tasks": {"open_array": {"filename": "data"}}},
  "1": {"tasks": [{"add": {"operations": [{"a": "x", "b": 1, "column": "x1"}]}},
                  {"group_by": {"by": ["site", "n"], "aggregations": [{"a": "x1", "op": "sum", "column": "t"}, {"a": "y", "op": "max", "column": "top"}, {"a": "n", "op": "count", "column": "c"}]}}]}
}"#;

const DISTINCT: &str = r#"{
  "0": {"tasks": {"open_array": {"filename": "data"}}},
  "1": {"tasks": [{"log": {"operations": [{"a": "y", "column": "ly"}]}}, {"unique": {"a": "n"}}, {"head": {"n": 9}}]}
}"#;

#[test]
fn chunked_results_equal_unchunked_for_every_task_with_chunks_inline() {
    // Nothing is large enough to pass through the cache.
    chunked_equals_unchunked("inline", "1GiB");
}

#[test]
fn chunked_results_equal_unchunked_for_every_task_with_chunks_by_reference() {
    // Every table, chunk and result passes through the cache by key.
    chunked_equals_unchunked("byref", "0");
}

fn chunked_equals_unchunked(tag: &str, by_reference_bytes: &str) {
    let daemon = Daemon::start_in(
        Home::new(tag)
            .with("RTL_CHUNKING_SIZE", "100")
            .with("RTL_BY_REFERENCE_BYTES", by_reference_bytes)
            .with("RTL_PROFILE", "true"),
    );
    let dir = daemon.home.scratch.0.clone();
    data(&dir);
    let unchunked = Home::new("unchunked").with("RTL_CHUNKING", "false");
    for (name, job) in [
        ("every_task", EVERY_TASK),
        ("grouped", GROUPED),
        ("distinct", DISTINCT),
    ] {
        let path = write_job(&dir, name, job);
        let chunked_out = dir.join(format!("{name}_chunked.csv"));
        let out = daemon.rtl(&[
            "run",
            "--connect",
            path.to_str().unwrap(),
            "--out",
            chunked_out.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{name}: {}", text(&out));
        let whole_out = dir.join(format!("{name}_whole.csv"));
        let out = unchunked.rtl(&[
            "run",
            path.to_str().unwrap(),
            "--out",
            whole_out.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{name}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("embedded"),
            "{}",
            text(&out)
        );
        let (got, want) = (read_csv(&chunked_out), read_csv(&whole_out));
        assert!(want.rows() > 0, "{name}: an empty result proves nothing");
        assert_close(name, &got, &want);
    }
    // Chunks went to more than one node.
    let out = daemon.rtl(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status");
    let busy: Vec<u64> = json["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter(|s| s["name"] == "tasknode")
        .filter_map(|s| s["envelopes"].as_u64())
        .collect();
    assert!(
        busy.iter().filter(|n| **n > 0).count() >= 2,
        "chunks spread over nodes: {busy:?}"
    );
    // 1,000 rows in chunks of 100 over several segments: far more envelopes
    // than the 7 stages of the three jobs.
    assert!(busy.iter().sum::<u64>() > 20, "{busy:?}");
    eprintln!("envelopes per task node: {busy:?}");
    // Every piece consumed: nothing left in the cache.
    let config = daemon.home.config();
    let cache = rtl_cache::Cache::open(&config.cache_dir(), config.cache_map_size).expect("cache");
    assert_eq!(cache.table_entries(), 0, "chunks left behind");
    // The profile trace has a line per piece: ten pieces of stage 1's
    // row-local run, each with its start.
    let trace = std::fs::read_to_string(config.log_dir().join("tasknode.log")).expect("log");
    let pieces = trace
        .lines()
        .filter(|l| l.contains("PROFILE") && l.contains(" stage 1 tasks 0..10 piece "))
        .filter(|l| l.contains("started "))
        .count();
    assert!(
        pieces >= 10,
        "{pieces} stage-1 pieces in the trace:\n{trace}"
    );
}

/// Task nodes started with `rtl node` elsewhere; killed (by pid) on drop.
#[test]
fn nodes_that_join_a_relay_take_its_chunks() {
    // The daemon's own nodes: none. The work must go to the joined ones.
    let daemon = Daemon::start_in(
        Home::new("joined")
            .with("RTL_TASK_WORKERS", "0")
            .with("RTL_CHUNKING_SIZE", "100"),
    );
    let elsewhere = Home::new("elsewhere");
    // The operator copies the cluster secret to the other machine.
    std::fs::create_dir_all(elsewhere.dir()).expect("home");
    std::fs::copy(
        daemon.home.dir().join("secret"),
        elsewhere.dir().join("secret"),
    )
    .expect("copy the secret");
    let relay = format!("tcp://127.0.0.1:{}", daemon.home.port("RTL_NODE_PORT"));
    let mut cmd = std::process::Command::new(common::bin());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RTL_")) {
        cmd.env_remove(k);
    }
    let child = cmd
        .envs(elsewhere.env.iter().map(|(k, v)| (k, v)))
        .args(["node", "--relay", &relay, "--workers", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rtl node");
    let _nodes = common::Foreground(child);
    let dir = daemon.home.scratch.0.clone();
    data(&dir);
    let job = write_job(&dir, "job", GROUPED);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut joined = Vec::new();
    while joined.len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let out = daemon.rtl(&["status", "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status");
        joined = json["services"]
            .as_array()
            .expect("services")
            .iter()
            .filter(|s| s["joined"] == true)
            .cloned()
            .collect();
    }
    assert_eq!(joined.len(), 2, "{joined:?}");
    assert!(
        joined
            .iter()
            .all(|s| s["host"].is_string() && s["name"] == "tasknode"),
        "{joined:?}"
    );
    // Joined with `rtl node`, but on this host; up since they joined.
    assert!(joined.iter().all(|s| s["remote"] == false), "{joined:?}");
    assert!(
        joined.iter().all(|s| s["uptime_s"].as_f64().is_some()),
        "{joined:?}"
    );
    let out = daemon.rtl(&["run", "--connect", job.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = daemon.rtl(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status");
    let busy: Vec<u64> = json["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter(|s| s["joined"] == true)
        .filter_map(|s| s["envelopes"].as_u64())
        .collect();
    assert!(
        busy.iter().all(|n| *n > 0),
        "both joined nodes took chunks: {busy:?}"
    );
}
