//! Checking a job before it runs, so that a mistake is reported with its
//! place in the job file instead of surfacing half-way through a run.
//!
//! [`check`] follows the tables through the stages, each stage after its
//! inputs (a combining task runs on its inputs' samples): a source task yields a
//! sample of its file (header and first rows, or the `.meta`), each
//! transform runs its own kernel on that sample, so the columns, types and
//! messages are exactly those of a real run; effects (writing files) are
//! checked by their kwargs only. Every problem in the job is reported, each
//! naming the stage, task and field, with the line and column where the
//! job's text says them. [`check_calls`] is the part that needs no files:
//! task names and kwargs types, which the relay checks again.

use crate::{
    lookup, unknown_task_message, Context, DType, Input, Installed, Programs, Role, Table,
};
use rtl_dsl::{Graph, Plan, Problem, TaskCall};
use std::path::PathBuf;

/// Every problem in `plan`, in order; empty when it is clean. Installed
/// tasks run on the samples through `programs`.
pub fn check(plan: &Plan, programs: Option<&Programs>) -> Vec<Problem> {
    trace(plan, programs).0
}

/// One task of a checked plan and the columns after it (None when they
/// cannot be known, after a source that could not be read).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Index of the stage.
    pub stage: usize,
    /// The task's name as the job wrote it.
    pub task: String,
    /// Names and types of the columns after the task.
    pub schema: Option<Vec<(String, DType)>>,
}

/// [`check`], plus the columns after every task, for `rtl explain`, in
/// the order the stages can run (each after its inputs).
pub fn trace(plan: &Plan, programs: Option<&Programs>) -> (Vec<Problem>, Vec<Step>) {
    let installed = programs.map(Programs::installed);
    let graph = match plan.graph() {
        Ok(graph) => graph,
        // Columns cannot be followed through a graph that is not one;
        // the calls can still be checked.
        Err(problems) => {
            let mut problems = problems.0;
            problems.extend(call_problems(plan, installed));
            return (problems, Vec::new());
        }
    };
    let mut problems = placement(plan, &graph, installed);
    let mut steps = Vec::new();
    let mut ctx = Context::new(&plan.base_dir);
    ctx.checking = true;
    ctx.programs = programs;
    // The table after each stage; None when it cannot be known (after a
    // source that could not be read).
    let mut after: Vec<Option<Table>> = vec![None; plan.stages.len()];
    // Files the job itself writes, with the table they will hold.
    let mut written: Vec<(PathBuf, Option<Table>)> = Vec::new();
    for &index in graph.order() {
        let inputs = graph.inputs(index);
        let mut calls = plan.stages[index].tasks.iter().peekable();
        let mut table = match inputs {
            [] => Some(Table::new()),
            [one] => after[*one].clone(),
            several => {
                let Some(call) = calls.next() else {
                    continue;
                };
                let tables: Option<Vec<Input>> = several
                    .iter()
                    .map(|&i| {
                        after[i].clone().map(|table| Input {
                            stage: plan.stage_name(i),
                            table,
                        })
                    })
                    .collect();
                let combined = match (lookup(&call.name), tables) {
                    (Some(spec), Some(tables)) => match spec.role {
                        Role::Combine(combine) => match (spec.check)(&call.kwargs)
                            .and_then(|()| combine(tables, &call.kwargs, &ctx))
                        {
                            Ok(table) => Some(table),
                            Err(e) => {
                                problems.push(problem(plan, index, call, e));
                                None
                            }
                        },
                        // Misplaced: said already.
                        _ => None,
                    },
                    (None, _) if installed.is_some_and(|i| i.get(&call.name).is_some()) => None,
                    (None, _) => {
                        let message = unknown_task_message(&call.name, installed);
                        problems.push(problem(plan, index, call, message));
                        None
                    }
                    (Some(_), None) => None,
                };
                steps.push(Step {
                    stage: index,
                    task: call.name.clone(),
                    schema: combined.as_ref().map(Table::schema),
                });
                combined
            }
        };
        for call in calls {
            let Some(spec) = lookup(&call.name) else {
                let found = programs.and_then(|p| Some((p, p.installed().get(&call.name)?)));
                let Some((programs, manifest)) = found else {
                    let message = unknown_task_message(&call.name, installed);
                    problems.push(problem(plan, index, call, message));
                    continue;
                };
                // Every problem with its kwargs, then a run on the sample,
                // as a built-in's kernel has; without one, or where only
                // the nodes have its program, its kwargs alone.
                let wrong = manifest.kwarg_problems(&call.kwargs);
                if !wrong.is_empty() {
                    for e in wrong {
                        problems.push(problem(plan, index, call, e));
                    }
                    table = None;
                    continue;
                }
                let outcome = match &table {
                    Some(input) if manifest.runs_here => programs
                        .call(manifest, &call.kwargs, input.clone(), true)
                        .map(Some),
                    _ => manifest.kwargs_of(&call.kwargs).map(|_| None),
                };
                match outcome {
                    Ok(Some(out)) => table = Some(out),
                    Ok(None) => table = None,
                    Err(e) => {
                        problems.push(problem(plan, index, call, e));
                        // What a program makes cannot be guessed from its
                        // input: the columns after it are unknown.
                        table = None;
                    }
                }
                steps.push(Step {
                    stage: index,
                    task: call.name.clone(),
                    schema: table.as_ref().map(Table::schema),
                });
                continue;
            };
            if let Err(e) = (spec.check)(&call.kwargs) {
                problems.push(problem(plan, index, call, e));
                continue;
            }
            match spec.role {
                Role::Writes(target) => match target(&call.kwargs, &ctx) {
                    Ok(path) => written.push((path, table.clone())),
                    Err(e) => problems.push(problem(plan, index, call, e)),
                },
                Role::Source { sample, reads } => {
                    let earlier = reads
                        .and_then(|reads| reads(&call.kwargs, &ctx).ok())
                        .and_then(|path| written.iter().rev().find(|(p, _)| *p == path));
                    let outcome = match earlier {
                        Some((_, t)) => Ok(t.clone()),
                        None => sample(&call.kwargs, &ctx).map(Some),
                    };
                    match outcome {
                        Ok(t) => table = t,
                        Err(e) => {
                            problems.push(problem(plan, index, call, e));
                            table = None;
                        }
                    }
                }
                Role::Transform => {
                    if let Some(input) = &table {
                        match (spec.kernel)(input.clone(), &call.kwargs, &ctx) {
                            Ok(out) => table = Some(out),
                            // Carry on with the input's columns: later
                            // problems still show, without a cascade.
                            Err(e) => problems.push(problem(plan, index, call, e)),
                        }
                    }
                }
                // Misplaced (`placement` said so): the table goes on.
                Role::Combine(_) => {}
            }
            steps.push(Step {
                stage: index,
                task: spec.name.to_string(),
                schema: table.as_ref().map(Table::schema),
            });
        }
        after[index] = table;
    }
    (problems, steps)
}

