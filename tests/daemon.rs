//! The daemon end to end: start, status, jobs over the real sockets, bad
//! jobs, stop.

mod common;

use common::{alive, null_job, text, write_job, Daemon, Home, SENSORS_CSV};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn status_json(daemon: &Daemon) -> (Option<i32>, Value) {
    let out = daemon.rtl(&["status", "--json"]);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}\n{}", text(&out)));
    (out.status.code(), json)
}

fn services<'a>(json: &'a Value, name: &str) -> Vec<&'a Value> {
    json["services"]
        .as_array()
        .map(|list| list.iter().filter(|s| s["name"] == name).collect())
        .unwrap_or_default()
}

fn run_connected(daemon: &Daemon, job: &Path, out: &Path) -> Output {
    daemon.rtl(&["run", "--connect", path(job), "--out", path(out)])
}

fn path(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

#[test]
fn start_run_status_stop() {
    let daemon = Daemon::start("lifecycle");
    let (code, json) = status_json(&daemon);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["running"], true);
    for (name, count) in [("relay", 1), ("tasknode", 3), ("plotnode", 1)] {
        let found = services(&json, name);
        assert_eq!(found.len(), count, "{name} in {json}");
        assert!(
            found.iter().all(|s| s["alive"] == true),
            "{name} alive in {json}"
        );
    }

    let job = null_job(&daemon.home.scratch);
    let out_csv = daemon.home.scratch.0.join("out.csv");
    let out = run_connected(&daemon, &job, &out_csv);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Running: open_array") && stdout.contains("Completed:"),
        "{stdout}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("embedded"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&out_csv).expect("output"),
        SENSORS_CSV
    );

    // An unknown task: a non-zero exit naming it; the daemon carries on.
    let bad = write_job(
        &daemon.home.scratch.0,
        "bad_task",
        r#"{"0": {"tasks": {"null": {}}}, "1": {"tasks": {"nul": {}}}}"#,
    );
    let out = daemon.rtl(&["run", "--connect", bad.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stage 1, task nul") && err.contains("did you mean null"),
        "{err}"
    );

    // A missing input file: named in the error; the daemon carries on.
    let missing = write_job(
        &daemon.home.scratch.0,
        "missing",
        r#"{"0": {"tasks": {"open_array": {"filename": "absent", "path": "data"}}}}"#,
    );
    let out = daemon.rtl(&["run", "--connect", missing.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stage 0, task open_array") && err.contains("data/absent.csv"),
        "{err}"
    );

    std::fs::remove_file(&out_csv).expect("remove output");
    let out = run_connected(&daemon, &job, &out_csv);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&out_csv).expect("output"),
        SENSORS_CSV
    );

    let (_, json) = status_json(&daemon);
    let handled: u64 = services(&json, "tasknode")
        .iter()
        .filter_map(|s| s["envelopes"].as_u64())
        .sum();
    // Two stages twice; the unknown task never left the relay and the
    // missing file was caught by the client's check before submission.
    assert_eq!(
        handled, 4,
        "task nodes answered {handled} envelopes: {json}"
    );
    assert!(
        services(&json, "tasknode")
            .iter()
            .filter(|s| s["envelopes"].as_u64() > Some(0))
            .count()
            >= 2,
        "work spread over the nodes: {json}"
    );

    let pids = daemon.home.pids();
    assert_eq!(pids.len(), 5);
    let out = daemon.rtl(&["stop"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        pids.iter().all(|p| !alive(*p)),
        "processes left after stop: {pids:?}"
    );
    assert!(daemon.home.pids().is_empty(), "pid files left after stop");
    let (code, json) = status_json(&daemon);
    assert_eq!(code, Some(3), "{json}");
    assert_eq!(json["running"], false);
    let out = daemon.rtl(&["stop"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("not running"),
        "{}",
        text(&out)
    );
}

#[test]
fn start_twice_and_stale_pid_files() {
    let home = Home::new("stale");
    let run = home.dir().join("run");
    std::fs::create_dir_all(&run).expect("run dir");
    // A pid that cannot be a live process of ours.
    std::fs::write(run.join("tasknode-4194999.pid"), "4194999\n").expect("stale pid file");
    let daemon = Daemon { home };
    let out = daemon.rtl(&["start"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("removed stale pid file"), "{stdout}");
    assert!(!daemon.home.dir().join("run/tasknode-4194999.pid").exists());

    let out = daemon.rtl(&["start"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already running"),
        "{}",
        text(&out)
    );
    assert_eq!(daemon.home.pids().len(), 5, "a second start starts nothing");

    let out = daemon.rtl(&["restart"]);
    assert!(out.status.success(), "{}", text(&out));
    let (code, json) = status_json(&daemon);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(services(&json, "tasknode").len(), 3, "{json}");
}

#[test]
fn logs_are_written_per_service() {
    let daemon = Daemon::start("logs");
    let job = null_job(&daemon.home.scratch);
    let out = daemon.rtl(&["run", "--connect", job.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    drop(daemon.rtl(&["stop"]));
    for service in ["relay", "tasknode", "plotnode"] {
        let log = std::fs::read_to_string(daemon.home.dir().join(format!("log/{service}.log")))
            .unwrap_or_default();
        assert!(
            log.contains(&format!("INFO {service}[")),
            "{service}.log:\n{log}"
        );
    }
}

#[test]
fn jobs_fail_when_no_task_node_can_take_them() {
    let daemon = Daemon::start_in(Home::new("noworkers").with("RTL_TASK_WORKERS", "0"));
    let job = null_job(&daemon.home.scratch);
    let out = daemon.rtl(&["run", "--connect", job.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no task node has answered the relay"),
        "{}",
        text(&out)
    );
}

#[test]
fn start_fails_cleanly_when_the_relay_port_is_taken() {
    let home = Home::new("porttaken");
    let _squatter =
        std::net::TcpListener::bind(("127.0.0.1", home.port("RTL_RELAY_PORT"))).expect("bind");
    let daemon = Daemon { home };
    let out = daemon.rtl(&["start"]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("relay.log") && err.contains("Address already in use"),
        "{err}"
    );
    assert!(
        daemon.home.pids().is_empty(),
        "nothing left running: {:?}",
        daemon.home.pids()
    );
}

#[test]
fn two_starts_at_once_start_one_daemon() {
    let home = Home::new("twostarts").with("RTL_PLOT_WORKERS", "0");
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| home.rtl(&["start"]));
        let b = scope.spawn(|| home.rtl(&["start"]));
        (a.join().expect("a"), b.join().expect("b"))
    });
    let daemon = Daemon { home };
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    assert_eq!(daemon.home.pids_of("relay").len(), 1);
    assert_eq!(
        daemon.home.pids_of("tasknode").len(),
        3,
        "task_workers is 3"
    );
    let said = format!("{}{}", text(&a), text(&b));
    assert!(said.contains("already running"), "{said}");
}

/// The original's names for tasks it had before rtl's: `task_difference`
/// (which returns its input unchanged) and the older `task_average_cross`
/// and `task_max_cross`.
#[test]
fn jobs_written_with_the_originals_older_task_names_run() {
    let daemon = Daemon::start("original-names");
    null_job(&daemon.home.scratch);
    let job = write_job(
        &daemon.home.scratch.0,
        "older",
        r#"{"0": {"tasks": {"task_open_array": {"filename": "sensors", "path": "data"}}},
            "1": {"tasks": [
                {"task_difference": {}},
                {"task_average_cross": {"operations": [{"columns": ["sensor", "reading"], "column": "mean"}]}},
                {"task_max_cross": {"operations": [{"columns": ["sensor", "reading"], "column": "most"}]}}
            ]}}"#,
    );
    let out_csv = daemon.home.scratch.0.join("older.csv");
    let out = run_connected(&daemon, &job, &out_csv);
    assert!(out.status.success(), "{}", text(&out));
    let got = common::read_csv(&out_csv);
    let column = |name: &str| match got.column(name) {
        Some(rtl_tasks::Column::Float64(a)) => a.to_vec(),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(column("mean"), [10.75, 11.625, 0.0, 2.00000005]);
    assert_eq!(column("most"), [20.5, 21.25, 3.0, 4.0]);
    assert_eq!(got.width(), 6, "difference kept every column");
}

#[test]
fn kwargs_the_original_took_and_rtl_ignores_run_with_a_warning() {
    let daemon = Daemon::start("original-kwargs");
    null_job(&daemon.home.scratch);
    let job = write_job(
        &daemon.home.scratch.0,
        "kwargs",
        r#"{"0": {"tasks": {"open": {"file": "sensors.csv", "path": "data", "mixed": true}}},
            "1": {"tasks": {"open_array": {"filename": "sensors", "path": "data", "delimiter": null}}},
            "2": {"tasks": [
                {"sort": {"column": "reading", "axis": -1, "method": "quicksort"}},
                {"unique": {"column": "ok"}},
                {"unique": {"a": "ok", "column": 5}},
                {"write": {"filename": "copy", "extension": "json", "delimiter": ";"}}
            ]}}"#,
    );
    let out_csv = daemon.home.scratch.0.join("kwargs.csv");
    let out = run_connected(&daemon, &job, &out_csv);
    assert!(out.status.success(), "{}", text(&out));
    let warnings: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .map(str::to_string)
        .collect();
    let file = job.display();
    assert_eq!(
        warnings,
        [
            format!("warning: {file}:1:66: stage 0, task open, field mixed: has no effect in rtl and is ignored: rtl gives each column its own type, so a file of mixed types needs no flag"),
            format!("warning: {file}:4:48: stage 2, task sort, field axis: has no effect in rtl and is ignored: a table's rows are what is sorted; there is no other axis"),
            format!("warning: {file}:4:60: stage 2, task sort, field method: has no effect in rtl and is ignored: rtl's sort is always stable, as numpy's kind=\"stable\" (one of the orders any kind may give)"),
            format!("warning: {file}:6:40: stage 2, task unique, field column: has no effect in rtl and is ignored: `a` names the column to make unique; `column` does only without it"),
            format!("warning: {file}:7:69: stage 2, task write, field delimiter: has no effect in rtl and is ignored: only csv files have a delimiter"),
        ]
    );
    // `column` named the column to make unique; rows came sorted by reading.
    let got = common::read_csv(&out_csv);
    match got.column("sensor") {
        Some(rtl_tasks::Column::Int64(a)) => assert_eq!(a.to_vec(), [3, 4]),
        other => panic!("{other:?}"),
    }
    let check = daemon.rtl(&["check", path(&job)]);
    assert!(check.status.success(), "{}", text(&check));
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).lines().count(),
        6,
        "ok and the five warnings: {}",
        text(&check)
    );
    let check = daemon.rtl(&["check", "--json", path(&job)]);
    assert!(check.status.success(), "{}", text(&check));
    let listed: serde_json::Value = serde_json::from_slice(&check.stdout).expect("json");
    let severities: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|w| w["severity"].as_str())
        .collect();
    assert_eq!(severities, ["warning"; 5], "{listed}");
}
