//! Bad input on the wire, sent to a live relay from raw sockets: every kind
//! of malformed message is answered with an error (client socket) or
//! dropped and logged (node socket), an oversized one disconnects its
//! sender, and the relay keeps serving: a well-behaved client still gets
//! its job done afterwards.

mod common;

use common::{null_job, text, Daemon, Home};
use rtl_dsl::Plan;
use rtl_wire::{Envelope, Kind};
use uuid::Uuid;

fn socket(ctx: &zmq::Context, endpoint: &str) -> zmq::Socket {
    let s = ctx.socket(zmq::DEALER).expect("socket");
    s.set_linger(0).expect("linger");
    s.set_rcvtimeo(5000).expect("timeout");
    s.connect(endpoint).expect("connect");
    s
}

fn send_raw(s: &zmq::Socket, frames: &[&[u8]]) {
    s.send_multipart(frames.iter().copied(), 0).expect("send");
}

/// The relay's answer, which must be an error; returns its message.
fn error_reply(s: &zmq::Socket, what: &str) -> String {
    let env = Envelope::recv(s, 0).unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
    assert_eq!(env.message.kind(), Kind::Error, "{what}");
    common::failure(env).message
}

/// A header map written by hand: version, kind and job, plus `extra`.
/// `value` as a CBOR value, to put in a hand-made header.
fn cbor(value: &impl serde::Serialize) -> ciborium::Value {
    ciborium::Value::serialized(value).expect("cbor")
}

/// A submit header describing one column `x` of `dtype` and `rows` rows,
/// whatever frame follows it.
fn lying_submit(job: Uuid, dtype: rtl_tasks::DType, rows: u64) -> Vec<u8> {
    let schema = vec![rtl_wire::ColumnSpec {
        name: "x".into(),
        dtype,
    }];
    raw_header(
        1,
        "submit",
        job,
        vec![
            ("plan", cbor(&plan())),
            ("schema", cbor(&schema)),
            ("rows", cbor(&rows)),
        ],
    )
}

fn raw_header(v: i64, kind: &str, job: Uuid, extra: Vec<(&str, ciborium::Value)>) -> Vec<u8> {
    use ciborium::Value;
    let mut map = vec![
        (Value::Text("v".into()), Value::Integer(v.into())),
        (Value::Text("kind".into()), Value::Text(kind.into())),
        (
            Value::Text("job".into()),
            Value::Bytes(job.as_bytes().to_vec()),
        ),
    ];
    map.extend(extra.into_iter().map(|(k, v)| (Value::Text(k.into()), v)));
    let mut out = Vec::new();
    ciborium::into_writer(&Value::Map(map), &mut out).expect("cbor");
    out
}

fn plan() -> Plan {
    Plan::parse(
        r#"{"0": {"tasks": {"multiply": {"operations": [{"a": "x", "b": 2, "column": "y"}]}}}}"#,
        "<wire>",
        std::env::temp_dir(),
    )
    .expect("plan")
}

