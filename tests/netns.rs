//! Task nodes on another host: the relay runs in one network namespace,
//! `rtl node` in another, joined by a veth pair, and a chunked job is
//! processed on both sides. Needs root and iproute2; skipped, saying so,
//! without them. Everything set up here is torn down on drop.

mod common;

use common::{text, write_job, Home};
use std::process::{Child, Command, Output, Stdio};

/// Two namespaces and a veth pair between them, removed on drop.
struct Link {
    relay_ns: String,
    node_ns: String,
    relay_ip: String,
    node_ip: String,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Link {
    fn new() -> Option<Link> {
        let tag = std::process::id() % 10_000;
        let octet = 1 + std::process::id() % 250;
        let link = Link {
            relay_ns: format!("rtl-relay-{tag}"),
            node_ns: format!("rtl-node-{tag}"),
            relay_ip: format!("10.231.{octet}.1"),
            node_ip: format!("10.231.{octet}.2"),
        };
        if !ip(&["netns", "add", &link.relay_ns]) {
            return None;
        }
        let (va, vb) = (format!("rtlv{tag}a"), format!("rtlv{tag}b"));
        let ok = ip(&["netns", "add", &link.node_ns])
            && ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])
            && ip(&["link", "set", &va, "netns", &link.relay_ns])
            && ip(&["link", "set", &vb, "netns", &link.node_ns])
            && ip(&[
                "-n",
                &link.relay_ns,
                "addr",
                "add",
                &format!("{}/24", link.relay_ip),
                "dev",
                &va,
            ])
            && ip(&[
                "-n",
                &link.node_ns,
                "addr",
                "add",
                &format!("{}/24", link.node_ip),
                "dev",
                &vb,
            ])
            && ip(&["-n", &link.relay_ns, "link", "set", &va, "up"])
            && ip(&["-n", &link.node_ns, "link", "set", &vb, "up"])
            && ip(&["-n", &link.relay_ns, "link", "set", "lo", "up"])
            && ip(&["-n", &link.node_ns, "link", "set", "lo", "up"]);
        ok.then_some(link)
    }

    /// `rtl ARGS` inside namespace `ns` with `home`'s settings.
    fn rtl(&self, ns: &str, home: &Home, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(common::bin())
            .args(args);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RTL_")) {
            cmd.env_remove(k);
        }
        cmd.envs(home.env.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and so the pair.
        ip(&["netns", "del", &self.node_ns]);
        ip(&["netns", "del", &self.relay_ns]);
    }
}

/// The relay side's daemon, stopped on drop; the joined nodes, ended by pid.
struct Running<'a> {
    link: &'a Link,
    relay: &'a Home,
    nodes: Option<Child>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(mut nodes) = self.nodes.take() {
            // SAFETY: kill(2) on the child this test started.
            unsafe {
                libc::kill(nodes.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::time::Instant::now() < deadline && !matches!(nodes.try_wait(), Ok(Some(_))) {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = nodes.kill();
            let _ = nodes.wait();
        }
        let pids = self.relay.pids();
        let _ = self
            .link
            .rtl(&self.link.relay_ns, self.relay, &["stop"])
            .output();
        for pid in pids {
            if common::alive(pid) {
                // SAFETY: kill(2) on a pid this test's daemon wrote.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
        }
    }
}

fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what}: {}", text(&out));
    out
}

#[test]
fn nodes_in_another_namespace_process_chunks() {
    let Some(link) = Link::new() else {
        common::skip(
            "nodes_in_another_namespace_process_chunks",
            "cannot create network namespaces (needs root and iproute2)",
        );
        return;
    };
    let relay = Home::new("ns-relay")
        .with("RTL_RELAY_LISTEN", &link.relay_ip)
        .with("RTL_RELAY_ADDR", &link.relay_ip)
        .with("RTL_TASK_WORKERS", "1")
        .with("RTL_PLOT_WORKERS", "0")
        .with("RTL_CHUNKING_SIZE", "100");
    // Beyond loopback the relay needs a cluster secret; the other
    // "machine" gets a copy of it, as an operator would give it.
    ok(relay.rtl(&["keygen"]), "rtl keygen");
    let remote = Home::new("ns-node");
    std::fs::create_dir_all(remote.dir()).expect("remote home");
    std::fs::copy(relay.dir().join("secret"), remote.dir().join("secret")).expect("copy secret");
    let mut running = Running {
        link: &link,
        relay: &relay,
        nodes: None,
    };
    ok(
        link.rtl(&link.relay_ns, &relay, &["start"])
            .output()
            .expect("start"),
        "rtl start in the relay namespace",
    );
    let endpoint = format!("tcp://{}:{}", link.relay_ip, relay.port("RTL_NODE_PORT"));
    running.nodes = Some(
        link.rtl(
            &link.node_ns,
            &remote,
            &["node", "--relay", &endpoint, "--workers", "2"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rtl node"),
    );

    let dir = relay.scratch.0.clone();
    let mut csv = String::from("x,site\n");
    for i in 0..1000 {
        csv.push_str(&format!("{},{}\n", i as f64 * 0.5, ["a", "b"][i % 2]));
    }
    std::fs::write(dir.join("data.csv"), csv).expect("data");
    let job = write_job(
        &dir,
        "job",
        r#"{"0": {"tasks": {"open_array": {"filename": "data"}}},
            "1": {"tasks": [{"multiply": {"operations": [{"a": "x", "b": 2, "column": "y"}]}}, {"filter": {"operations": [{"column": "site", "method": "eq", "value": "a"}]}}]}}"#,
    );
    // Wait for both remote nodes to join, then run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let joined = |json: &serde_json::Value| -> Vec<serde_json::Value> {
        json["services"]
            .as_array()
            .map(|l| l.iter().filter(|s| s["joined"] == true).cloned().collect())
            .unwrap_or_default()
    };
    let status = || -> serde_json::Value {
        let out = link
            .rtl(&link.relay_ns, &relay, &["status", "--json"])
            .output()
            .expect("status");
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    while joined(&status()).len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(joined(&status()).len(), 2, "{}", status());
    let out = ok(
        link.rtl(
            &link.relay_ns,
            &relay,
            &["run", "--connect", job.to_str().unwrap()],
        )
        .output()
        .expect("run"),
        "rtl run",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Result: 500 rows"),
        "{}",
        text(&out)
    );
    let json = status();
    let remote_work: u64 = joined(&json)
        .iter()
        .filter_map(|s| s["envelopes"].as_u64())
        .sum();
    let local_work: u64 = json["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter(|s| s["name"] == "tasknode" && s["joined"] == false)
        .filter_map(|s| s["envelopes"].as_u64())
        .sum();
    assert!(
        remote_work > 0 && local_work > 0,
        "chunks on both sides: remote {remote_work}, local {local_work}: {json}"
    );
}
