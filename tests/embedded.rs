//! `rtl run` without a daemon runs the job in-process; `--connect` refuses.

mod common;

use common::{null_job, text, Home, SENSORS_CSV};

#[test]
fn runs_embedded_when_no_daemon_answers() {
    let home = Home::new("embedded");
    let job = null_job(&home.scratch);
    let out_csv = home.scratch.0.join("out.csv");
    let out = home.rtl(&[
        "run",
        job.to_str().unwrap(),
        "--out",
        out_csv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("running the job embedded"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&out_csv).expect("output"),
        SENSORS_CSV
    );
    // The cache holds the job's tables and the log quotes the job: as
    // under `rtl start`, they are the owner's only.
    use std::os::unix::fs::PermissionsExt;
    let home_dir = home.dir();
    let mut private = vec![home_dir.clone()];
    for sub in ["cache", "log"] {
        private.push(home_dir.join(sub));
        for entry in std::fs::read_dir(home_dir.join(sub)).expect(sub).flatten() {
            private.push(entry.path());
        }
    }
    assert!(private.len() >= 5, "{private:?}");
    for path in private {
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
    }
}

#[test]
fn connect_refuses_to_run_embedded() {
    let home = Home::new("connect");
    let job = null_job(&home.scratch);
    let out = home.rtl(&["run", "--connect", job.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no rtl daemon answers at tcp://127.0.0.1:"),
        "{}",
        text(&out)
    );
}

#[test]
fn unsupported_output_format_fails_before_running() {
    let home = Home::new("outfmt");
    let job = null_job(&home.scratch);
    let out = home.rtl(&["run", job.to_str().unwrap(), "--out", "result.xlsx"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--out result.xlsx: rtl writes .csv, .dat, .npz and .json files, and this is a .xlsx file"),
        "{}",
        text(&out)
    );
}

#[test]
fn results_write_as_every_output_format() {
    let home = Home::new("outformats");
    let job = null_job(&home.scratch);
    for ext in ["csv", "npz", "json", "dat"] {
        let out_path = home.scratch.0.join(format!("out.{ext}"));
        let out = home.rtl(&[
            "run",
            job.to_str().unwrap(),
            "--out",
            out_path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{ext}: {}", text(&out));
        assert!(out_path.is_file(), "{ext}");
    }
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.scratch.0.join("out.json")).expect("json"),
    )
    .expect("parse");
    assert_eq!(json["site"][2], "east, upper");
    assert_eq!(json["reading"][3], 1e-7);
    assert!(
        home.scratch.0.join("out.meta").is_file(),
        ".dat comes with its .meta"
    );
}
