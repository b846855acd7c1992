//! `rtl serve SERVICE`: the entry point of a daemonized service, started by
//! `rtl start` with the effective settings on its command line.

use crate::supervisor::{self, Service};
use std::path::Path;
use std::process::ExitCode;

pub fn run(
    service: &str,
    settings: Option<&str>,
    config: Option<&Path>,
    foreground: bool,
) -> Result<ExitCode, String> {
    let service = Service::from_name(service).ok_or_else(|| {
        format!("unknown service `{service}`; expected relay, tasknode or plotnode")
    })?;
    let config = match settings {
        Some(text) => toml::from_str(text).map_err(|e| format!("bad --settings: {e}"))?,
        None => super::load(config)?.config,
    };
    supervisor::serve(service, &config, foreground)?;
    Ok(ExitCode::SUCCESS)
}
