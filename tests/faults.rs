//! Faults, for real: task nodes and the relay are killed (SIGKILL, by the
//! pid we started) while they hold a job, and what users see is checked:
//! the complete, correct result when a node dies; a clear error naming the
//! stage when the work keeps killing its node; a clear error in bounded
//! time when the relay dies, and `rtl start` bringing everything back.

mod common;

use common::{
    assert_close, kill, node_holding_work, read_csv, text, wait_for, write_job, write_npy, Daemon,
    Home,
};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// A job with enough arithmetic per row (powers: a libm call each) that
/// its envelopes are out on nodes long enough to be caught there.
fn heavy_job(dir: &Path) -> std::path::PathBuf {
    write_npy(&dir.join("data.npy"), 2_000_000);
    let powers: Vec<String> = (0..16)
        .map(|k| {
            format!(
                r#"{{"power": {{"operations": [{{"a": "x", "b": {}, "column": "p{k}"}}]}}}}"#,
                1.1 + k as f64 / 10.0
            )
        })
        .collect();
    let job = format!(
        r#"{{"0": {{"tasks": {{"open_array": {{"filename": "data", "extension": "npy"}}}}}},
            "1": {{"tasks": [{}, {{"add": {{"operations": [{{"a": "p3", "b": "y", "column": "s"}}]}}}}]}}}}"#,
        powers.join(", ")
    );
    write_job(dir, "heavy", &job)
}

