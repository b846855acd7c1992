//! Row order shared by the tasks that sort or group: a total order on one or
//! more columns, ascending, lexicographic across columns. Numbers compare by
//! value; nan sorts after every number and equals every other nan (as
//! numpy.sort and numpy.unique treat it); false < true; strings by bytes.

use crate::Column;
use std::cmp::Ordering;

/// Order of rows `i` and `j` in `column`.
pub(crate) fn cmp_rows(column: &Column, i: usize, j: usize) -> Ordering {
    match column {
        Column::Int64(a) => a[i].cmp(&a[j]),
        Column::Float64(a) => cmp_f64(a[i], a[j]),
        Column::Bool(a) => a[i].cmp(&a[j]),
        Column::Utf8(a) => a[i].cmp(&a[j]),
    }
}

/// Total order on f64 with nan last.
pub(crate) fn cmp_f64(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Lexicographic order of rows `i` and `j` over `columns`.
pub(crate) fn cmp_keys(columns: &[&Column], i: usize, j: usize) -> Ordering {
    columns
        .iter()
        .map(|c| cmp_rows(c, i, j))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// The rows grouped by equal keys, groups in ascending key order, rows in
/// each group in their original order.
pub(crate) fn groups(columns: &[&Column], rows: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..rows).collect();
    order.sort_by(|&i, &j| cmp_keys(columns, i, j)); // stable: ties keep row order
    let mut out: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match out.last_mut() {
            Some(group) if cmp_keys(columns, group[0], i).is_eq() => group.push(i),
            _ => out.push(vec![i]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn nan_sorts_last_and_groups_together() {
        let c = Column::Float64(array![2.0, f64::NAN, -1.0, f64::NAN, 2.0]);
        assert_eq!(groups(&[&c], 5), vec![vec![2], vec![0, 4], vec![1, 3]]);
    }

    #[test]
    fn several_columns_compare_lexicographically() {
        let a = Column::Utf8(array!["b".to_string(), "a".to_string(), "b".to_string()]);
        let b = Column::Int64(array![2, 9, 1]);
        assert_eq!(groups(&[&a, &b], 3), vec![vec![1], vec![2], vec![0]]);
    }
}
