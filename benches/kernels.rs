//! Task kernels over whole columns, in ns per row, next to numpy doing the
//! same on the same machine (benches/numpy_kernels.py prints that side).
//!
//! `cargo bench --bench kernels` (RTL_BENCH_ROWS sets the row count,
//! default 10,000,000).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::Array1;
use rtl_tasks::{formats, lookup, Column, Context, Table};
use serde_json::{json, Value};
use std::hint::black_box;
use std::path::Path;

#[global_allocator]
static ALLOC: rtl_tasks::alloc::ColumnAlloc = rtl_tasks::alloc::ColumnAlloc;

fn rows() -> usize {
    std::env::var("RTL_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

/// Deterministic pseudo-random floats in [0, 1000).
fn values(n: usize, seed: u64) -> Array1<f64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    Array1::from_iter((0..n).map(|_| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 * 1000.0
    }))
}

fn table(n: usize) -> Table {
    Table::from_columns(vec![
        ("a".into(), Column::Float64(values(n, 1))),
        ("b".into(), Column::Float64(values(n, 2))),
        ("k".into(), Column::Int64(values(n, 3).mapv(|v| v as i64))),
    ])
    .expect("bench table")
}

fn task(c: &mut Criterion, name: &str, task: &str, kwargs: Value, input: &Table) {
    let spec = lookup(task).expect("task exists");
    let ctx = Context::new(Path::new("."));
    let mut group = c.benchmark_group("kernels");
    group.sample_size(10);
    group.throughput(Throughput::Elements(input.rows() as u64));
    group.bench_function(BenchmarkId::new(name, input.rows()), |b| {
        b.iter_batched(
            || input.clone(),
            |t| black_box((spec.kernel)(t, &kwargs, &ctx).expect("kernel")),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn kernels(c: &mut Criterion) {
    let n = rows();
    let input = table(n);
    task(
        c,
        "add",
        "add",
        json!({"operations": [{"a": "a", "b": "b", "column": "c"}]}),
        &input,
    );
    task(
        c,
        "divide_scalar",
        "divide",
        json!({"operations": [{"a": "a", "b": 3.5, "column": "c"}]}),
        &input,
    );
    task(
        c,
        "filter_gt",
        "filter",
        json!({"operations": [{"column": "a", "method": "gt", "value": 500.0}]}),
        &input,
    );
    task(
        c,
        "normalize_squash",
        "normalize",
        json!({"model": "Squash", "columns": ["a"]}),
        &input,
    );
    task(c, "sort_float", "sort", json!({"column": "a"}), &input);

    join(c, n);

    let mut text = Vec::new();
    formats::csv::write(&input, b',', true, &mut text).expect("csv text");
    let text = String::from_utf8(text).expect("utf8");
    let mut group = c.benchmark_group("kernels");
    group.sample_size(10);
    group.throughput(Throughput::Elements(input.rows() as u64));
    group.bench_function(BenchmarkId::new("csv_read", input.rows()), |b| {
        b.iter(|| black_box(formats::csv::read(&text, b',', "bench.csv").expect("read")))
    });
    group.finish();
}

/// An inner join of `n` rows with `n` rows on a unique int64 key, the
/// right side's keys in another order (numpy: argsort + searchsorted).
fn join(c: &mut Criterion, n: usize) {
    let Some(rtl_tasks::Role::Combine(combine)) = lookup("join").map(|t| &t.role) else {
        panic!("join combines")
    };
    let ids = Array1::from_iter(0..n as i64);
    // A fixed permutation of 0..n: i * p mod n for p prime to n.
    let p = (n as u64 / 2 + 1..)
        .find(|p| gcd(*p, n as u64) == 1)
        .unwrap_or(1);
    let shuffled = Array1::from_iter((0..n as u64).map(|i| (i * p % n as u64) as i64));
    let left = Table::from_columns(vec![
        ("id".into(), Column::Int64(ids)),
        ("a".into(), Column::Float64(values(n, 1))),
    ])
    .expect("left");
    let right = Table::from_columns(vec![
        ("id".into(), Column::Int64(shuffled)),
        ("b".into(), Column::Float64(values(n, 2))),
    ])
    .expect("right");
    let ctx = Context::new(Path::new("."));
    let kwargs = json!({"on": "id"});
    let mut group = c.benchmark_group("kernels");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::new("join_unique_int", n), |b| {
        b.iter_batched(
            || {
                ["left", "right"]
                    .into_iter()
                    .zip([left.clone(), right.clone()])
                    .map(|(stage, table)| rtl_tasks::Input {
                        stage: stage.into(),
                        table,
                    })
                    .collect()
            },
            |inputs| black_box(combine(inputs, &kwargs, &ctx).expect("join")),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
