//! `concat {}`: the rows of a stage's inputs one after the other, in the
//! order the stage lists them, columns in the first input's order.
//!
//! Every input has the same column names (in any order) and the same
//! types, except that int64 beside float64 becomes float64, as numpy's
//! `concatenate` promotes them. What does not fit is listed in full: every
//! missing, extra or differently typed column of every input.

use crate::{kwargs, Column, Context, DType, Input, Role, Table, TaskSpec};
use serde::Deserialize;
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "concat",
    aliases: &["stack"],
    about: "the rows of a stage's inputs one after another, columns in the first input's order",
    kernel: |_, _, _| Err(super::combining_only("concat")),
    kwargs: "(none)\n\nRows of the inputs in the order the stage lists them. Every input has the same column names, in any order; types must match, except int64 beside float64, which becomes float64.",
    example: "{}",
    check: |args| crate::decodes::<Kwargs>(args),
    role: Role::Combine(run),
    row_local: false,
    ignored: &[],
    reduce: None,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kwargs {}

fn run(inputs: Vec<Input>, args: &Value, _: &Context) -> Result<Table, String> {
    let Kwargs {} = kwargs(args)?;
    let Some(first) = inputs.first() else {
        return Err("concat needs the tables of two or more stages".into());
    };
    // Each column's type in the result.
    let mut schema: Vec<(String, DType)> = first.table.schema();
    let mut wrong = Vec::new();
    for other in &inputs[1..] {
        for (name, dtype) in schema.iter_mut() {
            match other.table.column(name).map(Column::dtype) {
                None => wrong.push(format!("input `{}` has no column `{name}`", other.stage)),
                Some(t) if t == *dtype => {}
                Some(DType::Int64 | DType::Float64)
                    if matches!(dtype, DType::Int64 | DType::Float64) =>
                {
                    *dtype = DType::Float64
                }
                Some(t) => wrong.push(format!(
                    "column `{name}` is {dtype} in input `{}` but {t} in input `{}`",
                    first.stage, other.stage
                )),
            }
        }
        for name in other.table.names() {
            if first.table.column(name).is_none() {
                wrong.push(format!(
                    "input `{}` has column `{name}`, which input `{}` lacks",
                    other.stage, first.stage
                ));
            }
        }
    }
    if !wrong.is_empty() {
        return Err(format!(
            "the inputs must have the same columns: {}",
            wrong.join("; ")
        ));
    }
    let parts = inputs
        .into_iter()
        .map(|input| {
            let mut table = input.table;
            let columns = schema
                .iter()
                .map(|(name, dtype)| {
                    let column = table
                        .remove_column(name)
                        .ok_or_else(|| format!("input `{}` has no column `{name}`", input.stage))?;
                    let column = match (column, dtype) {
                        (Column::Int64(a), DType::Float64) => Column::Float64(a.mapv(|v| v as f64)),
                        (c, _) => c,
                    };
                    Ok((name.clone(), column))
                })
                .collect::<Result<Vec<_>, String>>()?;
            Table::from_columns(columns)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Table::concat(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    fn input(stage: &str, columns: Vec<(&str, Column)>) -> Input {
        Input {
            stage: stage.into(),
            table: Table::from_columns(columns.into_iter().map(|(n, c)| (n.into(), c)).collect())
                .expect("table"),
        }
    }

    fn concat(inputs: Vec<Input>) -> Result<Table, String> {
        run(inputs, &json!({}), &Context::new(Path::new(".")))
    }

    #[test]
    fn rows_follow_each_other_in_the_first_inputs_column_order() {
        let a = input(
            "week1",
            vec![("s", Column::text(&["a"])), ("v", Column::Int64(array![1]))],
        );
        let b = input(
            "week2",
            vec![
                ("v", Column::Float64(array![2.5, 3.0])),
                ("s", Column::text(&["b", "c"])),
            ],
        );
        let c = input(
            "week3",
            vec![("s", Column::text(&[])), ("v", Column::Int64(array![]))],
        );
        let t = concat(vec![a, b, c]).expect("concat");
        assert_eq!(t.names().collect::<Vec<_>>(), ["s", "v"]);
        assert_eq!(t.column("v"), Some(&Column::Float64(array![1.0, 2.5, 3.0])));
        assert_eq!(t.column("s"), Some(&Column::text(&["a", "b", "c"])));
    }

    #[test]
    fn every_difference_is_listed() {
        let a = input(
            "a",
            vec![
                ("x", Column::Int64(array![1])),
                ("y", Column::Bool(array![true])),
            ],
        );
        let b = input(
            "b",
            vec![("y", Column::text(&["t"])), ("z", Column::Int64(array![1]))],
        );
        assert_eq!(
            concat(vec![a, b]).expect_err("mismatch"),
            "the inputs must have the same columns: input `b` has no column `x`; column `y` is bool in input `a` but utf8 in input `b`; input `b` has column `z`, which input `a` lacks"
        );
    }
}
