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

    let client = |job: &str| {
        let file = daemon.home.scratch.0.join("job.json");
        std::fs::write(&file, job).expect("write job");
        Command::new("python3")
            .args([
                script,
                "--endpoint",
                &endpoint,
                "--job",
                file.to_str().unwrap(),
            ])
            .env("RTL_HOME", daemon.home.dir())
            .output()
            .expect("run python3")
    };

    // A job file as people write them for `rtl run`.
    let out = client(
        r#"{"0": {"tasks": [{"multiply": {"operations": [{"a": "value", "b": 2, "column": "twice"}]}},
                            {"select": {"columns": ["id", "twice"]}}]}}"#,
    );
    assert!(out.status.success(), "{}", text(&out));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json result");
    assert_eq!(result["twice"][4], 84.0, "{result}");

    // A failing job comes back as an error naming the stage and task.
    let out = client(r#"{"0": {"tasks": {"null": {"oops": 1}}}}"#);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("error: stage 0, task null: field oops: bad kwargs: unknown field `oops`"),
        "{}",
        text(&out)
    );

    // The relay cannot read the message at all (a number past 64 bits):
    // its answer carries no job id, and the client shows it at once.
    let out = client(r#"{"0": {"tasks": {"head": {"n": 1000000000000000000000000000000}}}}"#);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("error: malformed message: bad header") && !said.contains("no answer"),
        "{}",
        text(&out)
    );
}
