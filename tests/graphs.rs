//! Jobs as graphs, through a real daemon: the examples under
//! examples/graph give the results numpy computed for them (make.py),
//! chunked and whole, on one task node and on three; two branches run at
//! the same time; a failing branch fails the job at once, cancels the
//! other and leaves the cache empty; a node killed while it holds a
//! branch's work loses nothing.

mod common;

use common::{
    assert_close, copy_dir, node_holding_work, read_csv, text, wait_for, write_job, write_npy,
    Daemon, Home,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs every example under examples/graph on `daemon` and compares each
/// result stage's table with expected/<stage>.csv.
fn run_examples(daemon: &Daemon, tag: &str) -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/graph");
    let mut ran = Vec::new();
    for entry in std::fs::read_dir(&root).expect("examples/graph").flatten() {
        let expected = entry.path().join("expected");
        if !expected.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let copy = daemon.home.scratch.0.join(tag).join(&name);
        copy_dir(&entry.path(), &copy);
        let out = copy.join("out");
        let run = daemon.rtl(&[
            "run",
            "--connect",
            copy.join("job.json").to_str().unwrap(),
            "--out",
            &format!("{}/", out.display()),
        ]);
        assert!(run.status.success(), "{tag} {name}: {}", text(&run));
        let mut results = 0;
        for want in std::fs::read_dir(&expected).expect("expected").flatten() {
            let stage = want.file_name().to_string_lossy().into_owned();
            let got = out.join(&stage);
            assert!(
                got.is_file(),
                "{tag} {name}: no {stage} written:\n{}",
                text(&run)
            );
            let label = format!("{tag} {name} {stage}");
            let want = read_csv(&want.path());
            assert!(want.rows() > 0, "{label}: an empty result proves nothing");
            assert_close(&label, &read_csv(&got), &want);
            results += 1;
        }
        let written = std::fs::read_dir(&out)
            .expect("out")
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "csv"))
            .count();
        assert_eq!(written, results, "{tag} {name}: one file per result stage");
        ran.push(name);
    }
    ran.sort();
    ran
}

fn status(daemon: &Daemon) -> Value {
    let out = daemon.rtl(&["status", "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Waits up to 20 s for the daemon to hold no job, no queued work and no
/// table in its cache; the last status when it does not.
fn settles_empty(daemon: &Daemon) -> Result<(), Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(daemon);
        let relay = &s["relay"];
        if relay["jobs_running"] == 0 && relay["queued"] == 0 && relay["cache"]["tables"] == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn graph_examples_give_numpys_results_chunked_and_whole_on_one_and_three_nodes() {
    for (chunking, workers) in [
        (None, "1"),
        (Some("16"), "3"),
        (Some("16"), "1"),
        (None, "3"),
    ] {
        let tag = format!("{}-{workers}", chunking.unwrap_or("whole"));
        let mut home = Home::new(&format!("graph-{tag}")).with("RTL_TASK_WORKERS", workers);
        home = match chunking {
            Some(rows) => home.with("RTL_CHUNKING_SIZE", rows),
            None => home.with("RTL_CHUNKING", "false"),
        };
        let daemon = Daemon::start_in(home);
        assert_eq!(run_examples(&daemon, &tag), ["diamond", "fork", "stacked"]);
        // Every table read and let go, fan-out included.
        if let Err(s) = settles_empty(&daemon) {
            panic!("{tag}: tables left behind: {s}");
        }
    }
}

/// `powers` power tasks on `x`, as a JSON list of task calls.
fn powers(powers: usize, base: f64) -> String {
    let calls: Vec<String> = (0..powers)
        .map(|k| {
            format!(
                r#"{{"power": {{"operations": [{{"a": "x", "b": {}, "column": "p{k}"}}]}}}}"#,
                base + k as f64 / 10.0
            )
        })
        .collect();
    calls.join(", ")
}

/// A source of `rows` rows and two branches heavy with arithmetic, each a
/// result of two columns.
fn two_heavy_branches(dir: &Path, rows: usize) -> PathBuf {
    write_npy(&dir.join("data.npy"), rows);
    let job = format!(
        r#"{{"stages": {{
            "load": {{"tasks": {{"open_array": {{"filename": "data", "extension": "npy"}}}}}},
            "left": {{"inputs": "load", "tasks": [{}, {{"select": {{"columns": ["x", "p11"]}}}}]}},
            "right": {{"inputs": "load", "tasks": [{}, {{"select": {{"columns": ["y", "p11"]}}}}]}}}}}}"#,
        powers(12, 1.1),
        powers(12, 2.1)
    );
    write_job(dir, "branches", &job)
}

/// The seconds since midnight a trace timestamp (`...T12:34:56.789Z`) says.
fn seconds(stamp: &str) -> f64 {
    let time = stamp.split('T').nth(1).unwrap_or("").trim_end_matches('Z');
    time.split(':')
        .map(|p| p.parse::<f64>().unwrap_or(0.0))
        .fold(0.0, |acc, p| acc * 60.0 + p)
}

/// Each envelope of stage `stage` in the trace: its start and end, in
/// seconds since midnight.
fn envelopes(trace: &str, stage: usize) -> Vec<(f64, f64)> {
    let needle = format!(" stage {stage} ");
    trace
        .lines()
        .filter(|l| l.contains("PROFILE") && l.contains(&needle))
        .filter_map(|l| {
            let (_, after) = l.split_once("started ")?;
            let (stamp, rest) = after.split_once(", ")?;
            let ms: f64 = rest.split(' ').next()?.parse().ok()?;
            let start = seconds(stamp);
            Some((start, start + ms / 1e3))
        })
        .collect()
}

