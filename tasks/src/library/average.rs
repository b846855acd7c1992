//! `average {operations: [{a, column}]}`: a float64 column holding the mean
//! of column `a` on every row (nan for an empty column or one holding nan,
//! as numpy.mean gives).

use super::math::Kwargs;
use super::operand::at;
use super::operand::Operations;
use crate::reduce::{Reduce, Stat};
use crate::{decodes, kwargs, Column, Role, Table, TaskSpec};
use ndarray::Array1;
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "average",
    aliases: &[],
    about: "column = mean of a, repeated on every row",
    kernel: |t, a, _| run(t, a),
    kwargs: "operations: list of {a, column}\n  a: a number column\n  column: the float64 column to write: mean(a) = sum(a) / rows on every row, the sum exact (as math.fsum); nan if a holds a nan or the table has no rows",
    example: r#"{"operations": [{"a": "x", "column": "mean_x"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: false,
    ignored: &[],
    reduce: Some(Reduce {
        applies,
        partial,
        apply,
    }),
};

fn run(mut table: Table, args: &Value) -> Result<Table, String> {
    let Operations { operations } = kwargs::<Kwargs>(args)?;
    for (i, o) in operations.into_iter().enumerate() {
        // Each operation sees the columns the ones before it wrote.
        let figures = figures(&table, &o.a).map_err(at(i))?;
        table = write_mean(table, o.column, &figures).map_err(at(i))?;
    }
    Ok(table)
}

/// Chunk by chunk only when no operation averages a column an earlier one
/// writes (its figures would not exist before the task runs).
fn applies(args: &Value) -> bool {
    kwargs::<Kwargs>(args).is_ok_and(|Operations { operations }| {
        operations
            .iter()
            .enumerate()
            .all(|(i, o)| operations[..i].iter().all(|earlier| earlier.column != o.a))
    })
}

/// Per operation: the sum of `a` and its row count.
fn partial(table: &Table, args: &Value) -> Result<Vec<Stat>, String> {
    let Operations { operations } = kwargs::<Kwargs>(args)?;
    let mut out = Vec::with_capacity(2 * operations.len());
    for (i, o) in operations.iter().enumerate() {
        out.extend(figures(table, &o.a).map_err(at(i))?);
    }
    Ok(out)
}

fn apply(mut table: Table, args: &Value, stats: &[Stat]) -> Result<Table, String> {
    let Operations { operations } = kwargs::<Kwargs>(args)?;
    if stats.len() != 2 * operations.len() {
        return Err(format!(
            "{} figures for {} operations",
            stats.len(),
            operations.len()
        ));
    }
    for (i, (o, figures)) in operations.into_iter().zip(stats.chunks(2)).enumerate() {
        table = write_mean(table, o.column, figures).map_err(at(i))?;
    }
    Ok(table)
}

fn figures(table: &Table, a: &str) -> Result<[Stat; 2], String> {
    let values = table.numeric(a)?;
    Ok([
        Stat::sum_of(values.iter().copied()),
        Stat::Sum(vec![values.len() as f64]),
    ])
}

/// `column` = sum / count on every row (nan when there are no rows).
fn write_mean(mut table: Table, column: String, figures: &[Stat]) -> Result<Table, String> {
    let mean = figures[0].value() / figures[1].value();
    let out = Array1::from_elem(table.rows(), mean);
    table.set_column(column, Column::Float64(out))?;
    Ok(table)
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
