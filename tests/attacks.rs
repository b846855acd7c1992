//! Attacks from the same machine, with raw ZeroMQ sockets written from
//! `docs/PROTOCOL.md`: what a local user without the cluster secret tries,
//! and what the daemon must refuse. Each test names the hole it closes.

mod common;

use common::{kill, null_job, text, Daemon, Home};
use rtl_dsl::Plan;
use rtl_wire::auth::Secret;
use rtl_wire::{Body, Done, Envelope, Kind, Message, NodeInfo};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A daemon with a cluster secret.
fn guarded_daemon(tag: &str) -> Daemon {
    let home = Home::new(tag).with("RTL_PLOT_WORKERS", "0");
    let out = home.rtl(&["keygen"]);
    assert!(out.status.success(), "{}", text(&out));
    Daemon::start_in(home)
}

fn dealer(ctx: &zmq::Context, id: &[u8], endpoint: &str) -> zmq::Socket {
    let s = ctx.socket(zmq::DEALER).expect("socket");
    s.set_identity(id).expect("id");
    s.set_linger(0).expect("linger");
    s.connect(endpoint).expect("connect");
    s
}

/// `socket`, once it has proven `secret` to the relay.
fn prove(socket: zmq::Socket, secret: &Secret, patience: Duration) -> zmq::Socket {
    let mut connection = rtl_wire::connection::Connection::from_socket(socket);
    connection
        .prove(secret, patience)
        .expect("prove the secret");
    connection.into_socket()
}

/// A node's claim that it did `work`, in the stage the work was for.
fn done(work: &Envelope) -> Message {
    let stage = match &work.message {
        Message::Work(w) => w.stage,
        _ => 0,
    };
    Message::Done(Done {
        stage,
        ..Done::default()
    })
}

/// Every message `socket` gets within `wait`, by kind.
fn listen(socket: &zmq::Socket, wait: Duration) -> Vec<Kind> {
    let deadline = Instant::now() + wait;
    let mut kinds = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return kinds;
        }
        if socket
            .poll(zmq::POLLIN, left.as_millis() as i64)
            .unwrap_or(0)
            > 0
        {
            if let Ok(env) = Envelope::recv(socket, zmq::DONTWAIT) {
                kinds.push(env.message.kind());
            }
        }
    }
}

/// A job that stays running until released: the daemon's task nodes are
/// paused (SIGSTOP, by the pids we started) before it is sent, so its work
/// waits on a node; releasing them (SIGCONT) lets it finish. The daemon
/// must give paused nodes time (`RTL_NODE_TIMEOUT_MS`).
struct Held(Vec<u32>);

impl Held {
    fn new(daemon: &Daemon) -> (Plan, Held) {
        let nodes = daemon.home.pids_of("tasknode");
        for pid in &nodes {
            common::signal(*pid, libc::SIGSTOP);
        }
        let plan = Plan::from_file(&null_job(&daemon.home.scratch)).expect("plan");
        (plan, Held(nodes))
    }

