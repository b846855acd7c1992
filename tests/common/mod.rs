//! Test harness: a real `rtl` daemon with its own home and free ports,
//! stopped (and, if need be, killed by pid) when the guard drops, even when
//! the test fails.

#![allow(dead_code)] // each test file uses a different part of the harness

use rtl_tasks::{formats::csv, Column, Table};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_rtl"))
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rtl-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Ports nobody listens on right now.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// The settings of one test installation, as environment variables.
pub struct Home {
    pub scratch: Scratch,
    pub env: Vec<(String, String)>,
}

impl Home {
    pub fn new(tag: &str) -> Home {
        let scratch = Scratch::new(tag);
        let ports = free_ports(3);
        let env = vec![
            (
                "RTL_HOME".to_string(),
                scratch.0.join("home").display().to_string(),
            ),
            ("RTL_RELAY_PORT".to_string(), ports[0].to_string()),
            ("RTL_NODE_PORT".to_string(), ports[1].to_string()),
            ("RTL_PLOT_PORT".to_string(), ports[2].to_string()),
        ];
        Home { scratch, env }
    }

    /// Adds or replaces one `RTL_*` setting.
    pub fn with(mut self, key: &str, value: &str) -> Home {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn port(&self, key: &str) -> u16 {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
            .expect("port setting")
    }

    pub fn dir(&self) -> PathBuf {
        self.scratch.0.join("home")
    }

    /// Runs `rtl ARGS` with this home's settings and no others.
    pub fn rtl(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run the rtl binary")
    }

    /// `rtl ARGS` with this home's settings and no others, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RTL_")) {
            cmd.env_remove(k);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v))).args(args);
        cmd
    }

    /// The settings as rtl_config would load them in a service.
    pub fn config(&self) -> rtl_config::Config {
        let mut env: Vec<(String, String)> = self.env.clone();
        env.push(("HOME".into(), self.scratch.0.display().to_string()));
        rtl_config::Config::load(None, env)
            .expect("test config")
            .config
    }

    pub fn pids(&self) -> Vec<u32> {
        self.pid_files().into_iter().map(|(_, pid)| pid).collect()
    }

    /// Pids of one service ("relay", "tasknode", "plotnode"), from its pid
    /// files.
    pub fn pids_of(&self, service: &str) -> Vec<u32> {
        self.pid_files()
            .into_iter()
            .filter(|(name, _)| name == service)
            .map(|(_, pid)| pid)
            .collect()
    }

    fn pid_files(&self) -> Vec<(String, u32)> {
        std::fs::read_dir(self.dir().join("run"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let (service, pid) = name.strip_suffix(".pid")?.rsplit_once('-')?;
                Some((service.to_string(), pid.parse().ok()?))
            })
            .collect()
    }
}

/// A process this test started in the foreground (`rtl node`, say):
/// asked to stop on drop (SIGTERM), killed if it has not within 10 s.
pub struct Foreground(pub std::process::Child);

impl Drop for Foreground {
    fn drop(&mut self) {
        signal(self.0.id(), libc::SIGTERM);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGKILL to a process this test started (a pid read from its own
/// daemon's pid files).
/// Records that `test` skipped itself because `why`: `.ci/run` lists every
/// skip at the end of the suite. Under CI (`CI=true`), which installs
/// everything the tests need, a skip is a failure instead.
pub fn skip(test: &str, why: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped");
    let recorded = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(dir.join(test), format!("{test}: {why}\n")));
    if let Err(e) = recorded {
        eprintln!("cannot record the skip in {}: {e}", dir.display());
    }
    eprintln!("SKIPPED {test}: {why}");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} skipped itself under CI=true, where nothing may: {why}");
    }
}

pub fn kill(pid: u32) {
    signal(pid, libc::SIGKILL);
}

pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: plain kill(2) on a pid of our own daemon.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Anonymous resident memory of a process, in bytes: what it holds itself,
/// leaving out the LMDB pages it has mapped (shared page cache).
pub fn anon_rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// A daemon started with `rtl start`; stopped on drop.
pub struct Daemon {
    pub home: Home,
}

