//! docs/PROTOCOL.md is enough to write a client: the Python client in
//! examples/python, written from it alone, runs jobs on a real daemon
//! (chains, and graphs with several results), reads job files in rtl's
//! words, and behaves as rtl's own client does when the relay wants the
//! secret, is busy, takes long, stops answering or is replaced, and when
//! the user makes a mistake. Skipped, saying so, when python3 is older
//! than 3.11 or lacks pyzmq, cbor2 or numpy (.ci/run installs them).

mod common;

use common::{read_csv, text, Daemon, Foreground, Home, Scratch};
use rtl_tasks::{Column, Table};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python/rtl_client.py");

/// Whether python3 has what the client needs; records the skip if not.
fn ready(test: &str) -> bool {
    let has = Command::new("python3")
        .args(["-c", "import zmq, cbor2, numpy, tomllib"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has {
        common::skip(
            test,
            "python3 is older than 3.11 (no tomllib) or lacks pyzmq, cbor2 or numpy (pip install pyzmq cbor2 numpy)",
        );
    }
    has
}

/// The client with `args`, finding its secret under `home` (as
/// $RTL_HOME) and nowhere else.
fn client(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(SCRIPT)
        .args(args)
        .env("RTL_HOME", home)
        .env_remove("RTL_SECRET_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Waits for a client this test started; kills it (by its pid) and fails
/// when it runs past `limit`.
fn finish(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait for python3").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("python3 output");
            panic!("the client ran past {limit:?}: {}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("python3 output")
}

/// Runs `cmd` to its end (at most 30 s); returns its output and how long
/// it took.
fn run(cmd: &mut Command) -> (Output, Duration) {
    let started = Instant::now();
    let out = finish(cmd.spawn().expect("run python3"), Duration::from_secs(30));
    (out, started.elapsed())
}

fn endpoint(home: &Home) -> String {
    format!("tcp://127.0.0.1:{}", home.port("RTL_RELAY_PORT"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The result table the client printed.
fn result(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

/// Asserts that `got`, a table as the client prints it (column name to
/// values), has `want`'s columns in its order and its values, numbers to
/// 1e-9 as `common::assert_close` compares them.
fn assert_table(label: &str, got: &serde_json::Value, want: &Table) {
    let columns = got
        .as_object()
        .unwrap_or_else(|| panic!("{label}: not a table: {got}"));
    let names: Vec<&str> = columns.keys().map(String::as_str).collect();
    assert_eq!(names, want.names().collect::<Vec<_>>(), "{label}: columns");
    for (name, column) in want.iter() {
        let values = columns[name]
            .as_array()
            .unwrap_or_else(|| panic!("{label}: {name} is not a list"));
        assert_eq!(values.len(), want.rows(), "{label}: {name}: rows");
        for (row, value) in values.iter().enumerate() {
            let (same, expected) = match column {
                Column::Int64(w) => (value.as_i64() == Some(w[row]), w[row].to_string()),
                Column::Float64(w) => (
                    value.as_f64().is_some_and(|g| {
                        g == w[row] || (g - w[row]).abs() <= 1e-9 * w[row].abs().max(1.0)
                    }),
                    w[row].to_string(),
                ),
                Column::Bool(w) => (value.as_bool() == Some(w[row]), w[row].to_string()),
                Column::Utf8(w) => (value.as_str() == Some(w[row].as_str()), w[row].clone()),
            };
            assert!(
                same,
                "{label}: {name}[{row}] = {value}, expected {expected}"
            );
        }
    }
}

/// Asserts the client stopped with exit status 1, its last words one line
/// `error: ...` containing `words`, and no traceback; returns that line.
fn one_line_error(out: &Output, words: &str) -> String {
    let said = stderr(out);
    let line = said.lines().last().unwrap_or_default();
    assert_eq!(out.status.code(), Some(1), "{}", text(out));
    assert!(
        line.starts_with("error: ") && line.contains(words) && !said.contains("Traceback"),
        "expected a last line `error: ...{words}...`; {}",
        text(out)
    );
    line.to_string()
}

/// A daemon whose jobs wait for a task node until the test starts one
/// (`node`): a job takes as long as the test wants.
fn without_nodes(tag: &str, relay_queue: &str) -> Daemon {
    Daemon::start_in(
        Home::new(tag)
            .with("RTL_TASK_WORKERS", "0")
            .with("RTL_PLOT_WORKERS", "0")
            .with("RTL_RELAY_QUEUE", relay_queue)
            // Work waits this long for a node before its job fails.
            .with("RTL_NODE_TIMEOUT_MS", "60000"),
    )
}

/// A task node joining `daemon`'s relay, stopped on drop.
fn node(daemon: &Daemon) -> Foreground {
    let relay = format!("tcp://127.0.0.1:{}", daemon.home.port("RTL_NODE_PORT"));
    Foreground(
        daemon
            .home
            .command(&["node", "--relay", &relay, "--workers", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rtl node"),
    )
}

/// The relay's view: jobs running and envelopes waiting for a node.
fn relay_holds(daemon: &Daemon) -> (u64, u64) {
    let status = rtl_client::Transform::status(&daemon.home.config(), Duration::from_secs(5))
        .expect("rtl status");
    (status.jobs_running, status.queued)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "waited 10 s for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_python_client_round_trips_a_table() {
    if !ready("a_python_client_round_trips_a_table") {
        return;
    }
    let daemon = Daemon::start("python");
    let endpoint = endpoint(&daemon.home);
    // The relay's port comes from the environment, as rtl's own does.
    let port = daemon.home.port("RTL_RELAY_PORT").to_string();
    let (out, _) = run(client(&daemon.home.dir(), &[]).env("RTL_RELAY_PORT", &port));
    let table = result(&out);
    assert_eq!(table["id"], serde_json::json!([0, 1, 2, 3, 4]));
    assert_eq!(table["value"][1], -1.25);
    assert_eq!(
        table["ok"],
        serde_json::json!([true, false, true, true, false])
    );
    assert_eq!(
        table["site"],
        serde_json::json!(["north", "south", "east, upper", "wëst", ""])
    );
    assert!(stderr(&out).contains("Completed:"), "{}", text(&out));

    let with_job = |job: &str| {
        let file = daemon.home.scratch.0.join("job.json");
        std::fs::write(&file, job).expect("write job");
        let args = ["--endpoint", &endpoint, "--job", file.to_str().unwrap()];
        run(&mut client(&daemon.home.dir(), &args)).0
    };

    // A job file as people write them for `rtl run`.
    let out = with_job(
        r#"{"0": {"tasks": [{"multiply": {"operations": [{"a": "value", "b": 2, "column": "twice"}]}},
                            {"select": {"columns": ["id", "twice"]}}]}}"#,
    );
    assert_eq!(result(&out)["twice"][4], 84.0, "{}", text(&out));

    // A failing job comes back as an error naming the stage and task.
    let out = with_job(r#"{"0": {"tasks": {"null": {"oops": 1}}}}"#);
    one_line_error(
        &out,
        "error: stage 0, task null, field oops: bad kwargs: unknown field `oops`",
    );

    // The relay cannot read the message at all (a number past 64 bits):
    // its answer carries no job id, and the client shows it at once.
    let out = with_job(r#"{"0": {"tasks": {"head": {"n": 1000000000000000000000000000000}}}}"#);
    one_line_error(&out, "error: malformed message: bad header");
}

#[test]
fn a_relay_that_wants_the_secret_says_so_at_once() {
    if !ready("a_relay_that_wants_the_secret_says_so_at_once") {
        return;
    }
    let daemon = Daemon::start_in(Home::new("python-secret").with("RTL_PLOT_WORKERS", "0"));
    let endpoint = endpoint(&daemon.home);
    // A machine without the secret: the relay answers with a challenge,
    // which the client reports, naming where it looked, long before its
    // 5 s of patience with a silent relay are up.
    let elsewhere = Scratch::new("python-no-secret");
    let (out, took) = run(&mut client(&elsewhere.0, &["--endpoint", &endpoint]));
    let wanted = format!(
        "needs the cluster secret, and there is none at {}",
        elsewhere.0.join("secret").display()
    );
    let line = one_line_error(&out, &wanted);
    assert!(line.contains("--secret FILE") && line.contains("$RTL_HOME/secret"));
    assert!(took < Duration::from_secs(3), "took {took:?}");

    // Another cluster's secret: the relay refuses the proof, and says so.
    let other = elsewhere.0.join("other-secret");
    std::fs::write(&other, format!("{}\n", "ab".repeat(32))).expect("write secret");
    let args = ["--endpoint", &endpoint, "--secret", other.to_str().unwrap()];
    let (out, took) = run(&mut client(&elsewhere.0, &args));
    one_line_error(&out, "refused this machine's cluster secret");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn a_busy_relay_gets_the_job_again() {
    if !ready("a_busy_relay_gets_the_job_again") {
        return;
    }
    // One envelope may wait for a node: while a job waits, the relay
    // answers every other submit `busy`.
    let daemon = without_nodes("python-busy", "1");
    let mut waiting = rtl_client::Transform::connect(&daemon.home.config()).expect("connect");
    let first = waiting
        .submit(r#"{"0": {"tasks": {"null": {}}}}"#)
        .expect("submit");
    wait_until("the first job to wait for a node", || {
        relay_holds(&daemon) == (1, 1)
    });
    let python = client(&daemon.home.dir(), &["--endpoint", &endpoint(&daemon.home)])
        .spawn()
        .expect("run python3");
    let log = daemon.home.dir().join("log/relay.log");
    wait_until("the relay to answer busy", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("busy: asked clients to resend"))
    });
    // A node comes: the first job runs, and then the client's, sent again.
    let _node = node(&daemon);
    let out = finish(python, Duration::from_secs(20));
    assert_eq!(
        result(&out)["id"],
        serde_json::json!([0, 1, 2, 3, 4]),
        "{}",
        text(&out)
    );
    first.wait(&mut waiting).expect("the first job");
}

#[test]
fn a_job_may_outlast_the_timeout_but_a_silent_relay_may_not() {
    if !ready("a_job_may_outlast_the_timeout_but_a_silent_relay_may_not") {
        return;
    }
    let daemon = without_nodes("python-long", "4096");
    let endpoint = endpoint(&daemon.home);
    let args = ["--endpoint", &endpoint, "--timeout", "0.5"];

    // The relay is stopped while the job waits: the client gives up once
    // it has heard nothing for --timeout.
    let python = client(&daemon.home.dir(), &args)
        .spawn()
        .expect("run python3");
    wait_until("the job to wait for a node", || relay_holds(&daemon).0 == 1);
    let relay = daemon.home.pids_of("relay")[0];
    common::signal(relay, libc::SIGSTOP);
    let stopped = Instant::now();
    let out = finish(python, Duration::from_secs(10));
    common::signal(relay, libc::SIGCONT);
    one_line_error(&out, "said nothing for 0.5 s (--timeout)");
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "gave up after {:?}",
        stopped.elapsed()
    );

    // A job of three stages that waits 2 s (four timeouts) for a node,
    // then runs: the client waits for it, pinging the quiet relay.
    let file = daemon.home.scratch.0.join("three.json");
    std::fs::write(
        &file,
        r#"{"0": {"tasks": {"null": {}}}, "1": {"tasks": {"head": {"n": 3}}}, "2": {"tasks": {"null": {}}}}"#,
    )
    .expect("write job");
    let args = [&args[..], &["--job", file.to_str().unwrap()]].concat();
    let started = Instant::now();
    let mut python = client(&daemon.home.dir(), &args)
        .spawn()
        .expect("run python3");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        python.try_wait().expect("wait").is_none(),
        "the client gave up on a job that was waiting"
    );
    let _node = node(&daemon);
    let out = finish(python, Duration::from_secs(20));
    assert_eq!(result(&out)["id"], serde_json::json!([0, 1, 2]));
    assert!(started.elapsed() > Duration::from_secs(2));
    assert_eq!(
        stderr(&out).matches("Completed:").count(),
        3,
        "{}",
        text(&out)
    );
}

#[test]
fn a_replaced_relay_is_reported_not_waited_on() {
    if !ready("a_replaced_relay_is_reported_not_waited_on") {
        return;
    }
    // Without a secret the client tells relays apart by the run id in
    // their pongs (with one, a new relay challenges the client).
    let daemon = Daemon::start_in(
        Home::new("python-replaced")
            .with("RTL_INSECURE", "true")
            .with("RTL_TASK_WORKERS", "0")
            .with("RTL_PLOT_WORKERS", "0")
            .with("RTL_NODE_TIMEOUT_MS", "60000"),
    );
    let args = ["--endpoint", &endpoint(&daemon.home), "--timeout", "5"];
    let python = client(&daemon.home.dir(), &args)
        .spawn()
        .expect("run python3");
    wait_until("the job to wait for a node", || relay_holds(&daemon).0 == 1);
    common::kill(daemon.home.pids_of("relay")[0]);
    let again = daemon.rtl(&["start"]);
    assert!(again.status.success(), "{}", text(&again));
    let out = finish(python, Duration::from_secs(10));
    one_line_error(&out, "was restarted while the job ran");
}

#[test]
fn mistakes_are_one_line_errors() {
    if !ready("mistakes_are_one_line_errors") {
        return;
    }
    let home = Home::new("python-mistakes");
    let dir = &home.scratch.0;
    // Nothing listens here: a client that got past the mistake would say so.
    let closed = format!("tcp://127.0.0.1:{}", common::free_ports(1)[0]);
    let mistake = |args: &[&str], words: &str| {
        let args = [&["--endpoint", &closed][..], args].concat();
        let out = run(&mut client(dir, &args)).0;
        assert_eq!(stderr(&out).lines().count(), 1, "{}", text(&out));
        one_line_error(&out, words)
    };

    // Stage keys rtl does not take: refused in rtl's words.
    for (key, job) in [
        ("00", r#"{"00": {"tasks": {"null": {}}}}"#),
        ("a", r#"{"a": {"tasks": {"null": {}}}}"#),
    ] {
        let file = dir.join(format!("{key}.json"));
        std::fs::write(&file, job).expect("write job");
        let path = file.to_str().unwrap();
        let line = mistake(
            &["--job", path],
            &format!("\"{key}\" is not a stage number"),
        );
        let check = home.rtl(&["check", path]);
        let said = line.strip_prefix(&format!("error: {path}: ")).unwrap();
        assert!(text(&check).contains(said), "{line}\n{}", text(&check));
    }

    // A secret file that is not 64 hex digits.
    let short = "a".repeat(63);
    for (name, content) in [("words", "not a secret\n"), ("short", short.as_str())] {
        let file = dir.join(name);
        std::fs::write(&file, content).expect("write secret");
        let path = file.to_str().unwrap();
        mistake(
            &["--secret", path],
            &format!("{path} is not a cluster secret (64 hex digits)"),
        );
    }

    // Endpoints: malformed, closed, and one that never answers.
    mistake(
        &["--endpoint", "nonsense"],
        "--endpoint nonsense: expected tcp://HOST:PORT",
    );
    mistake(&[], &format!("no rtl daemon answers at {closed}"));
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let quiet = format!("tcp://{}", silent.local_addr().expect("address"));
    let started = Instant::now();
    mistake(
        &["--endpoint", &quiet, "--timeout", "0.5"],
        &format!("the relay at {quiet} said nothing for 0.5 s (--timeout)"),
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    mistake(
        &["--timeout", "soon"],
        "--timeout: expected a number of seconds above 0, found 'soon'",
    );
    mistake(&["--set", "factor"], "--set: expected NAME=VALUE");
}

#[test]
fn job_files_are_read_as_rtl_reads_them() {
    if !ready("job_files_are_read_as_rtl_reads_them") {
        return;
    }
    let daemon = Daemon::start_in(Home::new("python-jobs").with("RTL_PLOT_WORKERS", "0"));
    let endpoint = endpoint(&daemon.home);
    let dir = &daemon.home.scratch.0;
    let with_job = |file: &Path, more: &[&str]| {
        let args = [
            &["--endpoint", &endpoint, "--job", file.to_str().unwrap()][..],
            more,
        ]
        .concat();
        run(&mut client(&daemon.home.dir(), &args)).0
    };

    // TOML, by the file's extension, with a parameter, as given by --set.
    let toml = dir.join("twice.toml");
    std::fs::write(
        &toml,
        "# rtl run reads .toml job files as TOML\n[params]\nfactor = 2\n\n[0.tasks.multiply]\noperations = [{ a = \"value\", b = \"${factor}\", column = \"twice\" }]\n\n[1.tasks.select]\ncolumns = [\"id\", \"twice\"]\n",
    )
    .expect("write job");
    assert_eq!(result(&with_job(&toml, &[]))["twice"][4], 84.0);
    assert_eq!(
        result(&with_job(&toml, &["--set", "factor=3"]))["twice"][4],
        126.0
    );

    // `-`: a JSON job on stdin.
    let mut python = client(&daemon.home.dir(), &["--endpoint", &endpoint, "--job", "-"]);
    let mut python = python.stdin(Stdio::piped()).spawn().expect("run python3");
    std::io::Write::write_all(
        &mut python.stdin.take().expect("stdin"),
        br#"{"0": {"tasks": {"head": {"n": 2}}}}"#,
    )
    .expect("write the job to stdin");
    let out = finish(python, Duration::from_secs(30));
    assert_eq!(result(&out)["id"], serde_json::json!([0, 1]));

    // A task written twice runs twice, as in rtl.
    let twice = dir.join("twice.json");
    std::fs::write(&twice, r#"{"0": {"tasks": {"null": {}, "null": {}}}}"#).expect("write");
    let out = with_job(&twice, &[]);
    assert_eq!(result(&out)["id"][4], 4);
    assert_eq!(
        stderr(&out).matches("Completed:").count(),
        2,
        "{}",
        text(&out)
    );

    // Keys rtl does not take (a comment beside the stages or in one, a
    // stage written twice, a parameter without a value) and stages wired
    // wrong (an input no stage has, a cycle, a numbered stage taking a
    // later one, an input named twice, a name rtl does not take) are
    // refused as `rtl check` refuses them, in the same words.
    for (name, job, words) in [
        (
            "comment",
            r#"{"comment": "made by hand", "0": {"tasks": {"null": {}}}}"#,
            r#""comment" is not a stage number"#,
        ),
        (
            "stage-comment",
            r#"{"0": {"tasks": {"null": {}}, "comment": "x"}}"#,
            r#"stage 0: unknown stage key "comment"; a stage has "tasks" and, to say which stages it takes, "inputs""#,
        ),
        (
            "again",
            r#"{"0": {"tasks": {"null": {}}}, "0": {"tasks": {"null": {}}}}"#,
            r#"stage "0" is written twice"#,
        ),
        (
            "unset",
            r#"{"params": {"n": null}, "0": {"tasks": {"head": {"n": "${n}"}}}}"#,
            "stage 0, task head: parameter `n` has no default; give it with --set n=VALUE",
        ),
        (
            "unknown-input",
            r#"{"stages": {"load": {"tasks": {"null": {}}}, "fast": {"inputs": "lod", "tasks": {"null": {}}}}}"#,
            "stage fast, field inputs: no stage `lod`; did you mean load? the job's stages are load, fast",
        ),
        (
            "cycle",
            r#"{"stages": {"load": {"tasks": {"null": {}}},
                "clean": {"inputs": ["load", "checked"], "tasks": [{"concat": {}}]},
                "scored": {"inputs": "clean", "tasks": {"null": {}}},
                "checked": {"inputs": "scored", "tasks": {"null": {}}}}}"#,
            "stage clean: the stages' inputs go round in a cycle: clean -> scored -> checked -> clean",
        ),
        (
            "later",
            r#"{"0": {"tasks": {"null": {}}}, "1": {"inputs": ["0", 2], "tasks": [{"concat": {}}]}, "2": {"tasks": {"null": {}}}}"#,
            "stage 1, field inputs: stage 1 cannot take stage 2: in a job of numbered stages a stage takes only earlier ones",
        ),
        (
            "input-twice",
            r#"{"stages": {"a": {"tasks": {"null": {}}}, "b": {"inputs": ["a", "a"], "tasks": {"null": {}}}}}"#,
            "stage b: `inputs` names `a` twice; a stage takes each input once",
        ),
        (
            "stage-name",
            r#"{"stages": {"a b": {"tasks": {"null": {}}}}}"#,
            r#""a b" cannot name a stage: stage names are ASCII letters, digits, `_` and `-`"#,
        ),
    ] {
        let file = dir.join(format!("{name}.json"));
        std::fs::write(&file, job).expect("write job");
        let path = file.to_str().unwrap();
        let line = one_line_error(&with_job(&file, &[]), words);
        let check = daemon.rtl(&["check", path]);
        let said = line.strip_prefix(&format!("error: {path}: ")).unwrap();
        assert!(
            !check.status.success() && text(&check).contains(said),
            "{line}\n{}",
            text(&check)
        );
    }

    // Where a combining task may stand is the task library's business:
    // the client leaves it to the relay, which refuses the job in the
    // words of `rtl check`.
    let file = dir.join("misplaced.json");
    std::fs::write(
        &file,
        r#"{"stages": {"a": {"tasks": {"null": {}}}, "b": {"inputs": "a", "tasks": [{"join": {"on": "id"}}]}}}"#,
    )
    .expect("write job");
    let line = one_line_error(
        &with_job(&file, &[]),
        "error: stage b, task join: join combines the tables of several stages",
    );
    let check = daemon.rtl(&["check", file.to_str().unwrap()]);
    let said = line.strip_prefix("error: ").unwrap();
    assert!(
        !check.status.success() && text(&check).contains(said),
        "{line}\n{}",
        text(&check)
    );
}

#[test]
fn a_graph_job_brings_every_result() {
    if !ready("a_graph_job_brings_every_result") {
        return;
    }
    let daemon = Daemon::start_in(Home::new("python-graph").with("RTL_PLOT_WORKERS", "0"));
    let endpoint = endpoint(&daemon.home);
    let with_job = |file: &Path| {
        let args = ["--endpoint", &endpoint, "--job", file.to_str().unwrap()];
        run(&mut client(&daemon.home.dir(), &args)).0
    };

    // examples/graph/fork: one file, two results. The client prints one
    // object of stage name to table, in stage order, each the table numpy
    // computed for it.
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/graph/fork");
    let copy = daemon.home.scratch.0.join("fork");
    common::copy_dir(&example, &copy);
    let out = with_job(&copy.join("job.json"));
    let results = result(&out);
    let stages: Vec<&str> = results
        .as_object()
        .map(|r| r.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(stages, ["cities", "long"], "{}", text(&out));
    for stage in stages {
        let want = read_csv(&example.join(format!("expected/{stage}.csv")));
        assert_table(stage, &results[stage], &want);
    }
    // Progress names each task's stage, as `rtl run` does in a graph.
    for line in [
        "Completed: ",
        " ms group_by (stage cities)",
        "Running: divide (stage long)",
    ] {
        assert!(stderr(&out).contains(line), "{line}: {}", text(&out));
    }

    // Numbered stages that fork (a stage naming an earlier one than the
    // stage before it): the results go by their numbers.
    let dir = &daemon.home.scratch.0;
    let file = dir.join("numbered.json");
    std::fs::write(
        &file,
        r#"[{"tasks": {"null": {}}}, {"tasks": {"head": {"n": 2}}}, {"inputs": [0], "tasks": {"select": {"columns": ["site"]}}}]"#,
    )
    .expect("write job");
    let results = result(&with_job(&file));
    let stages: Vec<&str> = results
        .as_object()
        .map(|r| r.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(stages, ["1", "2"], "{results}");
    assert_eq!(results["1"]["id"], serde_json::json!([0, 1]));
    assert_eq!(
        results["2"],
        serde_json::json!({"site": ["north", "south", "east, upper", "wëst", ""]})
    );

    // A failing branch fails the job, named as the job names it.
    let file = dir.join("failing.json");
    std::fs::write(
        &file,
        r#"{"stages": {"all": {"tasks": {"null": {}}}, "picked": {"inputs": "all", "tasks": {"select": {"columns": ["nope"]}}}, "kept": {"inputs": "all", "tasks": {"null": {}}}}}"#,
    )
    .expect("write job");
    one_line_error(
        &with_job(&file),
        "error: stage picked, task select, field columns[0]: ",
    );
}
