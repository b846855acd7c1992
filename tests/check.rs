//! `rtl check`: every deliberately broken job under tests/broken gives the
//! exact message kept beside it, every example is clean, and a job that
//! skips the client's check is refused by the relay before any node sees it.

mod common;

use common::{text, Daemon, Home};
use rtl_client::{Error, Transform};
use rtl_dsl::Plan;
use rtl_wire::{Body, Envelope, Kind};
use std::path::PathBuf;
use std::process::Command;

fn broken_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/broken")
}

#[test]
fn every_broken_job_gives_its_expected_message() {
    let dir = broken_dir();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/broken").flatten() {
        let path = entry.path();
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("json" | "toml")
        ) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let expected = std::fs::read_to_string(path.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{name} has no .expected beside it"));
        let out = Command::new(common::bin())
            .arg("check")
            .arg(&name)
            .current_dir(&dir)
            .output()
            .expect("rtl check");
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        let here = dir.canonicalize().expect("canonical dir");
        let got =
            String::from_utf8_lossy(&out.stdout).replace(&here.display().to_string(), "<here>");
        assert_eq!(got, expected, "{name}");
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} broken jobs found");
}

#[test]
fn check_json_lists_every_problem_of_a_file() {
    let out = Command::new(common::bin())
        .args(["check", "--json", "several.json", "stage_gap.json"])
        .current_dir(broken_dir())
        .output()
        .expect("rtl check");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let problems: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let list = problems.as_array().expect("a list");
    assert_eq!(list.len(), 5, "{problems}");
    assert_eq!(list[0]["file"], "several.json");
    assert_eq!(list[0]["stage"], "1");
    assert_eq!(list[0]["task"], "add");
    assert_eq!(list[0]["field"], "operations[0]");
    assert_eq!(
        (list[0]["line"].as_u64(), list[0]["column"].as_u64()),
        (Some(4), Some(29))
    );
    assert!(list[0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("did you mean totalRunTime?")));
    assert_eq!(list[3]["task"], "nul");
    assert_eq!(list[4]["file"], "stage_gap.json");
}

#[test]
fn every_example_is_clean() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut jobs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("examples")
        .flatten()
        .map(|e| e.path().join("job.json"))
        .filter(|p| p.is_file())
        .collect();
    jobs.sort();
    let out = Command::new(common::bin())
        .arg("check")
        .args(&jobs)
        .output()
        .expect("rtl check");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).matches(": ok").count(),
        jobs.len()
    );
}

