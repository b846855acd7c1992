//! Splitting a stage's work into chunks and putting the results back
//! together, for the relay.
//!
//! A stage runs in segments: each run of consecutive row-local tasks is one
//! segment, and each task that needs the whole table is a segment of its
//! own. A row-local segment over more than `chunking_size` rows goes out as
//! chunks of at most that many rows, to as many nodes as have room; the
//! chunk results are concatenated in sequence order, whatever order they
//! come back in. Since a row-local task's output rows depend only on their
//! own input rows (tested for every such task in rtl-tasks), the result is
//! the one the whole table would give.

use rtl_dsl::Stage;
use rtl_tasks::{lookup, Table};

/// Tasks `start..end` of a stage, and whether they may run chunk by chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: u32,
    pub end: u32,
    pub row_local: bool,
}

/// The stage's segments, in order.
pub fn segments(stage: &Stage) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for (i, call) in stage.tasks.iter().enumerate() {
        let i = i as u32;
        let row_local = lookup(&call.name).is_some_and(|t| t.row_local);
        match out.last_mut() {
            Some(last) if row_local && last.row_local => last.end = i + 1,
            _ => out.push(Segment {
                start: i,
                end: i + 1,
                row_local,
            }),
        }
    }
    out
}

/// `table` as consecutive chunks of at most `rows` rows.
pub fn split(table: &Table, rows: usize) -> Vec<Table> {
    let rows = rows.max(1);
    (0..table.rows().div_ceil(rows))
        .map(|k| table.slice(k * rows, (k + 1) * rows))
        .collect()
}

/// The chunk results of one segment, as they arrive.
pub struct Assembly {
    parts: Vec<Option<Table>>,
    missing: usize,
}

impl Assembly {
    pub fn new(count: usize) -> Assembly {
        Assembly {
            parts: (0..count).map(|_| None).collect(),
            missing: count,
        }
    }

    /// Adds chunk `seq`; once the last one is in, the whole table.
    pub fn put(&mut self, seq: usize, table: Table) -> Option<Result<Table, String>> {
        let slot = self.parts.get_mut(seq)?;
        if slot.is_none() {
            self.missing -= 1;
        }
        *slot = Some(table);
        if self.missing > 0 {
            return None;
        }
        Some(Table::concat(
            self.parts.iter_mut().filter_map(Option::take).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;
    use rtl_dsl::TaskCall;
    use rtl_tasks::Column;
    use serde_json::json;

    #[test]
    fn row_local_runs_group_and_whole_table_tasks_stand_alone() {
        let stage = Stage {
            tasks: ["filter", "add", "normalize", "sort", "log", "divide"]
                .iter()
                .map(|n| TaskCall::new(*n, json!({})))
                .collect(),
        };
        let got: Vec<(u32, u32, bool)> = segments(&stage)
            .iter()
            .map(|s| (s.start, s.end, s.row_local))
            .collect();
        assert_eq!(
            got,
            [(0, 2, true), (2, 3, false), (3, 4, false), (4, 6, true)]
        );
    }

    #[test]
    fn chunks_reassemble_in_sequence_order() {
        let table =
            Table::from_columns(vec![("n".into(), Column::Int64(Array1::from_iter(0..10)))])
                .expect("table");
        let parts = split(&table, 3);
        assert_eq!(
            parts.iter().map(Table::rows).collect::<Vec<_>>(),
            [3, 3, 3, 1]
        );
        let mut assembly = Assembly::new(parts.len());
        let mut order = vec![2, 0, 3];
        for k in order.drain(..) {
            assert!(assembly.put(k, parts[k].clone()).is_none());
        }
        let whole = assembly
            .put(1, parts[1].clone())
            .expect("complete")
            .expect("concat");
        assert_eq!(whole, table);
    }
}
