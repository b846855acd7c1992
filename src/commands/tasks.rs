//! `rtl tasks` (alias `plugins`): the task library, one line per task;
//! `rtl tasks --doc NAME`: one task's kwargs and a job that runs it.

use rtl_tasks::{lookup, registry, Role};
use std::process::ExitCode;

pub fn run(doc: Option<&str>) -> Result<ExitCode, String> {
    let Some(name) = doc else {
        let tasks = registry();
        let width = tasks.iter().map(|t| t.name.len()).max().unwrap_or(0);
        for task in tasks {
            let aliases = if task.aliases.is_empty() {
                String::new()
            } else {
                format!(" (also: {})", task.aliases.join(", "))
            };
            println!("{:<width$}  {}{aliases}", task.name, task.about);
        }
        return Ok(ExitCode::SUCCESS);
    };
    let task = lookup(name).ok_or_else(|| rtl_tasks::unknown_task_message(name))?;
    println!("{}", task.name);
    if !task.aliases.is_empty() {
        println!("  also written: {}", task.aliases.join(", "));
    }
    println!("  {}", task.about);
    println!("\nkwargs:");
    for line in task.kwargs.lines() {
        println!("  {line}");
    }
    if !task.ignored.is_empty() {
        println!("\naccepted for the original's jobs, with no effect (a warning says so):");
        for ignored in task.ignored {
            println!("  {}: {}", ignored.field, ignored.why);
        }
    }
    let call = format!("{{\"{}\": {}}}", task.name, task.example);
    let job = match task.role {
        Role::Source { .. } => format!("{{\"0\": {{\"tasks\": {call}}}}}"),
        Role::Combine(_) => format!(
            "{{\"stages\": {{\n  \"a\": {{\"tasks\": {{\"open_array\": {{\"filename\": \"data\"}}}}}},\n  \"b\": {{\"tasks\": {{\"open_array\": {{\"filename\": \"data\"}}}}}},\n  \"both\": {{\"inputs\": [\"a\", \"b\"], \"tasks\": {call}}}}}}}"
        ),
        _ => format!(
            "{{\"0\": {{\"tasks\": {{\"open_array\": {{\"filename\": \"data\"}}}}}},\n \"1\": {{\"tasks\": {call}}}}}"
        ),
    };
    println!("\nexample job:\n{job}");
    if !matches!(task.role, Role::Source { .. }) {
        println!("(reads data.csv beside the job, with number columns x and y, an integer column n and a text column site)");
    }
    Ok(ExitCode::SUCCESS)
}