    fn release(&self) {
        for pid in &self.0 {
            common::signal(*pid, libc::SIGCONT);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release();
    }
}

#[test]
fn a_departed_clients_routing_id_gets_its_taker_nothing() {
    let home = Home::new("client-id-reuse")
        .with("RTL_PLOT_WORKERS", "0")
        .with("RTL_NODE_TIMEOUT_MS", "60000");
    let out = home.rtl(&["keygen"]);
    assert!(out.status.success(), "{}", text(&out));
    let daemon = Daemon::start_in(home);
    let config = daemon.home.config();
    let secret = Secret::load(&config.secret_path())
        .expect("secret")
        .expect("a secret");
    let ctx = zmq::Context::new();
    let endpoint = config.client_endpoint();
    let (plan, held) = Held::new(&daemon);

    // The victim proves the secret, submits a job and goes away mid-job.
    let id = b"victim-client-id".to_vec();
    let victim = dealer(&ctx, &id, &endpoint);
    let mut victim = prove(victim, &secret, Duration::from_secs(5));
    let job = Uuid::new_v4();
    Envelope::with_id(job, job, common::submit(plan), Body::Empty)
        .send(&mut victim, None)
        .expect("submit");
    std::thread::sleep(Duration::from_millis(20));
    drop(victim);
    // The attacker takes the name as soon as it can (the job is still
    // running: nothing was sent to the victim yet), asks, and listens for
    // what the relay sends under it. A connection made while the name is
    // still in use at the relay is held back by libzmq: then it tries
    // again.
    std::thread::sleep(Duration::from_millis(100));
    let mut got = Vec::new();
    for _ in 0..5 {
        let mut thief = dealer(&ctx, &id, &endpoint);
        for _ in 0..5 {
            Envelope::control(Message::Status)
                .send(&mut thief, None)
                .expect("status");
            got.extend(listen(&thief, Duration::from_millis(200)));
        }
        if !got.is_empty() {
            // Whatever else comes its way.
            got.extend(listen(&thief, Duration::from_secs(2)));
            break;
        }
    }
    assert!(
        got.iter().all(|k| *k == Kind::Challenge),
        "the taker of a departed client's id got {got:?}"
    );
    assert!(!got.is_empty(), "not even challenged");

    held.release();
    // The relay let the job go with its client, and serves others.
    let out = daemon.rtl(&[
        "run",
        "--connect",
        null_job(&daemon.home.scratch).to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let log = std::fs::read_to_string(config.log_dir().join("relay.log")).expect("log");
    assert!(log.contains("has gone (its connection closed)"), "{log}");
}

#[test]
fn a_dead_nodes_routing_id_gets_its_taker_no_work() {
    let daemon = guarded_daemon("node-id-reuse");
    let config = daemon.home.config();
    let node_log = std::fs::read_to_string(config.log_dir().join("tasknode.log")).expect("log");
    let victim = daemon.home.pids_of("tasknode")[0];
    // The node's name, as its log gives it.
    let id = node_log
        .split_whitespace()
        .find(|w| w.starts_with(&format!("tasknode-{victim}-")))
        .expect("the node's id in its log")
        .to_string();
    kill(victim);

    // The attacker connects under the dead node's name and offers itself.
    let ctx = zmq::Context::new();
    let mut thief = dealer(&ctx, id.as_bytes(), &config.node_endpoint());
    let beat = Message::Heartbeat(Some(NodeInfo {
        service: "tasknode".into(),
        // A live process, so the relay's check of local pids passes it.
        pid: std::process::id(),
        host: rtl_wire::link::hostname(),
        capacity: 64,
        cache_id: None,
        envelopes: 0,
        tasks: Vec::new(),
    }));
    let job = null_job(&daemon.home.scratch);
    let jobs = std::thread::scope(|scope| {
        let runs = scope.spawn(|| {
            (0..10)
                .map(|_| daemon.rtl(&["run", "--connect", job.to_str().unwrap()]))
                .collect::<Vec<_>>()
        });
        let mut got = Vec::new();
        for _ in 0..10 {
            Envelope::control(beat.clone())
                .send(&mut thief, None)
                .expect("heartbeat");
            got.extend(listen(&thief, Duration::from_millis(200)));
        }
        (runs.join().expect("runs"), got)
    });
    let (runs, got) = jobs;
    assert!(
        got.iter().all(|k| *k == Kind::Challenge),
        "the taker of a dead node's id got {got:?}"
    );
    for out in runs {
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("Result: 4 rows"), "{}", text(&out));
    }
}

#[test]
fn a_histogram_of_two_to_the_forty_bins_is_a_task_error_and_no_node_dies() {
    let daemon = guarded_daemon("huge-bins");
    let nodes = daemon.home.pids_of("tasknode");
    let ctx = zmq::Context::new();
    let mut client = common::proven_client(&ctx, &daemon.home);
    let plan = Plan::parse(
        r#"{"0": {"tasks": {"histogram": {"operations": [{"a": "x", "bins": 1099511627776, "column": "h"}]}}}}"#,
        "<attack>",
        daemon.home.scratch.0.clone(),
    )
    .expect("the job parses; its numbers are checked later");
    let submit = common::submit(plan);
    let table = rtl_tasks::Table::from_columns(vec![(
        "x".into(),
        rtl_tasks::Column::Float64(ndarray::array![1.0, 2.0, 3.0]),
    )])
    .expect("table");
    for _ in 0..3 {
        Envelope::new(Uuid::nil(), submit.clone(), Body::Table(table.clone()))
            .send(&mut client, None)
            .expect("submit");
        assert!(
            client.poll(zmq::POLLIN, 10_000).expect("poll") > 0,
            "no answer"
        );
        let reply = Envelope::recv(&client, 0).expect("reply");
        assert_eq!(reply.message.kind(), Kind::Error);
        let failure = common::failure(reply);
        assert_eq!(failure.task.as_deref(), Some("histogram"), "{failure}");
        assert!(
            failure.message.contains("bins must be from 1 to 10000000"),
            "{failure}"
        );
    }
    assert_eq!(daemon.home.pids_of("tasknode"), nodes, "a node died");
    let out = daemon.rtl(&[
        "run",
        "--connect",
        null_job(&daemon.home.scratch).to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_slow_or_huge_request_holds_and_bloats_nothing_on_the_plot_page() {
    use std::io::Write;
    let daemon = Daemon::start_in(Home::new("page-attack"));
    let port = daemon.home.port("RTL_PLOT_PORT");
    let plot = daemon.home.pids_of("plotnode")[0];
    let before = common::anon_rss(plot);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (slowest, sent) = std::thread::scope(|scope| {
        // Slowloris: a byte every 1.5 s.
        scope.spawn(|| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            for b in b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" {
                if stop.load(std::sync::atomic::Ordering::Relaxed) || s.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1500));
            }
        });
        // A request line of up to 1 GiB with no newline.
        let huge = scope.spawn(|| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.set_write_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let chunk = vec![b'A'; 1 << 20];
            let mut sent = 0usize;
            s.write_all(b"GET /").expect("start");
            while sent < 1 << 30 && s.write_all(&chunk).is_ok() {
                sent += chunk.len();
            }
            sent
        });
        // Everyone else is answered, each within a second.
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let asked = Instant::now();
            let (status, _, _) = common::http("GET", port, "/charts.json", None).expect("page");
            assert_eq!(status, 200);
            slowest = slowest.max(asked.elapsed());
            std::thread::sleep(Duration::from_millis(250));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (slowest, huge.join().expect("huge"))
    });
    assert!(
        slowest < Duration::from_secs(1),
        "a request waited {slowest:?}"
    );
    assert!(
        sent < 64 << 20,
        "the page read {sent} bytes of one request line"
    );
    let grown = common::anon_rss(plot).saturating_sub(before);
    assert!(grown < 32 << 20, "the plot node grew by {grown} bytes");
}

