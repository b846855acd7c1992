//! rtl's charts: what the `plot` task's charts look like once drawn, and
//! the plot node that draws them and serves them as a web page.
//!
//! - [`render`]: a chart to SVG and PNG (plotters, with a bundled font).
//! - [`gallery`]: the charts kept under `<home>/plots/`, newest first.
//! - [`plotnode`]: the process that takes `chart` messages from the relay
//!   and draws them; [`page`]: the web page it serves them on.
//!
//! Only the `rtl` command depends on this crate: clients and task nodes
//! never draw, so they do not compile plotters.

#![forbid(unsafe_code)]

pub mod gallery;
pub mod page;
pub mod plotnode;
pub mod render;
