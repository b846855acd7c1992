//! `rtl run FILE`: submit a job, print progress in the original's style
//! (`Running: <task>`, `Completed: <ms> <task>`), write the result and,
//! with `--plots`, the charts.

use crate::supervisor::{live, Service};
use rtl_client::{Error, Transform};
use rtl_config::Config;
use rtl_dsl::Plan;
use rtl_tasks::formats::{self, CsvOptions, Format};
use rtl_tasks::{Column, Table};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Rows shown in the preview.
const PREVIEW_ROWS: usize = 5;

/// Prints a line of the run's report: text from the job and its nodes
/// made printable (no terminal escapes), and a stdout that has closed
/// (`rtl run ... | head`) ignored, so the run goes on to write its result.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        let _ = writeln!(std::io::stdout(), "{}", rtl_log::printable(&line));
    }};
}

/// The formats `--out DIR` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    /// Comma-separated text, with a .meta of column types beside it.
    Csv,
    /// numpy's savez.
    Npz,
    /// An object of column arrays.
    Json,
    /// raspi-rtl's record array, with its .meta.
    Dat,
}

impl OutFormat {
    fn extension(self) -> &'static str {
        match self {
            OutFormat::Csv => "csv",
            OutFormat::Npz => "npz",
            OutFormat::Json => "json",
            OutFormat::Dat => "dat",
        }
    }
}

/// Where `--out` puts each of a job's results (named by stage): one file,
/// a folder of `<stage>.<format>` files, or a pattern with `{stage}`.
fn targets(
    out: &Path,
    format: Option<OutFormat>,
    results: &[String],
) -> Result<Vec<(String, PathBuf)>, String> {
    let text = out.to_string_lossy();
    let folder = text.ends_with('/') || out.is_dir();
    let paths: Vec<(String, PathBuf)> = if text.contains("{stage}") {
        if format.is_some() {
            return Err(format!("--out {text}: the pattern's extension gives the format; --format goes with --out DIR"));
        }
        results
            .iter()
            .map(|r| (r.clone(), PathBuf::from(text.replace("{stage}", r))))
            .collect()
    } else if folder {
        let extension = format.unwrap_or(OutFormat::Csv).extension();
        results
            .iter()
            .map(|r| (r.clone(), out.join(format!("{r}.{extension}"))))
            .collect()
    } else {
        if format.is_some() {
            return Err(format!(
                "--out {text}: the file's extension gives its format; --format goes with --out DIR"
            ));
        }
        if results.len() > 1 {
            return Err(format!(
                "--out {text}: the job has {} results ({}); give a folder (--out DIR/) or a pattern with {{stage}} (--out 'out/{{stage}}.csv')",
                results.len(),
                results.join(", ")
            ));
        }
        results
            .iter()
            .map(|r| (r.clone(), out.to_path_buf()))
            .collect()
    };
    for (_, path) in &paths {
        if !Format::of(path).is_ok_and(Format::writable) {
            let named = match path.extension() {
                Some(e) => format!("a .{} file", e.to_string_lossy()),
                None => "a file without an extension".into(),
            };
            return Err(format!(
                "--out {}: rtl writes .csv, .dat, .npz and .json files, and this is {named}",
                path.display()
            ));
        }
        // Settled before the job runs: a result with nowhere to go is lost.
        if let Some(file) = path.ancestors().skip(1).find(|a| a.is_file()) {
            return Err(format!(
                "--out {}: {} is a file, not a folder",
                path.display(),
                file.display()
            ));
        }
    }
    Ok(paths)
}