/// Raises this process's open-file limit (and so its children's) to
/// `want`, within the hard limit; returns the limit it got.
fn allow_open_files(want: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a plain struct we own.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_cur.max(want.min(limit.rlim_max));
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    limit.rlim_cur
}

#[test]
fn thousands_of_half_finished_handshakes_keep_no_peer_out() {
    let limit = allow_open_files(20_000);
    assert!(
        limit >= 12_000,
        "5,000 connections need an open-file limit of 12000 or more; this machine allows {limit} (ulimit -Hn)"
    );
    let daemon = guarded_daemon("handshake-flood");
    let config = daemon.home.config();
    let endpoint = config.client_endpoint();
    let secret = Secret::load(&config.secret_path())
        .expect("secret")
        .expect("a secret");
    let ctx = zmq::Context::new();
    // A context holds at most 1023 sockets.
    let contexts: Vec<zmq::Context> = (0..6).map(|_| zmq::Context::new()).collect();
    // Connections that ask and never answer their challenge.
    let flood = |n: usize| -> Vec<zmq::Socket> {
        let sockets: Vec<zmq::Socket> = (0..n)
            .map(|k| {
                let ctx = &contexts[k % contexts.len()];
                let mut s = dealer(
                    ctx,
                    format!("flood-{k}-{}", Uuid::new_v4()).as_bytes(),
                    &endpoint,
                );
                Envelope::control(Message::Ping)
                    .send(&mut s, None)
                    .expect("ping");
                s
            })
            .collect();
        for s in &sockets {
            assert_eq!(listen_one(s), Some(Kind::Challenge));
        }
        sockets
    };
    let first = flood(3000);
    // A peer starts its handshake, and more half-finished ones pile up
    // before it answers.
    let mut peer = dealer(&ctx, b"patient-peer", &endpoint);
    let mut prover = rtl_wire::auth::Prover::new(secret);
    let ask = |s: &mut zmq::Socket, nonce: Vec<u8>, proof: Vec<u8>| {
        Envelope::control(Message::Proof { nonce, proof })
            .send(s, None)
            .expect("send");
        assert!(s.poll(zmq::POLLIN, 10_000).expect("poll") > 0, "no answer");
        Envelope::recv(s, 0).expect("answer")
    };
    let challenge = ask(&mut peer, Vec::new(), Vec::new());
    assert_eq!(challenge.message.kind(), Kind::Challenge);
    let second = flood(2000);
    let Message::Challenge { nonce } = challenge.message else {
        panic!("not a challenge");
    };
    let (nonce, proof) = prover.answer(&nonce).expect("answer");
    let welcome = ask(&mut peer, nonce, proof);
    assert_eq!(
        welcome.message.kind(),
        Kind::Welcome,
        "the peer's challenge did not survive the flood"
    );
    let Message::Welcome { proof } = welcome.message else {
        panic!("not a welcome");
    };
    assert!(prover.welcomed(&proof));
    drop((first, second));
    let out = daemon.rtl(&[
        "run",
        "--connect",
        null_job(&daemon.home.scratch).to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

/// The next message on `socket` within 10 s, by kind.
fn listen_one(socket: &zmq::Socket) -> Option<Kind> {
    (socket.poll(zmq::POLLIN, 10_000).ok()? > 0)
        .then(|| Envelope::recv(socket, 0).ok())
        .flatten()
        .map(|env| env.message.kind())
}

/// A node with the secret that answers every piece of work it gets with
/// `lie(work)`; runs until `stop`.
fn lying_node(
    config: &rtl_config::Config,
    stop: &std::sync::atomic::AtomicBool,
    lie: impl Fn(&Envelope) -> Envelope,
) {
    let ctx = zmq::Context::new();
    let node = dealer(
        &ctx,
        format!("liar-{}", Uuid::new_v4()).as_bytes(),
        &config.node_endpoint(),
    );
    let secret = Secret::load(&config.secret_path())
        .expect("secret")
        .expect("a secret");
    let mut node = prove(node, &secret, Duration::from_secs(10));
    let beat = Message::Heartbeat(Some(NodeInfo {
        service: "tasknode".into(),
        pid: std::process::id(),
        host: "elsewhere".into(),
        capacity: 4,
        cache_id: None,
        envelopes: 0,
        tasks: Vec::new(),
    }));
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        Envelope::control(beat.clone())
            .send(&mut node, None)
            .expect("heartbeat");
        if node.poll(zmq::POLLIN, 100).unwrap_or(0) > 0 {
            if let Ok(work) = Envelope::recv(&node, zmq::DONTWAIT) {
                if work.message.kind() == Kind::Work {
                    lie(&work).send(&mut node, None).expect("answer");
                }
            }
        }
    }
}

#[test]
fn a_node_that_lies_about_its_answers_fails_the_job_or_is_overruled_never_hangs_it() {
    let daemon = Daemon::start_in(
        Home::new("liar")
            .with("RTL_TASK_WORKERS", "0")
            .with("RTL_PLOT_WORKERS", "0")
            .with("RTL_JOB_TIMEOUT_MS", "5000"),
    );
    let config = daemon.home.config();
    let job = null_job(&daemon.home.scratch);
    // Answers naming another job's cache entries, from a node without the
    // relay's cache.
    let foreign = |work: &Envelope| {
        let refs = Body::Refs {
            schema: Vec::new(),
            rows: 4,
            keys: vec![format!("table:{}:{}", Uuid::new_v4(), Uuid::new_v4())],
        };
        Envelope::with_id(work.id, work.job, done(work), refs)
    };
    // Answers under the right work id that claim another job and stage.
    let misaddressed = |work: &Envelope| {
        let claim = Message::Done(Done {
            stage: 7,
            ..Done::default()
        });
        Envelope::with_id(work.id, Uuid::new_v4(), claim, Body::Empty)
    };
    // Answers whose header claims more rows than their frames hold.
    let oversold = |work: &Envelope| {
        let frames = Body::Frames {
            schema: vec![rtl_wire::ColumnSpec {
                name: "x".into(),
                dtype: rtl_tasks::DType::Int64,
            }],
            rows: 1 << 61,
            frames: vec![zmq::Message::from(&[0u8; 8][..])],
        };
        Envelope::with_id(work.id, work.job, done(work), frames)
    };
    for (what, expect) in [
        ("foreign", "cannot have made"),
        ("misaddressed", ""),
        ("oversold", "malformed table"),
    ] {
        let stop = std::sync::atomic::AtomicBool::new(false);
        let out = std::thread::scope(|scope| {
            let config = &config;
            let stop_ref = &stop;
            scope.spawn(move || match what {
                "foreign" => lying_node(config, stop_ref, foreign),
                "oversold" => lying_node(config, stop_ref, oversold),
                _ => lying_node(config, stop_ref, misaddressed),
            });
            std::thread::sleep(Duration::from_millis(500));
            let mut run = daemon
                .home
                .command(&["run", "--connect", job.to_str().unwrap()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("rtl run");
            let deadline = Instant::now() + Duration::from_secs(30);
            while run.try_wait().expect("wait").is_none() {
                if Instant::now() > deadline {
                    kill(run.id());
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    panic!("{what}: the job hung");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            run.wait_with_output().expect("rtl run")
        });
        let said = text(&out);
        // Either way the job ends: an error naming why, or a result.
        if expect.is_empty() {
            assert!(
                said.contains("Result:") || !out.status.success(),
                "{what}: {said}"
            );
            assert!(!said.contains("stopped answering"), "{what}: {said}");
        } else {
            assert!(!out.status.success(), "{what}: {said}");
            assert!(said.contains(expect), "{what}: {said}");
        }
    }
}

#[test]
fn a_client_cannot_name_another_jobs_cache_entries() {
    let daemon = guarded_daemon("other-refs");
    let config = daemon.home.config();
    let cache = rtl_cache::Cache::open(&config.cache_dir(), config.cache_map_size)
        .expect("the daemon's cache");
    let ctx = zmq::Context::new();
    let mut client = common::proven_client(&ctx, &daemon.home);
    let job = Uuid::new_v4();
    let mut submit = common::submit(
        Plan::parse(
            r#"{"0": {"tasks": {"null": {}}}}"#,
            "<attack>",
            daemon.home.scratch.0.clone(),
        )
        .expect("plan"),
    );
    if let Message::Submit(s) = &mut submit {
        s.cache_id = Some(cache.id());
    }
    let refs = Body::Refs {
        schema: Vec::new(),
        rows: 1,
        keys: vec![format!("table:{}:{}", Uuid::new_v4(), Uuid::new_v4())],
    };
    Envelope::with_id(job, job, submit, refs)
        .send(&mut client, None)
        .expect("submit");
    assert!(
        client.poll(zmq::POLLIN, 10_000).expect("poll") > 0,
        "no answer"
    );
    let reply = Envelope::recv(&client, 0).expect("reply");
    assert_eq!(reply.message.kind(), Kind::Error);
    let failure = common::failure(reply);
    assert!(
        failure.message.contains("which is not this job's"),
        "{failure}"
    );
}

/// The hole: plans travel to task nodes as keys into the shared cache. A
/// local user who can write the cache (or a digest that collides) puts
/// another plan's bytes under the key the next job's plan will have; a
/// relay that kept whatever a key held would have the nodes run that plan
/// instead, silently. Now the key is the SHA-256 of the bytes and other
/// bytes under it are refused: the job's plan goes inline and the job
/// gives its own answer.
#[test]
fn a_plan_planted_under_another_plans_key_is_never_run() {
    let daemon = guarded_daemon("planted-plan");
    let config = daemon.home.config();
    let dir = daemon.home.scratch.0.clone();
    let mine = Plan::parse(
        r#"{"0": {"tasks": {"multiply": {"operations": [{"a": "x", "b": 2, "column": "y"}]}}}}"#,
        "<mine>",
        dir.clone(),
    )
    .expect("plan");
    let planted = Plan::parse(
        r#"{"0": {"tasks": {"multiply": {"operations": [{"a": "x", "b": 1000, "column": "y"}]}}}}"#,
        "<planted>",
        dir,
    )
    .expect("plan");
    let cache = rtl_cache::Cache::open(&config.cache_dir(), config.cache_map_size)
        .expect("the daemon's cache");
    let key = rtl_cache::PlanBytes::of(&mine).expect("bytes");
    let other = rtl_cache::PlanBytes::of(&planted).expect("bytes");
    cache
        .put_plan(&key.digest, &other.bytes)
        .expect("plant another plan under my plan's key");

    let mut transform = rtl_client::Transform::connect(&config).expect("connect");
    let input = rtl_tasks::Table::from_columns(vec![(
        "x".into(),
        rtl_tasks::Column::Float64(ndarray::array![1.0, 2.0, 3.0]),
    )])
    .expect("table");
    let result = transform
        .execute_with(&mine, Some(input), &mut |_| {})
        .expect("the job runs");
    assert_eq!(
        result.column("y"),
        Some(&rtl_tasks::Column::Float64(ndarray::array![2.0, 4.0, 6.0])),
        "the job's own plan ran"
    );
    let log = std::fs::read_to_string(config.log_dir().join("relay.log")).unwrap_or_default();
    assert!(log.contains("holds another plan"), "{log}");
}
