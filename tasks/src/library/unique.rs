//! `unique {a}`: one row per distinct value of column `a`, ascending by `a`,
//! keeping the first row that had each value (all nan count as one value,
//! as numpy.unique has it). Jobs of the original may name the column
//! `column` instead of `a`; beside `a`, `column` is ignored, with a warning.

use super::keys::groups;
use crate::{decodes, kwargs, without, Ignored, Role, Table, TaskSpec, When};
use serde::Deserialize;
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "unique",
    aliases: &[],
    about: "one row per distinct value of a column, ascending, first row kept",
    kernel: |t, a, _| run(t, a),
    kwargs: "a: the column whose distinct values each keep one row (the first), ascending\ncolumn: the same, for jobs that name it so; beside a, it is ignored",
    example: r#"{"a": "site"}"#,
    check: |args| decodes::<Kwargs>(&without(args, IGNORED)),
    role: Role::Transform,
    row_local: false,
    ignored: IGNORED,
    reduce: None,
};

#[derive(Deserialize)]
#[serde(try_from = "Written")]
struct Kwargs {
    a: String,
}

const IGNORED: &[Ignored] = &[Ignored {
    field: "column",
    why: "`a` names the column to make unique; `column` does only without it",
    when: When::Beside("a"),
}];

/// The kwargs as a job writes them: the column as `a`, or as `column`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    a: Option<String>,
    column: Option<String>,
}

impl TryFrom<Written> for Kwargs {
    type Error = String;

    fn try_from(written: Written) -> Result<Kwargs, String> {
        match (written.a, written.column) {
            (Some(a), _) | (None, Some(a)) => Ok(Kwargs { a }),
            (None, None) => Err("missing field `a`, the column to make unique".into()),
        }
    }
}

fn run(table: Table, args: &Value) -> Result<Table, String> {
    let Kwargs { a } = kwargs(&without(args, IGNORED))?;
    let key = table.require(&a)?;
    let firsts: Vec<usize> = groups(&[key], table.rows())
        .into_iter()
        .map(|g| g[0])
        .collect();
    Ok(table.take(&firsts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Column, Context};
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    #[test]
    fn first_row_per_value_ascending() {
        let t = Table::from_columns(vec![
            ("k".into(), Column::text(&["b", "a", "b", "a"])),
            ("v".into(), Column::Int64(array![1, 2, 3, 4])),
        ])
        .expect("table");
        let t =
            (SPEC.kernel)(t, &json!({"a": "k"}), &Context::new(Path::new("."))).expect("unique");
        assert_eq!(t.column("v"), Some(&Column::Int64(array![2, 1])));
        let empty =
            Table::from_columns(vec![("k".into(), Column::Int64(array![]))]).expect("table");
        assert_eq!(
            (SPEC.kernel)(empty, &json!({"a": "k"}), &Context::new(Path::new(".")))
                .expect("empty")
                .rows(),
            0
        );
    }
}
