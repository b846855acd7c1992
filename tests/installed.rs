//! Tasks of one's own, through a real daemon: the examples under
//! examples/tasks (a Python task through the rtl_task helper and a Rust one
//! that uses no rtl crate) give the results make.py computed, chunked and
//! whole; every way a program can fail is told exactly, and the daemon
//! serves the next job; a client cannot make a node run anything but an
//! installed manifest; work for a task goes only to the nodes that have
//! it; a bad manifest is named with its line and leaves the rest working.

mod common;

use common::{
    assert_close, copy_dir, kill, node_holding_work, read_csv, skip, text, wait_for, write_job,
    Daemon, Foreground, Home,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/tasks")
}

/// Whether python3 with numpy is here; records a skip when not.
fn python_with_numpy(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(test, "python3 with numpy is not installed");
    }
    ok
}

/// The example's Rust task, built once for every test here.
fn calibrate_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("calibrate-{}", std::process::id()));
        let source = examples().join("installed/calibrate.rs");
        let built = Command::new("rustc")
            .args(["--edition", "2021", "-O", "-o"])
            .arg(&out)
            .arg(&source)
            .output()
            .expect("run rustc");
        assert!(built.status.success(), "rustc: {}", text(&built));
        out
    })
}

/// Installs the example tasks (calibrate built) into `folder`.
fn install_examples(folder: &Path) {
    copy_dir(&examples().join("installed"), folder);
    std::fs::copy(calibrate_binary(), folder.join("calibrate")).expect("install calibrate");
}

/// A home whose task folder holds the example tasks.
fn home_with_examples(tag: &str) -> Home {
    let home = Home::new(tag).with("RTL_PLOT_WORKERS", "0");
    install_examples(&home.dir().join("tasks"));
    home
}

/// Runs examples/tasks/NAME on `daemon` and compares with its expected.csv.
fn run_example(daemon: &Daemon, name: &str, label: &str) {
    let copy = daemon.home.scratch.0.join(label).join(name);
    copy_dir(&examples().join(name), &copy);
    let out = copy.join("out.csv");
    let run = daemon.rtl(&[
        "run",
        "--connect",
        copy.join("job.json").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{label} {name}: {}", text(&run));
    let want = read_csv(&examples().join(name).join("expected.csv"));
    assert!(want.rows() > 0, "an empty result proves nothing");
    assert_close(&format!("{label} {name}"), &read_csv(&out), &want);
}

/// The pieces the daemon's nodes ran of `stage` of any job, with the pid
/// of the node that ran each.
fn pieces(home: &Home, stage: u32) -> Vec<(String, u32)> {
    let log = std::fs::read_to_string(home.dir().join("log/tasknode.log")).unwrap_or_default();
    pieces_in(&log, stage)
}

/// The pieces of `stage` a node log's PROFILE lines say were run.
fn pieces_in(log: &str, stage: u32) -> Vec<(String, u32)> {
    log.lines()
        .filter(|l| l.contains(&format!(" stage {stage} ")) && l.contains(" piece "))
        .filter_map(|l| {
            let pid = l
                .split("tasknode[")
                .nth(1)?
                .split(']')
                .next()?
                .parse()
                .ok()?;
            let piece = l.split(" piece ").nth(1)?.split(':').next()?.to_string();
            Some((piece, pid))
        })
        .collect()
}

#[test]
fn examples_give_what_numpy_says_chunked_and_whole() {
    if !python_with_numpy("examples_give_what_numpy_says_chunked_and_whole") {
        return;
    }
    let chunked = home_with_examples("tasks-chunked")
        .with("RTL_TASK_WORKERS", "3")
        .with("RTL_CHUNKING_SIZE", "100")
        .with("RTL_PROFILE", "true");
    let daemon = Daemon::start_in(chunked);
    run_example(&daemon, "rolling", "chunked");
    run_example(&daemon, "calibrate", "chunked");
    // calibrate is row-local: its 1200 rows ran as 12 chunks, on more
    // than one node.
    let ran = pieces(&daemon.home, 1);
    assert!(
        ran.iter().any(|(piece, _)| piece == "12/12"),
        "calibrate ran in chunks: {ran:?}"
    );
    let nodes: std::collections::BTreeSet<u32> = ran.iter().map(|(_, pid)| *pid).collect();
    assert!(nodes.len() > 1, "chunks ran on several nodes: {ran:?}");
    drop(daemon);

    let whole = home_with_examples("tasks-whole")
        .with("RTL_TASK_WORKERS", "1")
        .with("RTL_CHUNKING", "false");
    let daemon = Daemon::start_in(whole);
    run_example(&daemon, "rolling", "whole");
    run_example(&daemon, "calibrate", "whole");
}

/// A task that fails as its kwarg `how` says, only when it runs for real
/// (a check on a sample goes through), and writes a line to calls.txt each
/// time it runs for real.
const FAULT_PY: &str = r#"import ctypes, os, sys, time
import numpy as np
import rtl_task

def fault(table, how):
    if rtl_task.checking:
        return table
    with open("calls.txt", "a") as calls:
        calls.write(how + "\n")
    print("about to", how)
    if how == "raise":
        raise KeyError("no such sensor")
    if how == "exit":
        sys.exit(3)
    if how == "abort":
        os.abort()
    if how == "segfault":
        ctypes.string_at(0)
    if how == "sleep":
        time.sleep(60)
    if how == "hog":
        table["big"] = np.ones(1 << 30)
    return table

rtl_task.serve(fault)
"#;

const FAULT_TOML: &str = r#"name = "fault"
command = ["python3", "fault.py"]
timeout_ms = 1500
memory_mb = 400
[kwargs.how]
type = "string"
"#;

fn fault_job(dir: &Path, how: &str) -> PathBuf {
    std::fs::write(dir.join("readings.csv"), "sensor,temp\ns1,20.5\ns2,21.0\n").expect("csv");
    let job = format!(
        r#"{{"stages": [{{"tasks": {{"open_array": {{"filename": "readings"}}}}}},
                       {{"tasks": {{"fault": {{"how": "{how}"}}}}}}]}}"#
    );
    write_job(dir, how, &job)
}

