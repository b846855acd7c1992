//! `rtl bench`: rtl measured against the floor under it, every figure next
//! to its reference from the same run, so ratios hold on a noisy machine.
//!
//! By default it starts its own relay and task nodes in this process on TCP
//! loopback (what a daemon's clients and nodes go through); `--connect`
//! uses the running daemon instead. The floors are plain ZeroMQ: the same
//! four hops (client DEALER -> relay ROUTER -> node DEALER and back) with
//! the same sockets and message sizes, doing no work. `--inline` makes
//! tables travel inside the messages, as they do to a node on another host,
//! instead of through the shared cache.
//!
//! Every timed figure follows untimed runs of the same thing (one; two
//! for the pipeline), so a figure is what a running daemon gives, not the
//! cost of its first touch of fresh memory. The in-process pipeline is also compared with numpy
//! (`benches/numpy_pipeline.py`, run with the machine's python3) when numpy
//! is there.

use rtl_client::{JobHandle, Transform};
use rtl_config::Config;
use rtl_dsl::Plan;
use rtl_tasks::{Column, Context, Table};
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How much to measure: the full run, or one that keeps under a minute.
struct Sizes {
    null_rounds: usize,
    jobs: usize,
    move_rounds: usize,
    pipeline_rounds: usize,
}

/// How the bench runs: `rtl bench`'s flags.
pub struct Options {
    pub json: bool,
    pub quick: bool,
    pub connect: bool,
    pub inline: bool,
}

pub fn run(config: &Config, options: &Options) -> Result<ExitCode, String> {
    let sizes = if options.quick {
        Sizes {
            null_rounds: 1_000,
            jobs: 4_000,
            move_rounds: 5,
            pipeline_rounds: 1,
        }
    } else {
        Sizes {
            null_rounds: 5_000,
            jobs: 20_000,
            move_rounds: 20,
            pipeline_rounds: 5,
        }
    };
    // The in-process cluster gets a home of its own, with room in its cache
    // for the 10M-row tables, so the bench never touches the user's cache.
    let scratch = std::env::temp_dir().join(format!("rtl-bench-{}", std::process::id()));
    let mut own = config.clone();
    own.home = scratch.clone();
    own.cache_map_size = own.cache_map_size.max(4 << 30);
    if options.inline {
        own.by_reference_bytes = usize::MAX;
    }
    // rtl bench's installed tasks: put where its own nodes read them, or
    // found where the daemon's do.
    let tasks = if options.connect {
        config
            .task_dirs()
            .into_iter()
            .find(|f| BENCH_TASKS.iter().all(|(name, _)| f.join(name).is_file()))
            .ok_or_else(|| {
                "the daemon's task_dirs do not hold rtl bench's tasks (copy benches/tasks/* into one, and restart)".to_string()
            })
    } else {
        let folder = own.task_dirs().remove(0);
        install_bench_tasks(&folder).map_err(|e| format!("rtl bench's tasks: {e}"))?;
        Ok(folder)
    };
    let mut transform = if options.connect {
        let mut client = config.clone();
        if options.inline {
            client.by_reference_bytes = usize::MAX;
        }
        Transform::connect(&client)
    } else {
        Transform::embedded_on_loopback(&own)
    }
    .map_err(|e| e.to_string())?;
    let outcome = measure(&mut transform, config, &sizes, options, &tasks);
    drop(transform);
    let _ = std::fs::remove_dir_all(&scratch);
    outcome
}