impl Daemon {
    pub fn start(tag: &str) -> Daemon {
        Daemon::start_in(Home::new(tag))
    }

    pub fn start_in(home: Home) -> Daemon {
        let daemon = Daemon { home };
        let out = daemon.home.rtl(&["start"]);
        assert!(out.status.success(), "rtl start failed: {}", text(&out));
        daemon
    }

    pub fn rtl(&self, args: &[&str]) -> Output {
        self.home.rtl(args)
    }

    /// `rtl ARGS` started, its output piped, to wait for with [`wait_for`].
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.home
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start rtl")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pids = self.home.pids();
        let _ = self.home.rtl(&["stop"]);
        // Whatever survived a failed stop goes by pid, ours only.
        for pid in pids {
            if alive(pid) {
                // SAFETY: kill(2) on a pid this test's daemon wrote.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
        }
    }
}

/// Whether `pid` is a live process (zombies count as dead).
pub fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    match stat.rsplit_once(')') {
        Some((_, rest)) => !rest.trim_start().starts_with('Z'),
        None => false,
    }
}

/// stdout and stderr, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes a job file and a CSV beside it; returns the job's path.
pub fn write_job(dir: &Path, name: &str, job: &str) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, job).expect("write job");
    path
}

pub const SENSORS_CSV: &str = "sensor,reading,ok,site\n1,20.5,true,north\n2,21.25,true,south\n3,-3.0,false,\"east, upper\"\n4,1e-7,true,west\n";

pub const NULL_JOB: &str = r#"{"0": {"tasks": {"open_array": {"filename": "sensors", "path": "data"}}},
 "1": {"tasks": {"null": {}}}}"#;

/// A directory holding `data/sensors.csv` and the null job `job.json`.
pub fn null_job(scratch: &Scratch) -> PathBuf {
    std::fs::create_dir_all(scratch.0.join("data")).expect("data dir");
    std::fs::write(scratch.0.join("data/sensors.csv"), SENSORS_CSV).expect("write csv");
    write_job(&scratch.0, "job", NULL_JOB)
}

/// A CSV file read with rtl's reader.
pub fn read_csv(path: &Path) -> Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    csv::read(&text, b',', &path.display().to_string()).expect("parse csv")
}

pub fn assert_close(example: &str, got: &Table, want: &Table) {
    assert_eq!(got.schema(), want.schema(), "{example}: columns");
    assert_eq!(got.rows(), want.rows(), "{example}: rows");
    for ((name, g), (_, w)) in got.iter().zip(want.iter()) {
        match (g, w) {
            (Column::Float64(g), Column::Float64(w)) => {
                for (row, (a, b)) in g.iter().zip(w.iter()).enumerate() {
                    let same = (a.is_nan() && b.is_nan())
                        || a == b
                        || (a - b).abs() <= 1e-9 * b.abs().max(1.0);
                    assert!(same, "{example}: {name}[{row}] = {a}, expected {b}");
                }
            }
            _ => assert_eq!(g, w, "{example}: {name}"),
        }
    }
}

/// An HTTP reply: status code, headers (lower-cased names), body.
pub type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// An HTTP/1.1 request to 127.0.0.1:`port`. Enough for the plot page and
/// for WebDriver, not a general client.
pub fn http(method: &str, port: u16, path: &str, body: Option<&str>) -> std::io::Result<Reply> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    // Read until the body is complete: some servers keep the connection
    // open whatever the request says.
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let split = loop {
        let n = stream.read(&mut buf)?;
        raw.extend_from_slice(&buf[..n]);
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n");
        if let Some(split) = split {
            let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let done = match length {
                Some(length) => raw.len() >= split + 4 + length,
                None => n == 0 || raw.ends_with(b"0\r\n\r\n"),
            };
            if done {
                break split;
            }
        }
        if n == 0 {
            return Err(std::io::Error::other(
                "connection closed before the reply ended",
            ));
        }
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let mut content = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        content = dechunk(&content);
    }
    Ok((status, headers, content))
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&raw[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
    out
}

