//! `average {operations: [{a, column}]}`: a float64 column holding the mean
//! of column `a` on every row (nan for an empty column or one holding nan,
//! as numpy.mean gives).

use super::math::Kwargs;
use super::operand::at;
use super::operand::Operations;
use crate::{decodes, kwargs, Column, Role, Table, TaskSpec};
use ndarray::Array1;
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "average",
    aliases: &[],
    about: "column = mean of a, repeated on every row",
    kernel: |t, a, _| run(t, a),
    kwargs: "operations: list of {a, column}\n  a: a number column\n  column: the float64 column to write, mean(a) on every row",
    example: r#"{"operations": [{"a": "x", "column": "mean_x"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: false,
};

fn run(mut table: Table, args: &Value) -> Result<Table, String> {
    let Operations { operations } = kwargs::<Kwargs>(args)?;
    for (i, o) in operations.into_iter().enumerate() {
        let values = table.numeric(&o.a).map_err(at(i))?;
        let mean = mean(values.as_ref());
        let out = Array1::from_elem(table.rows(), mean);
        table
            .set_column(o.column, Column::Float64(out))
            .map_err(at(i))?;
    }
    Ok(table)
}

/// The arithmetic mean; nan when empty.
pub(crate) fn mean(values: &Array1<f64>) -> f64 {
    values.sum() / values.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    fn average(table: Table) -> Vec<f64> {
        let t = (SPEC.kernel)(
            table,
            &json!({"operations": [{"a": "x", "column": "m"}]}),
            &Context::new(Path::new(".")),
        )
        .expect("average");
        match t.column("m") {
            Some(Column::Float64(a)) => a.to_vec(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mean_on_every_row() {
        let t =
            Table::from_columns(vec![("x".into(), Column::Int64(array![1, 2, 6]))]).expect("table");
        assert_eq!(average(t), [3.0, 3.0, 3.0]);
    }

    #[test]
    fn nan_one_row_and_empty() {
        let t = Table::from_columns(vec![("x".into(), Column::Float64(array![1.0, f64::NAN]))])
            .expect("table");
        assert!(average(t).iter().all(|v| v.is_nan()));
        let t =
            Table::from_columns(vec![("x".into(), Column::Float64(array![4.5]))]).expect("table");
        assert_eq!(average(t), [4.5]);
        let t = Table::from_columns(vec![("x".into(), Column::Float64(array![]))]).expect("table");
        assert!(average(t).is_empty());
    }
}