fn measure(
    transform: &mut Transform,
    config: &Config,
    sizes: &Sizes,
    options: &Options,
    tasks: &Result<std::path::PathBuf, String>,
) -> Result<ExitCode, String> {
    let mut report = Report::default();
    let mut note = |key: &str, value: Value, line: String| report.add(key, value, line);
    let root = std::env::temp_dir();
    let null = Plan::parse(r#"{"0": {"tasks": {"null": {}}}}"#, "<bench>", root.clone())
        .map_err(|e| e.to_string())?;

    // Null round trip, next to the floor.
    let mut samples = Vec::with_capacity(sizes.null_rounds);
    for _ in 0..sizes.null_rounds {
        let start = Instant::now();
        transform.execute(&null).map_err(|e| e.to_string())?;
        samples.push(start.elapsed());
    }
    let (p50, p99) = percentiles(&mut samples);
    let floor = raw_floor(sizes.null_rounds, 160)?;
    let (f50, f99) = (floor.0 * 1e6, floor.1 * 1e6);
    let (p50, p99) = (p50 * 1e6, p99 * 1e6);
    note(
        "null_p50_us",
        json!(p50),
        row("null job round trip p50 (us)", p50, f50),
    );
    note(
        "null_p99_us",
        json!(p99),
        row("null job round trip p99 (us)", p99, f99),
    );
    note("floor_p50_us", json!(f50), String::new());
    note("floor_p99_us", json!(f99), String::new());

    // Installed tasks: a Python task's round trip next to the null job's,
    // and a numpy function through rtl next to it in one Python process.
    match external(transform, sizes, config.task_workers.max(1), tasks) {
        Ok(External {
            null_p50,
            features,
            python,
        }) => {
            note(
                "external_null_p50_us",
                json!(null_p50),
                row(
                    "installed Python task, 1k rows, round trip p50 vs null job (us)",
                    null_p50,
                    p50,
                ),
            );
            note(
                "external_1m_ms",
                json!(features),
                row(
                    "numpy function, 1m rows, as an installed task vs in Python (ms)",
                    features,
                    python,
                ),
            );
            note("external_1m_python_ms", json!(python), String::new());
        }
        Err(why) => note(
            "external_not_measured",
            json!(why),
            format!("installed tasks: not measured, {why}"),
        ),
    }

    // Throughput: 1 and 4 blocking clients, 4 clients with 16 in flight.
    let one = throughput(transform, &null, 1, 1, sizes.jobs / 4)?;
    let blocking = throughput(transform, &null, 4, 1, sizes.jobs)?;
    let pipelined = throughput(transform, &null, 4, 16, sizes.jobs)?;
    note(
        "jobs_per_s_one_client",
        json!(one),
        row("jobs/s, 1 blocking client", one, f64::NAN),
    );
    note(
        "jobs_per_s_blocking",
        json!(blocking),
        row("jobs/s, 4 blocking clients", blocking, f64::NAN),
    );
    note(
        "jobs_per_s_pipelined",
        json!(pipelined),
        row("jobs/s, 4 clients x 16 in flight", pipelined, f64::NAN),
    );

    // Many quick tasks with their progress: each task's two messages
    // should cost about what a null job's round trip does, or less.
    let tasks = 500;
    let many = Plan::parse(
        &format!(
            r#"{{"0": {{"tasks": [{}]}}}}"#,
            vec![r#"{"null": {}}"#; tasks].join(", ")
        ),
        "<bench>",
        root.clone(),
    )
    .map_err(|e| e.to_string())?;
    let mut events = 0;
    let start = Instant::now();
    transform
        .execute_with(&many, None, &mut |_| events += 1)
        .map_err(|e| e.to_string())?;
    let per_task = start.elapsed().as_secs_f64() * 1e6 / tasks as f64;
    note(
        "us_per_quick_task",
        json!(per_task),
        row(
            &format!("{tasks} quick tasks with progress ({events} events), per task vs a null job p50 (us)"),
            per_task,
            p50,
        ),
    );

    // A 16 MB table through the null task and back.
    let rows16 = 16 * 1024 * 1024 / 8;
    let sixteen = number_table(&[("x", rows16)], |i| i as f64);
    let mut samples = Vec::with_capacity(sizes.move_rounds);
    for round in 0..=sizes.move_rounds {
        let input = sixteen.clone();
        let start = Instant::now();
        let out = transform
            .execute_with(&null, Some(input), &mut |_| {})
            .map_err(|e| e.to_string())?;
        if round > 0 {
            samples.push(start.elapsed());
        }
        if out.rows() != rows16 {
            return Err(format!("the 16 MB job came back with {} rows", out.rows()));
        }
    }
    let move16 = percentiles(&mut samples).0 * 1e3;
    let move_floor = raw_floor(sizes.move_rounds, 16 << 20)?.0 * 1e3;
    note(
        "move16_ms",
        json!(move16),
        row(
            if options.inline {
                "16 MB round trip p50, inline (ms)"
            } else {
                "16 MB round trip p50 (ms)"
            },
            move16,
            move_floor,
        ),
    );
    note("move16_floor_ms", json!(move_floor), String::new());

    // The original's example pipeline, through the relay and in-process.
    let pipeline = pipeline_plan(&root)?;
    let mut per_row = Map::new();
    let mut inproc_ms = Vec::new();
    for rows in [10_000usize, 100_000, 1_000_000, 10_000_000] {
        let input = metrics_table(rows);
        let mut daemon = Vec::new();
        let mut inproc = Vec::new();
        // Two untimed runs: the first job of a size on a fresh cache grows
        // the LMDB map, and the second may still.
        for round in 0..sizes.pipeline_rounds + 2 {
            let copy = input.clone();
            let start = Instant::now();
            transform
                .execute_with(&pipeline, Some(copy), &mut |_| {})
                .map_err(|e| e.to_string())?;
            let through_relay = start.elapsed();
            let copy = input.clone();
            let ctx = Context::new(&root);
            let start = Instant::now();
            rtl_tasks::run_stage(0, &pipeline.stages[0].tasks, copy, &ctx, &mut |_| {})
                .map_err(|e| e.to_string())?;
            if round >= 2 {
                daemon.push(through_relay);
                inproc.push(start.elapsed());
            }
        }
        let (d, i) = (
            percentiles(&mut daemon).0 * 1e3,
            percentiles(&mut inproc).0 * 1e3,
        );
        per_row.insert(rows.to_string(), json!(d * 1e6 / rows as f64));
        let label = match rows {
            1_000_000 => Some("1m"),
            10_000_000 => Some("10m"),
            _ => None,
        };
        if let Some(label) = label {
            inproc_ms.push((rows, label, i));
            note(
                &format!("pipeline_{label}_daemon_ms"),
                json!(d),
                row(
                    &format!("pipeline, {label} rows, through the relay vs in-process (ms)"),
                    d,
                    i,
                ),
            );
            note(
                &format!("pipeline_{label}_inproc_ms"),
                json!(i),
                String::new(),
            );
        }
        note(
            &format!("ns_per_row_{rows}"),
            json!(d * 1e6 / rows as f64),
            row(
                &format!("pipeline ns per row at {rows} rows"),
                d * 1e6 / rows as f64,
                f64::NAN,
            ),
        );
    }
    // The same pipeline in numpy, next to the in-process figures.
    let numpy = numpy_pipeline(sizes.pipeline_rounds, &inproc_ms);
    for (rows, label, i) in &inproc_ms {
        let key = format!("pipeline_{label}_numpy_ms");
        match &numpy {
            Ok(times) => {
                let n = times.get(&rows.to_string()).and_then(Value::as_f64);
                note(
                    &key,
                    json!(n),
                    row(
                        &format!("pipeline, {label} rows, in-process vs numpy (ms)"),
                        *i,
                        n.unwrap_or(f64::NAN),
                    ),
                );
            }
            Err(why) => note(
                &key,
                Value::Null,
                format!("pipeline, {label} rows, in-process vs numpy: not measured, {why}"),
            ),
        }
    }
    // A diamond over 10M rows: the source fans out to two branches of
    // row-local tasks, joined back on a key.
    let graph = graph_plan(&root)?;
    let input = keyed(metrics_table(10_000_000));
    let (mut daemon, mut inproc) = (Vec::new(), Vec::new());
    for round in 0..sizes.pipeline_rounds + 2 {
        let copy = input.clone();
        let start = Instant::now();
        transform
            .execute_with(&graph, Some(copy), &mut |_| {})
            .map_err(|e| e.to_string())?;
        let through_relay = start.elapsed();
        let copy = input.clone();
        let start = Instant::now();
        run_in_process(&graph, copy)?;
        if round >= 2 {
            daemon.push(through_relay);
            inproc.push(start.elapsed());
        }
    }
    let (d, i) = (
        percentiles(&mut daemon).0 * 1e3,
        percentiles(&mut inproc).0 * 1e3,
    );
    note(
        "graph_10m_daemon_ms",
        json!(d),
        row(
            "graph (a diamond with a join), 10m rows, relay vs in-process (ms)",
            d,
            i,
        ),
    );
    note("graph_10m_inproc_ms", json!(i), String::new());
    let Report { mut figures, lines } = report;
    figures.retain(|k, _| !k.starts_with("ns_per_row_"));
    figures.insert("ns_per_row".into(), Value::Object(per_row));
    figures.insert(
        "cluster".into(),
        json!(if options.connect {
            "daemon"
        } else {
            "in-process, TCP loopback"
        }),
    );
    figures.insert("task_nodes".into(), json!(config.task_workers.max(1)));
    figures.insert("inline".into(), json!(options.inline));
    if options.json {
        println!("{}", Value::Object(figures));
    } else {
        println!(
            "rtl bench ({}, {} task node(s){}{})",
            if options.connect {
                "the running daemon"
            } else {
                "its own relay and nodes in this process, TCP loopback"
            },
            config.task_workers.max(1),
            if options.inline {
                ", tables inline"
            } else {
                ""
            },
            if options.quick { ", quick" } else { "" }
        );
        println!(
            "{:<58} {:>12} {:>12} {:>8}",
            "figure", "rtl", "floor", "ratio"
        );
        for line in lines {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// rtl bench's installed tasks, as `install_bench_tasks` writes them.
const BENCH_TASKS: [(&str, &str); 4] = [
    (
        "bench_echo.toml",
        include_str!("../../benches/tasks/bench_echo.toml"),
    ),
    (
        "bench_echo.py",
        include_str!("../../benches/tasks/bench_echo.py"),
    ),
    (
        "bench_features.toml",
        include_str!("../../benches/tasks/bench_features.toml"),
    ),
    (
        "bench_features.py",
        include_str!("../../benches/tasks/bench_features.py"),
    ),
];

/// Puts rtl bench's tasks into `folder`, for its own nodes to find.
fn install_bench_tasks(folder: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(folder)?;
    for (name, text) in BENCH_TASKS {
        std::fs::write(folder.join(name), text)?;
    }
    Ok(())
}

/// The installed tasks' figures.
struct External {
    /// Round trip of a 1k-row table through a Python task, p50 (us).
    null_p50: f64,
    /// The numpy function over 1M rows through rtl, reading them from an
    /// .npz file (median ms).
    features: f64,
    /// The same in one Python process, reading its input from .npy
    /// (median ms).
    python: f64,
}

fn external(
    transform: &mut Transform,
    sizes: &Sizes,
    nodes: usize,
    folder: &Result<std::path::PathBuf, String>,
) -> Result<External, String> {
    let folder = folder.as_ref().map_err(Clone::clone)?;
    let root = std::env::temp_dir();
    let data = root.join(format!("rtl-bench-{}.npz", std::process::id()));
    let outcome = external_runs(transform, sizes, nodes, folder, &data);
    let _ = std::fs::remove_file(&data);
    outcome
}

/// [`external`], with the 1M-row input in `data`, an .npz file both sides
/// read: rtl's job opens it on a node, the Python process with np.load.
fn external_runs(
    transform: &mut Transform,
    sizes: &Sizes,
    nodes: usize,
    folder: &std::path::Path,
    data: &std::path::Path,
) -> Result<External, String> {
    let root = std::env::temp_dir();
    let plan = |job: String| Plan::parse(&job, "<bench>", root.clone()).map_err(|e| e.to_string());
    let echo = plan(r#"{"0": {"tasks": {"bench_echo": {}}}}"#.into())?;
    let (Some(dir), Some(name)) = (data.parent(), data.file_stem()) else {
        return Err(format!("{} is not a file's path", data.display()));
    };
    let open = json!({"path": dir.display().to_string(), "filename": name.to_string_lossy(), "extension": "npz"});
    let features = plan(format!(
        r#"{{"0": {{"tasks": {{"open_array": {open}}}}}, "1": {{"tasks": {{"bench_features": {{}}}}}}}}"#
    ))?;
    rtl_tasks::formats::write(
        &metrics_table(1_000_000),
        &data.to_path_buf(),
        &Default::default(),
    )?;
    // Untimed first: one call per node starts its program (a program is
    // started once and kept warm).
    let warm = nodes + 1;
    let small = number_table(&[("x", 1000)], |i| i as f64);
    let mut samples = Vec::new();
    for round in 0..sizes.null_rounds / 5 + warm {
        let start = Instant::now();
        transform
            .execute_with(&echo, Some(small.clone()), &mut |_| {})
            .map_err(|e| e.to_string())?;
        if round >= warm {
            samples.push(start.elapsed());
        }
    }
    let null_p50 = percentiles(&mut samples).0 * 1e6;
    // A job of about a tenth of a second: enough runs for the medians to
    // hold still on a shared machine, each followed by a run of the
    // Python reference, so that both see the same moments of it.
    let mut python = PythonReference::start(folder, data)?;
    python.round()?;
    let (mut samples, mut reference) = (Vec::new(), Vec::new());
    for round in 0..2 * sizes.pipeline_rounds + 3 + warm {
        let start = Instant::now();
        transform.execute(&features).map_err(|e| e.to_string())?;
        if round >= warm {
            samples.push(start.elapsed());
            reference.push(Duration::from_secs_f64(python.round()? / 1e3));
        }
    }
    python.finish();
    Ok(External {
        null_p50,
        features: percentiles(&mut samples).0 * 1e3,
        python: percentiles(&mut reference).0 * 1e3,
    })
}

/// `benches/external_python.py` running beside the bench, one round of
/// the Python reference per line it is sent.
struct PythonReference {
    child: std::process::Child,
    rounds: std::io::BufReader<std::process::ChildStdout>,
}

impl PythonReference {
    fn start(folder: &std::path::Path, data: &std::path::Path) -> Result<PythonReference, String> {
        use std::process::Stdio;
        let mut child = std::process::Command::new("python3")
            .arg("-c")
            .arg(include_str!("../../benches/external_python.py"))
            .arg(folder)
            .arg(data)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("python3 did not start ({e})"))?;
        let Some(stdout) = child.stdout.take() else {
            return Err("python3 has no stdout".into());
        };
        Ok(PythonReference {
            child,
            rounds: std::io::BufReader::new(stdout),
        })
    }

    /// Runs one round; its milliseconds.
    fn round(&mut self) -> Result<f64, String> {
        use std::io::{BufRead, Write};
        let mut line = String::new();
        let asked = self
            .child
            .stdin
            .as_mut()
            .map(|stdin| stdin.write_all(b"\n").and_then(|_| stdin.flush()));
        if matches!(asked, Some(Ok(()))) && self.rounds.read_line(&mut line).is_ok() {
            if let Ok(ms) = line.trim().parse() {
                return Ok(ms);
            }
        }
        Err(format!("python3 with numpy failed: {}", self.failure()))
    }

    /// The last line python3 wrote to stderr, once it has ended.
    fn failure(&mut self) -> String {
        let _ = self.child.kill();
        let mut said = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut said);
        }
        let _ = self.child.wait();
        said.lines().last().unwrap_or("no message").to_string()
    }

    /// Closes its stdin, which ends it, and waits for it.
    fn finish(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The figures by key (for --json) and the table's lines, in order.
#[derive(Default)]
struct Report {
    figures: Map<String, Value>,
    lines: Vec<String>,
}

impl Report {
    fn add(&mut self, key: &str, value: Value, line: String) {
        self.figures.insert(key.to_string(), value);
        if !line.is_empty() {
            self.lines.push(line);
        }
    }
}

fn row(what: &str, value: f64, reference: f64) -> String {
    if reference.is_nan() {
        format!("{what:<58} {value:>12.1}")
    } else {
        format!(
            "{what:<58} {value:>12.1} {reference:>12.1} {:>8.2}",
            value / reference
        )
    }
}

/// (p50, p99) in seconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64();
    (at(0.5), at(0.99))
}

/// Jobs per second with `clients` connections, each keeping `depth` jobs
/// in flight, `total` jobs in all.
fn throughput(
    transform: &Transform,
    plan: &Plan,
    clients: usize,
    depth: usize,
    total: usize,
) -> Result<f64, String> {
    let siblings = (0..clients)
        .map(|_| transform.sibling().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let per = total / clients;
    let start = Instant::now();
    let outcomes: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let threads: Vec<_> = siblings
            .into_iter()
            .map(|mut t| {
                scope.spawn(move || {
                    let mut out: VecDeque<JobHandle> = VecDeque::new();
                    for _ in 0..per {
                        if out.len() == depth {
                            let h = out.pop_front().ok_or("nothing in flight")?;
                            h.wait(&mut t).map_err(|e| e.to_string())?;
                        }
                        out.push_back(t.submit(plan).map_err(|e| e.to_string())?);
                    }
                    while let Some(h) = out.pop_front() {
                        h.wait(&mut t).map_err(|e| e.to_string())?;
                    }
                    Ok(())
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err("a client thread panicked".into()))
            })
            .collect()
    });
    outcomes.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok((per * clients) as f64 / start.elapsed().as_secs_f64())
}

/// The original raspi-rtl example pipeline: filter, add, divide, normalize
/// Squash, subtract, average.
fn pipeline_plan(root: &std::path::Path) -> Result<Plan, String> {
    Plan::parse(
        r#"{"0": {"tasks": [
            {"filter": {"operations": [{"column": "cpu", "method": "ge", "value": 20}]}},
            {"add": {"operations": [{"a": "mem", "b": "disk", "column": "io"}]}},
            {"divide": {"operations": [{"a": "io", "b": "cpu", "column": "io_per_cpu"}]}},
            {"normalize": {"model": "Squash", "columns": ["io_per_cpu"]}},
            {"subtract": {"operations": [{"a": "io_per_cpuNormal", "b": 50, "column": "centered"}]}},
            {"average": {"operations": [{"a": "centered", "column": "mean_centered"}]}}
        ]}}"#,
        "<bench>",
        root.to_path_buf(),
    )
    .map_err(|e| e.to_string())
}

/// A diamond: `load` keeps the rows the pipeline keeps (cpu >= 20) for
/// two branches of row-local tasks, each keeping the key, and `both`
/// joins them back on it.
fn graph_plan(root: &std::path::Path) -> Result<Plan, String> {
    Plan::parse(
        r#"{"stages": {
            "load": {"tasks": {"filter": {"operations": [{"column": "cpu", "method": "ge", "value": 20}]}}},
            "io": {"inputs": "load", "tasks": [
                {"add": {"operations": [{"a": "mem", "b": "disk", "column": "io"}]}},
                {"select": {"columns": ["id", "io"]}}]},
            "ratio": {"inputs": "load", "tasks": [
                {"divide": {"operations": [{"a": "mem", "b": "cpu", "column": "ratio"}]}},
                {"select": {"columns": ["id", "ratio"]}}]},
            "both": {"inputs": ["io", "ratio"], "tasks": [{"join": {"on": "id"}}]}
        }}"#,
        "<bench>",
        root.to_path_buf(),
    )
    .map_err(|e| e.to_string())
}

