//! One file per subcommand; each takes the loaded settings.

mod bench;
mod check;
mod config;
mod explain;
mod keygen;
mod plots;
pub mod run;
mod serve;
mod start;
mod status;
mod stop;
mod tasks;

use crate::{Cli, Command};
use rtl_config::{Config, Loaded};
use std::process::ExitCode;

/// Loads the settings once and runs the subcommand.
pub fn dispatch(cli: Cli) -> Result<ExitCode, String> {
    if let Command::Serve {
        service,
        settings,
        foreground,
    } = &cli.command
    {
        return serve::run(
            service,
            settings.as_deref(),
            cli.config.as_deref(),
            *foreground,
        );
    }
    let loaded = load(cli.config.as_deref())?;
    let config = &loaded.config;
    match cli.command {
        Command::Start => start::run(config),
        Command::Stop => stop::run(config),
        Command::Restart => {
            stop::run(config)?;
            start::run(config)
        }
        Command::Status { json } => status::run(config, json),
        Command::Tasks { doc } => tasks::run(config, doc.as_deref()),
        Command::Plots => plots::run(config),
        Command::Keygen => keygen::run(config),
        Command::Bench {
            json,
            quick,
            connect,
            inline,
        } => bench::run(
            config,
            &bench::Options {
                json,
                quick,
                connect,
                inline,
            },
        ),
        Command::Run {
            files,
            params,
            out,
            format,
            connect,
            plots,
        } => run::run(
            config,
            &files,
            &params,
            match (out.as_deref(), format) {
                (Some(out), format) => Some((out, format)),
                (None, Some(_)) => {
                    return Err(
                        "--format says how --out DIR/ writes the results; give --out too".into(),
                    )
                }
                (None, None) => None,
            },
            plots.as_deref(),
            connect,
        ),
        Command::Check {
            files,
            params,
            json,
        } => check::run(config, &files, &params, json),
        Command::Explain { file, params, dot } => explain::run(config, &file, &params, dot),
        Command::Node { relay, workers } => {
            crate::supervisor::run_nodes(config, &relay, workers)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config => config::run(&loaded),
        Command::Serve { .. } => unreachable!("handled above"),
    }
}

fn load(explicit: Option<&std::path::Path>) -> Result<Loaded, String> {
    Config::load(explicit, std::env::vars()).map_err(|e| e.to_string())
}
