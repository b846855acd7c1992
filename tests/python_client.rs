//! docs/PROTOCOL.md is enough to write a client: the Python client in
//! examples/python, written from it alone, runs a job on a real daemon.
//! Skipped, saying so, when python3 lacks pyzmq, cbor2 or numpy (.ci/run
//! installs them).

mod common;

use common::{text, Daemon};
use std::process::Command;

fn python_has_modules() -> bool {
    Command::new("python3")
        .args(["-c", "import zmq, cbor2, numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn a_python_client_round_trips_a_table() {
    if !python_has_modules() {
        common::skip(
            "a_python_client_round_trips_a_table",
            "python3 lacks pyzmq, cbor2 or numpy (pip install pyzmq cbor2 numpy)",
        );
        return;
    }
    let daemon = Daemon::start("python");
    let endpoint = format!("tcp://127.0.0.1:{}", daemon.home.port("RTL_RELAY_PORT"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python/rtl_client.py");
    let out = Command::new("python3")
        .args([script, "--endpoint", &endpoint])
        .env("RTL_HOME", daemon.home.dir())
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{}", text(&out));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json result");
    assert_eq!(result["id"], serde_json::json!([0, 1, 2, 3, 4]));
    assert_eq!(result["value"][1], -1.25);
    assert_eq!(
        result["ok"],
        serde_json::json!([true, false, true, true, false])
    );
    assert_eq!(
        result["site"],
        serde_json::json!(["north", "south", "east, upper", "wëst", ""])
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Completed:"),
        "{}",
        text(&out)
    );

    // A failing job comes back as an error naming the stage and task.
    let bad = daemon.home.scratch.0.join("bad.json");
    std::fs::write(
        &bad,
        r#"[{"tasks": [{"name": "null", "kwargs": {"oops": 1}}]}]"#,
    )
    .expect("write job");
    let out = Command::new("python3")
        .args([
            script,
            "--endpoint",
            &endpoint,
            "--job",
            bad.to_str().unwrap(),
        ])
        .env("RTL_HOME", daemon.home.dir())
        .output()
        .expect("run python3");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field `oops`"),
        "{}",
        text(&out)
    );
}
