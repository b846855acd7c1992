//! The original's own jobs and task tests, converted to rtl job files by
//! tests/original/make.py, run through one real daemon. Each job must check
//! clean, run, and give the table its `.expected.csv` holds (computed with
//! numpy, not by rtl); each value the original's test asserted must be
//! rtl's too, unless the README's table of deliberate differences names
//! why not.

mod common;

use common::{assert_close, text, Daemon};
use rtl_client::{Table, Transform};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn original_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/original")
}

/// Copies the jobs and their data where the jobs may write (`read_write`
/// writes a file), leaving the source tree as it is.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("scratch dir");
    for entry in std::fs::read_dir(from).expect("tests/original").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The expected table: a header row and rows, typed by the `.meta` beside
/// it; an empty file is the table without columns.
fn expected(path: &Path) -> Table {
    match std::fs::metadata(path) {
        Ok(file) if file.len() == 0 => Table::new(),
        Ok(_) => rtl_tasks::formats::read(&path.to_path_buf(), &Default::default())
            .unwrap_or_else(|e| panic!("{e}")),
        Err(_) => panic!(
            "{} is missing: run python3 tests/original/make.py",
            path.display()
        ),
    }
}

fn value_at(table: &Table, column: &str, row: usize) -> f64 {
    match table.column(column) {
        Some(rtl_tasks::Column::Int64(a)) => a[row] as f64,
        Some(rtl_tasks::Column::Float64(a)) => a[row],
        other => panic!("column {column}: {other:?}"),
    }
}

#[test]
fn the_originals_jobs_and_task_tests_give_the_expected_tables() {
    let daemon = Daemon::start("original");
    let dir = daemon.home.scratch.0.join("original");
    copy_dir(&original_dir(), &dir);
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let mut jobs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("jobs")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| n.ends_with(".json") && !n.ends_with(".original.json"))
        })
        .collect();
    jobs.sort();
    assert!(
        jobs.len() >= 30,
        "only {} jobs in tests/original",
        jobs.len()
    );
    let mut transform = Transform::connect(&daemon.home.config()).expect("connect");
    for job in &jobs {
        let name = job
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let check = daemon.rtl(&["check", job.to_str().expect("utf-8 path")]);
        assert!(check.status.success(), "{name}: {}", text(&check));

        let got = transform
            .execute(job.as_path())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_close(
            &name,
            &got,
            &expected(&dir.join(format!("{name}.expected.csv"))),
        );

        let original: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.original.json")))
                .unwrap_or_else(|_| panic!("{name}.original.json is missing")),
        )
        .expect("original.json");
        match original["differs"].as_str() {
            Some(difference) => assert!(
                readme.contains(&format!("| {difference} |")),
                "{name}: the README's deliberate differences do not name {difference:?}"
            ),
            None => {
                for asserted in original["asserted"].as_array().expect("asserted") {
                    let column = asserted["column"].as_str().expect("column");
                    let row = asserted["row"].as_u64().expect("row") as usize;
                    let want = asserted["value"].as_f64().expect("value");
                    let have = value_at(&got, column, row);
                    assert!(
                        (have - want).abs() <= 1e-9 * want.abs().max(1.0),
                        "{name}: {column}[{row}] is {have}; the original's test asserted {want}"
                    );
                }
            }
        }
    }
}
