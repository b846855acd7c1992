//! `rtl plots`: the charts the plot node has drawn, newest first, and the
//! address of the page that shows them.

use rtl_config::Config;
use rtl_plot::gallery;
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

pub fn run(config: &Config) -> Result<ExitCode, String> {
    let dir = config.home.join("plots");
    let page = format!("http://{}:{}/", config.plot_listen, config.plot_port);
    if page_answers(config) {
        println!("page: {page} (charts in {})", dir.display());
    } else {
        println!(
            "the plot node is down: nothing serves {page} (`rtl start` starts it); the charts it drew are in {}",
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

/// Whether something accepts connections at the plot page's address.
fn page_answers(config: &Config) -> bool {
    let host = match config.plot_listen.as_str() {
        "0.0.0.0" | "::" | "" => "127.0.0.1",
        other => other,
    };
    (host, config.plot_port)
        .to_socket_addrs()
        .into_iter()
        .flatten()
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok())
}
