//! `rtl start`: the relay, `task_workers` task nodes and `plot_workers` plot
//! nodes, detached; returns once the relay answers and the nodes joined.

use super::status;
use crate::supervisor::{self, Started};
use rtl_config::Config;
use std::process::ExitCode;

pub fn run(config: &Config) -> Result<ExitCode, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the rtl binary: {e}"))?;
    match supervisor::start(config, &exe)? {
        Started::AlreadyRunning(current) => {
            println!("rtl is already running (home {})", config.home.display());
            status::print_table(&current);
        }
        Started::Now {
            status: current,
            stale,
            orphans,
            secret_made,
        } => {
            if let Some(path) = secret_made {
                println!(
                    "made the cluster secret {} (mode 0600): clients and nodes of this home find it there; copy it to other machines that join",
                    path.display()
                );
            }
            for f in stale {
                println!("removed stale pid file {}", f.path.display());
            }
            for o in orphans {
                println!(
                    "stopped {} pid {}, left running by a relay that died",
                    o.service.name(),
                    o.pid
                );
            }
            println!(
                "rtl started: relay on {} (nodes on port {}), plot page on http://{}:{}/, home {}",
                config.client_endpoint(),
                config.node_port,
                config.plot_listen,
                config.plot_port,
                config.home.display()
            );
            println!("security: {}", supervisor::security_mode(config));
            tell_installed(config);
            status::print_table(&current);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The installed tasks the nodes started with, and the manifests they
/// could not use (each node's log says so too).
fn tell_installed(config: &Config) {
    if config.task_dirs.is_empty() {
        // The default task folder, there to put a task in.
        let _ = std::fs::create_dir_all(config.home.join("tasks"));
    }
    let (installed, bad) = rtl_tasks::Installed::load(&config.task_dirs());
    if !installed.is_empty() {
        let names: Vec<&str> = installed.iter().map(|m| m.name.as_str()).collect();
        println!("installed tasks: {}", names.join(", "));
    }
    for problem in bad {
        eprintln!("warning: {problem}; that task is not installed");
    }
}
