//! `rename {columns: {old: new, ...}}`: renames columns in place, keeping
//! their order.

use crate::{decodes, kwargs, Role, Table, TaskSpec};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

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
    let mut renames = HashMap::with_capacity(columns.len());
    for (old, new) in &columns {
        let at = |e: String| format!("bad kwargs at `columns.{old}`: {e}");
        table.require(old).map_err(at)?;
        let new = new
            .as_str()
            .ok_or_else(|| at("the new name must be a string".into()))?;
        renames.insert(old.as_str(), new);
    }
    // Names after renaming, so a clash names the rename that makes it.
    let mut taken = HashMap::with_capacity(table.width());
    let renamed = table
        .into_columns()
        .into_iter()
        .map(|(name, column)| {
            let new = renames.get(name.as_str()).map(|n| n.to_string());
            let shown = new.clone().unwrap_or_else(|| name.clone());
            if let Some(other) = taken.insert(shown.clone(), name.clone()) {
                let renamed = if new.is_some() { &name } else { &other };
                return Err(format!(
                    "bad kwargs at `columns.{renamed}`: renames `{renamed}` to `{shown}`, which is the name of another column; rename that one too, or choose another name"
                ));
            }
            Ok((shown, column))
        })
        .collect::<Result<Vec<_>, String>>()?;
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
        assert_eq!(err, "bad kwargs at `columns.a`: renames `a` to `b`, which is the name of another column; rename that one too, or choose another name");
        let err = (SPEC.kernel)(t, &json!({"columns": {"q": "b"}}), &ctx).expect_err("missing");
        assert!(err.contains("no column `q`"), "{err}");
    }
}
