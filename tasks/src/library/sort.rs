//! `sort {column, descending}`: the rows in order of `column`, ascending
//! unless `descending` is true. The sort is stable (rows with equal values
//! keep their order) and nan comes last either way.

use super::keys::{cmp_rows, radix_keys, radix_order};
use crate::{decodes, kwargs, without, Ignored, Role, Table, TaskSpec, When};
use serde::Deserialize;
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "sort",
    aliases: &[],
    about: "stable sort of the rows by a column (descending: true to reverse)",
    kernel: |t, a, _| run(t, a),
    kwargs: "column: the column to sort by (stable; nan last)\ndescending: boolean, default false",
    example: r#"{"column": "x", "descending": true}"#,
    check: |args| decodes::<Kwargs>(&without(args, IGNORED)),
    role: Role::Transform,
    row_local: false,
    ignored: IGNORED,
    reduce: None,
};

/// The original passed these on to numpy's sort.
const IGNORED: &[Ignored] = &[
    Ignored {
        field: "axis",
        why: "a table's rows are what is sorted; there is no other axis",
        when: When::Always,
    },
    Ignored {
        field: "method",
        why: "rtl's sort is always stable, as numpy's kind=\"stable\" (one of the orders any kind may give)",
        when: When::Always,
    },
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kwargs {
    column: String,
    #[serde(default)]
    descending: bool,
}

fn run(table: Table, args: &Value) -> Result<Table, String> {
    let Kwargs { column, descending } = kwargs(&without(args, IGNORED))?;
    let key = table.require(&column)?;
    // Numbers sort by radix (linear time, stable); text and bools compare.
    let order = match radix_keys(key, descending) {
        Some(keys) => radix_order(&keys),
        None => {
            let mut order: Vec<usize> = (0..table.rows()).collect();
            if descending {
                order.sort_by(|&i, &j| cmp_rows(key, j, i));
            } else {
                order.sort_by(|&i, &j| cmp_rows(key, i, j));
            }
            order
        }
    };
    Ok(table.take(&order))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Column, Context};
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    fn sorted(args: Value) -> Result<Vec<i64>, String> {
        let t = Table::from_columns(vec![
            ("id".into(), Column::Int64(array![0, 1, 2, 3, 4])),
            (
                "x".into(),
                Column::Float64(array![2.0, f64::NAN, 1.0, 2.0, 3.0]),
            ),
        ])
        .expect("table");
        let t = (SPEC.kernel)(t, &args, &Context::new(Path::new(".")))?;
        match t.column("id") {
            Some(Column::Int64(a)) => Ok(a.to_vec()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stable_both_ways_with_nan_last() {
        assert_eq!(
            sorted(json!({"column": "x"})).expect("asc"),
            [2, 0, 3, 4, 1]
        );
        assert_eq!(
            sorted(json!({"column": "x", "descending": true})).expect("desc"),
            [4, 0, 3, 2, 1]
        );
    }

    #[test]
    fn text_sorts_both_ways() {
        let t = Table::from_columns(vec![(
            "s".into(),
            Column::Utf8(ndarray::array![
                "b".to_string(),
                "a".to_string(),
                "c".to_string()
            ]),
        )])
        .expect("table");
        let ctx = Context::new(Path::new("."));
        let up = (SPEC.kernel)(t.clone(), &json!({"column": "s"}), &ctx).expect("asc");
        assert_eq!(
            up.column("s"),
            Some(&Column::Utf8(ndarray::array![
                "a".to_string(),
                "b".to_string(),
                "c".to_string()
            ]))
        );
        let down =
            (SPEC.kernel)(t, &json!({"column": "s", "descending": true}), &ctx).expect("desc");
        assert_eq!(
            down.column("s"),
            Some(&Column::Utf8(ndarray::array![
                "c".to_string(),
                "b".to_string(),
                "a".to_string()
            ]))
        );
    }

    #[test]
    fn missing_column() {
        let err = sorted(json!({"column": "y"})).expect_err("missing");
        assert!(
            err.contains("no column `y`; available columns: id (int64), x (float64)"),
            "{err}"
        );
    }
}
