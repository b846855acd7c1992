//! `rtl`: the command line of the rtl transport.
//!
//! Each subcommand lives in its own file under `commands/`; this file only
//! parses arguments, loads the settings once and hands them down.

mod commands;
mod supervisor;

// Large columns get huge pages and are reused while warm: see rtl_tasks::alloc.
#[global_allocator]
static ALLOC: rtl_tasks::alloc::ColumnAlloc = rtl_tasks::alloc::ColumnAlloc;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// rtl moves columnar tables through dataflow jobs: a relay daemon splits
/// each job into stages and hands them to a pool of task-node processes.
///
/// Settings come from --config FILE, else $RTL_CONFIG, else
/// $RTL_HOME/rtl.toml, and every key can be overridden with RTL_<KEY>;
/// `rtl config` shows the result.
#[derive(Parser)]
#[command(name = "rtl", version, about, long_about)]
struct Cli {
    /// Settings file (rtl.toml) to read instead of $RTL_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the relay, the task nodes and the plot node in the background.
    Start,
    /// Stop every rtl process of this home (SIGTERM, then SIGKILL after a grace period).
    Stop,
    /// Stop, then start.
    Restart,
    /// Show each rtl process; exits 0 when rtl runs, 3 when it does not.
    Status {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Measure rtl against the floor under it: null-job round trip, jobs
    /// per second (1 and 4 clients, blocking and 16 in flight), a 16 MB
    /// table's round trip, and the original's example pipeline through the
    /// relay and in-process at 10k to 10M rows, and in-process against
    /// numpy (when python3 has numpy); each figure next to its reference
    /// from the same run. Starts its own relay and task nodes in this
    /// process on TCP loopback unless --connect.
    Bench {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Fewer rounds: the whole run in under a minute.
        #[arg(long)]
        quick: bool,
        /// Measure the running daemon instead.
        #[arg(long)]
        connect: bool,
        /// Send tables inside the messages, as to a node on another host,
        /// instead of through the shared cache (with --connect, only the
        /// client's side does).
        #[arg(long)]
        inline: bool,
    },
    /// Write a new cluster secret (mode 0600) to `secret_file` (default
    /// <home>/secret). With it, every client and node must prove it holds
    /// the secret before the relay takes anything from it; copy the file to
    /// every machine of the cluster. Required to listen beyond loopback.
    Keygen,
    /// List the charts the plot node has drawn, newest first, and print
    /// the address of the page that shows them live.
    Plots,
    /// List the tasks a job can use.
    #[command(visible_alias = "plugins")]
    Tasks {
        /// Show one task's kwargs, their types and defaults, and an example job.
        #[arg(long, value_name = "NAME")]
        doc: Option<String>,
    },
    /// Run job files, one after another, and wait for their results.
    ///
    /// Every file is checked first (as `rtl check` does); a job with a
    /// problem is not sent. Uses the running daemon; when none answers, runs
    /// the jobs embedded in this process (and says so), unless --connect is
    /// given.
    Run {
        /// Job files (.json or .toml; `-` reads JSON from stdin).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Give a job parameter a value: `--set day=monday` fills `${day}`.
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Write the result table here (one job only); the format follows the
        /// extension: .csv, .npz, .json or .dat. For a job with several
        /// results (stages no stage takes), give a folder (`--out DIR/`,
        /// each result as DIR/<stage>.csv) or a pattern with {stage}
        /// (`--out 'out/{stage}.npz'`).
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// The format of the files `--out DIR` writes.
        #[arg(long, value_enum, value_name = "FORMAT")]
        format: Option<commands::run::OutFormat>,
        /// Fail instead of running embedded when no daemon answers.
        #[arg(long)]
        connect: bool,
        /// Also draw the jobs' charts into this folder (SVG, PNG and a .json
        /// record each), daemon or embedded.
        #[arg(long, value_name = "DIR")]
        plots: Option<PathBuf>,
    },
    /// Check job files without running them: syntax, tasks, kwargs and the
    /// columns each task will see. Exits 0 when clean, 1 with every problem
    /// listed.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Give a job parameter a value, as `rtl run` does.
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Print the problems as a JSON list of {file, stage, task, field,
        /// line, column, message}.
        #[arg(long)]
        json: bool,
    },
    /// Print a job's plan: stages (and the stages each takes), tasks, the
    /// columns after each task, which stages run at the same time, and how
    /// the relay will hand out each stage.
    Explain {
        file: PathBuf,
        /// Give a job parameter a value, as `rtl run` does.
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Print the stages as a Graphviz graph (`| dot -Tsvg > job.svg`).
        #[arg(long)]
        dot: bool,
    },
    /// Run task nodes in the foreground that join a relay, possibly on
    /// another machine (stop them with Ctrl-C or SIGTERM).
    Node {
        /// The relay's node endpoint, such as tcp://10.0.0.5:19001.
        #[arg(long, value_name = "tcp://HOST:PORT")]
        relay: String,
        /// How many task nodes to run.
        #[arg(long, default_value_t = 1)]
        workers: usize,
    },
    /// Print the effective settings and where each came from.
    Config,
    /// Run one service in this process (used by `rtl start`).
    #[command(hide = true)]
    Serve {
        /// relay, tasknode or plotnode.
        service: String,
        /// The effective settings as TOML, from `rtl start`.
        #[arg(long)]
        settings: Option<String>,
        /// Stay attached to the terminal.
        #[arg(long)]
        foreground: bool,
    },
}

/// `NAME=VALUE` for `--set`.
fn parse_param(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {raw:?}")),
    }
}

fn main() -> ExitCode {
    // Like other command-line tools, end quietly when the reader of our
    // output goes away (`rtl tasks | head`) instead of failing to print.
    #[cfg(unix)]
    // SAFETY: restores the default action for SIGPIPE before any thread
    // starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {}", rtl_log::printable(&message));
            ExitCode::FAILURE
        }
    }
}
