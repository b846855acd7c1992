//! `null {}`: returns its input unchanged. Useful to move a table through the
//! transport and to measure the transport itself. `difference` is an alias:
//! the original's `task_difference` also returns its input unchanged, so
//! its jobs run as they did, `operations` and all (ignored, with a warning).

use crate::{decodes, kwargs, without, Context, Ignored, Role, Table, TaskSpec, When};
use serde::Deserialize;
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "null",
    aliases: &["difference"],
    about: "identity: returns the table unchanged, as the original's `difference` does",
    kernel: run,
    kwargs: "(none)",
    example: r#"{}"#,
    check: |args| decodes::<Kwargs>(&without(args, IGNORED)),
    role: Role::Transform,
    row_local: true,
    ignored: IGNORED,
    reduce: None,
};

/// The original's `difference` took operations, and did nothing with them.
const IGNORED: &[Ignored] = &[Ignored {
    field: "operations",
    why: "null (and difference, as in the original) returns its input unchanged",
    when: When::Always,
}];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kwargs {}

fn run(table: Table, args: &Value, _: &Context) -> Result<Table, String> {
    let Kwargs {} = kwargs(&without(args, IGNORED))?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Column;
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    #[test]
    fn returns_the_input_and_refuses_kwargs() {
        let ctx = Context::new(Path::new("."));
        let t =
            Table::from_columns(vec![("a".into(), Column::Int64(array![1, 2]))]).expect("table");
        assert_eq!(run(t.clone(), &json!({}), &ctx), Ok(t.clone()));
        let err = run(t, &json!({"x": 1}), &ctx).expect_err("unknown kwarg");
        assert!(err.contains("unknown field `x`"), "{err}");
    }
}
