//! `classify_static {operations: [{a, column}]}`, where `a` is a column or
//! a list of columns: two int64 columns per operation. `<column>Class` is
//! the index of the row's key among the distinct keys sorted ascending
//! (lexicographic over the listed columns, in order), and
//! `<column>ClassCount` is how many rows share that key.

use super::keys::groups;
use super::operand::{at, Operations};
use crate::{decodes, kwargs, Column, Role, Table, TaskSpec};
use ndarray::Array1;
use serde::Deserialize;
use serde_json::Value;

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "classify_static",
    aliases: &["classifyStatic"],
    about:
        "<column>Class: index of each row's key among the sorted distinct keys; <column>ClassCount",
    kernel: |t, a, _| run(t, a),
    kwargs: "operations: list of {a, column}\n  a: a column, or a list of columns (keys compare in that order)\n  column: prefix of the two int64 columns written:\n    <column>Class: the index, from 0, of the row's key among the distinct keys sorted ascending (numbers by value, nan last and all nan one key; false before true; text by bytes)\n    <column>ClassCount: how many rows have that key",
    example: r#"{"operations": [{"a": ["site", "n"], "column": "group"}]}"#,
    check: decodes::<Kwargs>,
    role: Role::Transform,
    row_local: false,
    ignored: &[],
    reduce: None,
};

type Kwargs = Operations<Operation>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Operation {
    a: OneOrMany,
    column: String,
}

#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "expected a column name or a list of column names"
)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn run(mut table: Table, args: &Value) -> Result<Table, String> {
    let Operations { operations } = kwargs::<Kwargs>(args)?;
    for (i, o) in operations.into_iter().enumerate() {
        let names = match o.a {
            OneOrMany::One(name) => vec![name],
            OneOrMany::Many(names) if !names.is_empty() => names,
            OneOrMany::Many(_) => return Err(at(i)("`a` lists no columns".into())),
        };
        let keys = names
            .iter()
            .map(|n| table.require(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(at(i))?;
        let mut class = Array1::<i64>::zeros(table.rows());
        let mut count = Array1::<i64>::zeros(table.rows());
        for (index, group) in groups(&keys, table.rows()).into_iter().enumerate() {
            for &row in &group {
                class[row] = index as i64;
                count[row] = group.len() as i64;
            }
        }
        table
            .set_column(format!("{}Class", o.column), Column::Int64(class))
            .map_err(at(i))?;
        table
            .set_column(format!("{}ClassCount", o.column), Column::Int64(count))
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
            ("site".into(), Column::text(&["n", "s", "n", "e"])),
            ("level".into(), Column::Int64(array![2, 1, 1, 2])),
        ])
        .expect("table")
    }

    fn classes(args: Value, column: &str) -> (Vec<i64>, Vec<i64>) {
        let t = (SPEC.kernel)(table(), &args, &Context::new(Path::new("."))).expect("classify");
        let get = |name: String| match t.column(&name) {
            Some(Column::Int64(a)) => a.to_vec(),
            other => panic!("{name}: {other:?}"),
        };
        (
            get(format!("{column}Class")),
            get(format!("{column}ClassCount")),
        )
    }

    #[test]
    fn one_column() {
        let (class, count) = classes(json!({"operations": [{"a": "site", "column": "s"}]}), "s");
        assert_eq!(class, [1, 2, 1, 0], "e < n < s");
        assert_eq!(count, [2, 1, 2, 1]);
    }

    #[test]
    fn several_columns() {
        let (class, count) = classes(
            json!({"operations": [{"a": ["level", "site"], "column": "k"}]}),
            "k",
        );
        // keys: (2,n) (1,s) (1,n) (2,e) -> sorted (1,n) (1,s) (2,e) (2,n)
        assert_eq!(class, [3, 1, 0, 2]);
        assert_eq!(count, [1, 1, 1, 1]);
    }

    #[test]
    fn empty_list_is_refused() {
        let err = (SPEC.kernel)(
            table(),
            &json!({"operations": [{"a": [], "column": "k"}]}),
            &Context::new(Path::new(".")),
        )
        .expect_err("empty");
        assert!(err.contains("lists no columns"), "{err}");
    }
}
