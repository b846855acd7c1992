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
//! The match is written here. On one number key (int64 or float64) both
//! inputs are radix-sorted and merged: 10M rows joined to 10M in 0.63 s,
//! where a `HashMap` of key hashes to row chains took 2.8 s, waiting on
//! memory at every row (`cargo bench --bench kernels -- join`; numpy's
//! argsort and searchsorted take 0.88 s). Other keys (text, bool, several
//! columns) go through an open-addressing table of row numbers.

use super::keys::{radix_keys, radix_order};
use crate::{kwargs, Column, Context, DType, Input, Role, Table, TaskSpec};
use ndarray::Array1;
use serde::Deserialize;
use serde_json::Value;

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

fn run(inputs: Vec<Input>, args: &Value, ctx: &Context) -> Result<Table, String> {
    let Kwargs { on, how } = kwargs(args)?;
    let (keys, listed) = match on {
        Keys::One(k) => (vec![k], false),
        Keys::Many(ks) => (ks, true),
    };
    if keys.is_empty() {
        return Err("field `on`: name at least one key column".into());
    }
    if let Some((k, twice)) = keys
        .iter()
        .enumerate()
        .find(|(k, key)| keys[..*k].contains(key))
    {
        return Err(format!(
            "field `on[{k}]`: `{twice}` is named twice; name each key column once"
        ));
    }
    check_keys(&inputs, &keys, listed)?;
    let mut inputs = inputs.into_iter();
    let Some(first) = inputs.next() else {
        return Err("join needs the tables of two or more stages".into());
    };
    let rest: Vec<Input> = inputs.collect();
    if let Some(big) = rest.iter().find(|r| r.table.rows() >= NONE as usize) {
        return Err(format!(
            "input `{}` has {} rows, more than join takes ({} at most)",
            big.stage,
            big.table.rows(),
            NONE - 1
        ));
    }
    if rest.len() > 1 && !ctx.checking {
        fits(&first.table, &rest, &keys, how)?;
    }
    let mut table = first.table;
    for right in rest {
        table = join_two(table, &right, &keys, how, ctx.checking)?;
    }
    Ok(table)
}

/// Bytes a row of the join's result takes, about, for `columns` (and the
/// 12 bytes of row numbers the join gathers it by): 8 a number, about 32
/// a text.
fn row_bytes<'a>(columns: impl Iterator<Item = &'a Column>) -> u64 {
    12 + columns
        .map(|c| if c.dtype() == DType::Utf8 { 32 } else { 8 })
        .sum::<u64>()
}

/// Refuses a join of several inputs that would not fit in memory, before
/// any row is made. Every input is joined on the same keys, so the first
/// input's keys decide every match: a row of it makes, after each input,
/// the product of the rows it matches in each (at least one, in a left
/// join); that some step would be too big shows before the first is made.
fn fits(first: &Table, rest: &[Input], keys: &[String], how: How) -> Result<(), String> {
    let left_keys: Vec<&Column> = keys.iter().filter_map(|k| first.column(k)).collect();
    let mut per_row = vec![1u64; first.rows()];
    let mut bytes = row_bytes(first.iter().map(|(_, c)| c));
    for right in rest {
        let right_keys: Vec<&Column> = keys.iter().filter_map(|k| right.table.column(k)).collect();
        let found = Found::of(&left_keys, &right_keys, right.table.rows());
        for (i, rows) in per_row.iter_mut().enumerate() {
            let matched = found.rows_of(i, &left_keys, &right_keys).count() as u64;
            *rows = rows.saturating_mul(if matched == 0 && how == How::Left {
                1
            } else {
                matched
            });
        }
        bytes += row_bytes(non_keys(&right.table, keys)) - 12;
        let made = per_row
            .iter()
            .fold(0u64, |sum, rows| sum.saturating_add(*rows));
        too_big(
            made,
            bytes,
            keys,
            &format!(" once input `{}` is joined", right.stage),
        )?;
    }
    Ok(())
}

/// The columns of `table` that are not `keys`.
fn non_keys<'a>(table: &'a Table, keys: &'a [String]) -> impl Iterator<Item = &'a Column> {
    table
        .iter()
        .filter(|(n, _)| !keys.iter().any(|k| k == n))
        .map(|(_, c)| c)
}

