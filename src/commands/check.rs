//! `rtl check FILE...`: parse, validate and schema-check jobs without
//! running them; every problem in every file, then exit 1 if there was one.
//! Kwargs that have no effect in rtl are warned about, and are no problem.

use rtl_config::Config;
use rtl_dsl::{Plan, Problem};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(
    config: &Config,
    files: &[PathBuf],
    params: &[(String, String)],
    as_json: bool,
) -> Result<ExitCode, String> {
    let mut all = Vec::new();
    let mut listed = Vec::new();
    for file in files {
        let (problems, warnings) = check_file(config, file, params);
        if as_json {
            listed.extend(problems.iter().map(|p| entry(p, "error")));
            listed.extend(warnings.iter().map(|w| entry(w, "warning")));
        } else {
            if problems.is_empty() {
                println!("{}: ok", file.display());
            }
            for p in &problems {
                println!("{p}");
            }
            for w in &warnings {
                println!("warning: {w}");
            }
        }
        all.extend(problems);
    }
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&listed).map_err(|e| e.to_string())?
        );
    } else if !all.is_empty() {
        println!("{} problem(s)", all.len());
    }
    Ok(if all.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A problem or warning for `--json`: its fields and its severity.
fn entry(problem: &Problem, severity: &str) -> serde_json::Value {
    let mut value = serde_json::to_value(problem).unwrap_or_default();
    value["severity"] = severity.into();
    value
}

/// Every problem in one job file (its syntax, then its tasks and columns),
/// and the warnings about it. Installed tasks run on the samples.
fn check_file(
    config: &Config,
    file: &Path,
    params: &[(String, String)],
) -> (Vec<Problem>, Vec<Problem>) {
    match Plan::from_file_with(file, params) {
        Ok(plan) => {
            let programs = rtl_client::known_tasks(config, &[&plan]);
            (
                rtl_tasks::check(&plan, Some(&programs)),
                rtl_tasks::warnings(&plan),
            )
        }
        Err(problems) => (problems.0, Vec::new()),
    }
}
