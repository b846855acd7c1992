//! rtl's relay and task node.
//!
//! - [`routing`] and [`relay`]: the relay, which takes jobs from clients and
//!   hands stages to task nodes with room; [`flow`]: how it moves a
//!   job's table through its stages in chunks spread over several nodes;
//!   [`charts`]: the charts it passes on to plot nodes and clients.
//! - [`tasknode`]: runs stages with the task library.
//! - [`embedded`]: the relay and task nodes as threads of one process.
//! - [`DaemonError`]: why one of them could not start.
//!
//! Messages come and go through `rtl_wire`, tables by reference through
//! `rtl_cache`. The supervisor that runs these as daemons lives with the
//! `rtl` command; the plot node in `rtl_plot`.

pub mod charts;
pub mod embedded;
mod error;
pub mod flow;
pub mod host;
pub mod relay;
pub mod routing;
pub mod tasknode;

pub use error::DaemonError;