/// Combining tasks where they belong: first in every stage that takes
/// several inputs, and nowhere else. (Installed tasks never combine.)
fn placement(plan: &Plan, graph: &Graph, installed: Option<&Installed>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (index, stage) in plan.stages.iter().enumerate() {
        let inputs: Vec<String> = graph
            .inputs(index)
            .iter()
            .map(|&i| format!("`{}`", plan.stage_name(i)))
            .collect();
        for (k, call) in stage.tasks.iter().enumerate() {
            let (name, combines) = match lookup(&call.name) {
                Some(spec) => (spec.name, spec.combines()),
                None if installed.is_some_and(|i| i.get(&call.name).is_some()) => {
                    (call.name.as_str(), false)
                }
                None => continue,
            };
            let message = match (k, inputs.len(), combines) {
                (0, 2.., false) => format!(
                    "the stage takes {} inputs ({}), so its first task must combine them: join or concat, and `{name}` does not",
                    inputs.len(),
                    inputs.join(", "),
                ),
                (1.., _, true) => format!(
                    "{name} combines a stage's inputs, so it must be the stage's first task"
                ),
                (0, 0, true) => format!(
                    "{name} combines the tables of several stages, and this stage takes none: name two or more in the stage's `inputs`"
                ),
                (0, 1, true) => format!(
                    "{name} combines the tables of several stages, and this stage takes one ({}): name two or more in the stage's `inputs`",
                    inputs[0]
                ),
                _ => continue,
            };
            problems.push(
                Problem::in_file(&plan.origin, message)
                    .stage(plan.stage_name(index))
                    .task(&call.name)
                    .at(call.position(None)),
            );
        }
    }
    problems
}