fn status(daemon: &Daemon) -> Value {
    let out = daemon.rtl(&["status", "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn task_nodes(status: &Value) -> Vec<&Value> {
    status["services"]
        .as_array()
        .map(|s| s.iter().filter(|s| s["name"] == "tasknode").collect())
        .unwrap_or_default()
}

/// Fast fault detection, so the tests take seconds.
fn home(tag: &str) -> Home {
    Home::new(tag)
        .with("RTL_HEARTBEAT_MS", "100")
        .with("RTL_NODE_TIMEOUT_MS", "800")
        .with("RTL_JOB_TIMEOUT_MS", "1500")
        .with("RTL_PLOT_WORKERS", "0")
}

#[test]
fn a_killed_nodes_work_is_sent_again_and_the_node_restarted() {
    let daemon = Daemon::start_in(
        home("kill-node")
            .with("RTL_TASK_WORKERS", "2")
            .with("RTL_CHUNKING_SIZE", "100000"),
    );
    let dir = daemon.home.scratch.0.clone();
    let job = heavy_job(&dir);
    let out = dir.join("out.csv");
    let mut run = daemon.spawn(&[
        "run",
        "--connect",
        job.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let victim = node_holding_work(&daemon, &mut run).expect("the job ended before a kill");
    kill(victim);
    let done = wait_for(run, Duration::from_secs(120));
    assert!(done.status.success(), "{}", text(&done));

    // The result is complete and right: the same as a run where nothing died.
    let calm = Home::new("kill-node-calm").with("RTL_CHUNKING", "false");
    let want = dir.join("want.csv");
    let reference = calm.rtl(&[
        "run",
        job.to_str().unwrap(),
        "--out",
        want.to_str().unwrap(),
    ]);
    assert!(reference.status.success(), "{}", text(&reference));
    let (got, want) = (read_csv(&out), read_csv(&want));
    assert_eq!(got.rows(), 2_000_000, "no chunk lost or repeated");
    assert_close("after a node died", &got, &want);

    let log = std::fs::read_to_string(daemon.home.dir().join("log/relay.log")).expect("log");
    assert!(log.contains("sent again: tasknode"), "{log}");
    assert!(
        log.contains(&format!("tasknode pid {victim} died; started a new one")),
        "{log}"
    );
    // Two task nodes again, the victim not among them.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(&daemon);
        let alive: Vec<u64> = task_nodes(&s)
            .iter()
            .filter(|n| n["alive"] == true && n["host"].is_string())
            .filter_map(|n| n["pid"].as_u64())
            .collect();
        if alive.len() == 2 && !alive.contains(&u64::from(victim)) {
            break;
        }
        assert!(Instant::now() < deadline, "nodes not back: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn work_that_keeps_killing_its_node_fails_naming_the_stage() {
    let daemon = Daemon::start_in(
        home("kill-thrice")
            .with("RTL_TASK_WORKERS", "1")
            .with("RTL_CHUNKING", "false"),
    );
    let dir = daemon.home.scratch.0.clone();
    let job = heavy_job(&dir);
    let mut run = daemon.spawn(&["run", "--connect", job.to_str().unwrap()]);
    // Kill whichever node holds the work until the job gives up: attempts
    // count per piece of work, so it takes three kills of one piece.
    let mut victims = Vec::new();
    while let Some(victim) = node_holding_work(&daemon, &mut run) {
        if !victims.contains(&victim) {
            kill(victim);
            victims.push(victim);
        }
        assert!(
            victims.len() <= 12,
            "still running after {} kills",
            victims.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let done = wait_for(run, Duration::from_secs(60));
    assert!(!done.status.success(), "{}", text(&done));
    let message = text(&done);
    // Whichever stage the node was caught in, the error names it and its
    // tasks.
    let named = message.contains("stage 0, task open_array")
        || (message.contains("stage 1, task power") && message.contains("add"));
    assert!(named, "names the stage and tasks: {message}");
    assert!(message.contains("stopped answering 3 times"), "{message}");
}

#[test]
fn a_killed_relay_is_an_error_in_bounded_time_and_start_brings_it_back() {
    let daemon = Daemon::start_in(home("kill-relay").with("RTL_TASK_WORKERS", "1"));
    let dir = daemon.home.scratch.0.clone();
    let job = heavy_job(&dir);
    let mut run = daemon.spawn(&["run", "--connect", job.to_str().unwrap()]);
    node_holding_work(&daemon, &mut run).expect("the job ended before the relay was killed");
    let relay = status(&daemon)["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "relay"))
        .and_then(|s| s["pid"].as_u64())
        .expect("relay pid") as u32;
    let killed = Instant::now();
    kill(relay);
    let done = wait_for(run, Duration::from_secs(30));
    let waited = killed.elapsed();
    assert!(!done.status.success(), "{}", text(&done));
    assert!(text(&done).contains("stopped answering"), "{}", text(&done));
    // job_timeout_ms is 1.5 s; allow for a loaded machine, not for a hang.
    assert!(waited < Duration::from_secs(15), "gave up after {waited:?}");

    let out = daemon.rtl(&["status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("dead"), "{}", text(&out));

    let out = daemon.rtl(&["start"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("left running by a relay that died"),
        "{}",
        text(&out)
    );
    let out = daemon.rtl(&["run", "--connect", job.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Result: 2000000 rows"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_task_that_never_finishes_fails_its_job_after_task_timeout_ms_and_the_node_goes_on() {
    let daemon = Daemon::start_in(
        Home::new("stuck-task")
            .with("RTL_TASK_TIMEOUT_MS", "100")
            .with("RTL_TASK_WORKERS", "1")
            .with("RTL_PLOT_WORKERS", "0"),
    );
    let scratch = &daemon.home.scratch;
    let job = common::null_job(scratch);
    // Work that runs far longer than task_timeout_ms allows (file tasks
    // refuse what could block forever, such as a named pipe).
    let stuck = heavy_job(&scratch.0);
    let node = daemon.home.pids_of("tasknode");
    let started = Instant::now();
    let out = daemon.rtl(&["run", "--connect", stuck.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("stage ") && said.contains("task_timeout_ms"),
        "{said}"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "{said}");
    // The same node, with a fresh worker, runs the next job.
    let out = daemon.rtl(&["run", "--connect", job.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Result: 4 rows"), "{}", text(&out));
    assert_eq!(
        daemon.home.pids_of("tasknode"),
        node,
        "the node was replaced"
    );
    // The stuck thread does not keep the node from stopping.
    let out = daemon.rtl(&["stop"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(node.iter().all(|pid| !common::alive(*pid)));
}

/// A stage of thousands of quick tasks sends progress faster than the
/// relay reads it: every message must still arrive, the answer behind them
/// above all (a node that dropped it left the job waiting for
/// `task_timeout_ms`).
#[test]
fn a_burst_of_progress_loses_no_message() {
    let daemon = Daemon::start_in(home("burst").with("RTL_TASK_TIMEOUT_MS", "30000"));
    let tasks = 3000;
    let calls = vec![r#"{"null": {}}"#; tasks].join(", ");
    let plan = rtl_dsl::Plan::parse(
        &format!(r#"{{"0": {{"tasks": [{calls}]}}}}"#),
        "<burst>",
        std::env::temp_dir(),
    )
    .expect("plan");
    let mut transform = rtl_client::Transform::connect(&daemon.home.config()).expect("connect");
    for _ in 0..2 {
        let mut events = 0;
        transform
            .execute_with(&plan, None, &mut |_| events += 1)
            .expect("the job finishes");
        assert_eq!(events, 2 * tasks, "a Running and a Completed per task");
    }
}

#[test]
fn progress_waits_for_a_paused_relay_instead_of_being_left_out() {
    // One node, and a stage whose heavy tasks keep it busy while the relay
    // is paused: the progress of the 20,000 quick tasks after them (more
    // than the socket buffers hold) meets a relay that reads nothing for
    // two seconds, less than node_timeout.
    let daemon = Daemon::start_in(
        home("burst-paused")
            .with("RTL_TASK_WORKERS", "1")
            .with("RTL_CHUNKING", "false")
            .with("RTL_NODE_TIMEOUT_MS", "10000")
            .with("RTL_JOB_TIMEOUT_MS", "10000")
            .with("RTL_TASK_TIMEOUT_MS", "60000"),
    );
    let relay = daemon.home.pids_of("relay")[0];
    let dir = daemon.home.scratch.0.clone();
    write_npy(&dir.join("data.npy"), 1_000_000);
    let mut calls = vec![r#"{"open_array": {"filename": "data", "extension": "npy"}}"#.to_string()];
    calls.extend((0..8).map(|k| {
        format!(r#"{{"power": {{"operations": [{{"a": "x", "b": 1.{k}, "column": "p{k}"}}]}}}}"#)
    }));
    calls.extend(std::iter::repeat_n(r#"{"null": {}}"#.to_string(), 20000));
    let tasks = calls.len();
    let plan = rtl_dsl::Plan::parse(
        &format!(r#"{{"0": {{"tasks": [{}]}}}}"#, calls.join(", ")),
        "<burst>",
        dir.clone(),
    )
    .expect("plan");
    let mut transform = rtl_client::Transform::connect(&daemon.home.config()).expect("connect");
    let mut events = 0;
    let mut resumer = None;
    let started = transform.execute_with(&plan, None, &mut |_| {
        events += 1;
        if resumer.is_none() {
            common::signal(relay, libc::SIGSTOP);
            resumer = Some(std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(2));
                common::signal(relay, libc::SIGCONT);
            }));
        }
    });
    if let Some(resumer) = resumer {
        resumer.join().expect("resumed");
    }
    started.expect("the job finishes");
    assert_eq!(events, 2 * tasks, "a Running and a Completed per task");
    let log =
        std::fs::read_to_string(daemon.home.dir().join("log/tasknode.log")).unwrap_or_default();
    assert!(!log.contains("left out"), "{log}");
}

#[test]
fn a_result_too_large_to_move_fails_naming_the_settings_without_retries() {
    // A cache of 1 MiB and messages of at most 64 KiB: a 3.2 MB result of
    // one stage can go neither way.
    let daemon = Daemon::start_in(
        home("too-large")
            .with("RTL_TASK_WORKERS", "2")
            .with("RTL_CHUNKING", "false")
            .with("RTL_CACHE_MAP_SIZE", "1MiB")
            .with("RTL_MAX_MESSAGE_BYTES", "64KiB"),
    );
    let dir = daemon.home.scratch.0.clone();
    write_npy(&dir.join("data.npy"), 200_000);
    let job = write_job(
        &dir,
        "job",
        r#"{"0": {"tasks": [{"open_array": {"filename": "data", "extension": "npy"}}, {"add": {"operations": [{"a": "x", "b": 1, "column": "z"}]}}]}}"#,
    );
    let run = daemon.rtl(&["run", "--connect", job.to_str().unwrap()]);
    assert!(!run.status.success(), "{}", text(&run));
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(
        said.contains("stage 0, task add: the stage's result (200000 rows, 4.8 MB) cannot reach the relay: it does not go through the cache (")
            && said.contains("raise cache_map_size or max_message_bytes, or make the result smaller"),
        "{}",
        text(&run)
    );
    assert!(
        !said.contains("stopped answering"),
        "no node was lost: {said}"
    );
    let log = std::fs::read_to_string(daemon.home.dir().join("log/relay.log")).unwrap_or_default();
    assert!(
        !log.contains("sent again"),
        "nothing was sent again:\n{log}"
    );
}
