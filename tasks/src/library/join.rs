//! `join {on, how}`: the tables of a stage's inputs joined on key columns,
//! left to right: ((first ⋈ second) ⋈ third).
//!
//! Rows come in the first input's order; for each of its rows, the
//! matching rows of the other input in that input's order, as pandas'
//! `merge(..., sort=False)` gives them. Keys compare exactly (float64
//! too, with -0 equal to 0); a NaN key never matches. A non-key column of
//! the other input whose name is taken gets the suffix `_<its stage>`.
//! In a left join, a row without a match keeps its place with NaN in the
//! other input's number columns and "" in its text columns; that input's
//! int64 and bool columns are float64 in a left join whether or not a row
//! misses, so the schema never depends on the data.
//!
//! The match is a hash join written here: the right input's rows are
//! chained per key hash in row order, and each row of the left probes its
//! chain, comparing the keys themselves.

use crate::{kwargs, Column, Context, DType, Input, Role, Table, TaskSpec};
use ndarray::Array1;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

pub(crate) const SPEC: TaskSpec = TaskSpec {
    name: "join",
    aliases: &["merge"],
    about: "joins a stage's inputs on key columns (inner or left), in the first input's row order",
    kernel: |_, _, _| Err(super::combining_only("join")),
    kwargs: "on: the key column, or a list of them; each input has them, with the same type (int64, utf8, bool or float64)\nhow: \"inner\" (default: rows with a match) or \"left\" (every row of the first input; NaN or \"\" where the other has no match)\n\nInputs join left to right: ((first ⋈ second) ⋈ third). Rows keep the first input's order; each row's matches come in the other input's order. Keys match exactly; NaN never matches. A non-key column whose name is taken gets the suffix _<its stage>. In a left join the other input's int64 and bool columns become float64.",
    example: r#"{"on": "site"}"#,
    check: |args| crate::decodes::<Kwargs>(args),
    role: Role::Combine(run),
    row_local: false,
    ignored: &[],
    reduce: None,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kwargs {
    on: Keys,
    #[serde(default)]
    how: How,
}

/// One key column, or several.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a column name or a list of column names")]
enum Keys {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum How {
    #[default]
    Inner,
    Left,
}

fn run(inputs: Vec<Input>, args: &Value, _: &Context) -> Result<Table, String> {
    let Kwargs { on, how } = kwargs(args)?;
    let (keys, listed) = match on {
        Keys::One(k) => (vec![k], false),
        Keys::Many(ks) => (ks, true),
    };
    if keys.is_empty() {
        return Err("field `on`: name at least one key column".into());
    }
    check_keys(&inputs, &keys, listed)?;
    let mut inputs = inputs.into_iter();
    let Some(first) = inputs.next() else {
        return Err("join needs the tables of two or more stages".into());
    };
    let mut table = first.table;
    for right in inputs {
        table = join_two(table, &right, &keys, how)?;
    }
    Ok(table)
}

/// Every key in every input, with the first input's type: all that is
/// wrong, in one message, under the field it concerns (`on` when it
/// concerns several keys of a list).
fn check_keys(inputs: &[Input], keys: &[String], listed: bool) -> Result<(), String> {
    if inputs.len() < 2 {
        return Err("join needs the tables of two or more stages".into());
    }
    let mut wrong: Vec<(usize, String)> = Vec::new();
    for (k, key) in keys.iter().enumerate() {
        let mut want: Option<(DType, &str)> = None;
        for input in inputs {
            match input.table.column(key) {
                None => {
                    let hint = crate::closest(key, input.table.names())
                        .map_or(String::new(), |c| format!(" (did you mean {c}?)"));
                    let columns = input.table.describe_columns();
                    wrong.push((
                        k,
                        format!("input `{}` has no column `{key}`{hint}; its {columns}", input.stage),
                    ));
                }
                Some(column) => match want {
                    None => want = Some((column.dtype(), &input.stage)),
                    Some((dtype, from)) if dtype != column.dtype() => wrong.push((
                        k,
                        format!(
                            "key `{key}` is {dtype} in input `{from}` but {} in input `{}`; a key has one type in every input",
                            column.dtype(),
                            input.stage
                        ),
                    )),
                    Some(_) => {}
                },
            }
        }
    }
    let Some(&(first, _)) = wrong.first() else {
        return Ok(());
    };
    let field = if !listed {
        "on".to_string()
    } else if wrong.iter().all(|(k, _)| *k == first) {
        format!("on[{first}]")
    } else {
        "on".to_string()
    };
    let said: Vec<String> = wrong.into_iter().map(|(_, w)| w).collect();
    Err(format!("field `{field}`: {}", said.join("; ")))
}

/// `left ⋈ right` on `keys`.
fn join_two(left: Table, right: &Input, keys: &[String], how: How) -> Result<Table, String> {
    let left_keys: Vec<&Column> = keys.iter().filter_map(|k| left.column(k)).collect();
    let right_keys: Vec<&Column> = keys.iter().filter_map(|k| right.table.column(k)).collect();
    // The right input's rows, chained by key hash in row order.
    const END: usize = usize::MAX;
    let right_rows = right.table.rows();
    let mut next = vec![END; right_rows];
    let mut chains: HashMap<u64, (usize, usize), BuildHasherDefault<Prehashed>> =
        HashMap::with_capacity_and_hasher(right_rows, Default::default());
    for j in 0..right_rows {
        let Some(h) = hash_row(&right_keys, j) else {
            continue;
        };
        chains
            .entry(h)
            .and_modify(|(_, tail)| {
                next[*tail] = j;
                *tail = j;
            })
            .or_insert((j, j));
    }
    let mut from_left = Vec::with_capacity(left.rows());
    let mut from_right: Vec<Option<usize>> = Vec::with_capacity(left.rows());
    for i in 0..left.rows() {
        let mut matched = false;
        if let Some((head, _)) = hash_row(&left_keys, i).and_then(|h| chains.get(&h)) {
            let mut j = *head;
            while j != END {
                if same_keys(&left_keys, i, &right_keys, j) {
                    from_left.push(i);
                    from_right.push(Some(j));
                    matched = true;
                }
                j = next[j];
            }
        }
        if !matched && how == How::Left {
            from_left.push(i);
            from_right.push(None);
        }
    }
    let mut columns: Vec<(String, Column)> = left
        .iter()
        .map(|(name, c)| (name.to_string(), c.take(&from_left)))
        .collect();
    let mut taken: std::collections::HashSet<String> =
        columns.iter().map(|(n, _)| n.clone()).collect();
    for (name, column) in right.table.iter() {
        if keys.iter().any(|k| k == name) {
            continue;
        }
        let name = if taken.contains(name) {
            let suffixed = format!("{name}_{}", right.stage);
            if taken.contains(&suffixed) {
                return Err(format!(
                    "column `{name}` of input `{}` would be called `{suffixed}` beside the other input's `{name}`, and that name is taken too; rename one with a rename task",
                    right.stage
                ));
            }
            suffixed
        } else {
            name.to_string()
        };
        taken.insert(name.clone());
        columns.push((name, gather(column, &from_right, how)));
    }
    Table::from_columns(columns)
}

/// `column`'s values at `rows`; a row without a match is NaN or "", and
/// in a left join int64 and bool columns are float64.
fn gather(column: &Column, rows: &[Option<usize>], how: How) -> Column {
    fn pick<T: Clone>(a: &Array1<T>, rows: &[Option<usize>], missing: T) -> Array1<T> {
        rows.iter()
            .map(|r| r.map_or_else(|| missing.clone(), |i| a[i].clone()))
            .collect()
    }
    match (column, how) {
        (Column::Int64(a), How::Left) => {
            Column::Float64(pick(&a.mapv(|v| v as f64), rows, f64::NAN))
        }
        (Column::Bool(a), How::Left) => Column::Float64(pick(&a.mapv(f64::from), rows, f64::NAN)),
        (Column::Float64(a), _) => Column::Float64(pick(a, rows, f64::NAN)),
        (Column::Utf8(a), _) => Column::Utf8(pick(a, rows, String::new())),
        // Inner: every row has its match.
        (Column::Int64(a), How::Inner) => Column::Int64(pick(a, rows, 0)),
        (Column::Bool(a), How::Inner) => Column::Bool(pick(a, rows, false)),
    }
}

/// A hash of row `i`'s keys; None when a key is NaN, which matches nothing.
fn hash_row(keys: &[&Column], i: usize) -> Option<u64> {
    let mut h: u64 = 0x243f_6a88_85a3_08d3;
    for column in keys {
        let part = match column {
            Column::Int64(a) => a[i] as u64,
            Column::Float64(a) if a[i].is_nan() => return None,
            // -0 and 0 are one key.
            Column::Float64(a) => (a[i] + 0.0).to_bits(),
            Column::Bool(a) => u64::from(a[i]),
            Column::Utf8(a) => a[i].bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            }),
        };
        h = mix(h ^ part);
    }
    Some(h)
}

