//! `rename {columns: {old: new, ...}}`: renames columns in place, keeping
//! their order.

use crate::{decodes, kwargs, Role, Table, TaskSpec};
use serde::Deserialize;
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "rename",
    aliases: &[],
    about: "renames columns: {columns: {old: new}}",
    kernel: |t, a, _| run(t, a),
    kwargs: "columns: an object of old name -> new name",
    example: r#"{"columns": {"x": "reading"}}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: true,
    ignored: &[],
    reduce: None,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kwargs {
    columns: serde_json::Map<String, Value>,
}

fn run(table: Table, args: &Value) -> Result<Table, String> {
    let Kwargs { columns } = kwargs(args)?;
    let mut renames = Vec::with_capacity(columns.len());
    for (old, new) in &columns {
        table.require(old)?;
        let new = new
            .as_str()
            .ok_or_else(|| format!("bad kwargs: the new name for `{old}` must be a string"))?;
        renames.push((old.as_str(), new));
    }
    let renamed = table
        .into_columns()
        .into_iter()
        .map(|(name, column)| {
            let name = renames
                .iter()
                .find(|(old, _)| *old == name)
                .map_or(name, |(_, new)| new.to_string());
            (name, column)
        })
        .collect();
    Table::from_columns(renamed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Column, Context};
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    #[test]
    fn renames_in_place_and_refuses_clashes() {
        let t = Table::from_columns(vec![
            ("a".into(), Column::Int64(array![1])),
            ("b".into(), Column::Int64(array![2])),
        ])
        .expect("table");
        let ctx = Context::new(Path::new("."));
        let out = (SPEC.kernel)(t.clone(), &json!({"columns": {"a": "x"}}), &ctx).expect("rename");
        assert_eq!(out.names().collect::<Vec<_>>(), ["x", "b"]);
        let swapped = (SPEC.kernel)(t.clone(), &json!({"columns": {"a": "b", "b": "a"}}), &ctx)
            .expect("swap");
        assert_eq!(swapped.names().collect::<Vec<_>>(), ["b", "a"]);
        let err =
            (SPEC.kernel)(t.clone(), &json!({"columns": {"a": "b"}}), &ctx).expect_err("clash");
        assert!(err.contains("\"b\" appears twice"), "{err}");
        let err = (SPEC.kernel)(t, &json!({"columns": {"q": "b"}}), &ctx).expect_err("missing");
        assert!(err.contains("no column `q`"), "{err}");
    }
}