#[test]
fn every_way_a_program_fails_is_told_and_the_next_job_runs() {
    if !python_with_numpy("every_way_a_program_fails_is_told_and_the_next_job_runs") {
        return;
    }
    let home = Home::new("tasks-faults")
        .with("RTL_PLOT_WORKERS", "0")
        .with("RTL_TASK_WORKERS", "2");
    let tasks = home.dir().join("tasks");
    std::fs::create_dir_all(&tasks).expect("task folder");
    std::fs::write(tasks.join("fault.toml"), FAULT_TOML).expect("manifest");
    std::fs::write(tasks.join("fault.py"), FAULT_PY).expect("program");
    let daemon = Daemon::start_in(home);
    let dir = daemon.home.scratch.0.join("jobs");
    std::fs::create_dir_all(&dir).expect("jobs");
    let manifest = tasks.join("fault.toml").display().to_string();
    let program = "the program `python3 fault.py`";
    let afresh = "it starts afresh on the next call";
    let cases = [
        (
            "raise",
            "stage 1, task fault: KeyError: 'no such sensor' (fault.py, line 12)".to_string(),
        ),
        (
            "exit",
            format!("stage 1, task fault: {program} exited with status 3 before answering; the end of its stderr: about to exit; {afresh}"),
        ),
        (
            "abort",
            format!("stage 1, task fault: {program} was killed by signal 6 (SIGABRT, it aborted) before answering; the end of its stderr: about to abort; {afresh}"),
        ),
        (
            "segfault",
            format!("stage 1, task fault: {program} was killed by signal 11 (SIGSEGV, a crash) before answering; the end of its stderr: about to segfault; {afresh}"),
        ),
        (
            "sleep",
            format!("stage 1, task fault: {program} did not answer within 1500 ms (timeout_ms in {manifest}), so it was stopped; {afresh}"),
        ),
        (
            "hog",
            format!("stage 1, task fault: MemoryError: Unable to allocate 8.00 GiB for an array with shape (1073741824,) and data type float64 (fault.py, line 22) (the program may use at most 400 MiB of memory: memory_mb in {manifest})"),
        ),
    ];
    for (how, message) in &cases {
        let job = fault_job(&dir, how);
        let run = daemon.rtl(&["run", "--connect", job.to_str().unwrap()]);
        assert!(!run.status.success(), "{how}: {}", text(&run));
        let said = String::from_utf8_lossy(&run.stderr);
        let expected = format!("error: job {} failed: {message}\n", job.display());
        assert_eq!(said, expected, "{how}");
        // The daemon serves the next job: a fresh program on whichever
        // node takes it.
        let fine = fault_job(&dir, "fine");
        let run = daemon.rtl(&["run", "--connect", fine.to_str().unwrap()]);
        assert!(run.status.success(), "after {how}: {}", text(&run));
    }
    // Each failing call ran once: a user's error is not retried elsewhere.
    let calls = std::fs::read_to_string(tasks.join("calls.txt")).expect("calls.txt");
    for (how, _) in &cases {
        let times = calls.lines().filter(|l| l == how).count();
        assert_eq!(times, 1, "{how} ran {times} times:\n{calls}");
    }
}

