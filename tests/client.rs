//! The client library against a real daemon: function-call look and feel,
//! task errors as values, large tables through the LMDB cache.

mod common;

use common::{null_job, Daemon, Home};
use ndarray::Array1;
use rtl_client::{Error, Transform};
use rtl_dsl::Plan;
use rtl_tasks::{Column, Table};

fn null_plan() -> Plan {
    Plan::parse(
        r#"{"0": {"tasks": {"null": {}}}}"#,
        "<test>",
        std::env::temp_dir(),
    )
    .expect("plan")
}

fn big_table(rows: usize) -> Table {
    Table::from_columns(vec![
        (
            "x".into(),
            Column::Float64(Array1::from_iter((0..rows).map(|i| i as f64 * 0.5))),
        ),
        ("n".into(), Column::Int64(Array1::from_iter(0..rows as i64))),
        (
            "s".into(),
            Column::Utf8(Array1::from_iter((0..rows).map(|i| format!("r{}", i % 7)))),
        ),
    ])
    .expect("table")
}

#[test]
fn execute_is_a_function_call() {
    let daemon = Daemon::start("client");
    let config = daemon.home.config();
    let job = null_job(&daemon.home.scratch);
    let plan = Plan::from_file(&job).expect("plan");
    let table = Transform::connect(&config)
        .expect("connect")
        .execute(&plan)
        .expect("execute");
    assert_eq!(table.rows(), 4);
    assert_eq!(
        table.names().collect::<Vec<_>>(),
        ["sensor", "reading", "ok", "site"]
    );

    // The same job as a path and as text.
    let mut transform = Transform::connect(&config).expect("connect");
    assert_eq!(transform.execute(&job).expect("path").rows(), 4);
    let text = std::fs::read_to_string(&job).expect("job text");
    let inline = text.replace(
        "\"path\": \"data\"",
        &format!("\"path\": {:?}", daemon.home.scratch.0.join("data")),
    );
    // Job text has the working directory as its folder, and file tasks stay
    // under a job's folder: the absolute path elsewhere is refused, before
    // anything is sent.
    match transform.execute(inline.as_str()) {
        Err(Error::Invalid(problems)) => {
            assert!(problems.to_string().contains("leads outside"), "{problems}")
        }
        other => panic!("expected a refusal, got {:?}", other.map(|t| t.rows())),
    }

    // One connection, many jobs, errors as values in between: a job with a
    // mistake is refused before it is sent...
    let bad = Plan::parse(
        r#"{"0": {"tasks": {"open_array": {"filename": "x", "bogus": 1}}}}"#,
        "<test>",
        std::env::temp_dir(),
    )
    .expect("plan");
    match transform.execute(&bad) {
        Err(Error::Invalid(problems)) => {
            let p = &problems.0[0];
            assert_eq!(
                (p.stage.as_deref(), p.task.as_deref(), p.field.as_deref()),
                (Some("0"), Some("open_array"), Some("bogus"))
            );
        }
        other => panic!(
            "expected the job to be refused, got {:?}",
            other.map(|t| t.rows())
        ),
    }
    // ...and one that fails on its data comes back naming stage and task.
    let flat = Table::from_columns(vec![
        ("x".into(), Column::Float64(Array1::from_elem(3, 1.0))),
        (
            "y".into(),
            Column::Float64(Array1::from_vec(vec![1.0, 2.0, 3.0])),
        ),
    ])
    .expect("table");
    let fit = Plan::builder(".")
        .task(
            "regression",
            serde_json::json!({"operations": [{"x": "x", "y": "y", "model": "Linear"}]}),
        )
        .build();
    match transform.execute_with(&fit, Some(flat), &mut |_| {}) {
        Err(Error::Job(f)) => {
            assert_eq!((f.stage, f.task.as_deref()), (Some(0), Some("regression")));
            assert!(f.message.contains("singular"), "{f}");
        }
        other => panic!("expected a job error, got {:?}", other.map(|t| t.rows())),
    }
    // A relative folder is the client's working directory (the crate
    // root, for a test), not the node's.
    let relative = Plan::builder("tests/broken")
        .task("open_array", serde_json::json!({"filename": "runs"}))
        .build();
    let runs = transform.execute(&relative).expect("a relative folder");
    assert_eq!(runs.names().next(), Some("run"));
    for _ in 0..20 {
        assert_eq!(transform.execute(&plan).expect("execute").rows(), 4);
    }
}

