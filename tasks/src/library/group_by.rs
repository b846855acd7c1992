//! `group_by {by: [..], aggregations: [{a, op, column}]}`: one row per
//! distinct key of the `by` columns, groups ascending (lexicographic over
//! `by`), holding the `by` columns and one column per aggregation. `op` is
//! `sum`, `mean`, `min`, `max` or `count`. count is int64; mean is float64;
//! sum, min and max keep int64 for an int64 column (a sum past the int64
//! range wraps, as numpy's does). A nan in a group makes its sum, mean, min
//! and max nan, as numpy's reductions do; nan keys form one group, last.

use super::keys::{cmp_f64, groups};
use crate::{decodes, kwargs, Column, Role, Table, TaskSpec};
use ndarray::Array1;
use serde::Deserialize;
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "group_by",
    aliases: &["groupBy"],
    about: "one row per distinct key of the by columns, with sum/mean/min/max/count aggregations",
    kernel: |t, a, _| run(t, a),
    kwargs: "by: the key columns; one row per distinct key, sorted ascending (lexicographic over by; nan last, all nan one key)\naggregations: list of {a, op, column}\n  a: the column to aggregate\n  op: sum | mean | min | max | count\n    sum, min, max: of the group's values, int64 for an int64 column (a sum past the int64 range wraps, as numpy's), else float64; nan if the group holds a nan\n    mean: sum / rows, float64\n    count: the group's rows, int64\n  column: the column to write",
    example: r#"{"by": ["site"], "aggregations": [{"a": "x", "op": "mean", "column": "mean_x"}, {"a": "x", "op": "count", "column": "rows"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: false,
    ignored: &[],
    reduce: None,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kwargs {
    by: Vec<String>,
    #[serde(default)]
    aggregations: Vec<Aggregation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Aggregation {
    a: String,
    op: Op,
    column: String,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Op {
    Sum,
    Mean,
    Min,
    Max,
    Count,
}

fn run(table: Table, args: &Value) -> Result<Table, String> {
    let Kwargs { by, aggregations } = kwargs(args)?;
    if by.is_empty() {
        return Err("`by` lists no columns".into());
    }
    let keys = by
        .iter()
        .map(|n| table.require(n))
        .collect::<Result<Vec<_>, _>>()?;
    let groups = groups(&keys, table.rows());
    let firsts: Vec<usize> = groups.iter().map(|g| g[0]).collect();
    let mut out = Table::from_columns(
        by.iter()
            .zip(&keys)
            .map(|(name, column)| (name.clone(), column.take(&firsts)))
            .collect(),
    )?;
    for (i, agg) in aggregations.iter().enumerate() {
        let fail = |e: String| format!("aggregations[{i}]: {e}");
        if by.contains(&agg.column) {
            return Err(fail(format!(
                "column `{}` is a `by` column already; give the aggregation another name",
                agg.column
            )));
        }
        if let Some(j) = aggregations[..i]
            .iter()
            .position(|a| a.column == agg.column)
        {
            return Err(fail(format!(
                "column `{}` is written by aggregations[{j}] already; give each aggregation its own name",
                agg.column
            )));
        }
        let column = match agg.op {
            Op::Count => Column::Int64(groups.iter().map(|g| g.len() as i64).collect()),
            op => reduce(table.require(&agg.a).map_err(fail)?, &groups, op)
                .map_err(|e| fail(format!("column `{}`: {e}", agg.a)))?,
        };
        out.set_column(agg.column.clone(), column).map_err(fail)?;
    }
    Ok(out)
}

fn reduce(column: &Column, groups: &[Vec<usize>], op: Op) -> Result<Column, String> {
    match (column, op) {
        // Wraps past the int64 range, as numpy's int64 sums do, in every
        // build (a plain `sum` would panic in a debug one).
        (Column::Int64(a), Op::Sum) => Ok(Column::Int64(per_group(groups, |g| {
            g.iter().fold(0i64, |sum, &r| sum.wrapping_add(a[r]))
        }))),
        (Column::Int64(a), Op::Min) => Ok(Column::Int64(per_group(groups, |g| {
            g.iter().map(|&r| a[r]).min().unwrap_or(0)
        }))),
        (Column::Int64(a), Op::Max) => Ok(Column::Int64(per_group(groups, |g| {
            g.iter().map(|&r| a[r]).max().unwrap_or(0)
        }))),
        (Column::Int64(a), Op::Mean) => Ok(Column::Float64(per_group(groups, |g| {
            g.iter().map(|&r| a[r] as f64).sum::<f64>() / g.len() as f64
        }))),
        (Column::Float64(a), op) => Ok(Column::Float64(per_group(groups, |g| {
            let values = g.iter().map(|&r| a[r]);
            match op {
                Op::Sum => values.sum(),
                Op::Mean => values.sum::<f64>() / g.len() as f64,
                Op::Min => values
                    .reduce(|x, y| nan_or(x, y, cmp_f64(x, y).is_le()))
                    .unwrap_or(f64::NAN),
                Op::Max => values
                    .reduce(|x, y| nan_or(x, y, cmp_f64(x, y).is_ge()))
                    .unwrap_or(f64::NAN),
                Op::Count => g.len() as f64,
            }
        }))),
        (other, _) => Err(format!(
            "is {}, but sum, mean, min and max need a number column",
            other.dtype()
        )),
    }
}

/// nan if either is nan, else `x` when `keep_x`, else `y`.
fn nan_or(x: f64, y: f64, keep_x: bool) -> f64 {
    if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if keep_x {
        x
    } else {
        y
    }
}

fn per_group<T>(groups: &[Vec<usize>], f: impl Fn(&[usize]) -> T) -> Array1<T> {
    groups.iter().map(|g| f(g)).collect()
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
            ("site".into(), Column::text(&["n", "s", "n", "s", "e"])),
            ("n".into(), Column::Int64(array![1, 2, 3, 4, 5])),
            (
                "x".into(),
                Column::Float64(array![0.5, 1.5, 2.5, f64::NAN, -1.0]),
            ),
        ])
        .expect("table")
    }

    fn group(args: Value) -> Result<Table, String> {
        (SPEC.kernel)(table(), &args, &Context::new(Path::new(".")))
    }

    #[test]
    fn aggregations_per_group_ascending() {
        let t = group(json!({"by": ["site"], "aggregations": [
            {"a": "n", "op": "sum", "column": "total"},
            {"a": "n", "op": "mean", "column": "avg"},
            {"a": "x", "op": "max", "column": "xmax"},
            {"a": "x", "op": "min", "column": "xmin"},
            {"a": "n", "op": "count", "column": "rows"}
        ]}))
        .expect("group_by");
        assert_eq!(t.column("site"), Some(&Column::text(&["e", "n", "s"])));
        assert_eq!(t.column("total"), Some(&Column::Int64(array![5, 4, 6])));
        assert_eq!(
            t.column("avg"),
            Some(&Column::Float64(array![5.0, 2.0, 3.0]))
        );
        assert_eq!(t.column("rows"), Some(&Column::Int64(array![1, 2, 2])));
        let Some(Column::Float64(xmax)) = t.column("xmax") else {
            panic!("xmax")
        };
        assert_eq!((xmax[0], xmax[1]), (-1.0, 2.5));
        assert!(xmax[2].is_nan(), "nan propagates");
        let Some(Column::Float64(xmin)) = t.column("xmin") else {
            panic!("xmin")
        };
        assert_eq!((xmin[0], xmin[1]), (-1.0, 0.5));
    }

    #[test]
    fn int64_sums_wrap_as_numpys_do() {
        let t = Table::from_columns(vec![
            ("k".into(), Column::Int64(array![1, 1])),
            ("n".into(), Column::Int64(array![i64::MAX, 2])),
        ])
        .expect("table");
        let args = json!({"by": ["k"], "aggregations": [{"a": "n", "op": "sum", "column": "s"}]});
        let t = (SPEC.kernel)(t, &args, &Context::new(Path::new("."))).expect("sum");
        assert_eq!(t.column("s"), Some(&Column::Int64(array![i64::MIN + 1])));
    }

    #[test]
    fn aggregations_never_overwrite_a_key_or_each_other() {
        let err = group(
            json!({"by": ["site"], "aggregations": [{"a": "n", "op": "sum", "column": "site"}]}),
        )
        .unwrap_err();
        assert!(
            err.contains("aggregations[0]: column `site` is a `by` column already"),
            "{err}"
        );
        let err = group(json!({"by": ["site"], "aggregations": [
            {"a": "n", "op": "sum", "column": "t"},
            {"a": "n", "op": "max", "column": "t"}
        ]}))
        .unwrap_err();
        assert!(
            err.contains("aggregations[1]: column `t` is written by aggregations[0] already"),
            "{err}"
        );
    }

    #[test]
    fn bad_aggregations_are_named() {
        let err = group(
            json!({"by": ["site"], "aggregations": [{"a": "site", "op": "sum", "column": "t"}]}),
        )
        .expect_err("utf8 sum");
        assert!(
            err.contains("aggregations[0]: column `site`: is utf8"),
            "{err}"
        );
        let err = group(json!({"by": ["nope"]})).expect_err("missing by");
        assert!(err.contains("no column `nope`"), "{err}");
        let err = group(
            json!({"by": ["site"], "aggregations": [{"a": "n", "op": "median", "column": "t"}]}),
        )
        .expect_err("op");
        assert!(err.contains("unknown value `median`"), "{err}");
    }
}