/// Problems visible without the data: the job's graph, unknown tasks,
/// kwargs that do not decode, combining tasks out of place. Installed
/// tasks' kwargs are checked against their manifests.
pub fn check_calls(plan: &Plan, installed: Option<&Installed>) -> Vec<Problem> {
    let mut problems = Vec::new();
    // A job read from a file cannot be empty; one built in code or sent by
    // another client can.
    if plan.stages.is_empty() {
        problems.push(Problem::in_file(&plan.origin, "the job has no stages"));
    }
    match plan.graph() {
        Ok(graph) => problems.extend(placement(plan, &graph, installed)),
        Err(found) => problems.extend(found.0),
    }
    for (index, stage) in plan.stages.iter().enumerate() {
        if stage.tasks.is_empty() {
            problems.push(
                Problem::in_file(&plan.origin, "the stage has no tasks")
                    .stage(plan.stage_name(index)),
            );
        }
    }
    problems.extend(call_problems(plan, installed));
    problems
}

/// Unknown tasks and kwargs that do not decode, stage by stage.
fn call_problems(plan: &Plan, installed: Option<&Installed>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (index, stage) in plan.stages.iter().enumerate() {
        for call in &stage.tasks {
            let found = match (
                lookup(&call.name),
                installed.and_then(|i| i.get(&call.name)),
            ) {
                (Some(spec), _) => (spec.check)(&call.kwargs).err().into_iter().collect(),
                (None, Some(manifest)) => manifest.kwarg_problems(&call.kwargs),
                (None, None) => vec![unknown_task_message(&call.name, installed)],
            };
            for e in found {
                problems.push(problem(plan, index, call, e));
            }
        }
    }
    problems
}

/// Kwargs in `plan` that the original's tasks took and rtl ignores, each
/// with its place and why it has no effect: worth a warning, never a
/// reason to refuse the job.
pub fn warnings(plan: &Plan) -> Vec<Problem> {
    let mut found = Vec::new();
    for (index, stage) in plan.stages.iter().enumerate() {
        for call in &stage.tasks {
            let Some(spec) = lookup(&call.name) else {
                continue;
            };
            for ignored in spec.ignored {
                if ignored.applies(&call.kwargs) {
                    let message = format!("has no effect in rtl and is ignored: {}", ignored.why);
                    found.push(
                        Problem::in_file(&plan.origin, message)
                            .stage(plan.stage_name(index))
                            .task(&call.name)
                            .at(call.position(Some(ignored.field)))
                            .field(Some(ignored.field.to_string())),
                    );
                }
            }
        }
    }
    found
}

fn problem(plan: &Plan, stage: usize, call: &TaskCall, message: String) -> Problem {
    let (field, message) = field_of(&message);
    Problem::in_file(&plan.origin, message)
        .stage(plan.stage_name(stage))
        .task(&call.name)
        .at(call.position(field.as_deref()))
        .field(field)
}

