//! Every job under examples/ runs through a real daemon and gives the
//! result kept beside it in expected.csv (numbers to 1e-9). The expected
//! values were checked by hand and against numpy.

mod common;

use common::{assert_close, copy_dir, read_csv, text, Daemon};
use std::path::PathBuf;

#[test]
fn every_example_gives_its_expected_result() {
    let daemon = Daemon::start("examples");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut ran = Vec::new();
    for entry in std::fs::read_dir(&root).expect("examples dir").flatten() {
        let expected = entry.path().join("expected.csv");
        if !expected.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        // A copy, so jobs that write files write them in the scratch dir.
        let copy = daemon.home.scratch.0.join(&name);
        copy_dir(&entry.path(), &copy);
        let out = copy.join("result.csv");
        let run = daemon.rtl(&[
            "run",
            "--connect",
            copy.join("job.json").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(run.status.success(), "{name}: {}", text(&run));
        assert_close(&name, &read_csv(&out), &read_csv(&expected));
        ran.push(name);
    }
    ran.sort();
    assert_eq!(
        ran,
        [
            "arithmetic",
            "distinct",
            "files",
            "grouping",
            "pipeline",
            "quickstart",
            "rows",
            "statistics"
        ]
    );
}