#[test]
fn a_bad_manifest_is_named_and_the_other_tasks_run() {
    if !python_with_numpy("a_bad_manifest_is_named_and_the_other_tasks_run") {
        return;
    }
    let home = home_with_examples("tasks-bad-manifest");
    let tasks = home.dir().join("tasks");
    std::fs::write(
        tasks.join("smooth.toml"),
        "name = \"smooth\"\ncommand = [\"python3\", \"smooth.py\"]\ntiemout_ms = 100\n",
    )
    .expect("manifest");
    let start = home.rtl(&["start"]);
    let daemon = Daemon { home };
    assert!(start.status.success(), "{}", text(&start));
    let said = format!(
        "{}: unknown field `tiemout_ms`, expected one of `name`, `doc`, `command`, `row_local`, `chunk_rows`, `timeout_ms`, `memory_mb`, `kwargs`",
        tasks.join("smooth.toml:3:1").display()
    );
    assert!(
        String::from_utf8_lossy(&start.stderr)
            .contains(&format!("warning: {said}; that task is not installed")),
        "rtl start names it: {}",
        text(&start)
    );
    let listed = daemon.rtl(&["tasks"]);
    assert!(
        String::from_utf8_lossy(&listed.stderr).contains(&said),
        "rtl tasks names it: {}",
        text(&listed)
    );
    let log = std::fs::read_to_string(daemon.home.dir().join("log/tasknode.log")).expect("log");
    assert!(
        log.contains(&format!("{said}; the node starts without that task")),
        "the node log names it:\n{log}"
    );
    run_example(&daemon, "rolling", "beside a bad manifest");
    // A job naming it is told why it is not there.
    let dir = daemon.home.scratch.0.join("smooth");
    std::fs::create_dir_all(&dir).expect("folder");
    std::fs::write(dir.join("readings.csv"), "temp\n1.5\n").expect("csv");
    let job = write_job(
        &dir,
        "job",
        r#"{"stages": [{"tasks": {"open_array": {"filename": "readings"}}}, {"tasks": {"smooth": {}}}]}"#,
    );
    let check = daemon.rtl(&["check", job.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        format!(
            "{}:1:77: stage 1, task smooth: `smooth` is not installed: its manifest cannot be used ({said})\n1 problem(s)\n",
            job.display()
        )
    );
}

#[test]
fn work_goes_only_to_the_nodes_that_have_the_task() {
    if !python_with_numpy("work_goes_only_to_the_nodes_that_have_the_task") {
        return;
    }
    // The daemon's own nodes have no tasks; one node started apart, with
    // a task folder of its own, has them (a node with the special
    // hardware, say).
    let home = Home::new("tasks-special-node")
        .with("RTL_PLOT_WORKERS", "0")
        .with("RTL_TASK_WORKERS", "2")
        .with("RTL_CHUNKING_SIZE", "100")
        .with("RTL_PROFILE", "true");
    let daemon = Daemon::start_in(home);
    let special = daemon.home.scratch.0.join("special");
    install_examples(&special);
    let relay = daemon.home.config().node_endpoint();
    let node_log = daemon.home.scratch.0.join("special.log");
    let node = daemon
        .home
        .command(&["node", "--relay", &relay, "--workers", "1"])
        .env("RTL_TASK_DIRS", &special)
        .stderr(std::fs::File::create(&node_log).expect("log file"))
        .spawn()
        .expect("start the special node");
    let _node = Foreground(node);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = daemon.rtl(&["status", "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
        let nodes = json["services"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["name"] == "tasknode" && s["alive"] == true)
            .count();
        if nodes >= 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", text(&status));
        std::thread::sleep(Duration::from_millis(100));
    }
    // This machine has not installed the task: the client learns it from
    // the nodes, and checks the job's kwargs with its manifest.
    let copy = daemon.home.scratch.0.join("job");
    copy_dir(&examples().join("calibrate"), &copy);
    let job = copy.join("job.json");
    let good = std::fs::read_to_string(&job).expect("job");
    std::fs::write(&job, good.replace("\"gain\"", "\"gian\"")).expect("typo");
    let refused = daemon.rtl(&["run", "--connect", job.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr),
        format!(
            "error: nothing was run; 1 problem(s):\n{}:4:38: stage 1, task calibrate, field gian: bad kwargs: unknown field `gian`; did you mean gain? (calibrate takes `column`, `gain`, `offset`)\n",
            job.display()
        )
    );
    std::fs::write(&job, good).expect("job");
    let out = copy.join("out.csv");
    let run = daemon.rtl(&[
        "run",
        "--connect",
        job.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", text(&run));
    let want = read_csv(&examples().join("calibrate/expected.csv"));
    assert_close("special node", &read_csv(&out), &want);
    assert_eq!(pieces(&daemon.home, 1), [], "the nodes without it ran none");
    let log = std::fs::read_to_string(&node_log).expect("the special node's log");
    let ran = pieces_in(&log, 1);
    assert_eq!(ran.len(), 12, "12 chunks on the node with the task:\n{log}");
}

#[test]
fn a_task_no_node_has_is_refused_before_anything_runs() {
    if !python_with_numpy("a_task_no_node_has_is_refused_before_anything_runs") {
        return;
    }
    let home = home_with_examples("tasks-nobody").with("RTL_TASK_WORKERS", "2");
    let daemon = Daemon::start_in(home);
    // This machine has `smooth`; no node does.
    let mine = daemon.home.scratch.0.join("mine");
    std::fs::create_dir_all(&mine).expect("folder");
    std::fs::write(
        mine.join("smooth.toml"),
        "name = \"smooth\"\ncommand = [\"python3\", \"smooth.py\"]\n",
    )
    .expect("manifest");
    std::fs::write(
        mine.join("smooth.py"),
        "import rtl_task\nrtl_task.serve(lambda table: table)\n",
    )
    .expect("program");
    let dir = daemon.home.scratch.0.join("jobs");
    std::fs::create_dir_all(&dir).expect("jobs");
    std::fs::write(dir.join("readings.csv"), "temp\n1.5\n").expect("csv");
    let job = write_job(
        &dir,
        "smooth",
        r#"{"stages": [{"tasks": {"open_array": {"filename": "readings"}}}, {"tasks": {"smooth": {}}}]}"#,
    );
    let run = daemon
        .home
        .command(&["run", "--connect", job.to_str().unwrap()])
        .env("RTL_TASK_DIRS", &mine)
        .output()
        .expect("run");
    assert!(!run.status.success(), "{}", text(&run));
    assert_eq!(
        String::from_utf8_lossy(&run.stderr),
        format!(
            "error: job {} failed: stage 1, task smooth: no task node has `smooth`; installed on the task nodes: calibrate (2 of 2 task nodes), rolling_mean (2 of 2 task nodes)\n",
            job.display()
        )
    );
    // The daemon serves the next job.
    run_example(&daemon, "rolling", "after a refusal");
}

#[test]
fn a_client_cannot_make_a_node_run_anything_but_an_installed_manifest() {
    use rtl_wire::{Body, Envelope, Kind};
    let home = home_with_examples("tasks-hostile").with("RTL_TASK_WORKERS", "2");
    let daemon = Daemon::start_in(home);
    let marker = daemon.home.scratch.0.join("pwned");
    let touch = format!("touch {}", marker.display());
    let tasks = daemon.home.dir().join("tasks");
    // Task names that are commands or paths, and kwargs that name one.
    let names = [
        touch.clone(),
        "/bin/sh".to_string(),
        "python3".to_string(),
        format!("{}/calibrate", tasks.display()),
        "../tasks/calibrate".to_string(),
        "calibrate.toml".to_string(),
        "rolling_mean.py".to_string(),
    ];
    let mut cases: Vec<(String, serde_json::Value, String)> = names
        .iter()
        .map(|name| {
            (
                name.clone(),
                serde_json::json!({"command": ["sh", "-c", touch]}),
                format!("no task node has `{name}`"),
            )
        })
        .collect();
    cases.push((
        "calibrate".into(),
        serde_json::json!({"column": "x", "command": ["sh", "-c", touch]}),
        "bad kwargs: unknown field `command`".into(),
    ));
    let ctx = zmq::Context::new();
    let mut socket = common::proven_client(&ctx, &daemon.home);
    for (name, kwargs, words) in cases {
        let call = rtl_dsl::TaskCall::new(&name, kwargs);
        let plan = rtl_dsl::Plan::single_stage(vec![call], daemon.home.scratch.0.clone());
        let job = uuid::Uuid::new_v4();
        Envelope::with_id(job, job, common::submit(plan), Body::Empty)
            .send(&mut socket, None)
            .expect("send");
        assert!(
            socket.poll(zmq::POLLIN, 5000).expect("poll") > 0,
            "the relay answers"
        );
        let reply = Envelope::recv(&socket, 0).expect("reply");
        assert_eq!(reply.message.kind(), Kind::Error, "{name}");
        let failure = common::failure(reply);
        assert!(failure.message.contains(&words), "{name}: {failure}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(!marker.exists(), "a command ran");
    // Nothing was started: no program runs in the task folder.
    let programs: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|p| std::fs::read_link(p.path().join("cwd")).is_ok_and(|cwd| cwd == tasks))
        .map(|p| p.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(programs, Vec::<String>::new(), "programs started");
}

#[test]
fn a_node_killed_while_its_program_runs_loses_nothing() {
    if !python_with_numpy("a_node_killed_while_its_program_runs_loses_nothing") {
        return;
    }
    let home = Home::new("tasks-node-killed")
        .with("RTL_PLOT_WORKERS", "0")
        .with("RTL_TASK_WORKERS", "2");
    let tasks = home.dir().join("tasks");
    std::fs::create_dir_all(&tasks).expect("task folder");
    std::fs::write(
        tasks.join("slow.toml"),
        "name = \"slow\"\ncommand = [\"python3\", \"slow.py\"]\n",
    )
    .expect("manifest");
    std::fs::write(
        tasks.join("slow.py"),
        "import time, rtl_task\n\ndef slow(table):\n    if not rtl_task.checking:\n        time.sleep(3)\n    table['twice'] = table['temp'] * 2\n    return table\n\nrtl_task.serve(slow)\n",
    )
    .expect("program");
    let daemon = Daemon::start_in(home);
    let dir = daemon.home.scratch.0.join("jobs");
    std::fs::create_dir_all(&dir).expect("jobs");
    std::fs::write(dir.join("readings.csv"), "temp\n1.5\n2.5\n").expect("csv");
    let job = write_job(
        &dir,
        "slow",
        r#"{"stages": [{"tasks": {"open_array": {"filename": "readings"}}}, {"tasks": {"slow": {}}}]}"#,
    );
    let out = dir.join("out.csv");
    let mut run = daemon.spawn(&[
        "run",
        "--connect",
        job.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let victim = node_holding_work(&daemon, &mut run).expect("a node held the work");
    // Its program is at work now; the node goes, and its program with it.
    std::thread::sleep(Duration::from_millis(500));
    let program = program_of(victim);
    assert!(program.is_some(), "the node runs its program");
    kill(victim);
    let done = wait_for(run, Duration::from_secs(60));
    assert!(done.status.success(), "{}", text(&done));
    assert_eq!(
        std::fs::read_to_string(&out).expect("result"),
        "temp,twice\n1.5,3.0\n2.5,5.0\n"
    );
    let program = program.unwrap_or_default();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while common::alive(program) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !common::alive(program),
        "the killed node's program {program} went with it"
    );
}

/// The pid of a program `node` started (a child of one of its threads).
fn program_of(node: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|p| {
        let pid: u32 = p.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(p.path().join("stat")).ok()?;
        let parent: u32 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        (parent == node).then_some(pid)
    })
}

#[test]
fn a_check_runs_the_program_on_the_sample_and_follows_its_columns() {
    if !python_with_numpy("a_check_runs_the_program_on_the_sample_and_follows_its_columns") {
        return;
    }
    // No daemon: `rtl check` runs this machine's installed programs.
    let home = home_with_examples("tasks-check");
    let dir = home.scratch.0.join("job");
    copy_dir(&examples().join("rolling"), &dir);
    let job = write_job(
        &dir,
        "job",
        r#"{"stages": {
  "load": {"tasks": {"open_array": {"filename": "readings"}}},
  "zero": {"inputs": "load", "tasks": [{"rolling_mean": {"column": "temp", "window": 0}}]},
  "typo": {"inputs": "load", "tasks": [{"rolling_mean": {"column": "tmp"}}]},
  "later": {"inputs": "load", "tasks": [{"rolling_mean": {"column": "temp"}}, {"sort": {"column": "tempRollin"}}]}
}}"#,
    );
    let out = home.rtl(&["check", job.to_str().unwrap()]);
    let path = job.display();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "{path}:3:41: stage zero, task rolling_mean: ValueError: window must be 1 or more, not 0 (rolling_mean.py, line 10)\n\
             {path}:4:58: stage typo, task rolling_mean, field column: no column `tmp`; did you mean temp? available columns: sensor (utf8), temp (float64)\n\
             {path}:5:80: stage later, task sort: no column `tempRollin`; did you mean tempRolling? available columns: sensor (utf8), temp (float64), tempRolling (float64)\n\
             3 problem(s)\n"
        ),
        "{}",
        text(&out)
    );
}

#[test]
fn work_whose_only_node_left_fails_naming_the_task() {
    if !python_with_numpy("work_whose_only_node_left_fails_naming_the_task") {
        return;
    }
    // The daemon's nodes have no tasks; the one node that has `slow` goes
    // while it holds the job's work, and does not come back.
    let home = Home::new("tasks-stranded")
        .with("RTL_PLOT_WORKERS", "0")
        .with("RTL_TASK_WORKERS", "1")
        .with("RTL_NODE_TIMEOUT_MS", "1000");
    let daemon = Daemon::start_in(home);
    let special = daemon.home.scratch.0.join("special");
    std::fs::create_dir_all(&special).expect("folder");
    std::fs::write(
        special.join("slow.toml"),
        "name = \"slow\"\ncommand = [\"python3\", \"slow.py\"]\n",
    )
    .expect("manifest");
    std::fs::write(
        special.join("slow.py"),
        "import time, rtl_task\n\ndef slow(table):\n    if not rtl_task.checking:\n        time.sleep(30)\n    return table\n\nrtl_task.serve(slow)\n",
    )
    .expect("program");
    let relay = daemon.home.config().node_endpoint();
    let mut node = daemon
        .home
        .command(&["node", "--relay", &relay, "--workers", "1"])
        .env("RTL_TASK_DIRS", &special)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the special node");
    let dir = daemon.home.scratch.0.join("jobs");
    std::fs::create_dir_all(&dir).expect("jobs");
    std::fs::write(dir.join("readings.csv"), "temp\n1.5\n").expect("csv");
    let job = write_job(
        &dir,
        "slow",
        r#"{"stages": [{"tasks": {"open_array": {"filename": "readings"}}}, {"tasks": {"slow": {}}}]}"#,
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let run = loop {
        let mut run = daemon
            .home
            .command(&["run", "--connect", job.to_str().unwrap()])
            .env("RTL_TASK_DIRS", &special)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run");
        // Until the node has joined, the job is refused at once.
        std::thread::sleep(Duration::from_millis(1500));
        match run.try_wait().expect("wait") {
            None => break run,
            Some(_) => assert!(
                std::time::Instant::now() < deadline,
                "the node never joined"
            ),
        }
    };
    // Its work is out on the special node now.
    let _ = node.kill();
    let _ = node.wait();
    let done = wait_for(run, Duration::from_secs(30));
    assert!(!done.status.success(), "{}", text(&done));
    let said = String::from_utf8_lossy(&done.stderr);
    assert!(
        said.contains("no task node has `slow` (version ")
            && said.contains(
                "any more: the nodes that had it left, and none came back within 1000 ms"
            ),
        "{}",
        text(&done)
    );
}

const SHAPES_TOML: &str = r#"name = "shapes"
doc = "returns what a careless or unusual function returns (tests)"
command = ["python3", "shapes.py"]
[kwargs.how]
type = "string"
"#;

const SHAPES_PY: &str = r#"import numpy as np
from rtl_task import serve

def shapes(table, how):
    if how == "unlock":
        # Made writable again and changed in place: the change must arrive.
        x = table["temp"]
        x.flags.writeable = True
        x *= 2
    elif how == "nul":
        table["tag"] = np.array(["a\x00b", "c"])
    elif how == "bytes":
        table["tag"] = np.array([b"ok", b"\xff\xfe"])
    elif how == "uint":
        table["big"] = np.array([1, 2**64 - 1], dtype=np.uint64)
    elif how == "fds":
        import os
        held = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                held.append(os.readlink("/proc/self/fd/" + fd))
            except OSError:
                pass  # the listing's own, gone already
        table["fds"] = np.array([" ".join(held)] * len(table["temp"]))
    return table

serve(shapes)
"#;

#[test]
fn what_a_python_function_returns_arrives_as_it_returned_it() {
    if !python_with_numpy("what_a_python_function_returns_arrives_as_it_returned_it") {
        return;
    }
    let home = Home::new("tasks-shapes").with("RTL_PLOT_WORKERS", "0");
    let tasks = home.dir().join("tasks");
    std::fs::create_dir_all(&tasks).expect("task folder");
    std::fs::write(tasks.join("shapes.toml"), SHAPES_TOML).expect("manifest");
    std::fs::write(tasks.join("shapes.py"), SHAPES_PY).expect("program");
    let daemon = Daemon::start_in(home);
    let dir = daemon.home.scratch.0.join("jobs");
    std::fs::create_dir_all(&dir).expect("jobs");
    std::fs::write(dir.join("readings.csv"), "sensor,temp\ns1,20.5\ns2,21.0\n").expect("csv");
    let job = |how: &str| {
        let job = format!(
            r#"{{"stages": [{{"tasks": {{"open_array": {{"filename": "readings"}}}}}},
                           {{"tasks": {{"shapes": {{"how": "{how}"}}}}}}]}}"#
        );
        rtl_dsl::Plan::parse(&job, "<shapes>", dir.clone()).expect("plan")
    };
    let mut transform = rtl_client::Transform::connect(&daemon.home.config()).expect("connect");

    let doubled = transform.execute(&job("unlock")).expect("unlock");
    assert_eq!(
        doubled.column("temp"),
        Some(&rtl_tasks::Column::Float64(ndarray::array![41.0, 42.0]))
    );
    // The program holds none of the node's files: not its cache (which it
    // could write into), not its sockets.
    let fds = transform.execute(&job("fds")).expect("fds");
    let Some(rtl_tasks::Column::Utf8(held)) = fds.column("fds") else {
        panic!("no fds column: {fds:?}");
    };
    for link in ["data.mdb", "socket:", "anon_inode:"] {
        assert!(!held[0].contains(link), "{link} in {}", held[0]);
    }
    let tagged = transform.execute(&job("nul")).expect("nul");
    assert_eq!(
        tagged.column("tag"),
        Some(&rtl_tasks::Column::text(&["a\0b", "c"])),
        "a NUL inside text is text"
    );
    for (how, message) in [
        (
            "bytes",
            r"stage 1, task shapes: ValueError: column 'tag' holds bytes that are not UTF-8 text (row 1: b'\xff\xfe'); rtl's text is UTF-8",
        ),
        (
            "uint",
            "stage 1, task shapes: ValueError: column 'big' holds 18446744073709551615, more than an int64 holds; rtl's whole numbers are int64",
        ),
    ] {
        let err = transform.execute(&job(how)).expect_err(how);
        assert_eq!(err.to_string(), message, "{how}");
    }
    // The check runs the function on the sample the same way.
    std::fs::write(
        dir.join("unlock.json"),
        r#"{"stages": [{"tasks": {"open_array": {"filename": "readings"}}},
                      {"tasks": [{"shapes": {"how": "unlock"}}, {"sort": {"column": "temp"}}]}]}"#,
    )
    .expect("job");
    let out = daemon.rtl(&["check", dir.join("unlock.json").to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_run_without_a_daemon_waits_for_its_nodes_to_report_their_tasks() {
    if !python_with_numpy("a_run_without_a_daemon_waits_for_its_nodes_to_report_their_tasks") {
        return;
    }
    // No daemon: each run starts its own nodes, and its job must not reach
    // the relay before they have said which tasks they have.
    let home = home_with_examples("tasks-embedded");
    let copy = home.scratch.0.join("rolling");
    copy_dir(&examples().join("rolling"), &copy);
    let want = read_csv(&examples().join("rolling/expected.csv"));
    for round in 0..5 {
        let out = copy.join(format!("out{round}.csv"));
        let run = home.rtl(&[
            "run",
            copy.join("job.json").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(run.status.success(), "round {round}: {}", text(&run));
        assert_close(&format!("round {round}"), &read_csv(&out), &want);
    }
}

#[test]
fn chunks_that_come_back_with_different_columns_are_told_by_column() {
    if !python_with_numpy("chunks_that_come_back_with_different_columns_are_told_by_column") {
        return;
    }
    let home = Home::new("tasks-varied").with("RTL_PLOT_WORKERS", "0");
    let tasks = home.dir().join("tasks");
    std::fs::create_dir_all(&tasks).expect("task folder");
    std::fs::write(
        tasks.join("varied.toml"),
        "name = \"varied\"\ncommand = [\"python3\", \"varied.py\"]\nrow_local = true\nchunk_rows = 5\n",
    )
    .expect("manifest");
    // Whole numbers where a chunk's first x is even, fractions otherwise.
    std::fs::write(
        tasks.join("varied.py"),
        "import numpy as np\nfrom rtl_task import serve\n\ndef varied(table):\n    x = table[\"x\"]\n    table[\"v\"] = x.astype(np.int64) if int(x[0]) % 2 == 0 else x / 2\n    return table\n\nserve(varied)\n",
    )
    .expect("program");
    let doc = text(&home.rtl(&["tasks", "--doc", "varied"]));
    assert!(
        doc.contains("  row-local: large tables run in chunks of at most 5 rows, on every node that has it\n")
            && doc.contains(" ms a call (the setting program_timeout_ms); at most ")
            && doc.contains(" MiB of memory (the setting program_memory_mb)\n"),
        "{doc}"
    );
    let daemon = Daemon::start_in(home);
    let dir = daemon.home.scratch.0.join("jobs");
    std::fs::create_dir_all(&dir).expect("jobs");
    let rows: String = (0..20).map(|i| format!("{i}\n")).collect();
    std::fs::write(dir.join("xs.csv"), format!("x\n{rows}")).expect("csv");
    let job = write_job(
        &dir,
        "varied",
        r#"{"stages": [{"tasks": {"open_array": {"filename": "xs"}}}, {"tasks": {"varied": {}}}]}"#,
    );
    let run = daemon.rtl(&["run", "--connect", job.to_str().unwrap()]);
    assert!(!run.status.success(), "{}", text(&run));
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(
        said.contains("failed: stage 1: the pieces of the table differ: piece 2 of it has `v` as float64 where the first has int64")
            && said.contains("a task run on chunks must give every chunk the same columns of the same types"),
        "{said}"
    );
}
