//! Chaos: while clients run jobs, task nodes are killed (SIGKILL, pids of
//! our own daemon) one, two or all at a time, the plot node is killed
//! during plotting jobs, and the relay is stopped (SIGSTOP) and resumed.
//! Every job must succeed with the result it has undisturbed; afterwards
//! the cache holds no table and the relay's memory is back where it was.
//!
//! `RTL_TEST_REPEAT=N` runs the twelve-jobs scenario N times in a row (CI
//! runs it once).

mod common;

use common::{anon_rss, assert_close, kill, read_csv, signal, text, write_job, Daemon, Home};
use ndarray::Array1;
use rtl_cache::Cache;
use rtl_client::Transform;
use rtl_dsl::Plan;
use rtl_tasks::{Column, Table};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A small, fast random source for the kill loop and the data.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// examples/pipeline's job on `rows` rows of metrics like its own (the
/// same rows every time); returns the job's path.
fn pipeline(dir: &Path, rows: usize) -> PathBuf {
    let mut csv = String::from("time,cpu,mem,disk\n");
    let mut random = Xorshift(0x9e37_79b9_7f4a_7c15);
    for t in 0..rows {
        let x = random.next();
        let _ = writeln!(
            csv,
            "{t},{},{},{}",
            (x % 10_000) as f64 / 100.0,
            ((x >> 16) % 500_000) as f64 / 100.0,
            (x >> 40) % 1000
        );
    }
    std::fs::write(dir.join("metrics.csv"), csv).expect("write metrics");
    let job = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pipeline/job.json"),
    )
    .expect("the example pipeline");
    write_job(dir, "pipeline", &job)
}

/// A small job on an inline input: arithmetic, a filter and a sort.
fn small_plan() -> Plan {
    Plan::parse(
        r#"{"0": {"tasks": [
            {"add": {"operations": [{"a": "x", "b": "y", "column": "s"}]}},
            {"filter": {"operations": [{"column": "s", "method": "gt", "value": 10}]}},
            {"sort": {"column": "s", "descending": true}}]}}"#,
        "<small>",
        std::env::temp_dir(),
    )
    .expect("small plan")
}

/// Variant `k` of the small job's input: 300 rows.
fn small_input(k: usize) -> Table {
    let x = Array1::from_iter((0..300).map(|i| ((i * 7 + k * 13) % 50) as f64));
    let y = Array1::from_iter((0..300).map(|i| ((i * 3 + k) % 11) as f64 - 2.5));
    Table::from_columns(vec![
        ("x".into(), Column::Float64(x)),
        ("y".into(), Column::Float64(y)),
    ])
    .expect("table")
}

const SMALL_VARIANTS: usize = 8;

/// Chaos settings: heartbeats every 200 ms, and up to 3 s for a task node
/// to be back before queued work fails (a replacement joins in well under
/// a second).
fn chaos_home(tag: &str) -> Home {
    Home::new(tag)
        .with("RTL_HEARTBEAT_MS", "200")
        .with("RTL_NODE_TIMEOUT_MS", "3000")
        .with("RTL_JOB_TIMEOUT_MS", "10000")
        .with("RTL_TASK_WORKERS", "3")
        .with("RTL_PLOT_WORKERS", "0")
        .with("RTL_CHUNKING", "true")
        .with("RTL_CHUNKING_SIZE", "20000")
}

/// Which task nodes a round of the kill loop takes.
#[derive(Clone, Copy)]
enum Victims {
    One,
    Two,
    All,
}

