//! Bad data through a real daemon. Jobs go as plans (no client-side check),
//! so the task node meets the bad file itself: every case is an error that
//! names the stage, the task and the file (and the line, where there is
//! one), and the daemon goes on serving. A table larger than the cache map
//! still comes back, inline, and the log says to raise `cache_map_size`.

mod common;

use common::{Daemon, Home};
use rtl_client::{Error, Transform};
use rtl_dsl::Plan;
use std::path::Path;

fn open(dir: &Path, file: &str, ext: &str) -> Plan {
    let job = format!(
        r#"{{"0": {{"tasks": [{{"open_array": {{"filename": "{file}", "extension": "{ext}"}}}},
                             {{"add": {{"operations": [{{"a": "x", "b": 1, "column": "y"}}]}}}}]}}}}"#
    );
    Plan::parse(&job, "<test>", dir.to_path_buf()).expect("plan")
}

fn fails(transform: &mut Transform, plan: &Plan, expected: &[&str]) {
    match transform.execute(plan) {
        Err(Error::Job(failure)) => {
            let said = failure.to_string();
            for e in expected {
                assert!(said.contains(e), "{e:?} missing from: {said}");
            }
            assert!(failure.task.is_some() && failure.stage.is_some(), "{said}");
        }
        Ok(t) => panic!("ran ({} rows); expected {expected:?}", t.rows()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn bad_files_get_errors_that_name_them() {
    let daemon = Daemon::start_in(
        Home::new("bad-data")
            .with("RTL_CACHE_MAP_SIZE", "1MiB")
            .with("RTL_TASK_WORKERS", "1")
            .with("RTL_PLOT_WORKERS", "0"),
    );
    let dir = daemon.home.scratch.0.canonicalize().expect("scratch");
    std::fs::write(dir.join("ragged.csv"), "x,z\n1,2\n3\n4,5\n").expect("file");
    std::fs::write(dir.join("empty.csv"), "").expect("file");
    std::fs::write(dir.join("text.npz"), "x,z\n1,2\n").expect("file");
    std::fs::write(dir.join("short.npy"), b"\x93NUMPY\x01\x00\x10\x00{'descr'").expect("file");
    std::fs::write(dir.join("words.csv"), "x\n1\n2\nthree\n").expect("file");
    let mut transform = Transform::connect(&daemon.home.config()).expect("connect");

    let ragged = dir.join("ragged.csv").display().to_string();
    fails(
        &mut transform,
        &open(&dir, "ragged", "csv"),
        &[
            &format!("{ragged}:3"),
            "1 field but the header has 2",
            "open_array",
        ],
    );
    fails(
        &mut transform,
        &open(&dir, "empty", "csv"),
        &["empty.csv", "the file is empty"],
    );
    fails(
        &mut transform,
        &open(&dir, "text", "npz"),
        &["text.npz", "not a zip (.npz)"],
    );
    fails(&mut transform, &open(&dir, "short", "npy"), &["short.npy"]);
    fails(
        &mut transform,
        &open(&dir, "absent", "csv"),
        &["absent.csv", "cannot read"],
    );
    // A number column with a word in it reads as text; the task that wants
    // numbers says which column and what it holds.
    fails(
        &mut transform,
        &open(&dir, "words", "csv"),
        &["task add", "`x`", "utf8"],
    );

    // A histogram of a column holding inf is an error naming the column,
    // not a column of nan.
    std::fs::write(dir.join("inf.csv"), "x\n1\n2\ninf\n").expect("file");
    let histogram = Plan::parse(
        r#"{"0": {"tasks": [{"open_array": {"filename": "inf"}},
                           {"histogram": {"operations": [{"a": "x", "bins": 4, "column": "h"}]}}]}}"#,
        "<test>",
        dir.clone(),
    )
    .expect("plan");
    fails(
        &mut transform,
        &histogram,
        &["task histogram", "column `x`", "needs finite values"],
    );

    // Bigger than the whole cache map: it comes back inline instead.
    let mut big = String::from("x\n");
    for i in 0..400_000 {
        big.push_str(&format!("{i}.5\n"));
    }
    std::fs::write(dir.join("big.csv"), &big).expect("file");

    // Numbers for the part of the file `rtl check` reads, then a word:
    // the reader, not a later task, names the line and the value, and
    // `types` reads the column as text.
    std::fs::write(dir.join("late.csv"), format!("{big}n/a\n")).expect("file");
    let late = dir.join("late.csv").display().to_string();
    fails(
        &mut transform,
        &open(&dir, "late", "csv"),
        &[
            "task open_array",
            &format!("{late}:400002: column `x`: \"n/a\" is not a number (float64), the type of the column's first 128,852 rows"),
            "\"types\": {\"x\": \"utf8\"}",
        ],
    );
    let as_text = Plan::parse(
        r#"{"0": {"tasks": {"open_array": {"filename": "late", "types": {"x": "utf8"}}}}}"#,
        "<test>",
        dir.clone(),
    )
    .expect("plan");
    let table = transform.execute(&as_text).expect("read as text");
    assert_eq!(table.rows(), 400_001);
    assert!(matches!(
        table.column("x"),
        Some(rtl_tasks::Column::Utf8(_))
    ));
    let table = transform
        .execute(&open(&dir, "big", "csv"))
        .expect("a table bigger than the cache map still comes back");
    assert_eq!(table.rows(), 400_000);
    let log = std::fs::read_to_string(daemon.home.dir().join("log/tasknode.log")).expect("log");
    assert!(log.contains("raise cache_map_size"), "{log}");
}
