//! `rtl explain FILE`: the plan as rtl will run it: stages (with the
//! stages each takes), tasks, the columns after each task, which stages run
//! at the same time, and how the relay will hand out each stage.
//! `--dot` prints the stages as a Graphviz graph instead.

use rtl_config::Config;
use rtl_daemon::flow::steps_of;
use rtl_dsl::{Graph, Plan};
use rtl_tasks::{DType, Installed};
use std::path::Path;
use std::process::ExitCode;

type Schema = Vec<(String, DType)>;

pub fn run(
    config: &Config,
    file: &Path,
    params: &[(String, String)],
    dot: bool,
) -> Result<ExitCode, String> {
    let plan = Plan::from_file_with(file, params).map_err(|e| e.to_string())?;
    let graph = plan.graph().map_err(|e| e.to_string())?;
    let programs = rtl_client::known_tasks(config, &[&plan]);
    let (problems, steps) = rtl_tasks::trace(&plan, Some(&programs));
    if dot {
        // The drawing goes out either way; what is wrong with the job
        // goes to stderr, and the exit code says so.
        print!("{}", to_dot(&plan, &graph));
        for p in &problems {
            eprintln!("{p}");
        }
        return Ok(if problems.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    println!(
        "{}: {} stage(s), files relative to {}",
        file.display(),
        plan.stages.len(),
        plan.base_dir.display()
    );
    // The columns after each stage, as far as they are known.
    let mut after: Vec<Option<Option<Schema>>> = vec![None; plan.stages.len()];
    let mut previous: Option<Schema> = None;
    let mut stage = None;
    for step in &steps {
        if stage != Some(step.stage) {
            if let Some(done) = stage {
                after[done] = Some(previous.clone());
            }
            stage = Some(step.stage);
            let inputs = graph.inputs(step.stage);
            println!(
                "stage {}{}",
                plan.stage_name(step.stage),
                takes(&plan, step.stage, inputs)
            );
            previous = match inputs {
                [] => Some(Vec::new()),
                [one] => after[*one].clone().flatten(),
                _ => None,
            };
        }
        println!("  {}", step.task);
        match (&step.schema, &previous) {
            (None, _) => println!(
                "      columns unknown until it runs (after a source that could not be read, a task that failed on the sample, or a task only the nodes have)"
            ),
            (Some(now), Some(before)) => print_change(now, before),
            (Some(now), None) => println!("      = {}", describe(now)),
        }
        previous = step.schema.clone();
    }
    if let Some(done) = stage {
        after[done] = Some(previous);
    }
    let results = graph.results();
    for &r in &results {
        let Some(Some(schema)) = &after[r] else {
            continue;
        };
        if results.len() == 1 {
            println!("result: {}", describe(schema));
        } else {
            println!("result {}: {}", plan.stage_name(r), describe(schema));
        }
    }
    if plan.stages.len() > 1 && graph.waves().iter().any(|w| w.len() > 1) {
        print_waves(&plan, &graph);
    }
    print_chunking(config, &plan, programs.installed());
    for p in &problems {
        println!("{p}");
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// " (takes a, b)" for a stage that names its inputs, when they are not
/// simply the stage before.
fn takes(plan: &Plan, stage: usize, inputs: &[usize]) -> String {
    if plan.stages[stage].inputs.is_none() {
        return String::new();
    }
    match inputs {
        [] => " (a source)".into(),
        inputs => {
            let names: Vec<String> = inputs.iter().map(|&i| plan.stage_name(i)).collect();
            format!(" (takes {})", names.join(", "))
        }
    }
}

/// The columns a task added, removed or reordered.
fn print_change(now: &Schema, before: &Schema) {
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
        return;
    }
    if !added.is_empty() {
        println!("      + {}", added.join(", "));
    }
    if !removed.is_empty() {
        println!("      - {}", removed.join(", "));
    }
    if added.is_empty() && removed.is_empty() {
        let order: Vec<&str> = now.iter().map(|(n, _)| n.as_str()).collect();
        println!("      columns reordered: {}", order.join(", "));
    }
}

/// Which stages run at the same time: each wave once the ones before it
/// are done (a stage may start earlier, as soon as its own inputs are).
fn print_waves(plan: &Plan, graph: &Graph) {
    println!("stages that run at the same time, on the nodes with room:");
    for (k, wave) in graph.waves().iter().enumerate() {
        let names: Vec<String> = wave.iter().map(|&s| plan.stage_name(s)).collect();
        let when = if k == 0 {
            "first".to_string()
        } else {
            "then".to_string()
        };
        println!("  {when}: {}", names.join(", "));
    }
}

/// How the relay hands out each stage.
fn print_chunking(config: &Config, plan: &Plan, installed: &Installed) {
    if !config.chunking {
        println!("relay: chunking is off; each stage goes whole to one task node");
        return;
    }
    println!(
        "relay: a stage whose input has at most {} rows goes whole to one task node; a larger table runs in steps:",
        config.chunking_size
    );
    for steps in steps_of(plan, Some(config.chunking_size), installed) {
        let Some(first) = steps.first() else {
            continue;
        };
        let stage = first.stage as usize;
        println!("  stage {}:", plan.stage_name(stage));
        for step in &steps {
            let names: Vec<&str> = plan.stages[stage].tasks[step.start as usize..step.end as usize]
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            let combining = step.start == 0 && plan.inputs_of(stage).len() > 1;
            let how = if combining {
                "on one node with every input whole, once every input stage is done"
            } else if step.reduce {
                "in chunks on several nodes at once, once every chunk before it has sent its figures (sums, counts, extremes) and been given the whole table's"
            } else if step.row_local {
                "in chunks on several nodes at once; each chunk moves on as soon as it is done"
            } else {
                "on one node with the whole table, once every chunk before it is done"
            };
            println!("    {}: {how}", names.join(", "));
        }
    }
}

/// The job's stages as a Graphviz digraph: a box per stage with its
/// tasks, an arrow per input (numbered where order matters), results
/// drawn with a double border.
fn to_dot(plan: &Plan, graph: &Graph) -> String {
    let quote = |text: &str| {
        let escaped: String = text
            .chars()
            .flat_map(|c| match c {
                '"' => vec!['\\', '"'],
                '\\' => vec!['\\', '\\'],
                '\n' => vec!['\\', 'n'],
                c if c.is_control() => vec![' '],
                c => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    };
    let results = graph.results();
    let mut out = String::from(
        "digraph job {\n  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n",
    );
    for s in 0..plan.stages.len() {
        let tasks: Vec<&str> = plan.stages[s]
            .tasks
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        let label = format!("{}\n{}", plan.stage_name(s), tasks.join("\n"));
        let border = if results.contains(&s) {
            ", peripheries=2"
        } else {
            ""
        };
        out.push_str(&format!(
            "  {} [label={}{border}];\n",
            quote(&format!("s{s}")),
            quote(&label)
        ));
    }
    for s in 0..plan.stages.len() {
        let inputs = graph.inputs(s);
        for (k, &i) in inputs.iter().enumerate() {
            let label = if inputs.len() > 1 {
                format!(" [label=\"{}\"]", k + 1)
            } else {
                String::new()
            };
            out.push_str(&format!("  \"s{i}\" -> \"s{s}\"{label};\n"));
        }
    }
    out.push_str("}\n");
    out
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
