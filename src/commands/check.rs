//! `rtl check FILE...`: parse, validate and schema-check jobs without
//! running them; every problem in every file, then exit 1 if there was one.

use rtl_dsl::{Plan, Problem};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(
    files: &[PathBuf],
    params: &[(String, String)],
    as_json: bool,
) -> Result<ExitCode, String> {
    let mut all = Vec::new();
    for file in files {
        let problems = problems_in(file, params);
        if !as_json {
            if problems.is_empty() {
                println!("{}: ok", file.display());
            }
            for p in &problems {
                println!("{p}");
            }
        }
        all.extend(problems);
    }
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?
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

/// Every problem in one job file: its syntax, then its tasks and columns.
pub fn problems_in(file: &Path, params: &[(String, String)]) -> Vec<Problem> {
    match Plan::from_file_with(file, params) {
        Ok(plan) => rtl_tasks::check(&plan),
        Err(problems) => problems.0,
    }
}