pub fn run(
    config: &Config,
    files: &[PathBuf],
    params: &[(String, String)],
    out: Option<(&Path, Option<OutFormat>)>,
    plots: Option<&Path>,
    connect: bool,
) -> Result<ExitCode, String> {
    // A reader of the report that goes away must not end the run before
    // it writes --out and --plots: writes to a closed pipe fail instead.
    // SAFETY: signal(2) only sets this process's action for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    if out.is_some() && files.len() > 1 {
        return Err("--out takes one job file; give each job a `write` task instead".into());
    }
    // Every job is checked before any is sent: a mistake in the third file
    // should not surface after the first two have run.
    let parsed: Vec<_> = files
        .iter()
        .map(|file| Plan::from_file_with(file, params))
        .collect();
    let programs = rtl_client::known_tasks(config, &parsed.iter().flatten().collect::<Vec<_>>());
    let mut plans = Vec::with_capacity(files.len());
    let mut problems = Vec::new();
    for plan in parsed {
        match plan {
            Ok(plan) => {
                problems.extend(rtl_tasks::check(&plan, Some(&programs)));
                for warning in rtl_tasks::warnings(&plan) {
                    say!("warning: {warning}");
                }
                plans.push(plan);
            }
            Err(found) => problems.extend(found.0),
        }
    }
    // The programs the check started are not needed for the run.
    drop(programs);
    if !problems.is_empty() {
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(format!(
            "nothing was run; {} problem(s):\n{}",
            problems.len(),
            listed.join("\n")
        ));
    }
    // Where each result goes, settled before anything runs.
    let targets = match (out, plans.first()) {
        (Some((out, format)), Some(plan)) => {
            let graph = plan.graph().map_err(|e| e.to_string())?;
            let results: Vec<String> = graph
                .results()
                .iter()
                .map(|&s| plan.stage_name(s))
                .collect();
            targets(out, format, &results)?
        }
        _ => Vec::new(),
    };
    let mut transform = match connect_to_daemon(config) {
        Ok(t) => t,
        Err(Error::NoDaemon { endpoint, reason }) => match live(config, Service::Relay) {
            Some(pid) => {
                return Err(format!(
                    "the relay of {} (pid {pid}) runs but nothing listens at {endpoint} ({reason}) after {} ms (job_timeout_ms); its log is {}",
                    config.home.display(),
                    config.job_timeout().as_millis(),
                    config.log_dir().join("relay.log").display()
                ))
            }
            None if !connect => {
                eprintln!("rtl: no daemon answers at {endpoint} ({reason}); running the job embedded in this process");
                Transform::embedded(config).map_err(|e| e.to_string())?
            }
            None => return Err(Error::NoDaemon { endpoint, reason }.to_string()),
        },
        Err(e) => return Err(e.to_string()),
    };
    if plots.is_some() {
        transform = transform.with_charts();
    }
    for (file, plan) in files.iter().zip(&plans) {
        if files.len() > 1 {
            say!("== {}", file.display());
        }
        let started = Instant::now();
        let failed = |e: Error| format!("job {} failed: {e}", file.display());
        let handle = transform.start_with(plan, None).map_err(failed)?;
        // The id ties the run to its log lines and to its charts on the
        // plot page, which shows its first 8 digits as "run 1a2b3c4d".
        say!("Job: {}", handle.id());
        // Stages run side by side in a graph: name them with their tasks.
        let named = plan
            .stages
            .iter()
            .any(|s| !s.name.is_empty() || s.inputs.is_some());
        let stage = |event: &rtl_client::ProgressEvent| match named {
            true => format!(" (stage {})", plan.stage_name(event.stage as usize)),
            false => String::new(),
        };
        let results = transform
            .follow_all(handle, &mut |event| match (&event.message, event.ms) {
                (Some(message), _) => say!("{}{}: {message}", event.task, stage(event)),
                (None, None) => say!("Running: {}{}", event.task, stage(event)),
                (None, Some(ms)) => say!("Completed: {ms:.3} ms {}{}", event.task, stage(event)),
            })
            .map_err(failed)?;
        say!("Elapsed: {:.3} ms", started.elapsed().as_secs_f64() * 1e3);
        for (stage, path) in &targets {
            let Some(table) = results.get(stage) else {
                continue;
            };
            write_result(table, path)?;
        }
        if let Some(dir) = plots {
            for (job, chart) in transform.take_charts() {
                let entry = rtl_plot::gallery::store(dir, &chart, job, config.plot_history)?;
                say!(
                    "Drew chart {} to {}",
                    entry.name,
                    dir.join(format!("{}.svg", entry.file)).display()
                );
            }
        }
        let several = results.len() > 1;
        for (stage, table) in results.iter() {
            print_preview(several.then_some(stage), table);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes one result and says where.
fn write_result(table: &Table, path: &Path) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            format!(
                "--out: cannot make the folder {}: {}",
                parent.display(),
                rtl_dsl::words::io(&e)
            )
        })?;
    }
    formats::write(table, &path.to_path_buf(), &CsvOptions::default())?;
    let rows = match table.rows() {
        1 => "1 row".to_string(),
        n => format!("{n} rows"),
    };
    match Format::of(path) {
        Ok(Format::Csv) => say!(
            "Wrote {rows} to {} (column types in {})",
            path.display(),
            path.with_extension("meta").display()
        ),
        _ => say!("Wrote {rows} to {}", path.display()),
    }
    Ok(())
}

/// Connects to the daemon of this home. When nothing listens yet but its
/// relay process is alive (starting up), waits for it as long as
/// `job_timeout_ms`: a daemon that is there is never replaced by an
/// embedded run.
fn connect_to_daemon(config: &Config) -> Result<Transform, Error> {
    let deadline = Instant::now() + config.job_timeout();
    loop {
        match Transform::connect(config) {
            Err(Error::NoDaemon { .. })
                if Instant::now() < deadline && live(config, Service::Relay).is_some() =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            outcome => return outcome,
        }
    }
}

/// A glance at a result: its size and first rows; `stage` names it when
/// the job has several.
fn print_preview(stage: Option<&str>, table: &Table) {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    say!(
        "Result{}: {} x {}",
        stage.map_or(String::new(), |s| format!(" {s}")),
        plural(table.rows(), "row", "rows"),
        plural(table.width(), "column", "columns")
    );
    if table.width() == 0 {
        return;
    }
    let shown = table.rows().min(PREVIEW_ROWS);
    let columns: Vec<Vec<String>> = table
        .iter()
        .map(|(name, column)| {
            std::iter::once(format!("{name} ({})", column.dtype()))
                .chain((0..shown).map(|row| cell(column, row)))
                .map(|text| shortened(&text))
                .collect()
        })
        .collect();
    for row in 0..=shown {
        let line: Vec<String> = columns
            .iter()
            .map(|c| {
                let width = c.iter().map(|v| v.chars().count()).max().unwrap_or(0);
                format!("{:>width$}", c[row])
            })
            .collect();
        say!("  {}", line.join("  "));
    }
    if table.rows() > shown {
        say!(
            "  ... {}",
            plural(table.rows() - shown, "more row", "more rows")
        );
    }
}

/// Characters of a cell or name the preview shows at most: a preview is
/// for a glance, and a long text (or a line break) would wreck its columns.
const PREVIEW_CHARS: usize = 40;

/// `text` on one line, cut to [`PREVIEW_CHARS`] with an ellipsis.
fn shortened(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= PREVIEW_CHARS {
        return one_line;
    }
    let kept: String = one_line.chars().take(PREVIEW_CHARS - 1).collect();
    format!("{kept}…")
}

fn cell(column: &Column, row: usize) -> String {
    match column {
        Column::Int64(a) => a[row].to_string(),
        Column::Float64(a) => format!("{:?}", a[row]),
        Column::Bool(a) => a[row].to_string(),
        Column::Utf8(a) => a[row].clone(),
    }
}
