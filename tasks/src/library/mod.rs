//! The built-in tasks. Each file holds one task (or one family of tasks that
//! share a kernel): kwargs, doc, kernel and tests together.

mod arithmetic;
mod average;
mod classify_static;
mod column_space;
mod concat;
mod cross;
mod filter;
mod group_by;
mod head;
mod histogram;
mod join;
mod keys;
mod math;
mod normalize;
mod null;
mod open;
mod open_array;
mod operand;
mod regression;
mod rename;
mod select;
mod simple_plot;
mod sort;
mod unique;
mod write;

use crate::TaskSpec;

/// What a combining task says when given one table: it runs only as the
/// first task of a stage with several inputs (which checking makes sure of).
fn combining_only(task: &str) -> String {
    format!("{task} combines the tables of several stages: it is the first task of a stage whose `inputs` name two or more")
}

pub(crate) static TASKS: &[TaskSpec] = &[
    null::SPEC,
    arithmetic::ADD,
    arithmetic::SUBTRACT,
    arithmetic::MULTIPLY,
    arithmetic::DIVIDE,
    arithmetic::POWER,
    math::LOG,
    math::SQUARE_ROOT,
    average::SPEC,
    cross::CROSS_AVERAGE,
    cross::CROSS_MAX,
    filter::SPEC,
    normalize::SPEC,
    classify_static::SPEC,
    column_space::SPEC,
    histogram::SPEC,
    regression::SPEC,
    sort::SPEC,
    unique::SPEC,
    group_by::SPEC,
    select::SPEC,
    rename::SPEC,
    head::SPEC,
    join::SPEC,
    concat::SPEC,
    open::SPEC,
    open_array::SPEC,
    write::SPEC,
    simple_plot::SPEC,
];

#[cfg(test)]
mod edge_cases {
    //! Every task that reads columns, on the tables that break naive code:
    //! empty, one row, nan, a missing column, a wrong-typed column. None may
    //! panic; each answer is either a table or an error naming the column.

    use super::TASKS;
    use crate::{run_stage, Column, Context, Table};
    use ndarray::{array, Array1};
    use rtl_dsl::TaskCall;
    use serde_json::{json, Value};
    use std::path::Path;

    /// Kwargs for each task, reading column `x` (and `y` where it needs two).
    fn calls() -> Vec<(&'static str, Value)> {
        vec![
            (
                "add",
                json!({"operations": [{"a": "x", "b": "y", "column": "z"}]}),
            ),
            (
                "subtract",
                json!({"operations": [{"a": "x", "b": 1, "column": "z"}]}),
            ),
            (
                "multiply",
                json!({"operations": [{"a": "x", "b": "y", "column": "z"}]}),
            ),
            (
                "divide",
                json!({"operations": [{"a": "x", "b": "y", "column": "z"}]}),
            ),
            (
                "power",
                json!({"operations": [{"a": "x", "b": 2, "column": "z"}]}),
            ),
            ("log", json!({"operations": [{"a": "x", "column": "z"}]})),
            (
                "square_root",
                json!({"operations": [{"a": "x", "column": "z"}]}),
            ),
            (
                "average",
                json!({"operations": [{"a": "x", "column": "z"}]}),
            ),
            (
                "cross_average",
                json!({"operations": [{"columns": ["x", "y"], "column": "z"}]}),
            ),
            (
                "cross_max",
                json!({"operations": [{"columns": ["x", "y"], "column": "z"}]}),
            ),
            (
                "filter",
                json!({"operations": [{"column": "x", "method": "gt", "value": 0}]}),
            ),
            ("normalize", json!({"model": "Squash", "columns": ["x"]})),
            (
                "normalize",
                json!({"model": "DistanceFromMean", "columns": ["x"], "weight": 0.2}),
            ),
            (
                "classify_static",
                json!({"operations": [{"a": ["x", "y"], "column": "z"}]}),
            ),
            ("column_space", json!({"column": "x", "space": "log"})),
            (
                "histogram",
                json!({"operations": [{"a": "x", "bins": 4, "column": "z"}]}),
            ),
            (
                "regression",
                json!({"operations": [{"x": "x", "y": "y", "model": "Linear"}]}),
            ),
            ("sort", json!({"column": "x", "descending": true})),
            ("unique", json!({"a": "x"})),
            (
                "group_by",
                json!({"by": ["x"], "aggregations": [{"a": "y", "op": "mean", "column": "m"}]}),
            ),
            ("select", json!({"columns": ["x"]})),
            ("rename", json!({"columns": {"x": "z"}})),
            (
                "simple_plot",
                json!({"plots": {"p": [{"x": "y", "y": "x"}]}}),
            ),
        ]
    }

