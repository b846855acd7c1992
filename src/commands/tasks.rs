//! `rtl tasks` (alias `plugins`): the task library, one line per task,
//! then the tasks installed in `task_dirs` with their folders (and what is
//! wrong with manifests that could not be read); `rtl tasks --doc NAME`:
//! one task's kwargs and a job that runs it.

use rtl_config::Config;
use rtl_tasks::{lookup, registry, Installed, Manifest, Role};
use std::process::ExitCode;

pub fn run(config: &Config, doc: Option<&str>) -> Result<ExitCode, String> {
    let (installed, bad) = Installed::load(&config.task_dirs());
    let Some(name) = doc else {
        let tasks = registry();
        let width = tasks
            .iter()
            .map(|t| t.name)
            .chain(installed.iter().map(|m| m.name.as_str()))
            .map(str::len)
            .max()
            .unwrap_or(0);
        for task in tasks {
            let aliases = if task.aliases.is_empty() {
                String::new()
            } else {
                format!(" (also: {})", task.aliases.join(", "))
            };
            println!("{:<width$}  {}{aliases}", task.name, task.about);
        }
        let folders: Vec<String> = config
            .task_dirs()
            .iter()
            .map(|d| match d.is_dir() {
                true => d.display().to_string(),
                false => format!("{} (no such folder)", d.display()),
            })
            .collect();
        println!(
            "
installed in {}:",
            folders.join(", ")
        );
        if installed.is_empty() && bad.is_empty() {
            println!("  none (a task is a NAME.toml manifest beside its program; see the README, \"Your own tasks\")");
        }
        for task in installed.iter() {
            // The doc's first paragraph, on one line.
            let about = task.doc.trim().split("\n\n").next().unwrap_or("");
            let about = about.split_whitespace().collect::<Vec<_>>().join(" ");
            println!(
                "{:<width$}  {about} (in {})",
                task.name,
                task.folder.display()
            );
        }
        for problem in &bad {
            eprintln!("warning: {problem}; that task is not installed");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let Some(task) = lookup(name) else {
        return match installed.get(name) {
            Some(manifest) => {
                show_installed(manifest, config);
                Ok(ExitCode::SUCCESS)
            }
            None => Err(rtl_tasks::unknown_task_message(name, Some(&installed))),
        };
    };
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

/// `rtl tasks --doc` for an installed task: its manifest, told as a
/// built-in's doc is.
fn show_installed(task: &Manifest, config: &Config) {
    println!("{}", task.name);
    for line in task.doc.lines() {
        println!("  {line}");
    }
    println!("  installed: {}", task.origin);
    println!(
        "  runs: {} (in {})",
        task.command_line(),
        task.folder.display()
    );
    if task.row_local {
        let chunks = task
            .chunk_rows
            .map_or(String::new(), |rows| format!(" of at most {rows} rows"));
        println!("  row-local: large tables run in chunks{chunks}, on every node that has it");
    }
    let (timeout, from) = match task.timeout_ms {
        Some(ms) => (ms, "timeout_ms in the manifest"),
        None => (config.program_timeout_ms, "the setting program_timeout_ms"),
    };
    let (memory, of) = match task.memory_mb {
        Some(mb) => (mb, "memory_mb in the manifest"),
        None => (config.program_memory_mb, "the setting program_memory_mb"),
    };
    let memory = match memory {
        0 => "no memory limit".to_string(),
        mb => format!("at most {mb} MiB of memory"),
    };
    println!("  limits: {timeout} ms a call ({from}); {memory} ({of})");
    println!("\nkwargs:");
    if task.kwargs.is_empty() {
        println!("  none");
    }
    for line in task.kwargs_doc().lines() {
        println!("  {line}");
    }
    let call = serde_json::json!({ &task.name: task.example_kwargs() });
    println!(
        "\nexample job:\n{{\"0\": {{\"tasks\": {{\"open_array\": {{\"filename\": \"data\"}}}}}},\n \"1\": {{\"tasks\": {call}}}}}"
    );
    println!("(reads data.csv beside the job; name its columns in the kwargs)");
}