/// The refusal of a join that makes `made` rows of `bytes` each, when
/// they would take more than half this machine's memory.
fn too_big(made: u64, bytes: u64, keys: &[String], when: &str) -> Result<(), String> {
    let room = crate::alloc::physical_memory() as u64 / 2;
    let need = made.saturating_mul(bytes);
    if need <= room {
        return Ok(());
    }
    Err(format!(
        "the join would make {made} rows{when} (about {} GB), more than half this machine's memory ({} GB) holds: a key found m times in one input and n times in the other makes m x n rows; check that `{}` is the key you mean",
        need / 1_000_000_000,
        crate::alloc::physical_memory() / 1_000_000_000,
        keys.join("`, `")
    ))
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
                    let columns = match input.table.width() {
                        0 => "it has no columns".to_string(),
                        _ => format!("its {}", input.table.describe_columns()),
                    };
                    wrong.push((
                        k,
                        format!("input `{}` has no column `{key}`{hint}; {columns}", input.stage),
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
fn join_two(
    left: Table,
    right: &Input,
    keys: &[String],
    how: How,
    checking: bool,
) -> Result<Table, String> {
    let names = right_names(&left, right, keys)?;
    let left_keys: Vec<&Column> = keys.iter().filter_map(|k| left.column(k)).collect();
    let right_keys: Vec<&Column> = keys.iter().filter_map(|k| right.table.column(k)).collect();
    let found = Found::of(&left_keys, &right_keys, right.table.rows());
    let rows_of = |i: usize| found.rows_of(i, &left_keys, &right_keys);
    // How many rows the join makes, before one is made: keys that repeat
    // on both sides multiply.
    let made: u64 = (0..left.rows())
        .map(|i| match rows_of(i).count() {
            0 if how == How::Left => 1,
            n => n as u64,
        })
        .sum();
    let most = match checking {
        // A check needs the columns, not every row of a sample's join.
        true => CHECK_ROWS,
        false => {
            let bytes = row_bytes(
                left.iter()
                    .map(|(_, c)| c)
                    .chain(non_keys(&right.table, keys)),
            );
            too_big(made, bytes, keys, "")?;
            made
        }
    };
    let made = made.min(most) as usize;
    let mut from_left: Vec<usize> = Vec::with_capacity(made);
    let mut from_right: Vec<u32> = Vec::with_capacity(made);
    for i in 0..left.rows() {
        if from_right.len() >= made {
            break;
        }
        let before = from_right.len();
        for j in rows_of(i) {
            if from_right.len() >= made {
                break;
            }
            from_left.push(i);
            from_right.push(j);
        }
        if from_right.len() == before && how == How::Left {
            from_left.push(i);
            from_right.push(NONE);
        }
    }
    let mut columns: Vec<(String, Column)> = left
        .iter()
        .map(|(name, c)| (name.to_string(), c.take(&from_left)))
        .collect();
    for ((_, column), name) in right
        .table
        .iter()
        .filter(|(n, _)| !keys.iter().any(|k| k == n))
        .zip(names)
    {
        columns.push((name, gather(column, &from_right, how)));
    }
    Table::from_columns(columns)
}

/// The names the right input's non-key columns take beside the left's:
/// their own, or, where the left has one, `<name>_<stage>`; that name must
/// be no column's of either input, or the join could not say which is which.
fn right_names(left: &Table, right: &Input, keys: &[String]) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for name in right.table.names().filter(|n| !keys.iter().any(|k| k == n)) {
        if left.column(name).is_none() {
            names.push(name.to_string());
            continue;
        }
        let suffixed = format!("{name}_{}", right.stage);
        if left.column(&suffixed).is_some() || right.table.column(&suffixed).is_some() {
            return Err(format!(
                "column `{name}` of input `{}` would be called `{suffixed}` beside the other input's `{name}`, and a column is called that already; rename one with a rename task",
                right.stage
            ));
        }
        names.push(suffixed);
    }
    Ok(names)
}

/// `column`'s values at `rows`; a row without a match ([`NONE`]) is NaN
/// or "", and in a left join int64 and bool columns are float64.
fn gather(column: &Column, rows: &[u32], how: How) -> Column {
    fn pick<T: Clone>(a: &Array1<T>, rows: &[u32], missing: T) -> Array1<T> {
        rows.iter()
            .map(|&r| match r {
                NONE => missing.clone(),
                i => a[i as usize].clone(),
            })
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

/// No row.
const NONE: u32 = u32::MAX;

/// Rows a join makes at most while a job is checked on samples.
const CHECK_ROWS: u64 = 100_000;

/// Where each left row's matches are.
enum Found {
    /// The right rows in key order, and each left row's run of them.
    Sorted(Vec<u32>, Vec<(u32, u32)>),
    /// The right rows by key.
    Hashed(Matches),
}

impl Found {
    /// The right rows by key, for the left rows' keys.
    fn of(left_keys: &[&Column], right_keys: &[&Column], right_rows: usize) -> Found {
        match (left_keys, right_keys) {
            // One number key: both sides sorted, then merged.
            ([l], [r]) if radix_keys(l, false).is_some() => {
                let (order, runs) = sorted_runs(l, r);
                Found::Sorted(order, runs)
            }
            _ => Found::Hashed(Matches::of(right_keys, right_rows)),
        }
    }

    /// The right rows matching left row `i`, in the right input's order.
    fn rows_of<'a>(&'a self, i: usize, left: &[&Column], right: &[&Column]) -> RowsOf<'a> {
        match self {
            Found::Sorted(order, runs) => {
                let (start, len) = runs[i];
                RowsOf::Run(order[start as usize..(start + len) as usize].iter())
            }
            Found::Hashed(matches) => RowsOf::Chain {
                next: &matches.next,
                at: matches.first(left, i, right),
            },
        }
    }
}

/// The right rows one left row matches.
enum RowsOf<'a> {
    Run(std::slice::Iter<'a, u32>),
    Chain { next: &'a [u32], at: u32 },
}

impl Iterator for RowsOf<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        match self {
            RowsOf::Run(rows) => rows.next().copied(),
            RowsOf::Chain { next, at } => {
                let here = *at;
                if here == NONE {
                    return None;
                }
                *at = next[here as usize];
                Some(here)
            }
        }
    }

    fn count(self) -> usize {
        match self {
            RowsOf::Run(rows) => rows.len(),
            chain => chain.fold(0, |n, _| n + 1),
        }
    }
}

/// For a number key: the right rows in key order (stable, so rows of one
/// key keep their order), and for each left row the run of that order
/// holding its key (start, length; empty for NaN, which matches nothing).
/// Two radix sorts and a merge read the columns in order, where a hash
/// table at ten million rows waits on the memory for every row.
fn sorted_runs(left: &Column, right: &Column) -> (Vec<u32>, Vec<(u32, u32)>) {
    let is_nan = |c: &Column, i: usize| matches!(c, Column::Float64(a) if a[i].is_nan());
    let (lk, rk) = match (radix_keys(left, false), radix_keys(right, false)) {
        (Some(l), Some(r)) => (l, r),
        _ => return (Vec::new(), vec![(0, 0); left.len()]),
    };
    let order: Vec<u32> = radix_order(&rk).into_iter().map(|j| j as u32).collect();
    let mut runs = vec![(0u32, 0u32); lk.len()];
    let mut at = 0usize;
    let mut last: Option<(u64, (u32, u32))> = None;
    for i in radix_order(&lk) {
        if is_nan(left, i) {
            continue;
        }
        let key = lk[i];
        if let Some((_, run)) = last.filter(|(k, _)| *k == key) {
            runs[i] = run;
            continue;
        }
        while at < order.len() && rk[order[at] as usize] < key {
            at += 1;
        }
        let mut end = at;
        while end < order.len()
            && rk[order[end] as usize] == key
            && !is_nan(right, order[end] as usize)
        {
            end += 1;
        }
        let run = (at as u32, (end - at) as u32);
        runs[i] = run;
        last = Some((key, run));
        at = end;
    }
    (order, runs)
}

/// The right input's rows by key: an open-addressing table (linear
/// probing, a power of two at least twice the rows) whose slots hold the
/// first row of each distinct key and its hash, and a chain through the
/// other rows of that key, in row order. Rows are u32, to keep the table
/// small enough for the cache to help.
struct Matches {
    hashes: Vec<u64>,
    slots: Vec<u32>,
    next: Vec<u32>,
}

impl Matches {
    fn of(keys: &[&Column], rows: usize) -> Matches {
        let size = (rows * 2).next_power_of_two().max(16);
        let mut matches = Matches {
            hashes: vec![0; size],
            slots: vec![NONE; size],
            next: vec![NONE; rows],
        };
        // Last row first: each row goes in front of its key's chain, so
        // the chain ends up in row order.
        for j in (0..rows).rev() {
            let Some(h) = hash_row(keys, j) else {
                continue;
            };
            let mask = size - 1;
            let mut at = h as usize & mask;
            loop {
                let first = matches.slots[at];
                if first == NONE {
                    matches.slots[at] = j as u32;
                    matches.hashes[at] = h;
                    break;
                }
                if matches.hashes[at] == h && same_keys(keys, j, keys, first as usize) {
                    matches.next[j] = first;
                    matches.slots[at] = j as u32;
                    break;
                }
                at = (at + 1) & mask;
            }
        }
        matches
    }

    /// The first right row whose keys equal row `i` of `keys` (the left
    /// input's key columns); [`NONE`] when none does.
    fn first(&self, keys: &[&Column], i: usize, right: &[&Column]) -> u32 {
        let Some(h) = hash_row(keys, i) else {
            return NONE;
        };
        let mask = self.slots.len() - 1;
        let mut at = h as usize & mask;
        loop {
            let first = self.slots[at];
            if first == NONE {
                return NONE;
            }
            if self.hashes[at] == h && same_keys(keys, i, right, first as usize) {
                return first;
            }
            at = (at + 1) & mask;
        }
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
        let e = join(vec![a.clone(), bad.clone()], json!({"on": ["x", "x"]})).expect_err("twice");
        assert_eq!(
            e,
            "field `on[1]`: `x` is named twice; name each key column once"
        );
        let e = join(vec![a, bad], json!({"on": ["y"]})).expect_err("one key");
        assert_eq!(
            e,
            "field `on[0]`: input `means` has no column `y`; its available columns: x (float64)"
        );
    }

    #[test]
    fn the_sorted_and_the_hashed_match_agree() {
        // One number key takes the sorted path; adding a constant second
        // key takes the hashed one. Both must give the same rows.
        let mut state = 7u64;
        let mut next = |m: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % m
        };
        for how in ["inner", "left"] {
            let keys = |n: usize, next: &mut dyn FnMut(u64) -> u64| -> Vec<f64> {
                (0..n)
                    .map(|_| match next(12) {
                        0 => f64::NAN,
                        1 => -0.0,
                        k => k as f64,
                    })
                    .collect()
            };
            let (lk, rk) = (keys(300, &mut next), keys(200, &mut next));
            let side = |stage: &str, k: Vec<f64>, v: &str| {
                let n = k.len();
                input(
                    stage,
                    vec![
                        ("k", Column::Float64(k.into())),
                        ("c", Column::Int64(Array1::zeros(n))),
                        (v, Column::Int64((0..n as i64).collect())),
                    ],
                )
            };
            let both = |on: Value| {
                join(
                    vec![side("l", lk.clone(), "a"), side("r", rk.clone(), "b")],
                    json!({"on": on, "how": how}),
                )
                .expect("join")
            };
            let sorted = both(json!("k"));
            let mut hashed = both(json!(["k", "c"]));
            // The single-key join keeps the right's `c` as `c_r`.
            hashed
                .set_column("c_r", Column::Int64(Array1::zeros(hashed.rows())))
                .expect("c_r");
            let pick = |t: &Table, name: &str| format!("{:?}", t.column(name));
            assert!(sorted.rows() > 100, "{how}: {} rows", sorted.rows());
            for name in ["a", "b", "k"] {
                assert_eq!(pick(&sorted, name), pick(&hashed, name), "{how} {name}");
            }
        }
    }

    #[test]
    fn a_suffix_that_would_mislabel_a_column_is_refused() {
        let left = input(
            "l",
            vec![
                ("k", Column::Int64(array![1])),
                ("v", Column::Int64(array![10])),
            ],
        );
        let right = input(
            "r",
            vec![
                ("k", Column::Int64(array![1])),
                ("v", Column::Int64(array![20])),
                ("v_r", Column::Int64(array![30])),
            ],
        );
        assert_eq!(
            join(vec![left, right], json!({"on": "k"})).expect_err("clash"),
            "column `v` of input `r` would be called `v_r` beside the other input's `v`, and a column is called that already; rename one with a rename task"
        );
    }

    #[test]
    fn a_join_too_big_for_memory_is_refused_before_it_is_made() {
        // Every key alike on both sides: 10^10 rows.
        let side = |stage: &str| {
            input(
                stage,
                vec![
                    ("k", Column::Int64(Array1::ones(100_000))),
                    ("v", Column::Float64(Array1::zeros(100_000))),
                ],
            )
        };
        let e = join(vec![side("l"), side("r")], json!({"on": "k"})).expect_err("too big");
        assert!(
            e.starts_with("the join would make 10000000000 rows (about 360 GB), more than half this machine's memory"),
            "{e}"
        );
        assert!(e.ends_with("check that `k` is the key you mean"), "{e}");
        // Many inputs: refused before the first step is made, naming the
        // input that makes it too big.
        let key = |stage: &str| input(stage, vec![("k", Column::Int64(Array1::ones(2)))]);
        let many: Vec<Input> = (0..40).map(|i| key(&format!("b{i}"))).collect();
        let e = join(many, json!({"on": "k"})).expect_err("2^40 rows");
        assert!(
            e.starts_with("the join would make ") && e.contains(" rows once input `b"),
            "{e}"
        );
        // A check on samples makes only the first rows.
        let mut ctx = Context::new(Path::new("."));
        ctx.checking = true;
        let t = run(vec![side("l"), side("r")], &json!({"on": "k"}), &ctx).expect("checked");
        assert_eq!(t.rows() as u64, CHECK_ROWS);
        assert_eq!(t.names().collect::<Vec<_>>(), ["k", "v", "v_r"]);
    }
}