/// A 64-bit finaliser (splitmix64's): nearby keys land far apart.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Whether row `i` of the left keys equals row `j` of the right ones.
fn same_keys(left: &[&Column], i: usize, right: &[&Column], j: usize) -> bool {
    left.iter().zip(right).all(|(l, r)| match (l, r) {
        (Column::Int64(a), Column::Int64(b)) => a[i] == b[j],
        (Column::Float64(a), Column::Float64(b)) => a[i] == b[j],
        (Column::Bool(a), Column::Bool(b)) => a[i] == b[j],
        (Column::Utf8(a), Column::Utf8(b)) => a[i] == b[j],
        _ => false,
    })
}

/// The map's keys are hashes already: its hasher passes them through.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use serde_json::json;
    use std::path::Path;

    fn input(stage: &str, columns: Vec<(&str, Column)>) -> Input {
        Input {
            stage: stage.into(),
            table: Table::from_columns(columns.into_iter().map(|(n, c)| (n.into(), c)).collect())
                .expect("table"),
        }
    }

    fn join(inputs: Vec<Input>, args: Value) -> Result<Table, String> {
        run(inputs, &args, &Context::new(Path::new(".")))
    }

    fn f(t: &Table, name: &str) -> Vec<f64> {
        match t.column(name) {
            Some(Column::Float64(a)) => a.to_vec(),
            other => panic!("{name}: {other:?}"),
        }
    }

    fn i(t: &Table, name: &str) -> Vec<i64> {
        match t.column(name) {
            Some(Column::Int64(a)) => a.to_vec(),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn duplicate_keys_on_both_sides_pair_every_match_in_order() {
        // pandas: pd.merge(l, r, on="k", sort=False) gives, per left row,
        // its matches in the right's order.
        let left = input(
            "l",
            vec![
                ("k", Column::Int64(array![2, 1, 2])),
                ("a", Column::Int64(array![10, 11, 12])),
            ],
        );
        let right = input(
            "r",
            vec![
                ("k", Column::Int64(array![2, 3, 2])),
                ("b", Column::text(&["x", "y", "z"])),
            ],
        );
        let t = join(vec![left, right], json!({"on": "k"})).expect("join");
        assert_eq!(i(&t, "k"), [2, 2, 2, 2]);
        assert_eq!(i(&t, "a"), [10, 10, 12, 12]);
        assert_eq!(t.column("b"), Some(&Column::text(&["x", "z", "x", "z"])));
    }

    #[test]
    fn no_matches_and_all_matches() {
        let left = || {
            input(
                "l",
                vec![
                    ("k", Column::text(&["a", "b"])),
                    ("v", Column::Float64(array![1.0, 2.0])),
                ],
            )
        };
        let none = input(
            "r",
            vec![("k", Column::text(&["c"])), ("w", Column::Int64(array![5]))],
        );
        let t = join(vec![left(), none], json!({"on": "k"})).expect("inner");
        assert_eq!(t.rows(), 0);
        assert_eq!(
            t.schema(),
            [
                ("k".into(), DType::Utf8),
                ("v".into(), DType::Float64),
                ("w".into(), DType::Int64)
            ]
        );
        let all = input(
            "r",
            vec![
                ("k", Column::text(&["b", "a"])),
                ("w", Column::Int64(array![5, 6])),
            ],
        );
        let t = join(vec![left(), all], json!({"on": ["k"]})).expect("all");
        assert_eq!(i(&t, "w"), [6, 5], "left order");
    }

    #[test]
    fn nan_keys_never_match_and_minus_zero_is_zero() {
        let left = input(
            "l",
            vec![("k", Column::Float64(array![f64::NAN, -0.0, 1.5]))],
        );
        let right = input(
            "r",
            vec![
                ("k", Column::Float64(array![f64::NAN, 0.0, 1.5])),
                ("w", Column::Int64(array![1, 2, 3])),
            ],
        );
        let t = join(vec![left, right], json!({"on": "k", "how": "left"})).expect("join");
        let w = f(&t, "w");
        assert!(w[0].is_nan());
        assert_eq!(&w[1..], [2.0, 3.0]);
    }

    #[test]
    fn clashing_names_take_the_stage_as_suffix() {
        let left = input(
            "hot",
            vec![
                ("s", Column::Int64(array![1])),
                ("t", Column::Float64(array![30.5])),
            ],
        );
        let right = input(
            "means",
            vec![
                ("s", Column::Int64(array![1])),
                ("t", Column::Float64(array![20.0])),
            ],
        );
        let t = join(vec![left, right], json!({"on": "s"})).expect("join");
        assert_eq!(t.names().collect::<Vec<_>>(), ["s", "t", "t_means"]);
        assert_eq!(f(&t, "t_means"), [20.0]);
    }

    #[test]
    fn a_left_join_makes_int_and_bool_columns_float_and_text_empty() {
        let left = input("l", vec![("k", Column::Int64(array![1, 2]))]);
        let right = input(
            "r",
            vec![
                ("k", Column::Int64(array![2])),
                ("n", Column::Int64(array![7])),
                ("ok", Column::Bool(array![true])),
                ("s", Column::text(&["x"])),
            ],
        );
        let t = join(vec![left, right], json!({"on": "k", "how": "left"})).expect("join");
        let n = f(&t, "n");
        assert!(n[0].is_nan() && n[1] == 7.0);
        let ok = f(&t, "ok");
        assert!(ok[0].is_nan() && ok[1] == 1.0);
        assert_eq!(t.column("s"), Some(&Column::text(&["", "x"])));
        assert_eq!(i(&t, "k"), [1, 2], "the left's keys stay as they are");
    }

    #[test]
    fn empty_inputs_give_empty_tables_with_every_column() {
        let left = input(
            "l",
            vec![
                ("k", Column::Int64(array![])),
                ("a", Column::Bool(array![])),
            ],
        );
        let right = input(
            "r",
            vec![
                ("k", Column::Int64(array![1])),
                ("b", Column::Int64(array![1])),
            ],
        );
        let t = join(vec![left, right], json!({"on": "k", "how": "left"})).expect("join");
        assert_eq!(t.rows(), 0);
        assert_eq!(
            t.schema(),
            [
                ("k".into(), DType::Int64),
                ("a".into(), DType::Bool),
                ("b".into(), DType::Float64)
            ]
        );
    }

    #[test]
    fn three_inputs_join_left_to_right() {
        let a = input(
            "a",
            vec![
                ("k", Column::Int64(array![1, 2, 3])),
                ("v", Column::Int64(array![1, 2, 3])),
            ],
        );
        let b = input(
            "b",
            vec![
                ("k", Column::Int64(array![3, 1])),
                ("v", Column::Int64(array![30, 10])),
            ],
        );
        let c = input(
            "c",
            vec![
                ("k", Column::Int64(array![1, 1])),
                ("v", Column::Int64(array![100, 101])),
            ],
        );
        let t = join(vec![a, b, c], json!({"on": "k"})).expect("join");
        assert_eq!(t.names().collect::<Vec<_>>(), ["k", "v", "v_b", "v_c"]);
        assert_eq!(i(&t, "k"), [1, 1]);
        assert_eq!(i(&t, "v_b"), [10, 10]);
        assert_eq!(i(&t, "v_c"), [100, 101]);
    }

    #[test]
    fn multi_column_keys_and_every_key_problem_at_once() {
        let a = input(
            "a",
            vec![
                ("x", Column::Int64(array![1, 1])),
                ("y", Column::text(&["p", "q"])),
            ],
        );
        let b = input(
            "b",
            vec![
                ("x", Column::Int64(array![1])),
                ("y", Column::text(&["q"])),
                ("z", Column::Bool(array![true])),
            ],
        );
        let t = join(vec![a.clone(), b], json!({"on": ["x", "y"]})).expect("join");
        assert_eq!(t.column("y"), Some(&Column::text(&["q"])));
        let bad = input("means", vec![("x", Column::Float64(array![1.0]))]);
        let e =
            join(vec![a.clone(), bad.clone()], json!({"on": ["x", "y"]})).expect_err("bad keys");
        assert_eq!(
            e,
            "field `on`: key `x` is int64 in input `a` but float64 in input `means`; a key has one type in every input; input `means` has no column `y`; its available columns: x (float64)"
        );
        let e = join(vec![a, bad], json!({"on": ["y"]})).expect_err("one key");
        assert_eq!(
            e,
            "field `on[0]`: input `means` has no column `y`; its available columns: x (float64)"
        );
    }
}