#[test]
fn malformed_messages_get_errors_and_the_relay_keeps_serving() {
    let daemon = Daemon::start_in(Home::new("wire").with("RTL_MAX_MESSAGE_BYTES", "1MiB"));
    let config = daemon.home.config();
    let ctx = zmq::Context::new();
    let client = common::proven_client(&ctx, &daemon.home);
    client.set_rcvtimeo(5000).expect("timeout");
    let id = Uuid::new_v4();
    let ok_header = raw_header(1, "ping", Uuid::nil(), Vec::new());

    let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
        (
            "one garbage frame",
            vec![b"garbage".to_vec()],
            "id frame has 7 bytes",
        ),
        ("no header", vec![id.as_bytes().to_vec()], "no header frame"),
        (
            "a header that is not CBOR",
            vec![id.as_bytes().to_vec(), vec![0xff, 0x00, 0x13]],
            "not a CBOR map",
        ),
        (
            "a wrong protocol version",
            vec![
                id.as_bytes().to_vec(),
                raw_header(7, "ping", Uuid::nil(), Vec::new()),
            ],
            "protocol version 7 is not supported",
        ),
        (
            "an unknown kind",
            vec![
                id.as_bytes().to_vec(),
                raw_header(1, "explode", Uuid::nil(), Vec::new()),
            ],
            "bad header",
        ),
        (
            "more column frames than the schema",
            vec![id.as_bytes().to_vec(), ok_header.clone(), vec![1, 2, 3]],
            "header describes 0 column frames but 1 followed",
        ),
        (
            "a node's message on the client socket",
            vec![
                id.as_bytes().to_vec(),
                raw_header(1, "done", Uuid::nil(), Vec::new()),
            ],
            "a client cannot send `done` messages",
        ),
        (
            "a submit without a plan",
            vec![
                id.as_bytes().to_vec(),
                raw_header(1, "submit", id, Vec::new()),
            ],
            "carries no plan",
        ),
        (
            "a plan whose stages are an object, as a job file writes them",
            vec![
                id.as_bytes().to_vec(),
                raw_header(
                    1,
                    "submit",
                    id,
                    vec![(
                        "plan",
                        cbor(&serde_json::json!({
                            "stages": {"0": {"tasks": [{"name": "null", "kwargs": {}}]}},
                            "base_dir": "."
                        })),
                    )],
                ),
            ],
            "bad header: field `plan.stages`: expected a list, found an object",
        ),
    ];
    // Plans that decode but that no job file could be: what `rtl check`
    // refuses, the relay refuses too.
    let mut cases = cases;
    for (what, stages, expected) in [
        ("no stages", serde_json::json!([]), "the job has no stages"),
        (
            "a stage without tasks",
            serde_json::json!([{"tasks": []}]),
            "the stage has no tasks",
        ),
        (
            "kwargs as a list",
            serde_json::json!([{"tasks": [{"name": "head", "kwargs": [3]}]}]),
            "bad kwargs: expected an object of names to values, found a list",
        ),
    ] {
        let plan = cbor(&serde_json::json!({"stages": stages, "base_dir": "."}));
        cases.push((
            what,
            vec![
                id.as_bytes().to_vec(),
                raw_header(1, "submit", id, vec![("plan", plan)]),
            ],
            expected,
        ));
    }
    for (what, frames, expected) in &cases {
        let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        send_raw(&client, &frames);
        let message = error_reply(&client, what);
        assert!(message.contains(expected), "{what}: {message}");
        // Said in words for whoever wrote the sender, not the decoder's.
        assert!(!message.contains("Semantic("), "{what}: {message}");
    }

    // A header that lies about its column: 1,000 rows, 16 bytes.
    let job = Uuid::new_v4();
    let header_bytes = lying_submit(job, rtl_tasks::DType::Float64, 1000);
    send_raw(&client, &[job.as_bytes(), &header_bytes, &[0u8; 16]]);
    let message = error_reply(&client, "a lying row count");
    assert!(
        message.contains("column \"x\"") && message.contains("must have 8000 bytes, has 16"),
        "{message}"
    );

    // Row counts no message could hold, for every type: an error each, and
    // the relay still answers.
    for dtype in [
        rtl_tasks::DType::Float64,
        rtl_tasks::DType::Int64,
        rtl_tasks::DType::Bool,
        rtl_tasks::DType::Utf8,
    ] {
        for rows in [1u64 << 62, u64::MAX] {
            let job = Uuid::new_v4();
            let header_bytes = lying_submit(job, dtype, rows);
            send_raw(&client, &[job.as_bytes(), &header_bytes, &[0u8; 8]]);
            let message = error_reply(&client, "a huge row count");
            assert!(
                message.contains("column \"x\""),
                "{dtype} {rows}: {message}"
            );
        }
        send_raw(&client, &[Uuid::new_v4().as_bytes(), &ok_header]);
        let pong = Envelope::recv(&client, 0).expect("the relay still answers");
        assert_eq!(pong.message.kind(), Kind::Pong);
    }

    // Garbage on the node socket is dropped; the relay lives on.
    let node = socket(&ctx, &config.node_endpoint());
    send_raw(&node, &[b"not an id", b"\x00\x01"]);
    send_raw(
        &node,
        &[
            Uuid::new_v4().as_bytes(),
            &raw_header(
                1,
                "done",
                Uuid::new_v4(),
                vec![(
                    "table_refs",
                    ciborium::Value::Array(vec![ciborium::Value::Text("table:nope".into())]),
                )],
            ),
        ],
    );

    // A message part past max_message_bytes: its sender is cut off.
    let big = socket(&ctx, &config.client_endpoint());
    let id = Uuid::new_v4();
    let oversized = vec![0u8; 2 << 20];
    let header_bytes = raw_header(1, "submit", id, vec![("plan", cbor(&plan()))]);
    send_raw(&big, &[id.as_bytes(), &header_bytes, &oversized]);
    big.set_rcvtimeo(1500).expect("timeout");
    assert!(
        big.recv_msg(0).is_err(),
        "an oversized message got an answer"
    );

    // Still serving: a real job runs.
    let out = daemon.rtl(&[
        "run",
        "--connect",
        null_job(&daemon.home.scratch).to_str().expect("path"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let log = std::fs::read_to_string(config.log_dir().join("relay.log")).expect("log");
    assert!(log.contains("dropped a message from a node"), "{log}");
    assert!(log.contains("refused a malformed client message"), "{log}");
}
