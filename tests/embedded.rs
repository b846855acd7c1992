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
        String::from_utf8_lossy(&out.stderr).contains("cannot write .xlsx files; supported: .csv"),
        "{}",
        text(&out)
    );
}
