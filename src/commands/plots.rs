//! `rtl plots`: the charts the plot node has drawn, newest first, and the
//! address of the page that shows them.

use rtl_config::Config;
use rtl_plot::gallery;
use std::process::ExitCode;

pub fn run(config: &Config) -> Result<ExitCode, String> {
    let dir = config.home.join("plots");
    println!(
        "page: http://{}:{}/ (charts in {})",
        config.plot_listen,
        config.plot_port,
        dir.display()
    );
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