/// Kills task nodes of `home` every `every` (a random time in that range)
/// until `stop`; returns how many it killed.
fn kill_loop(
    home: &Home,
    victims: Victims,
    every: (u64, u64),
    seed: u64,
    stop: &AtomicBool,
) -> usize {
    let mut random = Xorshift(seed | 1);
    let mut killed = 0;
    loop {
        let pause = every.0 + random.below(every.1 - every.0 + 1);
        let wake = Instant::now() + Duration::from_millis(pause);
        while Instant::now() < wake {
            if stop.load(Ordering::Relaxed) {
                return killed;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut alive: Vec<u32> = home
            .pids_of("tasknode")
            .into_iter()
            .filter(|pid| common::alive(*pid))
            .collect();
        let take = match victims {
            Victims::One => 1,
            Victims::Two => 2,
            Victims::All => alive.len(),
        };
        for _ in 0..take.min(alive.len()) {
            let at = random.below(alive.len() as u64) as usize;
            kill(alive.swap_remove(at));
            killed += 1;
        }
    }
}

/// Table entries left in the daemon's cache, once late answers have had
/// a few seconds to arrive.
fn tables_left(home: &Home) -> usize {
    let config = home.config();
    let cache = Cache::open(&config.cache_dir(), config.cache_map_size).expect("open the cache");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = cache.table_entries();
        if left == 0 || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `jobs` jobs from `clients` connections at once, every fifth the
/// 200,000-row pipeline and the others small inline jobs, while
/// `victims` are killed every 0.5-1 s (or as `every` says); checks every
/// result against the undisturbed one, then the cache and the relay's
/// memory.
fn chaos(tag: &str, clients: usize, jobs: usize, victims: Victims, every: (u64, u64)) {
    let daemon = Daemon::start_in(chaos_home(tag));
    let config = daemon.home.config();
    let big = pipeline(&daemon.home.scratch.0, 200_000);
    let small = small_plan();

    // Undisturbed results, which also warm the relay up.
    let mut transform = Transform::connect(&config).expect("connect");
    let want_big = transform.execute(&big).expect("the pipeline, undisturbed");
    let want_small: Vec<Table> = (0..SMALL_VARIANTS)
        .map(|k| {
            transform
                .execute_with(&small, Some(small_input(k)), &mut |_| {})
                .expect("a small job, undisturbed")
        })
        .collect();
    drop(transform);
    let relay = daemon.home.pids_of("relay")[0];
    let memory_before = anon_rss(relay);

    let failures = Mutex::new(Vec::<String>::new());
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let killed = std::thread::scope(|scope| {
        let killer = scope.spawn(|| kill_loop(&daemon.home, victims, every, 0x5eed, &stop));
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let mut transform = match Transform::connect(&config) {
                        Ok(t) => t,
                        Err(e) => return failures.lock().unwrap().push(format!("connect: {e}")),
                    };
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= jobs {
                            return;
                        }
                        let (got, want) = if i % 5 == 0 {
                            (transform.execute(&big), &want_big)
                        } else {
                            let k = i % SMALL_VARIANTS;
                            let got =
                                transform.execute_with(&small, Some(small_input(k)), &mut |_| {});
                            (got, &want_small[k])
                        };
                        match got {
                            Ok(got) if got == *want => {}
                            Ok(got) => failures.lock().unwrap().push(format!(
                                "job {i}: {} rows, expected {} (or other values)",
                                got.rows(),
                                want.rows()
                            )),
                            Err(e) => failures.lock().unwrap().push(format!("job {i}: {e}")),
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            let _ = worker.join();
        }
        stop.store(true, Ordering::Relaxed);
        killer.join().expect("kill loop")
    });
    let took = started.elapsed();
    let failures = failures.into_inner().unwrap();
    let log = std::fs::read_to_string(daemon.home.dir().join("log/relay.log")).unwrap_or_default();
    assert!(
        failures.is_empty(),
        "{} of {jobs} jobs failed with {killed} node(s) killed in {took:?}:\n{}\n--- relay log (end)\n{}",
        failures.len(),
        failures.join("\n"),
        tail(&log, 60)
    );
    assert!(killed > 0, "the kill loop killed nothing in {took:?}");
    eprintln!(
        "{tag}: {jobs} jobs from {clients} clients in {took:?}, {killed} task node(s) killed"
    );
    assert!(
        !log.contains("Host unreachable") && !log.contains("could not send work"),
        "{}",
        tail(&log, 60)
    );

    assert_eq!(tables_left(&daemon.home), 0, "tables left in the cache");
    // The relay holds nothing for finished jobs: its memory is back within
    // allocator slack of where it was.
    let memory_after = anon_rss(relay);
    eprintln!(
        "{tag}: relay anonymous memory {:.1} MB before, {:.1} MB after",
        memory_before as f64 / 1e6,
        memory_after as f64 / 1e6
    );
    assert!(
        memory_after <= memory_before + (32 << 20),
        "relay memory grew from {memory_before} to {memory_after} bytes"
    );
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn two_hundred_jobs_from_four_clients_while_a_task_node_is_killed_every_second() {
    chaos("chaos-one", 4, 200, Victims::One, (500, 1000));
}

#[test]
fn jobs_survive_two_of_three_task_nodes_killed_at_once() {
    chaos("chaos-two", 4, 60, Victims::Two, (700, 1200));
}

#[test]
fn jobs_wait_for_replacements_when_every_task_node_is_killed_at_once() {
    // Queued work waits up to node_timeout_ms (3 s here) for a task node;
    // the supervisor starts replacements within a heartbeat (200 ms) plus
    // their start-up.
    chaos("chaos-all", 4, 60, Victims::All, (1000, 1500));
}

/// The scenario of a held-out check: twelve chunked pipeline jobs in a row
/// through `rtl run --connect`, one task node killed about a second in.
#[test]
fn twelve_jobs_in_a_row_survive_a_task_node_killed_a_second_in() {
    let repeat: usize = std::env::var("RTL_TEST_REPEAT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let daemon = Daemon::start_in(
        Home::new("twelve")
            .with("RTL_PLOT_WORKERS", "0")
            .with("RTL_CHUNKING", "true")
            .with("RTL_CHUNKING_SIZE", "2000"),
    );
    let dir = daemon.home.scratch.0.clone();
    let job = pipeline(&dir, 200_000);
    let want_path = dir.join("want.csv");
    let out = daemon.rtl(&[
        "run",
        "--connect",
        job.to_str().unwrap(),
        "--out",
        want_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let want = std::fs::read(&want_path).expect("the undisturbed result");
    let mut random = Xorshift(0xfeed);
    for round in 0..repeat {
        let outcomes = std::thread::scope(|scope| {
            let runs = scope.spawn(|| {
                (0..12)
                    .map(|k| {
                        let path = dir.join(format!("out-{k}.csv"));
                        let out = daemon.rtl(&[
                            "run",
                            "--connect",
                            job.to_str().unwrap(),
                            "--out",
                            path.to_str().unwrap(),
                        ]);
                        (path, out)
                    })
                    .collect::<Vec<_>>()
            });
            std::thread::sleep(Duration::from_millis(900 + random.below(200)));
            let nodes: Vec<u32> = daemon
                .home
                .pids_of("tasknode")
                .into_iter()
                .filter(|p| common::alive(*p))
                .collect();
            assert!(!nodes.is_empty(), "no task node to kill");
            kill(nodes[random.below(nodes.len() as u64) as usize]);
            runs.join().expect("runs")
        });
        for (k, (path, out)) in outcomes.into_iter().enumerate() {
            assert!(
                out.status.success(),
                "round {round}, job {k}: {}",
                text(&out)
            );
            // Byte for byte the undisturbed file; parsed only to say how not.
            if std::fs::read(&path).ok().as_ref() != Some(&want) {
                let what = format!("round {round}, job {k}");
                assert_close(&what, &read_csv(&path), &read_csv(&want_path));
                panic!("{what}: the same values, written differently");
            }
        }
    }
    assert_eq!(tables_left(&daemon.home), 0, "tables left in the cache");
}

/// A job that takes a few seconds: the pipeline on 200,000 rows, five
/// times, from a client thread; returns what each run gave.
fn run_pipelines(
    config: &rtl_config::Config,
    job: &Path,
    times: usize,
) -> Vec<Result<Table, String>> {
    let mut transform = match Transform::connect(config) {
        Ok(t) => t,
        Err(e) => return vec![Err(format!("connect: {e}"))],
    };
    (0..times)
        .map(|_| transform.execute(job).map_err(|e| e.to_string()))
        .collect()
}

#[test]
fn a_relay_stalled_longer_than_the_node_timeout_blames_no_node() {
    let daemon = Daemon::start_in(
        Home::new("stall")
            .with("RTL_HEARTBEAT_MS", "100")
            .with("RTL_NODE_TIMEOUT_MS", "800")
            .with("RTL_JOB_TIMEOUT_MS", "20000")
            .with("RTL_PLOT_WORKERS", "0")
            .with("RTL_CHUNKING_SIZE", "2000"),
    );
    let config = daemon.home.config();
    let job = pipeline(&daemon.home.scratch.0, 200_000);
    let want = run_pipelines(&config, &job, 1)
        .remove(0)
        .expect("undisturbed");
    let relay = daemon.home.pids_of("relay")[0];
    let results = std::thread::scope(|scope| {
        let runs = scope.spawn(|| run_pipelines(&config, &job, 6));
        std::thread::sleep(Duration::from_millis(400));
        signal(relay, libc::SIGSTOP);
        std::thread::sleep(Duration::from_secs(3));
        signal(relay, libc::SIGCONT);
        runs.join().expect("runs")
    });
    for (k, got) in results.into_iter().enumerate() {
        let got = got.unwrap_or_else(|e| panic!("job {k}: {e}"));
        assert_close(&format!("job {k}"), &got, &want);
    }
    let log = std::fs::read_to_string(daemon.home.dir().join("log/relay.log")).expect("log");
    assert!(log.contains("the relay did not run for"), "{log}");
    assert!(
        !log.contains("stopped answering"),
        "a node was blamed:\n{log}"
    );
    assert!(!log.contains("sent again"), "an attempt was spent:\n{log}");
}

#[test]
fn a_client_waits_for_a_relay_stopped_while_it_connects() {
    let daemon = Daemon::start_in(
        Home::new("stopped-relay")
            .with("RTL_JOB_TIMEOUT_MS", "15000")
            .with("RTL_PLOT_WORKERS", "0"),
    );
    let job = common::null_job(&daemon.home.scratch);
    let relay = daemon.home.pids_of("relay")[0];
    for args in [vec!["run", "--connect"], vec!["run"]] {
        signal(relay, libc::SIGSTOP);
        let mut cmd = daemon.home.command(&args);
        let run = cmd
            .arg(&job)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rtl run");
        std::thread::sleep(Duration::from_secs(3));
        signal(relay, libc::SIGCONT);
        let out = run.wait_with_output().expect("rtl run");
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("Result: 4 rows"), "{}", text(&out));
        // The daemon was there, only slow: never an embedded run beside it.
        assert!(!text(&out).contains("embedded"), "{}", text(&out));
    }
}

#[test]
fn a_relay_that_does_not_answer_in_time_is_an_error_not_an_embedded_run() {
    let daemon = Daemon::start_in(
        Home::new("silent-relay")
            .with("RTL_JOB_TIMEOUT_MS", "1000")
            .with("RTL_PLOT_WORKERS", "0"),
    );
    let job = common::null_job(&daemon.home.scratch);
    let relay = daemon.home.pids_of("relay")[0];
    signal(relay, libc::SIGSTOP);
    let out = daemon.rtl(&["run", job.to_str().unwrap()]);
    signal(relay, libc::SIGCONT);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("did not answer within 1000 ms"), "{said}");
    assert!(!said.contains("embedded"), "{said}");
}

#[test]
fn charts_of_jobs_run_while_the_plot_node_is_killed_are_drawn_by_its_replacement() {
    let daemon = Daemon::start_in(
        Home::new("plot-kill")
            .with("RTL_HEARTBEAT_MS", "200")
            .with("RTL_PLOT_WORKERS", "1"),
    );
    let config = daemon.home.config();
    let plan = |k: usize| {
        Plan::parse(
            &format!(
                r#"{{"0": {{"tasks": {{"simple_plot": {{"title": "run {k}", "plots": {{"chart{k}": [{{"x": "x", "y": "y", "type": "line"}}]}}}}}}}}}}"#
            ),
            "<plot>",
            std::env::temp_dir(),
        )
        .expect("plot plan")
    };
    // Two clients make 300 charts while the plot node is killed every
    // 150-400 ms, so charts are in flight, unconfirmed and waiting at
    // every kill.
    let charts = 300;
    let stop = AtomicBool::new(false);
    let told = Mutex::new(Vec::new());
    let kills = std::thread::scope(|scope| {
        let killer = scope.spawn(|| {
            let mut random = Xorshift(7);
            let mut kills = 0;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(150 + random.next() % 250));
                if let Some(pid) = daemon.home.pids_of("plotnode").first() {
                    kill(*pid);
                    kills += 1;
                }
            }
            kills
        });
        let clients: Vec<_> = (0..2)
            .map(|c| {
                let (config, told, plan) = (&config, &told, &plan);
                scope.spawn(move || {
                    let mut transform = Transform::connect(config).expect("connect");
                    for k in (c..charts).step_by(2) {
                        let mut notes = Vec::new();
                        transform
                            .execute_with(&plan(k), Some(small_input(k)), &mut |e| {
                                notes.extend(e.message.clone())
                            })
                            .unwrap_or_else(|e| panic!("plotting job {k}: {e}"));
                        if notes.iter().any(|n| n.contains("not on the plot page yet")) {
                            told.lock().unwrap().push(k);
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().expect("client");
        }
        stop.store(true, Ordering::Relaxed);
        killer.join().expect("killer")
    });
    assert!(kills >= 3, "only {kills} kills");
    let told = told.into_inner().unwrap();
    // Every chart reaches the page: the ones made while no plot node was
    // there are drawn once the replacement joins (and their clients were
    // told they would be).
    let plots = daemon.home.dir().join("plots");
    let deadline = Instant::now() + Duration::from_secs(20);
    let missing = loop {
        let names: Vec<String> = rtl_plot::gallery::list(&plots)
            .into_iter()
            .map(|e| e.name)
            .collect();
        let missing: Vec<usize> = (0..charts)
            .filter(|k| !names.contains(&format!("chart{k}")))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(daemon.home.dir().join("log/relay.log")).expect("log");
    assert!(
        missing.is_empty(),
        "charts lost: {missing:?} (told: {told:?})\n{log}"
    );
    assert!(!log.contains("Host unreachable"), "{log}");
}

#[test]
fn a_client_that_goes_away_mid_job_leaves_nothing_behind() {
    let daemon = Daemon::start_in(chaos_home("client-gone"));
    let config = daemon.home.config();
    let job = pipeline(&daemon.home.scratch.0, 200_000);
    let plan = Plan::from_file(&job).expect("plan");
    // Three large jobs, whose results would come back by reference; then
    // the client is gone, long before they finish.
    let mut transform = Transform::connect(&config).expect("connect");
    for _ in 0..3 {
        let _ = transform.submit(&plan).expect("submit");
    }
    // Answered in order: once the pong is back the relay has every submit.
    transform.ping(Duration::from_secs(10)).expect("ping");
    drop(transform);

    let log_path = daemon.home.dir().join("log/relay.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log_path)
        .unwrap_or_default()
        .contains("has gone")
    {
        assert!(
            Instant::now() < deadline,
            "the relay never noticed the client went"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(tables_left(&daemon.home), 0, "tables left in the cache");
    // The daemon goes on serving others.
    let again = Transform::connect(&config)
        .expect("connect")
        .execute(&plan)
        .expect("a job after the client went");
    assert!(again.rows() > 0);
}

/// Task nodes that joined the relay themselves (`rtl node`), as on
/// another machine, with the cluster's secret.
fn joined_nodes(status: &serde_json::Value) -> usize {
    status["services"]
        .as_array()
        .map_or(0, |s| s.iter().filter(|s| s["joined"] == true).count())
}

fn wait_for_joined(daemon: &Daemon, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = daemon.rtl(&["status", "--json"]);
        let status: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        if joined_nodes(&status) == count {
            return;
        }
        assert!(Instant::now() < deadline, "nodes never joined: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_joined_node_outlives_a_relay_restart_and_serves_the_new_relay() {
    let home = Home::new("relay-restart")
        .with("RTL_TASK_WORKERS", "0")
        .with("RTL_PLOT_WORKERS", "0")
        .with("RTL_HEARTBEAT_MS", "200")
        .with("RTL_JOB_TIMEOUT_MS", "2000")
        .with("RTL_CHUNKING_SIZE", "2000");
    let keygen = home.rtl(&["keygen"]);
    assert!(keygen.status.success(), "{}", text(&keygen));
    let daemon = Daemon::start_in(home);
    let elsewhere = Home::new("relay-restart-node").with(
        "RTL_SECRET_FILE",
        &daemon.home.dir().join("secret").display().to_string(),
    );
    let node_log = elsewhere.scratch.0.join("node.log");
    let relay = format!("tcp://127.0.0.1:{}", daemon.home.port("RTL_NODE_PORT"));
    let _node = common::Foreground(
        elsewhere
            .command(&["node", "--relay", &relay, "--workers", "2"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&node_log).expect("node log"))
            .spawn()
            .expect("rtl node"),
    );
    wait_for_joined(&daemon, 2);
    let job = pipeline(&daemon.home.scratch.0, 200_000);
    let config = daemon.home.config();
    let want = Transform::connect(&config)
        .expect("connect")
        .execute(&job)
        .expect("undisturbed");

    // The relay dies mid-job: its client is told in bounded time.
    // Killed once the job is under way (it takes a few hundred ms).
    let (run, stdout) = run_under_way(&daemon.home, &job);
    kill(daemon.home.pids_of("relay")[0]);
    let out = finish(run, stdout);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("stopped answering"), "{}", text(&out));

    // A new relay: the joined nodes prove the secret to it again by
    // themselves, answers they held for the old one are dropped, and the
    // next job runs on them.
    let out = daemon.rtl(&["start"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_for_joined(&daemon, 2);
    let got = Transform::connect(&config)
        .expect("connect")
        .execute(&job)
        .expect("a job on the new relay");
    assert_eq!(got, want);
    let said = std::fs::read_to_string(&node_log).expect("node log");
    assert!(
        said.matches("joined the relay with the cluster secret")
            .count()
            >= 4,
        "two nodes, each joining twice:\n{said}"
    );
    assert_eq!(tables_left(&daemon.home), 0, "tables left in the cache");
}

/// Set in a copy of this test binary that only opens the cache at this
/// path, starts a read and waits to be killed.
const HOLD_READER: &str = "RTL_TEST_HOLD_READER";

fn hold_a_reader(dir: &str) -> ! {
    let env = lmdb::Environment::new()
        .set_max_readers(256)
        .open(Path::new(dir))
        .expect("open the cache");
    let txn = env.begin_ro_txn().expect("read");
    println!("reading");
    std::io::Write::flush(&mut std::io::stdout()).expect("flush");
    std::thread::sleep(Duration::from_secs(600));
    drop(txn);
    std::process::exit(0)
}

#[test]
fn reader_slots_of_processes_killed_mid_read_are_given_back() {
    if let Ok(dir) = std::env::var(HOLD_READER) {
        hold_a_reader(&dir);
    }
    let daemon = Daemon::start_in(chaos_home("readers").with("RTL_TASK_WORKERS", "2"));
    let cache = daemon.home.config().cache_dir();
    // More readers killed mid-read than the cache has slots.
    let me = std::env::current_exe().expect("this test binary");
    for _ in 0..300 {
        let mut reader = std::process::Command::new(&me)
            .args([
                "--exact",
                "reader_slots_of_processes_killed_mid_read_are_given_back",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HOLD_READER, &cache)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a reader");
        let mut said = String::new();
        let mut out = std::io::BufReader::new(reader.stdout.take().expect("stdout"));
        while !said.contains("reading") {
            let n = std::io::BufRead::read_line(&mut out, &mut said).expect("read");
            assert!(n > 0, "the reader ended before reading: {said}");
        }
        kill(reader.id());
        let _ = reader.wait();
    }
    // Tables still go through the cache, for jobs and for new nodes.
    let job = pipeline(&daemon.home.scratch.0, 100_000);
    let config = daemon.home.config();
    let want = run_pipelines(&config, &job, 1)
        .remove(0)
        .expect("first run");
    for node in daemon.home.pids_of("tasknode") {
        kill(node);
    }
    for got in run_pipelines(&config, &job, 3) {
        assert_close("after the kills", &got.expect("a run"), &want);
    }
    let status = daemon.rtl(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    let readers = status["relay"]["cache"]["readers"]
        .as_u64()
        .expect("readers");
    assert!(readers < 16, "{status}");
    let log = std::fs::read_to_string(daemon.home.dir().join("log/relay.log")).expect("log");
    assert!(log.contains("cache reader slot(s)"), "{log}");
    let nodes =
        std::fs::read_to_string(daemon.home.dir().join("log/tasknode.log")).unwrap_or_default();
    assert!(!nodes.contains("without the shared cache"), "{nodes}");
}

#[test]
fn status_judges_the_relay_by_its_answer_not_its_pid() {
    let daemon = Daemon::start_in(Home::new("silent-status").with("RTL_PLOT_WORKERS", "0"));
    let relay = daemon.home.pids_of("relay")[0];
    signal(relay, libc::SIGSTOP);
    let out = daemon.rtl(&["status"]);
    let json = daemon.rtl(&["status", "--json"]);
    signal(relay, libc::SIGCONT);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("silent"), "{}", text(&out));
    assert!(text(&out).contains("did not answer"), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(json["running"], false, "{json}");
    // `rtl start` leaves a slow relay alone.
    signal(relay, libc::SIGSTOP);
    let started = daemon.rtl(&["start"]);
    signal(relay, libc::SIGCONT);
    assert!(started.status.success(), "{}", text(&started));
    assert_eq!(daemon.home.pids_of("relay"), [relay]);
    let out = daemon.rtl(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// `rtl run --connect JOB` on `home`, returned once the job reports it is
/// running; [`finish`] collects what it says.
fn run_under_way(
    home: &Home,
    job: &Path,
) -> (std::process::Child, std::thread::JoinHandle<String>) {
    let mut run = home
        .command(&["run", "--connect", job.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rtl run");
    let mut progress = std::io::BufReader::new(run.stdout.take().expect("stdout"));
    let mut said = String::new();
    while !said.contains("Running:") {
        let n = std::io::BufRead::read_line(&mut progress, &mut said).expect("read");
        assert!(n > 0, "the job ended before it ran: {said}");
    }
    let stdout = std::thread::spawn(move || {
        let _ = std::io::Read::read_to_string(&mut progress, &mut said);
        said
    });
    (run, stdout)
}

/// The outcome of a run from [`run_under_way`], with all it printed.
fn finish(
    run: std::process::Child,
    stdout: std::thread::JoinHandle<String>,
) -> std::process::Output {
    let mut out = run.wait_with_output().expect("rtl run");
    out.stdout = stdout.join().expect("stdout").into_bytes();
    out
}

#[test]
fn a_client_whose_relay_is_restarted_mid_job_is_told_at_once() {
    // Killed and started again: the new relay's first answer tells the
    // client its relay was replaced (a challenge with a secret, a pong of
    // another run without).
    for secret in [true, false] {
        let mut home = chaos_home("restarted").with("RTL_JOB_TIMEOUT_MS", "60000");
        if !secret {
            home = home.with("RTL_INSECURE", "true");
        }
        let daemon = Daemon::start_in(home);
        let job = pipeline(&daemon.home.scratch.0, 200_000);
        let (run, stdout) = run_under_way(&daemon.home, &job);
        let restarted = Instant::now();
        kill(daemon.home.pids_of("relay")[0]);
        let out = daemon.rtl(&["start"]);
        assert!(out.status.success(), "{}", text(&out));
        let out = finish(run, stdout);
        let said = text(&out);
        assert!(!out.status.success(), "{said}");
        assert!(said.contains("was restarted while the job ran"), "{said}");
        // Told within a few pings, not after job_timeout_ms (60 s).
        assert!(restarted.elapsed() < Duration::from_secs(30), "{said}");
    }
    // `rtl restart`: the stopping relay tells its clients itself.
    let daemon = Daemon::start_in(chaos_home("restarted").with("RTL_JOB_TIMEOUT_MS", "60000"));
    let job = pipeline(&daemon.home.scratch.0, 200_000);
    let (run, stdout) = run_under_way(&daemon.home, &job);
    let out = daemon.rtl(&["restart"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = finish(run, stdout);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("the relay stopped (`rtl stop` or `rtl restart`) before the job finished"),
        "{said}"
    );
}

#[test]
fn a_client_that_was_paused_does_not_blame_the_relay() {
    let daemon = Daemon::start_in(chaos_home("paused-client").with("RTL_JOB_TIMEOUT_MS", "2000"));
    let job = pipeline(&daemon.home.scratch.0, 200_000);
    let (run, stdout) = run_under_way(&daemon.home, &job);
    signal(run.id(), libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(5));
    signal(run.id(), libc::SIGCONT);
    let out = finish(run, stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Result:"), "{}", text(&out));
    assert_eq!(tables_left(&daemon.home), 0, "tables left in the cache");
}

#[test]
fn plans_leave_the_cache_with_their_last_job() {
    let daemon = Daemon::start_in(Home::new("plans").with("RTL_PLOT_WORKERS", "0"));
    let config = daemon.home.config();
    let mut transform = Transform::connect(&config).expect("connect");
    // Each job its own plan, as each `--set` value makes one.
    for k in 0..200 {
        let plan = Plan::parse(
            &format!(
                r#"{{"0": {{"tasks": {{"filter": {{"operations": [{{"column": "x", "method": "gt", "value": {k}}}]}}}}}}}}"#
            ),
            "<plans>",
            std::env::temp_dir(),
        )
        .expect("plan");
        transform
            .execute_with(&plan, Some(small_input(k)), &mut |_| {})
            .unwrap_or_else(|e| panic!("job {k}: {e}"));
    }
    let status = daemon.rtl(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(status["relay"]["cache"]["plans"], 0, "{status}");
}