#[test]
fn large_tables_travel_through_the_cache_and_leave_nothing_behind() {
    let daemon = Daemon::start("bigtable");
    let config = daemon.home.config();
    let input = big_table(300_000); // ~7 MB, past the by-reference threshold
    let two_stages = Plan::parse(
        r#"[{"tasks": {"null": {}}}, {"tasks": {"null": {}}}]"#,
        "<test>",
        std::env::temp_dir(),
    )
    .expect("plan");
    let mut transform = Transform::connect(&config).expect("connect");
    let out = transform
        .execute_with(&two_stages, Some(input.clone()), &mut |_| {})
        .expect("execute");
    assert_eq!(out, input);
    let cache = rtl_cache::Cache::open(&config.cache_dir(), config.cache_map_size).expect("cache");
    assert_eq!(cache.table_entries(), 0, "consumed tables are deleted");
    let small = transform
        .execute_with(&null_plan(), Some(big_table(10)), &mut |_| {})
        .expect("execute");
    assert_eq!(small, big_table(10));
}

#[test]
fn embedded_mode_runs_the_same_code() {
    let home = Home::new("embedded-lib");
    let config = home.config();
    let mut transform = Transform::embedded(&config).expect("embedded");
    assert!(transform.is_embedded());
    let input = big_table(200_000);
    let out = transform
        .execute_with(&null_plan(), Some(input.clone()), &mut |_| {})
        .expect("execute");
    assert_eq!(out, input);
    let mut events = Vec::new();
    transform
        .execute_with(&null_plan(), None, &mut |e| {
            events.push((e.task.clone(), e.ms.is_some()))
        })
        .expect("execute");
    assert_eq!(
        events,
        [("null".to_string(), false), ("null".to_string(), true)]
    );
}

#[test]
fn one_connection_keeps_many_jobs_in_flight() {
    // One node taking one job at a time and a relay queue of two: a burst
    // of 64 submits makes the relay answer `busy` to some of them, and the
    // client sends those again by itself.
    let daemon = Daemon::start_in(
        Home::new("pipelined")
            .with("RTL_RELAY_QUEUE", "2")
            .with("RTL_TASK_WORKERS", "1")
            .with("RTL_MAX_IN_FLIGHT", "1")
            .with("RTL_PLOT_WORKERS", "0"),
    );
    let plan = Plan::parse(
        r#"{"0": {"tasks": {"multiply": {"operations": [{"a": "x", "b": 3, "column": "y"}]}}}}"#,
        "<test>",
        std::env::temp_dir(),
    )
    .expect("plan");
    let mut transform = Transform::connect(&daemon.home.config()).expect("connect");
    let input = |k: usize| {
        Table::from_columns(vec![(
            "x".into(),
            Column::Float64(Array1::from_elem(50_000, k as f64)),
        )])
        .expect("table")
    };
    let handles: Vec<_> = (0..64)
        .map(|k| {
            transform
                .submit_with(&plan, Some(input(k)))
                .expect("submit")
        })
        .collect();
    assert_eq!(transform.in_flight(), 64);
    // Collected in the opposite order from the one they were sent in.
    for (k, handle) in handles.into_iter().enumerate().rev() {
        let out = handle.wait(&mut transform).expect("result");
        let Some(Column::Float64(y)) = out.column("y") else {
            panic!("job {k}: no y");
        };
        assert!(
            y.iter().all(|v| *v == 3.0 * k as f64),
            "job {k}: wrong result"
        );
    }
    assert_eq!(transform.in_flight(), 0);
    // The relay reports busy answers once a heartbeat.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(daemon.home.dir().join("log/relay.log")).expect("log");
        if log.contains("busy: asked clients to resend") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never busy:\n{log}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Resumes a stopped process when dropped, so a failing test never leaves
/// the relay paused.
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        common::signal(self.0, libc::SIGCONT);
    }
}

