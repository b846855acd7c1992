//! `rtl explain FILE`: the plan as rtl will run it: stages, tasks, the
//! columns after each task, and how the relay will hand out each stage.

use rtl_config::Config;
use rtl_daemon::flow::Flow;
use rtl_dsl::Plan;
use rtl_tasks::DType;
use std::path::Path;
use std::process::ExitCode;

pub fn run(config: &Config, file: &Path, params: &[(String, String)]) -> Result<ExitCode, String> {
    let plan = Plan::from_file_with(file, params).map_err(|e| e.to_string())?;
    let (problems, steps) = rtl_tasks::trace(&plan);
    println!(
        "{}: {} stage(s), files relative to {}",
        file.display(),
        plan.stages.len(),
        plan.base_dir.display()
    );
    let mut previous: Option<Vec<(String, DType)>> = Some(Vec::new());
    let mut stage = None;
    for step in &steps {
        if stage != Some(step.stage) {
            stage = Some(step.stage);
            println!("stage {}", step.stage);
        }
        println!("  {}", step.task);
        match (&step.schema, &previous) {
            (None, _) => println!("      columns unknown (the source could not be read)"),
            (Some(now), Some(before)) => {
                let added: Vec<String> = now
                    .iter()
                    .filter(|c| !before.contains(c))
                    .map(|(n, t)| format!("{n} ({t})"))
                    .collect();
                let removed: Vec<&str> = before
                    .iter()
                    .filter(|(n, _)| !now.iter().any(|(m, _)| m == n))
                    .map(|(n, _)| n.as_str())
                    .collect();
                if added.is_empty() && removed.is_empty() && now == before {
                    println!("      columns unchanged");
                } else {
                    if !added.is_empty() {
                        println!("      + {}", added.join(", "));
                    }
                    if !removed.is_empty() {
                        println!("      - {}", removed.join(", "));
                    }
                    if added.is_empty() && removed.is_empty() {
                        println!(
                            "      columns reordered: {}",
                            now.iter()
                                .map(|(n, _)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                }
            }
            (Some(now), None) => println!("      = {}", describe(now)),
        }
        previous = step.schema.clone();
    }
    if let Some(last) = steps.last().and_then(|s| s.schema.as_ref()) {
        println!("result: {}", describe(last));
    }
    print_chunking(config, &plan);
    for p in &problems {
        println!("{p}");
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// How the relay hands out each stage.
fn print_chunking(config: &Config, plan: &Plan) {
    if !config.chunking {
        println!("relay: chunking is off; each stage goes whole to one task node");
        return;
    }
    println!(
        "relay: a stage whose input has at most {} rows goes whole to one task node; a larger table runs in steps:",
        config.chunking_size
    );
    let flow = Flow::<()>::new(plan, Some(config.chunking_size));
    let mut stage = None;
    for step in flow.steps() {
        if stage != Some(step.stage) {
            stage = Some(step.stage);
            println!("  stage {}:", step.stage);
        }
        let names: Vec<&str> = plan.stages[step.stage as usize].tasks
            [step.start as usize..step.end as usize]
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        let how = if step.reduce {
            "in chunks on several nodes at once, once every chunk before it has sent its figures (sums, counts, extremes) and been given the whole table's"
        } else if step.row_local {
            "in chunks on several nodes at once; each chunk moves on as soon as it is done"
        } else {
            "on one node with the whole table, once every chunk before it is done"
        };
        println!("    {}: {how}", names.join(", "));
    }
}

fn describe(schema: &[(String, DType)]) -> String {
    if schema.is_empty() {
        return "no columns".into();
    }
    schema
        .iter()
        .map(|(n, t)| format!("{n} ({t})"))
        .collect::<Vec<_>>()
        .join(", ")
}