/// `table` with an int64 key column `id` first, 0 to rows - 1.
fn keyed(table: Table) -> Table {
    let ids = Column::Int64((0..table.rows() as i64).collect());
    let columns = std::iter::once(("id".to_string(), ids))
        .chain(table.into_columns())
        .collect();
    Table::from_columns(columns).unwrap_or_default()
}

/// `plan` run on `input` in this thread, stage after stage in an order
/// that puts each after its inputs; a stage's table is copied only for
/// consumers before its last. The results, in stage order.
fn run_in_process(plan: &Plan, input: Table) -> Result<Vec<Table>, String> {
    let graph = plan.graph().map_err(|e| e.to_string())?;
    let ctx = Context::new(&plan.base_dir);
    let mut after: Vec<Option<Table>> = vec![None; plan.stages.len()];
    let mut readers: Vec<usize> = (0..plan.stages.len())
        .map(|s| graph.consumers(s).len())
        .collect();
    let mut take = |s: usize, after: &mut Vec<Option<Table>>| {
        readers[s] -= 1;
        if readers[s] == 0 {
            after[s].take().unwrap_or_default()
        } else {
            after[s].clone().unwrap_or_default()
        }
    };
    // Every source reads the input: the last one takes it.
    let mut sources = (0..plan.stages.len())
        .filter(|&s| graph.inputs(s).is_empty())
        .count();
    let mut input = Some(input);
    for &s in graph.order() {
        let calls = &plan.stages[s].tasks;
        let table = match graph.inputs(s) {
            [] => {
                sources -= 1;
                let table = match sources {
                    0 => input.take(),
                    _ => input.clone(),
                };
                rtl_tasks::run_stage(s, calls, table.unwrap_or_default(), &ctx, &mut |_| {})
            }
            [one] => rtl_tasks::run_stage(s, calls, take(*one, &mut after), &ctx, &mut |_| {}),
            several => {
                let inputs = several
                    .iter()
                    .map(|&i| rtl_tasks::Input {
                        stage: plan.stage_name(i),
                        table: take(i, &mut after),
                    })
                    .collect();
                rtl_tasks::run_combining(s, &calls[0], inputs, &ctx, &mut |_| {})
                    .and_then(|t| rtl_tasks::run_stage(s, &calls[1..], t, &ctx, &mut |_| {}))
            }
        };
        after[s] = Some(table.map_err(|e| e.to_string())?);
    }
    Ok(graph
        .results()
        .into_iter()
        .filter_map(|s| after[s].take())
        .collect())
}

