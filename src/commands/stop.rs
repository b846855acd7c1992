//! `rtl stop`: SIGTERM every rtl process of this home, SIGKILL what is left
//! after the grace period, remove the pid files.

use crate::supervisor;
use rtl_config::Config;
use std::process::ExitCode;
use std::time::Duration;

const GRACE: Duration = Duration::from_secs(10);

pub fn run(config: &Config) -> Result<ExitCode, String> {
    let stopped = supervisor::stop(config, GRACE);
    if stopped.is_empty() {
        println!("rtl is not running (home {})", config.home.display());
    }
    for s in &stopped {
        let how = if s.graceful {
            "stopped"
        } else {
            "killed after the grace period"
        };
        println!("{:<9} pid {:<8} {how}", s.service.name(), s.pid);
    }
    Ok(ExitCode::SUCCESS)
}
