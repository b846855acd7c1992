//! What the cluster secret costs: two real daemons started from the built
//! `rtl`, one with a secret (`rtl keygen`) and one without, each with one
//! task node; null jobs alternate between them in the same run, so the
//! ratio holds on a noisy machine. Also the time to connect (the handshake
//! is two round trips and three HMACs, once per connection).
//!
//! `cargo bench --bench auth` (RTL_BENCH_ROUNDS sets the job count).

use rtl_client::Transform;
use rtl_dsl::Plan;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A daemon in its own home, stopped on drop.
struct Daemon {
    home: PathBuf,
}

impl Daemon {
    fn start(name: &str, secret: bool) -> Daemon {
        let home = std::env::temp_dir().join(format!("rtl-bench-auth-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).expect("home");
        let ports: Vec<u16> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("port"))
            .collect::<Vec<_>>()
            .iter()
            .map(|l| l.local_addr().expect("addr").port())
            .collect();
        std::fs::write(
            home.join("rtl.toml"),
            format!(
                "relay_port = {}\nnode_port = {}\nplot_port = {}\ntask_workers = 1\nplot_workers = 0\n",
                ports[0], ports[1], ports[2]
            ),
        )
        .expect("settings");
        let daemon = Daemon { home };
        if secret {
            daemon.rtl(&["keygen"]);
        }
        daemon.rtl(&["start"]);
        daemon
    }

    fn rtl(&self, args: &[&str]) {
        let out = Command::new(env!("CARGO_BIN_EXE_rtl"))
            .env("RTL_HOME", &self.home)
            .args(args)
            .output()
            .expect("rtl");
        assert!(out.status.success(), "rtl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn config(&self) -> rtl_config::Config {
        let env = vec![("RTL_HOME".to_string(), self.home.display().to_string())];
        rtl_config::Config::load(None, env).expect("config").config
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_rtl"))
            .env("RTL_HOME", &self.home)
            .arg("stop")
            .output();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    (at(0.50), at(0.99))
}

fn main() {
    let rounds: usize = std::env::var("RTL_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000);
    let open = Daemon::start("open", false);
    let closed = Daemon::start("secret", true);
    let plan = Plan::parse(r#"{"0": {"tasks": {"null": {}}}}"#, "<bench>", Path::new("/").into())
        .expect("plan");
    let (open_config, closed_config) = (open.config(), closed.config());

    let mut connect = (Vec::new(), Vec::new());
    for _ in 0..50 {
        let start = Instant::now();
        drop(Transform::connect(&open_config).expect("connect"));
        connect.0.push(start.elapsed());
        let start = Instant::now();
        drop(Transform::connect(&closed_config).expect("connect with the secret"));
        connect.1.push(start.elapsed());
    }

    let mut a = Transform::connect(&open_config).expect("connect");
    let mut b = Transform::connect(&closed_config).expect("connect");
    let mut jobs = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for round in 0..rounds {
        // Alternate which goes first, so neither always runs warm.
        for side in [round % 2, 1 - round % 2] {
            let (transform, samples) = if side == 0 {
                (&mut a, &mut jobs.0)
            } else {
                (&mut b, &mut jobs.1)
            };
            let start = Instant::now();
            transform.execute(&plan).expect("null job");
            samples.push(start.elapsed());
        }
    }
    let (jo, jc) = (percentiles(jobs.0), percentiles(jobs.1));
    let (co, cc) = (percentiles(connect.0), percentiles(connect.1));
    println!("null job through a daemon over TCP loopback, {rounds} each, microseconds");
    println!("{:<34} {:>10} {:>10}", "", "p50", "p99");
    println!("{:<34} {:>10.1} {:>10.1}", "job, no secret", jo.0, jo.1);
    println!("{:<34} {:>10.1} {:>10.1}", "job, with the cluster secret", jc.0, jc.1);
    println!("{:<34} {:>10.2} {:>10.2}", "ratio", jc.0 / jo.0, jc.1 / jo.1);
    println!("{:<34} {:>10.1} {:>10.1}", "connect, no secret", co.0, co.1);
    println!("{:<34} {:>10.1} {:>10.1}", "connect, with the handshake", cc.0, cc.1);
}
