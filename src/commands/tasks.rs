//! `rtl tasks` (alias `plugins`): the task library, one line per task.

use std::process::ExitCode;

pub fn run() -> Result<ExitCode, String> {
    let tasks = rtl_tasks::registry();
    let width = tasks.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for task in tasks {
        let aliases = if task.aliases.is_empty() {
            String::new()
        } else {
            format!(" (also: {})", task.aliases.join(", "))
        };
        println!("{:<width$}  {}{aliases}", task.name, task.about);
    }
    Ok(ExitCode::SUCCESS)
}
