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

pub fn run(
    config: &Config,
    files: &[PathBuf],
    params: &[(String, String)],
    out: Option<&Path>,
    plots: Option<&Path>,
    connect: bool,
) -> Result<ExitCode, String> {
    // A reader of the report that goes away must not end the run before
    // it writes --out and --plots: writes to a closed pipe fail instead.
    // SAFETY: signal(2) only sets this process's action for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    if let Some(out) = out {
        if files.len() > 1 {
            return Err("--out takes one job file; give each job a `write` task instead".into());
        }
        let format = Format::of(out).map_err(|e| format!("--out {e}"))?;
        if !format.writable() {
            return Err(format!(
                "--out {}: rtl cannot write {format:?} files; use .csv, .dat, .npz or .json",
                out.display()
            ));
        }
    }
    // Every job is checked before any is sent: a mistake in the third file
    // should not surface after the first two have run.
    let mut plans = Vec::with_capacity(files.len());
    let mut problems = Vec::new();
    for file in files {
        match Plan::from_file_with(file, params) {
            Ok(plan) => {
                problems.extend(rtl_tasks::check(&plan));
                for warning in rtl_tasks::warnings(&plan) {
                    say!("warning: {warning}");
                }
                plans.push(plan);
            }
            Err(found) => problems.extend(found.0),
        }
    }
    if !problems.is_empty() {
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(format!(
            "nothing was run; {} problem(s):\n{}",
            problems.len(),
            listed.join("\n")
        ));
    }
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
        let table = transform
            .follow(handle, &mut |event| match (&event.message, event.ms) {
                (Some(message), _) => say!("{}: {message}", event.task),
                (None, None) => say!("Running: {}", event.task),
                (None, Some(ms)) => say!("Completed: {ms:.3} ms {}", event.task),
            })
            .map_err(failed)?;
        say!("Elapsed: {:.3} ms", started.elapsed().as_secs_f64() * 1e3);
        if let Some(out) = out {
            formats::write(&table, &out.to_path_buf(), &CsvOptions::default())?;
            let rows = match table.rows() {
                1 => "1 row".to_string(),
                n => format!("{n} rows"),
            };
            match Format::of(out) {
                Ok(Format::Csv) => say!(
                    "Wrote {rows} to {} (column types in {})",
                    out.display(),
                    out.with_extension("meta").display()
                ),
                _ => say!("Wrote {rows} to {}", out.display()),
            }
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
        print_preview(&table);
    }
    Ok(ExitCode::SUCCESS)
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

fn print_preview(table: &Table) {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    say!(
        "Result: {} x {}",
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
