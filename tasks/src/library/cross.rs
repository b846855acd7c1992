//! `cross_average`, `cross_max` `{operations: [{columns: [..], column}]}`:
//! the row-wise mean or maximum of the listed columns, as float64. A nan in
//! any listed column makes that row's result nan, as numpy's mean and max
//! over an axis do. `aggregate` and `average_cross` (the original's older
//! `task_average_cross`) are aliases of `cross_average`; `max_cross`
//! (`task_max_cross`) of `cross_max`.

use super::operand::{at, Operations};
use crate::{decodes, kwargs, Column, Role, Table, TaskSpec};
use ndarray::{Array1, Zip};
use serde::Deserialize;
use serde_json::Value;

pub(crate) const CROSS_AVERAGE: TaskSpec = TaskSpec {
    name: "cross_average",
    aliases: &["crossAverage", "aggregate", "average_cross"],
    about: "column = row-wise mean of the listed columns",
    kernel: |t, a, _| cross(t, a, Reduce::Mean),
    kwargs: "operations: list of {columns, column}\n  columns: the number columns to average row by row\n  column: the float64 column to write: (c1 + c2 + ...) / count, row by row; nan where a listed value is nan",
    example: r#"{"operations": [{"columns": ["x", "y"], "column": "xy_mean"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: true,
    ignored: &[],
    reduce: None,
};

pub(crate) const CROSS_MAX: TaskSpec = TaskSpec {
    name: "cross_max",
    aliases: &["crossMax", "max_cross"],
    about: "column = row-wise maximum of the listed columns",
    kernel: |t, a, _| cross(t, a, Reduce::Max),
    kwargs: "operations: list of {columns, column}\n  columns: the number columns to take the row-wise maximum of\n  column: the float64 column to write: max(c1, c2, ...), row by row; nan where a listed value is nan",
    example: r#"{"operations": [{"columns": ["x", "y"], "column": "xy_max"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: true,
    ignored: &[],
    reduce: None,
};

type Kwargs = Operations<Operation>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Operation {
    columns: Vec<String>,
    column: String,
}

#[derive(Clone, Copy)]
enum Reduce {
    Mean,
    Max,
}

fn cross(mut table: Table, args: &Value, reduce: Reduce) -> Result<Table, String> {
    let Operations { operations } = kwargs::<Kwargs>(args)?;
    for (i, o) in operations.into_iter().enumerate() {
        if o.columns.is_empty() {
            return Err(at(i)("`columns` lists no columns".into()));
        }
        let mut acc: Option<Array1<f64>> = None;
        for name in &o.columns {
            let values = table.numeric(name).map_err(at(i))?;
            acc = Some(match acc {
                None => values.into_owned(),
                Some(mut acc) => {
                    Zip::from(&mut acc).and(values.as_ref()).for_each(|a, &v| {
                        *a = match reduce {
                            Reduce::Mean => *a + v,
                            Reduce::Max if a.is_nan() || v.is_nan() => f64::NAN,
                            Reduce::Max => a.max(v),
                        }
                    });
                    acc
                }
            });
        }
        let mut out = acc.unwrap_or_default();
        if let Reduce::Mean = reduce {
            out /= o.columns.len() as f64;
        }
        table
            .set_column(o.column, Column::Float64(out))
            .map_err(at(i))?;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    fn table() -> Table {
        Table::from_columns(vec![
            ("a".into(), Column::Int64(array![1, 5, 2])),
            ("b".into(), Column::Float64(array![3.0, -1.0, f64::NAN])),
        ])
        .expect("table")
    }

    fn out(spec: &TaskSpec) -> Vec<f64> {
        let t = (spec.kernel)(
            table(),
            &json!({"operations": [{"columns": ["a", "b"], "column": "c"}]}),
            &Context::new(Path::new(".")),
        )
        .expect("cross");
        match t.column("c") {
            Some(Column::Float64(a)) => a.to_vec(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn row_wise_mean_and_max_with_nan() {
        let mean = out(&CROSS_AVERAGE);
        assert_eq!(&mean[..2], [2.0, 2.0]);
        assert!(mean[2].is_nan());
        let max = out(&CROSS_MAX);
        assert_eq!(&max[..2], [3.0, 5.0]);
        assert!(max[2].is_nan());
    }

    #[test]
    fn empty_list_and_missing_column() {
        let ctx = Context::new(Path::new("."));
        let err = (CROSS_MAX.kernel)(
            table(),
            &json!({"operations": [{"columns": [], "column": "c"}]}),
            &ctx,
        )
        .expect_err("empty");
        assert!(err.contains("lists no columns"), "{err}");
        let err = (CROSS_MAX.kernel)(
            table(),
            &json!({"operations": [{"columns": ["a", "q"], "column": "c"}]}),
            &ctx,
        )
        .expect_err("missing");
        assert!(err.contains("no column `q`"), "{err}");
    }
}