#[test]
fn a_program_can_tell_why_a_job_did_not_run_by_matching_the_error() {
    // Nothing listens: no daemon.
    let home = Home::new("errors-none");
    match Transform::connect(&home.config()) {
        Err(e @ Error::NoDaemon { .. }) => {
            // `?` in main prints the error with `{:?}`: the same sentence.
            assert_eq!(format!("{e:?}"), e.to_string());
            let Error::NoDaemon { endpoint, .. } = e else {
                unreachable!()
            };
            assert!(endpoint.contains(&home.port("RTL_RELAY_PORT").to_string()))
        }
        other => panic!("expected no daemon, got {:?}", other.err()),
    }

    let daemon = Daemon::start("errors");
    let mut config = daemon.home.config();

    // A secret file others can read is refused before anything is sent.
    let secret = config.secret_path();
    let set_mode = |mode| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    set_mode(0o644);
    let exposed = Transform::connect(&config).err();
    set_mode(0o600);
    match exposed {
        Some(Error::Secret(rtl_client::SecretError::Exposed(path))) => assert_eq!(path, secret),
        other => panic!("expected an exposed secret, got {other:?}"),
    }

    // A relay that is paused: it accepts the connection but does not answer.
    config.job_timeout_ms = 1000;
    let relay = daemon.home.pids_of("relay")[0];
    {
        common::signal(relay, libc::SIGSTOP);
        let _resume = Resume(relay);
        match Transform::connect(&config) {
            Err(Error::NotAnswering { waited, .. }) => {
                assert_eq!(waited, std::time::Duration::from_millis(1000))
            }
            other => panic!(
                "expected a relay that does not answer, got {:?}",
                other.err()
            ),
        }
    }

    // Once it runs again, a failing task is the job's error, naming where.
    config.job_timeout_ms = 30_000;
    let mut transform = Transform::connect(&config).expect("connect");
    let bad = Plan::builder(".")
        .task("sort", serde_json::json!({"column": "nope"}))
        .build();
    let input = Table::from_columns(vec![(
        "x".into(),
        Column::Float64(Array1::from_vec(vec![2.0, 1.0])),
    )])
    .expect("table");
    match transform.execute_with(&bad, Some(input), &mut |_| {}) {
        Err(Error::Job(f)) => assert_eq!((f.stage, f.task.as_deref()), (Some(0), Some("sort"))),
        other => panic!("expected a job error, got {:?}", other.map(|t| t.rows())),
    }
}

/// `load` passes its input on; `double` and `kept` take it; both are
/// results.
fn two_results() -> Plan {
    Plan::builder(std::env::temp_dir())
        .named("load", &[])
        .task("null", serde_json::json!({}))
        .named("double", &["load"])
        .task(
            "multiply",
            serde_json::json!({"operations": [{"a": "x", "b": 2, "column": "x2"}]}),
        )
        .named("kept", &["load"])
        .task("head", serde_json::json!({"n": 3}))
        .build()
}

#[test]
fn a_graph_returns_every_result_by_stage_name() {
    let daemon = Daemon::start("client-graph");
    let mut transform = Transform::connect(&daemon.home.config()).expect("connect");
    // One table asked of a job with two: refused before it is sent.
    match transform.execute(&two_results()) {
        Err(Error::SeveralResults { stages }) => assert_eq!(stages, ["double", "kept"]),
        other => panic!("expected SeveralResults, got {:?}", other.map(|t| t.rows())),
    }
    // Every result, by name; the input (big enough to go by reference)
    // reaches the source and both branches read the same table.
    let input = big_table(300_000);
    let handle = transform
        .start_with(&two_results(), Some(input.clone()))
        .expect("start");
    let mut stages = Vec::new();
    let mut results = transform
        .follow_all(handle, &mut |e| stages.push(e.stage))
        .expect("results");
    assert_eq!(results.stages().collect::<Vec<_>>(), ["double", "kept"]);
    assert_eq!(results.get("kept"), Some(&input.slice(0, 3)));
    let double = results.take("double").expect("double");
    assert_eq!(double.rows(), input.rows());
    assert_eq!(
        double.column("x2"),
        Some(&Column::Float64(Array1::from_iter(
            (0..300_000).map(|i| i as f64)
        )))
    );
    assert!(
        stages.contains(&1) && stages.contains(&2),
        "progress of both branches: {stages:?}"
    );
    // A one-result graph reads as one table.
    let one = Plan::builder(std::env::temp_dir())
        .named("a", &[])
        .task("null", serde_json::json!({}))
        .named("b", &[])
        .task("null", serde_json::json!({}))
        .named("both", &["a", "b"])
        .task("concat", serde_json::json!({}))
        .build();
    let stacked = transform
        .execute_with(&one, Some(big_table(10)), &mut |_| {})
        .expect("concat");
    assert_eq!(stacked.rows(), 20);
    // Nothing left in the cache.
    let config = daemon.home.config();
    let cache = rtl_cache::Cache::open(&config.cache_dir(), config.cache_map_size).expect("cache");
    assert_eq!(cache.table_entries(), 0, "tables left behind");
}