#[test]
fn two_branches_run_at_the_same_time() {
    let daemon = Daemon::start_in(
        Home::new("graph-overlap")
            .with("RTL_TASK_WORKERS", "3")
            .with("RTL_CHUNKING", "false")
            .with("RTL_PROFILE", "true"),
    );
    let dir = daemon.home.scratch.0.clone();
    let job = two_heavy_branches(&dir, 400_000);
    let run = daemon.rtl(&[
        "run",
        "--connect",
        job.to_str().unwrap(),
        "--out",
        &format!("{}/", dir.join("out").display()),
    ]);
    assert!(run.status.success(), "{}", text(&run));
    let trace = std::fs::read_to_string(daemon.home.config().log_dir().join("tasknode.log"))
        .expect("trace");
    let (left, right) = (envelopes(&trace, 1), envelopes(&trace, 2));
    assert!(
        !left.is_empty() && !right.is_empty(),
        "both branches in the trace:\n{trace}"
    );
    let first = |e: &[(f64, f64)]| e.iter().map(|p| p.0).fold(f64::MAX, f64::min);
    let last = |e: &[(f64, f64)]| e.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    // Whichever branch started second started before the other ended.
    let (earlier, later) = if first(&left) <= first(&right) {
        (&left, &right)
    } else {
        (&right, &left)
    };
    assert!(
        first(later) < last(earlier),
        "the branches ran one after the other: {left:?} then {right:?}"
    );
}

#[test]
fn a_failing_branch_fails_the_job_cancels_the_other_and_frees_the_cache() {
    let daemon = Daemon::start_in(
        Home::new("graph-fail")
            .with("RTL_TASK_WORKERS", "2")
            .with("RTL_CHUNKING_SIZE", "20000"),
    );
    let dir = daemon.home.scratch.0.clone();
    write_npy(&dir.join("data.npy"), 400_000);
    // `slow` is 20 chunks of heavy arithmetic; `bad` finds no row to fit,
    // which only the data can tell.
    let job = format!(
        r#"{{"stages": {{
            "load": {{"tasks": {{"open_array": {{"filename": "data", "extension": "npy"}}}}}},
            "slow": {{"inputs": "load", "tasks": [{}]}},
            "bad": {{"inputs": "load", "tasks": [
                {{"filter": {{"operations": [{{"column": "x", "method": "gt", "value": 100}}]}}}},
                {{"regression": {{"operations": [{{"x": "x", "y": "y", "model": "Linear"}}]}}}}]}}}}}}"#,
        powers(12, 1.1)
    );
    let job = write_job(&dir, "failing", &job);
    let run = daemon.rtl(&["run", "--connect", job.to_str().unwrap()]);
    assert!(!run.status.success(), "{}", text(&run));
    let said = text(&run);
    assert!(
        said.contains(
            "stage bad, task regression, field operations[0]: a degree 1 fit needs at least 2 rows"
        ),
        "{said}"
    );
    // The other branch's queued chunks went with the job, and whatever
    // was out on nodes is let go as they answer.
    if let Err(s) = settles_empty(&daemon) {
        panic!("the failed job left work or tables behind: {s}");
    }
    // The daemon goes on serving.
    let again = daemon.rtl(&[
        "run",
        "--connect",
        common::null_job(&daemon.home.scratch).to_str().unwrap(),
    ]);
    assert!(again.status.success(), "{}", text(&again));
}

#[test]
fn a_node_killed_holding_a_branchs_work_loses_nothing() {
    let daemon = Daemon::start_in(
        Home::new("graph-kill")
            .with("RTL_TASK_WORKERS", "2")
            .with("RTL_CHUNKING_SIZE", "30000")
            .with("RTL_HEARTBEAT_MS", "100")
            .with("RTL_NODE_TIMEOUT_MS", "800")
            .with("RTL_PLOT_WORKERS", "0"),
    );
    let dir = daemon.home.scratch.0.clone();
    let job = two_heavy_branches(&dir, 300_000);
    let out = dir.join("killed");
    let mut run = daemon.spawn(&[
        "run",
        "--connect",
        job.to_str().unwrap(),
        "--out",
        &format!("{}/", out.display()),
    ]);
    let victim = node_holding_work(&daemon, &mut run);
    let Some(victim) = victim else {
        return common::skip(
            "a_node_killed_holding_a_branchs_work_loses_nothing",
            "the job ended before a node was seen holding work",
        );
    };
    common::kill(victim);
    let killed = wait_for(run, Duration::from_secs(120));
    assert!(killed.status.success(), "{}", text(&killed));
    // The same job whole, in this process, for comparison.
    let whole = dir.join("whole");
    let embedded = Home::new("graph-kill-whole").with("RTL_CHUNKING", "false");
    let again = embedded.rtl(&[
        "run",
        job.to_str().unwrap(),
        "--out",
        &format!("{}/", whole.display()),
    ]);
    assert!(again.status.success(), "{}", text(&again));
    for stage in ["left", "right"] {
        let file = format!("{stage}.csv");
        assert_close(
            stage,
            &read_csv(&out.join(&file)),
            &read_csv(&whole.join(&file)),
        );
    }
    if let Err(s) = settles_empty(&daemon) {
        panic!("tables left behind: {s}");
    }
}
