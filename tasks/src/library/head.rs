//! `head {n}`: the first `n` rows (all of them when there are fewer).

use crate::{decodes, kwargs, Role, Table, TaskSpec};
use serde::Deserialize;
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "head",
    aliases: &[],
    about: "keeps the first n rows",
    kernel: |t, a, _| run(t, a),
    kwargs: "n: how many rows to keep, from the top (all of them when the table has fewer)",
    example: r#"{"n": 10}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: false,
    ignored: &[],
    reduce: None,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kwargs {
    n: usize,
}

fn run(table: Table, args: &Value) -> Result<Table, String> {
    let Kwargs { n } = kwargs(args)?;
    if n >= table.rows() {
        return Ok(table);
    }
    Ok(table.slice(0, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Column, Context};
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    #[test]
    fn first_rows() {
        let t =
            Table::from_columns(vec![("a".into(), Column::Int64(array![1, 2, 3]))]).expect("table");
        let ctx = Context::new(Path::new("."));
        let out = (SPEC.kernel)(t.clone(), &json!({"n": 2}), &ctx).expect("head");
        assert_eq!(out.column("a"), Some(&Column::Int64(array![1, 2])));
        assert_eq!(
            (SPEC.kernel)(t.clone(), &json!({"n": 10}), &ctx)
                .expect("head")
                .rows(),
            3
        );
        let err = (SPEC.kernel)(t, &json!({"n": -1}), &ctx).expect_err("negative");
        assert!(err.contains("bad kwargs"), "{err}");
    }
}
