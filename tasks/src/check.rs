//! Checking a job before it runs, so that a mistake is reported with its
//! place in the job file instead of surfacing half-way through a run.
//!
//! [`check`] follows the table through the stages: a source task yields a
//! sample of its file (header and first rows, or the `.meta`), each
//! transform runs its own kernel on that sample, so the columns, types and
//! messages are exactly those of a real run; effects (writing files) are
//! checked by their kwargs only. Every problem in the job is reported, each
//! naming the stage, task and field, with the line and column where the
//! job's text says them. [`check_calls`] is the part that needs no files:
//! task names and kwargs types, which the relay checks again.

use crate::{lookup, unknown_task_message, Context, DType, Role, Table};
use rtl_dsl::{Plan, Problem, TaskCall};
use std::path::PathBuf;

/// Every problem in `plan`, in order; empty when it is clean.
pub fn check(plan: &Plan) -> Vec<Problem> {
    trace(plan).0
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

/// [`check`], plus the columns after every task, for `rtl explain`.
pub fn trace(plan: &Plan) -> (Vec<Problem>, Vec<Step>) {
    let mut steps = Vec::new();
    let mut ctx = Context::new(&plan.base_dir);
    ctx.checking = true;
    let mut problems = Vec::new();
    // None once a source could not be read: later columns are unknown.
    let mut table = Some(Table::new());
    // Files the job itself writes, with the table they will hold.
    let mut written: Vec<(PathBuf, Option<Table>)> = Vec::new();
    for (index, stage) in plan.stages.iter().enumerate() {
        for call in &stage.tasks {
            let Some(spec) = lookup(&call.name) else {
                problems.push(problem(plan, index, call, unknown_task_message(&call.name)));
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
            }
            steps.push(Step {
                stage: index,
                task: spec.name.to_string(),
                schema: table.as_ref().map(Table::schema),
            });
        }
    }
    (problems, steps)
}

/// Problems visible without the data: unknown tasks and kwargs that do not
/// decode.
pub fn check_calls(plan: &Plan) -> Vec<Problem> {
    let mut problems = Vec::new();
    // A job read from a file cannot be empty; one built in code or sent by
    // another client can.
    if plan.stages.is_empty() {
        problems.push(Problem::in_file(&plan.origin, "the job has no stages"));
    }
    for (index, stage) in plan.stages.iter().enumerate() {
        if stage.tasks.is_empty() {
            problems.push(Problem::in_file(&plan.origin, "the stage has no tasks").stage(index));
        }
        for call in &stage.tasks {
            let outcome = match lookup(&call.name) {
                None => Err(unknown_task_message(&call.name)),
                Some(spec) => (spec.check)(&call.kwargs),
            };
            if let Err(e) = outcome {
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
                            .stage(index)
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
    let (field, message) = split_field(&message);
    Problem::in_file(&plan.origin, message)
        .stage(stage)
        .task(&call.name)
        .at(call.position(field.as_deref()))
        .field(field)
}

/// The field a task's message names in its prefix, and the rest: tasks say
/// `bad kwargs at `operations[0].method`: ...`, `operations[0]: ...` or
/// `field `column`: ...`.
fn split_field(message: &str) -> (Option<String>, String) {
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
    use std::path::PathBuf;

    fn plan(text: &str, dir: &std::path::Path) -> Plan {
        Plan::parse(text, "job.json", dir.to_path_buf()).expect("parse")
    }

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rtl-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch");
        std::fs::write(
            dir.join("runs.csv"),
            "run,totalRunTime,site\n1,2.5,north\n2,3.0,south\n",
        )
        .expect("csv");
        dir
    }

    #[test]
    fn a_clean_job_has_no_problems() {
        let dir = scratch();
        let job = plan(
            r#"{"0": {"tasks": {"open_array": {"filename": "runs"}}},
                "1": {"tasks": [{"add": {"operations": [{"a": "totalRunTime", "b": 1, "column": "t"}]}},
                                {"filter": {"operations": [{"column": "t", "method": "gt", "value": 3}]}},
                                {"write": {"filename": "out", "path": "never_written"}}]}}"#,
            &dir,
        );
        assert_eq!(check(&job), []);
        assert!(!dir.join("never_written").exists(), "checks write nothing");
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let dir = scratch();
        let job = plan(
            "{\"0\": {\"tasks\": {\"open_array\": {\"filename\": \"runs\"}}},\n\
             \"1\": {\"tasks\": [\n\
               {\"add\": {\"operations\": [{\"a\": \"totalRuntime\", \"b\": 1, \"column\": \"t\"}]}},\n\
               {\"filter\": {\"operations\": [{\"column\": \"run\", \"method\": \"approx\", \"value\": 3}]}},\n\
               {\"sort\": {\"column\": \"site\", \"descending\": \"yes\"}},\n\
               {\"fliter\": {}}]}}",
            &dir,
        );
        let found: Vec<String> = check(&job).iter().map(ToString::to_string).collect();
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
            check_calls(&job).len(),
            3,
            "without the data, the column is not known to be missing"
        );
    }

    #[test]
    fn a_missing_file_is_one_problem_not_a_cascade() {
        let dir = scratch();
        let job = plan(
            r#"[{"tasks": [{"open_array": {"filename": "nope"}}, {"add": {"operations": [{"a": "x", "b": 1, "column": "y"}]}}]}]"#,
            &dir,
        );
        let found = check(&job);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("nope.csv"), "{}", found[0]);
    }
}