    fn table(x: Column, y: Array1<f64>) -> Table {
        Table::from_columns(vec![("x".into(), x), ("y".into(), Column::Float64(y))]).expect("table")
    }

    fn run(name: &str, kwargs: &Value, input: Table) -> Result<Table, String> {
        let calls = [TaskCall::new(name, kwargs.clone())];
        run_stage(4, &calls, input, &Context::new(Path::new(".")), &mut |_| {})
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_documented_example_runs() {
        let dir = std::env::temp_dir().join(format!("rtl-doc-examples-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("job folder");
        let ctx = Context::new(&dir);
        let input = Table::from_columns(vec![
            ("x".into(), Column::Float64(array![1.0, 2.0, 4.0])),
            ("y".into(), Column::Float64(array![2.0, 3.5, 9.0])),
            ("n".into(), Column::Int64(array![1, 2, 3])),
            ("site".into(), Column::text(&["a", "b", "a"])),
        ])
        .expect("table");
        for task in TASKS {
            let kwargs: Value = serde_json::from_str(task.example)
                .unwrap_or_else(|e| panic!("{}: example is not JSON: {e}", task.name));
            (task.check)(&kwargs).unwrap_or_else(|e| panic!("{}: {e}", task.name));
            match task.role {
                crate::Role::Source { .. } => continue, // reads files the example only names
                crate::Role::Combine(combine) => {
                    let inputs = ["a", "b"].map(|stage| crate::Input {
                        stage: stage.into(),
                        table: input.clone(),
                    });
                    combine(inputs.to_vec(), &kwargs, &ctx)
                }
                _ => (task.kernel)(input.clone(), &kwargs, &ctx),
            }
            .unwrap_or_else(|e| panic!("{}: {e}", task.name));
            assert!(
                !task.kwargs.is_empty(),
                "{} documents its kwargs",
                task.name
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Equal, with nan equal to nan.
    fn same(a: &Table, b: &Table) -> bool {
        a.schema() == b.schema()
            && a.iter().zip(b.iter()).all(|((_, x), (_, y))| match (x, y) {
                (Column::Float64(x), Column::Float64(y)) => {
                    x.len() == y.len()
                        && x.iter()
                            .zip(y)
                            .all(|(p, q)| p == q || (p.is_nan() && q.is_nan()))
                }
                _ => x == y,
            })
    }

    #[test]
    fn row_local_tasks_give_the_same_result_chunk_by_chunk() {
        let ctx = Context::new(Path::new("."));
        let input = Table::from_columns(vec![
            (
                "x".into(),
                Column::Float64(array![1.0, -2.0, f64::NAN, 4.0, 0.0, 9.5, 3.0]),
            ),
            (
                "y".into(),
                Column::Float64(array![2.0, 3.5, 9.0, f64::NAN, 0.0, -1.0, 3.0]),
            ),
            ("n".into(), Column::Int64(array![1, 2, 3, 4, 5, 6, 7])),
            (
                "site".into(),
                Column::text(&["a", "b", "a", "c", "b", "a", "test"]),
            ),
        ])
        .expect("table");
        let mut checked = 0;
        for task in TASKS.iter().filter(|t| t.row_local) {
            let kwargs: Value = serde_json::from_str(task.example).expect("example");
            let whole = (task.kernel)(input.clone(), &kwargs, &ctx)
                .unwrap_or_else(|e| panic!("{}: {e}", task.name));
            let parts = [(0, 3), (3, 3), (3, 6), (6, 7)]
                .iter()
                .map(|&(a, b)| (task.kernel)(input.slice(a, b), &kwargs, &ctx).expect("chunk"))
                .collect();
            let chunked = Table::concat(parts).expect("concat");
            assert!(
                same(&whole, &chunked),
                "{}: {whole:?} vs {chunked:?}",
                task.name
            );
            checked += 1;
        }
        assert!(checked >= 13, "{checked} row-local tasks");
        let whole_column = TASKS
            .iter()
            .filter(|t| !t.row_local)
            .map(|t| t.name)
            .collect::<Vec<_>>();
        for name in [
            "average",
            "normalize",
            "sort",
            "unique",
            "group_by",
            "head",
            "histogram",
            "regression",
            "classify_static",
            "column_space",
            "write",
            "simple_plot",
        ] {
            assert!(
                whole_column.contains(&name),
                "{name} must not be split into chunks"
            );
        }
    }

    #[test]
    fn every_column_task_is_covered() {
        let covered: Vec<&str> = calls().iter().map(|(n, _)| *n).collect();
        // These read no column; join and concat take several tables, and
        // their edge cases (empty, nan keys, no matches) are their own tests.
        let skipped = [
            "null",
            "head",
            "open",
            "open_array",
            "write",
            "join",
            "concat",
        ];
        for task in TASKS {
            assert!(
                covered.contains(&task.name) || skipped.contains(&task.name),
                "{} has no edge cases",
                task.name
            );
        }
    }

    #[test]
    fn empty_one_row_and_nan_tables_never_panic() {
        let inputs = [
            ("empty", table(Column::Float64(array![]), array![])),
            ("one row", table(Column::Float64(array![2.0]), array![3.0])),
            (
                "nan",
                table(
                    Column::Float64(array![1.0, f64::NAN, 3.0]),
                    array![f64::NAN, 1.0, 2.0],
                ),
            ),
            (
                "ints",
                table(Column::Int64(array![3, -1, 3]), array![0.5, 0.5, 1.5]),
            ),
        ];
        for (name, kwargs) in calls() {
            for (label, input) in &inputs {
                match run(name, &kwargs, input.clone()) {
                    Ok(out) => assert!(out.rows() <= input.rows().max(1), "{name} on {label}"),
                    Err(e) => assert!(
                        e.starts_with(&format!("stage 4, task {name}:")),
                        "{name} on {label}: {e}"
                    ),
                }
            }
        }
    }

    #[test]
    fn a_missing_column_is_named_with_the_columns_there_are() {
        for (name, kwargs) in calls() {
            let input = Table::from_columns(vec![("w".into(), Column::Float64(array![1.0]))])
                .expect("table");
            let err = run(name, &kwargs, input).expect_err(name);
            assert!(
                err.contains("no column `") && err.contains("available columns: w (float64)"),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn a_text_column_where_numbers_are_needed_is_named() {
        let numeric_only = [
            "add",
            "subtract",
            "multiply",
            "divide",
            "power",
            "log",
            "square_root",
            "average",
            "cross_average",
            "cross_max",
            "normalize",
            "column_space",
            "histogram",
            "regression",
        ];
        for (name, kwargs) in calls()
            .into_iter()
            .filter(|(n, _)| numeric_only.contains(n))
        {
            let input = Table::from_columns(vec![
                ("x".into(), Column::text(&["a", "b"])),
                ("y".into(), Column::Float64(array![1.0, 2.0])),
            ])
            .expect("table");
            let err = run(name, &kwargs, input).expect_err(name);
            assert!(err.contains("column `x` is utf8"), "{name}: {err}");
        }
    }
}
