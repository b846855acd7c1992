//! `rtl plots`: the charts the plot node has drawn, newest first, with the
//! job that drew each, and the address of the page that shows them, or
//! that the page is not served when no plot node runs.

use crate::supervisor::{live, Service};
use rtl_config::Config;
use rtl_plot::gallery;
use std::process::ExitCode;

pub fn run(config: &Config) -> Result<ExitCode, String> {
    let dir = config.home.join("plots");
    let page = format!("http://{}:{}/", config.plot_listen, config.plot_port);
    if live(config, Service::PlotNode).is_some() {
        println!("page: {page} (charts in {})", dir.display());
    } else {
        println!(
            "the plot node is not running, so nothing serves the page {page} and no new chart is drawn (`rtl start` starts it); charts drawn before are in {}",
            dir.display()
        );
    }
    let charts = gallery::list(&dir);
    if charts.is_empty() {
        println!("no charts yet: a job with a simple_plot task draws them");
        return Ok(ExitCode::SUCCESS);
    }
    let width = charts.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in charts {
        println!(
            "{:<width$}  {}  job {}  {}  {}",
            c.name,
            c.time,
            c.job,
            dir.join(format!("{}.svg", c.file)).display(),
            c.caption
        );
    }
    Ok(ExitCode::SUCCESS)
}