/// A raw client socket to `home`'s relay that has proven the home's
/// cluster secret, as every client of a default daemon must.
pub fn proven_client(ctx: &zmq::Context, home: &Home) -> zmq::Socket {
    let config = home.config();
    let socket = ctx.socket(zmq::DEALER).expect("socket");
    socket.set_linger(0).expect("linger");
    socket.connect(&config.client_endpoint()).expect("connect");
    prove(socket, &config)
}

/// `socket`, once it has proven `config`'s cluster secret (if there is
/// one) to the relay it is connected to.
pub fn prove(socket: zmq::Socket, config: &rtl_config::Config) -> zmq::Socket {
    let mut connection = rtl_wire::connection::Connection::from_socket(socket);
    if let Some(secret) = rtl_wire::auth::Secret::load(&config.secret_path()).expect("secret") {
        connection
            .prove(&secret, std::time::Duration::from_secs(10))
            .expect("prove the secret");
    }
    connection.into_socket()
}

/// A submit of `plan`, with nothing asked beyond the result.
pub fn submit(plan: rtl_dsl::Plan) -> rtl_wire::Message {
    rtl_wire::Message::Submit(Box::new(rtl_wire::Submit {
        plan,
        lifespan: 0,
        cache_id: None,
        progress: false,
        charts: false,
    }))
}

/// The failure an error message carries; panics on any other message.
pub fn failure(env: rtl_wire::Envelope) -> rtl_wire::Failure {
    match env.message {
        rtl_wire::Message::Error(failure) => failure,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A copy of the files in folder `from` (not its subfolders) in `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy's folder");
    for entry in std::fs::read_dir(from).expect("read the folder").flatten() {
        let path = entry.path();
        if path.is_file() {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy a file");
        }
    }
}

/// An .npy record array of `rows` rows, x from 1 towards 2 and y = 3x - 1.
pub fn write_npy(path: &Path, rows: usize) {
    let header = format!(
        "{{'descr': [('x', '<f8'), ('y', '<f8')], 'fortran_order': False, 'shape': ({rows},), }}"
    );
    // Magic, version 1.0, header length; the header padded to 64 bytes.
    let mut head = header.into_bytes();
    let total = 10 + head.len() + 1;
    head.extend(std::iter::repeat_n(
        b' ',
        total.next_multiple_of(64) - total,
    ));
    head.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((head.len() as u16).to_le_bytes());
    bytes.extend(head);
    for i in 0..rows {
        let x = 1.0 + i as f64 / rows as f64;
        bytes.extend(x.to_le_bytes());
        bytes.extend((x * 3.0 - 1.0).to_le_bytes());
    }
    std::fs::write(path, bytes).expect("write npy");
}

/// The pid of a task node of `daemon` holding work, waiting up to 60 s;
/// None when `run` (the job) ended first.
pub fn node_holding_work(daemon: &Daemon, run: &mut std::process::Child) -> Option<u32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = daemon.rtl(&["status", "--json"]);
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let busy = s["services"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| {
                n["name"] == "tasknode" && n["alive"] == true && n["in_flight"].as_u64() >= Some(1)
            })
            .and_then(|n| n["pid"].as_u64());
        if let Some(pid) = busy {
            return Some(pid as u32);
        }
        if run.try_wait().expect("wait").is_some() {
            return None;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no node ever held work: {s}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The output of `run` once it ends; killed, and the test failed, when it
/// is still going after `within`.
pub fn wait_for(mut run: std::process::Child, within: std::time::Duration) -> Output {
    let started = std::time::Instant::now();
    while run.try_wait().expect("wait").is_none() {
        if started.elapsed() > within {
            let _ = run.kill();
            panic!("rtl still going after {within:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    run.wait_with_output().expect("output")
}
