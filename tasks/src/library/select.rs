//! `select {columns: [..]}`: only the listed columns, in the listed order.

use crate::{decodes, kwargs, Column, Role, Table, TaskSpec};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "select",
    aliases: &[],
    about: "keeps only the listed columns, in that order",
    kernel: |t, a, _| run(t, a),
    kwargs: "columns: the columns to keep, in that order",
    example: r#"{"columns": ["site", "x"]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: true,
    ignored: &[],
    reduce: None,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kwargs {
    columns: Vec<String>,
}

fn run(table: Table, args: &Value) -> Result<Table, String> {
    let Kwargs { columns } = kwargs(args)?;
    // By name, once: a wide table's select would otherwise search it once
    // per column.
    let by_name: HashMap<&str, &Column> = table.iter().collect();
    let mut seen = HashSet::new();
    let picked = columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let at = |e: String| format!("bad kwargs at `columns[{i}]`: {e}");
            if !seen.insert(name) {
                return Err(at(format!("`{name}` is listed twice")));
            }
            match by_name.get(name.as_str()) {
                Some(column) => Ok((name.clone(), (*column).clone())),
                None => Err(at(table.require(name).err().unwrap_or_default())),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Table::from_columns(picked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    #[test]
    fn picks_and_orders() {
        let t = Table::from_columns(vec![
            ("a".into(), Column::Int64(array![1])),
            ("b".into(), Column::Int64(array![2])),
            ("c".into(), Column::Int64(array![3])),
        ])
        .expect("table");
        let ctx = Context::new(Path::new("."));
        let out = (SPEC.kernel)(t.clone(), &json!({"columns": ["c", "a"]}), &ctx).expect("select");
        assert_eq!(out.names().collect::<Vec<_>>(), ["c", "a"]);
        let err =
            (SPEC.kernel)(t.clone(), &json!({"columns": ["a", "d"]}), &ctx).expect_err("missing");
        assert!(err.contains("no column `d`"), "{err}");
        let err = (SPEC.kernel)(t, &json!({"columns": ["a", "a"]}), &ctx).expect_err("twice");
        assert_eq!(err, "bad kwargs at `columns[1]`: `a` is listed twice");
    }
}
