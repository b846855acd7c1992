//! A real daemon for benchmarks: started from the built `rtl` in a fresh
//! home on free loopback ports, stopped (and its home removed) on drop.

#![allow(dead_code)] // each bench uses a different part of it

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// A daemon in its own home, stopped on drop.
pub struct Daemon {
    pub home: PathBuf,
}

impl Daemon {
    /// Starts rtl in a fresh home with no plot node and `extra` settings
    /// (TOML lines); with a cluster secret if `secret`.
    pub fn start(name: &str, secret: bool, extra: &str) -> Daemon {
        let home = std::env::temp_dir().join(format!("rtl-bench-{name}-{}", std::process::id()));
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
                "relay_port = {}\nnode_port = {}\nplot_port = {}\nplot_workers = 0\n{extra}\n",
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

    pub fn rtl(&self, args: &[&str]) {
        let out = Command::new(env!("CARGO_BIN_EXE_rtl"))
            .env("RTL_HOME", &self.home)
            .args(args)
            .output()
            .expect("rtl");
        assert!(
            out.status.success(),
            "rtl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn config(&self) -> rtl_config::Config {
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

impl Daemon {
    /// Pids of the services of this home, by service name.
    pub fn pids(&self, service: &str) -> Vec<u32> {
        std::fs::read_dir(self.home.join("run"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix(&format!("{service}-"))?
                    .strip_suffix(".pid")?
                    .parse()
                    .ok()
            })
            .collect()
    }
}