/// The field a task's message names in its prefix, and the rest: tasks say
/// `bad kwargs at `operations[0].method`: ...`, `operations[0]: ...` or
/// `field `column`: ...`. The checker, the relay and the task nodes all
/// name the field this way, so a mistake reads alike wherever it is found.
pub fn field_of(message: &str) -> (Option<String>, String) {
    if let Some(rest) = message.strip_prefix("bad kwargs at `") {
        if let Some((path, tail)) = rest.split_once("`: ") {
            return (Some(path.to_string()), format!("bad kwargs: {tail}"));
        }
    }
    // Data that does not suit a kwarg: `field `column`: column `s` is utf8`.
    if let Some(rest) = message.strip_prefix("field `") {
        if let Some((path, tail)) = rest.split_once("`: ") {
            return (Some(path.to_string()), tail.to_string());
        }
    }
    if let Some((head, tail)) = message.split_once(": ") {
        let is_path = head.ends_with(']')
            && head.contains('[')
            && head
                .chars()
                .all(|c| c.is_alphanumeric() || "_.[]".contains(c));
        if is_path {
            return (Some(head.to_string()), tail.to_string());
        }
    }
    (None, message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str, dir: &std::path::Path) -> Plan {
        Plan::parse(text, "job.json", dir.to_path_buf()).expect("parse")
    }

    /// A folder of this test's own (tests run at once) with runs.csv.
    fn scratch(test: &str) -> crate::scratch::Scratch {
        let dir = crate::scratch::Scratch::new(&format!("check-{test}"));
        std::fs::write(
            dir.join("runs.csv"),
            "run,totalRunTime,site\n1,2.5,north\n2,3.0,south\n",
        )
        .expect("csv");
        dir
    }

    #[test]
    fn a_clean_job_has_no_problems() {
        let dir = scratch("a_clean_job_has_no_problems");
        let job = plan(
            r#"{"0": {"tasks": {"open_array": {"filename": "runs"}}},
                "1": {"tasks": [{"add": {"operations": [{"a": "totalRunTime", "b": 1, "column": "t"}]}},
                                {"filter": {"operations": [{"column": "t", "method": "gt", "value": 3}]}},
                                {"write": {"filename": "out", "path": "never_written"}}]}}"#,
            &dir,
        );
        assert_eq!(check(&job, None), []);
        assert!(!dir.join("never_written").exists(), "checks write nothing");
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let dir = scratch("every_problem_is_reported_with_its_place");
        let job = plan(
            "{\"0\": {\"tasks\": {\"open_array\": {\"filename\": \"runs\"}}},\n\
             \"1\": {\"tasks\": [\n\
               {\"add\": {\"operations\": [{\"a\": \"totalRuntime\", \"b\": 1, \"column\": \"t\"}]}},\n\
               {\"filter\": {\"operations\": [{\"column\": \"run\", \"method\": \"approx\", \"value\": 3}]}},\n\
               {\"sort\": {\"column\": \"site\", \"descending\": \"yes\"}},\n\
               {\"fliter\": {}}]}}",
            &dir,
        );
        let found: Vec<String> = check(&job, None).iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "job.json:3:25: stage 1, task add, field operations[0]: no column `totalRuntime`; did you mean totalRunTime? available columns: run (int64), totalRunTime (float64), site (utf8)",
                "job.json:4:46: stage 1, task filter, field operations[0].method: bad kwargs: unknown value `approx`, expected one of `eq`, `ne`, `lt`, `le`, `gt`, `ge`",
                "job.json:5:29: stage 1, task sort, field descending: bad kwargs: expected a boolean, found the text \"yes\"",
                "job.json:6:2: stage 1, task fliter: unknown task `fliter`; did you mean filter? (`rtl tasks` lists them all)",
            ]
        );
        assert_eq!(
            check_calls(&job, None).len(),
            3,
            "without the data, the column is not known to be missing"
        );
    }

    #[test]
    fn columns_follow_the_graph_and_combining_tasks_are_checked() {
        let dir = scratch("columns_follow_the_graph_and_combining_tasks_are_checked");
        let job = plan(
            r#"{"stages": {
  "load": {"tasks": {"open_array": {"filename": "runs"}}},
  "sums": {"inputs": "load", "tasks": {"group_by": {"by": ["site"], "aggregations": [{"a": "run", "op": "sum", "column": "runs"}]}}},
  "both": {"inputs": ["load", "sums"], "tasks": [{"join": {"on": "site"}}, {"filter": {"operations": [{"column": "runs", "method": "gt", "value": 1}]}}]},
  "stacked": {"inputs": ["load", "sums"], "tasks": [{"concat": {}}]},
  "keyed": {"inputs": ["load", "sums"], "tasks": [{"join": {"on": "run"}}]},
  "lost": {"inputs": ["load", "sums"], "tasks": [{"sort": {"column": "run"}}, {"join": {"on": "site"}}]},
  "alone": {"inputs": "load", "tasks": {"concat": {}}}
}}"#,
            &dir,
        );
        let found: Vec<String> = check(&job, None).iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "job.json:7:51: stage lost, task sort: the stage takes 2 inputs (`load`, `sums`), so its first task must combine them: join or concat, and `sort` does not",
                "job.json:7:80: stage lost, task join: join combines a stage's inputs, so it must be the stage's first task",
                "job.json:8:41: stage alone, task concat: concat combines the tables of several stages, and this stage takes one (`load`): name two or more in the stage's `inputs`",
                "job.json:5:54: stage stacked, task concat: the inputs must have the same columns: input `sums` has no column `run`; input `sums` has no column `totalRunTime`; input `sums` has column `runs`, which input `load` lacks",
                "job.json:6:61: stage keyed, task join, field on: input `sums` has no column `run` (did you mean runs?); its available columns: site (utf8), runs (int64)",
            ]
        );
        let (_, steps) = trace(&job, None);
        let both = steps
            .iter()
            .find(|s| s.stage == 2 && s.task == "filter")
            .expect("both");
        let names: Vec<&str> = both
            .schema
            .iter()
            .flatten()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["run", "totalRunTime", "site", "runs"]);
    }

    #[test]
    fn a_missing_file_is_one_problem_not_a_cascade() {
        let dir = scratch("a_missing_file_is_one_problem_not_a_cascade");
        let job = plan(
            r#"[{"tasks": [{"open_array": {"filename": "nope"}}, {"add": {"operations": [{"a": "x", "b": 1, "column": "y"}]}}]}]"#,
            &dir,
        );
        let found = check(&job, None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("nope.csv"), "{}", found[0]);
    }
}