#[test]
fn run_refuses_a_broken_job_and_fills_parameters() {
    let home = Home::new("runcheck");
    let out = home.rtl(&["run", broken_dir().join("several.json").to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing was run; 4 problem(s)") && !err.contains("embedded"),
        "{}",
        text(&out)
    );

    let dir = &home.scratch.0;
    std::fs::copy(broken_dir().join("runs.csv"), dir.join("runs.csv")).expect("copy data");
    std::fs::write(
        dir.join("by_site.json"),
        r#"{"params": {"site": null, "n": 5},
            "0": {"tasks": {"open_array": {"filename": "runs"}}},
            "1": {"tasks": [{"filter": {"operations": [{"column": "site", "method": "eq", "value": "${site}"}]}},
                            {"head": {"n": "${n}"}}]}}"#,
    )
    .expect("job");
    let job = dir.join("by_site.json");
    let out = home.rtl(&["run", job.to_str().unwrap(), "--set", "site=south"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Result: 1 row "),
        "{}",
        text(&out)
    );
    let out = home.rtl(&["run", job.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("parameter `site` has no default"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_client_and_the_relay_both_refuse_a_bad_job() {
    let daemon = Daemon::start("relaycheck");
    let config = daemon.home.config();
    let bad = Plan::parse(
        r#"{"0": {"tasks": {"filter": {"operations": [{"column": "x", "method": "approx", "value": 1}]}}}}"#,
        "<unchecked>",
        std::env::temp_dir(),
    )
    .expect("plan");
    // The client library refuses it before sending.
    match Transform::connect(&config).expect("connect").execute(&bad) {
        Err(Error::Invalid(problems)) => {
            assert!(problems.to_string().contains("approx"), "{problems}")
        }
        other => panic!(
            "expected the client to refuse, got {:?}",
            other.map(|t| t.rows())
        ),
    }
    // A client that skips the check (here: raw envelopes) meets the relay's.
    let ctx = zmq::Context::new();
    let mut socket = common::proven_client(&ctx, &daemon.home);
    let job = uuid::Uuid::new_v4();
    Envelope::with_id(job, job, common::submit(bad), Body::Empty)
        .send(&mut socket, None)
        .expect("send");
    assert!(
        socket.poll(zmq::POLLIN, 5000).expect("poll") > 0,
        "the relay answers"
    );
    let reply = Envelope::recv(&socket, 0).expect("reply");
    assert_eq!(reply.message.kind(), Kind::Error);
    let failure = common::failure(reply);
    assert_eq!(
        (failure.stage, failure.task.as_deref()),
        (Some(0), Some("filter"))
    );
    // The relay names the field as `rtl check` does.
    assert_eq!(failure.field.as_deref(), Some("operations[0].method"));
    assert_eq!(
        failure.to_string(),
        "stage 0, task filter, field operations[0].method: bad kwargs: unknown value `approx`, expected one of `eq`, `ne`, `lt`, `le`, `gt`, `ge`"
    );

    let out = daemon.rtl(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    let handled: u64 = json["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["envelopes"].as_u64())
        .sum();
    assert_eq!(handled, 0, "no envelope left the relay: {json}");
}

#[test]
fn a_job_can_come_from_stdin_and_toml() {
    use std::io::Write;
    let mut child = Command::new(common::bin())
        .args(["check", "-"])
        .current_dir(broken_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("rtl check -");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(br#"{"0": {"tasks": {"open_array": {"filename": "runs"}}}, "1": {"tasks": {"head": {"n": "2"}}}}"#)
        .expect("write job");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "<stdin>:1:81: stage 1, task head, field n: bad kwargs: expected a whole number (0 or more), found the text \"2\"\n1 problem(s)\n"
    );
    let toml = broken_dir().join("../../examples/rows");
    let home = Home::new("toml");
    let job = home.scratch.0.join("job.toml");
    std::fs::copy(toml.join("runs.csv"), home.scratch.0.join("runs.csv")).expect("data");
    std::fs::write(&job, "[params]\nlimit = 2\n\n[0.tasks.open_array]\nfilename = \"runs\"\n\n[1.tasks.head]\nn = \"${limit}\"\n").expect("toml");
    let out = home.rtl(&["run", job.to_str().unwrap(), "--set", "limit=3"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Result: 3 rows"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_readmes_json_and_toml_jobs_are_the_same_job() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let block = |tag: &str| {
        let start = readme
            .find(&format!("```{tag}\n{{\n  \"params\""))
            .or_else(|| readme.find(&format!("```{tag}\n[params]")))
            .unwrap_or_else(|| panic!("the README's {tag} job"));
        let body = &readme[start + tag.len() + 4..];
        body[..body.find("```").expect("block end")].to_string()
    };
    let home = Home::new("readme-jobs");
    let dir = &home.scratch.0;
    std::fs::write(
        dir.join("sensors.csv"),
        "site,reading\nnorth,1.5\nsouth,2.5\nnorth,3.5\n",
    )
    .expect("data");
    let mut results = Vec::new();
    for (tag, file) in [("json", "job.json"), ("toml", "job.toml")] {
        let job = dir.join(file);
        std::fs::write(&job, block(tag)).expect("job");
        let out = home.rtl(&["run", job.to_str().unwrap(), "--set", "limit=1"]);
        assert!(out.status.success(), "{tag}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let result = stdout[stdout.find("Result:").expect("result")..].to_string();
        assert!(
            result.starts_with("Result: 1 row x 2 columns"),
            "{tag}: {result}"
        );
        results.push(result);
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn the_relay_refuses_a_graph_that_cannot_run() {
    use rtl_dsl::{Stage, TaskCall};
    let daemon = Daemon::start("relaygraph");
    let ctx = zmq::Context::new();
    let mut socket = common::proven_client(&ctx, &daemon.home);
    let stage = |name: &str, inputs: Vec<u32>, task: &str| {
        let mut s = Stage::new(vec![TaskCall::new(task, serde_json::json!({}))]);
        s.name = name.into();
        s.inputs = Some(inputs);
        s
    };
    let plan = |stages: Vec<Stage>| Plan {
        stages,
        base_dir: std::env::temp_dir(),
        origin: "<raw>".into(),
        unresolved: Vec::new(),
    };
    // What a client that skips the check could send.
    let cases = [
        (
            plan(vec![
                stage("a", vec![1], "null"),
                stage("b", vec![0], "null"),
            ]),
            "the stages' inputs go round in a cycle: a -> b -> a",
        ),
        (
            plan(vec![
                stage("a", vec![], "null"),
                stage("b", vec![7], "null"),
            ]),
            "`inputs` names a stage the job does not have (number 7; it has 2)",
        ),
        (
            plan(vec![
                stage("a", vec![], "null"),
                stage("b", vec![], "null"),
                stage("both", vec![0, 1], "sort"),
            ]),
            "the stage takes 2 inputs (`a`, `b`), so its first task must combine them",
        ),
        (
            plan(vec![
                stage("a", vec![], "null"),
                stage("a", vec![0], "null"),
            ]),
            "stages 0 and 1 are both called `a`; each stage has a name of its own",
        ),
        (
            plan(vec![stage("a b/../x", vec![], "null")]),
            "\"a b/../x\" cannot name a stage",
        ),
    ];
    let mut failures = Vec::new();
    for (plan, words) in cases {
        let job = uuid::Uuid::new_v4();
        Envelope::with_id(job, job, common::submit(plan), Body::Empty)
            .send(&mut socket, None)
            .expect("send");
        assert!(
            socket.poll(zmq::POLLIN, 5000).expect("poll") > 0,
            "the relay answers"
        );
        let reply = Envelope::recv(&socket, 0).expect("reply");
        assert_eq!(reply.message.kind(), Kind::Error);
        let failure = common::failure(reply);
        assert!(failure.message.contains(words), "{failure}");
        failures.push(failure);
    }
    // The misplaced sort is named by its stage's name.
    let sort = &failures[2];
    assert_eq!(
        (sort.stage, sort.stage_name.as_deref(), sort.task.as_deref()),
        (Some(2), Some("both"), Some("sort"))
    );
    assert!(
        sort.to_string().starts_with("stage both, task sort: "),
        "{sort}"
    );
    let out = daemon.rtl(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    assert_eq!(json["relay"]["jobs_running"], 0, "{json}");
}
