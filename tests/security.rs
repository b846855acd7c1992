//! Who gets in, through a real daemon: with a cluster secret (`rtl
//! keygen`), clients and nodes that hold it work as before; a client
//! without it or with another one, a raw socket that skips the handshake,
//! and a node without it are all refused and logged. Without a secret,
//! a relay on a non-loopback address refuses to start unless `insecure`
//! is set, and `rtl start` says which mode it runs in.

mod common;

use common::{null_job, text, Daemon, Home};
use rtl_client::{Error, Transform};
use rtl_wire::{Body, Envelope, Kind};
use std::time::{Duration, Instant};
use uuid::Uuid;

fn relay_log(home: &Home) -> String {
    std::fs::read_to_string(home.dir().join("log/relay.log")).unwrap_or_default()
}

#[test]
fn only_peers_with_the_cluster_secret_get_in() {
    let home = Home::new("secret");
    let out = home.rtl(&["keygen"]);
    assert!(out.status.success(), "{}", text(&out));
    let secret = home.dir().join("secret");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret)
            .expect("secret")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the secret is private");
    }
    assert!(
        !home.rtl(&["keygen"]).status.success(),
        "keygen never overwrites"
    );

    let daemon = Daemon::start_in(home);
    let started = relay_log(&daemon.home);
    assert!(
        started.contains("joined"),
        "nodes with the secret join: {started}"
    );
    let job = null_job(&daemon.home.scratch);
    let job = job.to_str().expect("path");

    // Holders of the secret: as before.
    let out = daemon.rtl(&["run", "--connect", job]);
    assert!(out.status.success(), "{}", text(&out));
    let out = daemon.rtl(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        status["relay"]["nodes"], 4,
        "3 task nodes and the plot node: {status}"
    );

    // No secret here: refused, and told why; never run embedded instead.
    let stranger = daemon.home.scratch.0.join("no-secret");
    let mut config = daemon.home.config();
    config.secret_file = Some(stranger.clone());
    match Transform::connect(&config) {
        Err(Error::Refused(why)) => assert!(why.contains("asks for the cluster secret"), "{why}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("connected without the secret"),
    }
    let without = daemon
        .home
        .command(&["run", job])
        .env("RTL_SECRET_FILE", &stranger)
        .output()
        .expect("rtl run");
    assert!(!without.status.success(), "{}", text(&without));
    assert!(!text(&without).contains("embedded"), "{}", text(&without));

    // Another cluster's secret: refused.
    let other = daemon.home.scratch.0.join("other-secret");
    let out = daemon
        .home
        .command(&["keygen"])
        .env("RTL_SECRET_FILE", &other)
        .output()
        .expect("keygen");
    assert!(out.status.success(), "{}", text(&out));
    config.secret_file = Some(other);
    match Transform::connect(&config) {
        Err(Error::Refused(why)) => assert!(why.contains("refused"), "{why}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("connected with another cluster's secret"),
    }

    // A raw socket that skips the handshake gets a challenge, not a result.
    let ctx = zmq::Context::new();
    let mut raw = ctx.socket(zmq::DEALER).expect("socket");
    raw.set_linger(0).expect("linger");
    raw.set_rcvtimeo(5000).expect("timeout");
    raw.connect(&config.client_endpoint()).expect("connect");
    let plan = rtl_dsl::Plan::from_file(std::path::Path::new(job)).expect("plan");
    let id = Uuid::new_v4();
    Envelope::with_id(id, id, common::submit(plan), Body::Empty)
        .send(&mut raw, None)
        .expect("send");
    let answer = Envelope::recv(&raw, 0).expect("an answer");
    assert_eq!(answer.message.kind(), Kind::Challenge);
    raw.set_rcvtimeo(1000).expect("timeout");
    assert!(raw.recv_msg(0).is_err(), "nothing else comes back");

    // A node without the secret cannot join.
    let mut node = daemon
        .home
        .command(&["node", "--relay", &config.node_endpoint(), "--workers", "1"])
        .env("RTL_SECRET_FILE", &stranger)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rtl node");
    std::thread::sleep(Duration::from_millis(2500));
    let _ = node.kill();
    let node_out = node.wait_with_output().expect("node output");
    let node_log = String::from_utf8_lossy(&node_out.stderr);
    assert!(
        node_log.contains("asks for the cluster secret"),
        "{node_log}"
    );
    let out = daemon.rtl(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        status["relay"]["nodes"], 4,
        "the stranger did not join: {status}"
    );

    let log = relay_log(&daemon.home);
    for refused in [
        "refused a Ping from",
        "refused a Submit from",
        "its proof does not match the cluster secret",
        "refused a Heartbeat from node tasknode-",
    ] {
        assert!(log.contains(refused), "{refused:?} not logged:\n{log}");
    }
}

#[test]
fn a_relay_never_serves_without_a_secret_unless_insecure() {
    // By hand, with no secret: refused, on loopback as beyond it.
    for listen in ["127.0.0.1", "0.0.0.0"] {
        let home = Home::new("open").with("RTL_RELAY_LISTEN", listen);
        let out = home.rtl(&["serve", "relay", "--foreground"]);
        assert!(!out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("without a cluster secret") && text(&out).contains("rtl start"),
            "{}",
            text(&out)
        );
    }
    // `rtl start` beyond loopback makes one and runs authenticated.
    let home = Home::new("open").with("RTL_RELAY_LISTEN", "0.0.0.0");
    let out = home.rtl(&["start"]);
    let daemon = Daemon { home };
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("security: authenticated"),
        "{}",
        text(&out)
    );
    let out = daemon.rtl(&["stop"]);
    assert!(out.status.success(), "{}", text(&out));

    // insecure = true, and no secret: anyone who reaches the ports gets in.
    let daemon = Daemon::start_in(
        Home::new("open")
            .with("RTL_RELAY_LISTEN", "0.0.0.0")
            .with("RTL_INSECURE", "true"),
    );
    let out = daemon.rtl(&["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let started = Instant::now();
    let out = daemon.rtl(&[
        "run",
        "--connect",
        null_job(&daemon.home.scratch).to_str().expect("path"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_fresh_daemon_has_a_secret_and_keeps_its_files_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new("modes");
    let out = home.rtl(&["start"]);
    let said = text(&out);
    let daemon = Daemon { home };
    assert!(out.status.success(), "{said}");
    assert!(said.contains("made the cluster secret"), "{said}");
    assert!(said.contains("security: authenticated"), "{said}");
    let dir = daemon.home.dir();
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&dir), 0o700, "the home");
    let job = null_job(&daemon.home.scratch);
    let out = daemon.rtl(&["run", "--connect", job.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "the owner's client finds the secret: {}",
        text(&out)
    );
    for sub in ["secret", "log", "run", "cache", "plots"] {
        let path = dir.join(sub);
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), expected, "{sub}");
        for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            let p = entry.path();
            assert_eq!(mode(&p) & 0o077, 0, "{} is readable by others", p.display());
        }
    }
    // Another user of this machine has no secret: refused, never embedded.
    let stranger = daemon.home.scratch.0.join("no-secret");
    let out = daemon
        .home
        .command(&["run", job.to_str().unwrap()])
        .env("RTL_SECRET_FILE", &stranger)
        .output()
        .expect("rtl run");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("cluster secret"), "{}", text(&out));
    assert!(!text(&out).contains("embedded"), "{}", text(&out));
    // A second start keeps the secret.
    let again = daemon.rtl(&["restart"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        !text(&again).contains("made the cluster secret"),
        "{}",
        text(&again)
    );
}

#[test]
fn insecure_is_the_explicit_way_out() {
    let home = Home::new("insecure").with("RTL_INSECURE", "true");
    let out = home.rtl(&["start"]);
    let said = text(&out);
    let _daemon = Daemon { home };
    assert!(out.status.success(), "{said}");
    assert!(said.contains("security: INSECURE"), "{said}");
    assert!(!said.contains("made the cluster secret"), "{said}");
}

#[test]
fn job_text_cannot_forge_a_log_line() {
    let daemon = Daemon::start("forge");
    let forged = "2026-01-01T00:00:00.000Z ERROR relay[1] forged";
    let plan = rtl_dsl::Plan::parse(
        &format!(r#"{{"0": {{"tasks": {{"select": {{"columns": ["x\n{forged}\r"]}}}}}}}}"#),
        "<test>",
        std::env::temp_dir(),
    )
    .expect("plan");
    let err = Transform::connect(&daemon.home.config())
        .expect("connect")
        .execute(&plan)
        .expect_err("no such column");
    assert!(err.to_string().contains("no column"), "{err}");
    let mut logged = String::new();
    for entry in std::fs::read_dir(daemon.home.dir().join("log")).expect("logs") {
        logged += &std::fs::read_to_string(entry.expect("entry").path()).unwrap_or_default();
    }
    assert!(
        logged.contains(&format!("x\\n{forged}\\r")),
        "the name is logged, escaped:\n{logged}"
    );
    assert!(
        logged.lines().all(|line| !line.starts_with(forged)),
        "{logged}"
    );
}
