//! rtl and numpy read each other's files: raspi-rtl's .dat + .meta, .npy
//! and .npz made by numpy load through a real daemon, and what `rtl run
//! --out` writes loads in numpy. Skipped, saying so, without numpy.

mod common;

use common::{text, write_job, Daemon};
use std::process::Command;

fn python(args: &[&str]) -> std::process::Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/numpy/interop.py");
    Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3")
}

#[test]
fn numpy_and_rtl_read_each_other() {
    if !Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        common::skip(
            "numpy_and_rtl_read_each_other",
            "python3 has no numpy (pip install numpy)",
        );
        return;
    }
    let daemon = Daemon::start("numpy");
    let dir = daemon.home.scratch.0.clone();
    let out = python(&["make", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    // A raspi-rtl record file, through the daemon, out in every format.
    let job = write_job(
        &dir,
        "dat",
        r#"{"0": {"tasks": {"open_array": {"filename": "records", "path": ".", "extension": "dat"}}}}"#,
    );
    for ext in ["npz", "dat", "json"] {
        let target = dir.join(format!("out.{ext}"));
        let out = daemon.rtl(&[
            "run",
            "--connect",
            job.to_str().unwrap(),
            "--out",
            target.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{ext}: {}", text(&out));
    }
    // The original's header-less CSV, its names and types in the .meta,
    // written back twice: as rtl writes CSV (header and .meta) and in the
    // original's layout, which numpy reads as the original did.
    let job = write_job(
        &dir,
        "legacy",
        r#"{"0": {"tasks": [{"open_array": {"filename": "readings"}},
                            {"write": {"filename": "back"}},
                            {"write": {"filename": "legacy", "header": false}}]},
            "1": {"tasks": {"open_array": {"filename": "back"}}}}"#,
    );
    let out = daemon.rtl(&["run", "--connect", job.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("id (int64)") && stdout.contains("code (utf8)") && stdout.contains(" 007"),
        "digits written as text read back as text: {stdout}"
    );
    let back = std::fs::read_to_string(dir.join("back.csv")).expect("back.csv");
    assert!(back.starts_with("id,x,code\n1,0.5,007\n"), "{back}");
    assert!(dir.join("back.meta").is_file());

    let out = python(&["check", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    // numpy's own .npy and .npz (plain and compressed) come in as columns.
    for (file, ext, expect) in [
        ("single", "npy", &["single (float64)"][..]),
        ("arrays", "npz", &["a (int64)", "b (float64)"]),
        ("packed", "npz", &["s (utf8)", "zzz"]),
    ] {
        let job = write_job(
            &dir,
            file,
            &format!(
                r#"{{"0": {{"tasks": {{"open_array": {{"filename": "{file}", "extension": "{ext}"}}}}}}}}"#
            ),
        );
        let out = daemon.rtl(&["run", "--connect", job.to_str().unwrap()]);
        assert!(out.status.success(), "{file}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("Result: 3 rows"), "{file}: {stdout}");
        assert!(
            expect.iter().all(|e| stdout.contains(e)),
            "{file}: {stdout}"
        );
    }
}