/// The example pipeline in numpy (benches/numpy_pipeline.py) at the row
/// counts of `sizes`: median milliseconds by row count, or why it could
/// not run.
fn numpy_pipeline(
    rounds: usize,
    sizes: &[(usize, &str, f64)],
) -> Result<Map<String, Value>, String> {
    let mut python = std::process::Command::new("python3");
    python
        .arg("-c")
        .arg(include_str!("../../benches/numpy_pipeline.py"))
        .arg(rounds.to_string())
        .args(sizes.iter().map(|(rows, _, _)| rows.to_string()));
    let out = python
        .output()
        .map_err(|e| format!("python3 did not start ({e})"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("no message");
        return Err(format!("python3 with numpy failed: {last}"));
    }
    match serde_json::from_slice(&out.stdout) {
        Ok(Value::Object(times)) => Ok(times),
        _ => Err("the numpy script printed no figures".into()),
    }
}

/// `rows` rows of cpu, mem and disk readings.
fn metrics_table(rows: usize) -> Table {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let columns = ["cpu", "mem", "disk"]
        .iter()
        .zip([100.0, 4000.0, 800.0])
        .map(|(name, scale)| {
            let values: Vec<f64> = (0..rows).map(|_| next() * scale).collect();
            (name.to_string(), Column::Float64(values.into()))
        })
        .collect();
    Table::from_columns(columns).unwrap_or_default()
}

fn number_table(columns: &[(&str, usize)], value: impl Fn(usize) -> f64) -> Table {
    let columns = columns
        .iter()
        .map(|(name, rows)| {
            let values: Vec<f64> = (0..*rows).map(&value).collect();
            (name.to_string(), Column::Float64(values.into()))
        })
        .collect();
    Table::from_columns(columns).unwrap_or_default()
}

/// The floor: `rounds` messages of an id frame and `payload` bytes through
/// a forwarding relay thread and an echoing node thread over TCP loopback,
/// after one untimed; (p50, p99) in seconds.
fn raw_floor(rounds: usize, payload: usize) -> Result<(f64, f64), String> {
    let fail = |e: zmq::Error| format!("floor: {e}");
    let ctx = zmq::Context::new();
    let bind = |kind| -> Result<(zmq::Socket, String), String> {
        let s = ctx.socket(kind).map_err(fail)?;
        s.bind("tcp://127.0.0.1:*").map_err(fail)?;
        let at = s
            .get_last_endpoint()
            .map_err(fail)?
            .map_err(|_| "floor: no endpoint".to_string())?;
        Ok((s, at))
    };
    let (clients, clients_at) = bind(zmq::ROUTER)?;
    let (nodes, nodes_at) = bind(zmq::ROUTER)?;
    let node = ctx.socket(zmq::DEALER).map_err(fail)?;
    node.set_identity(b"node").map_err(fail)?;
    node.connect(&nodes_at).map_err(fail)?;
    node.send(&b"hello"[..], 0).map_err(fail)?;
    nodes.recv_multipart(0).map_err(fail)?;
    let client = ctx.socket(zmq::DEALER).map_err(fail)?;
    client.connect(&clients_at).map_err(fail)?;
    let body = vec![7u8; payload];
    std::thread::scope(|scope| {
        scope.spawn(move || -> Result<(), zmq::Error> {
            for _ in 0..=rounds {
                let mut parts = clients.recv_multipart(0)?;
                let from = parts.remove(0);
                nodes.send(&b"node"[..], zmq::SNDMORE)?;
                nodes.send_multipart(parts, 0)?;
                let mut parts = nodes.recv_multipart(0)?;
                parts.remove(0);
                clients.send(from, zmq::SNDMORE)?;
                clients.send_multipart(parts, 0)?;
            }
            Ok(())
        });
        scope.spawn(move || -> Result<(), zmq::Error> {
            for _ in 0..=rounds {
                let parts = node.recv_multipart(0)?;
                node.send_multipart(parts, 0)?;
            }
            Ok(())
        });
        let mut samples = Vec::with_capacity(rounds);
        for round in 0..=rounds {
            let start = Instant::now();
            client.send(&[7u8; 16][..], zmq::SNDMORE).map_err(fail)?;
            client.send(&body[..], 0).map_err(fail)?;
            client.recv_multipart(0).map_err(fail)?;
            if round > 0 {
                samples.push(start.elapsed());
            }
        }
        Ok(percentiles(&mut samples))
    })
}
