//! rtl's processes and the wire between them.
//!
//! - [`wire`]: the envelope format; the only code that reads or writes frames.
//! - [`cache`]: the LMDB cache shared by the processes of one host.
//! - [`routing`] and [`relay`]: the relay, which takes jobs from clients and
//!   hands stages to task nodes with room; [`flow`]: how it moves a
//!   job's table through its stages in chunks spread over several nodes.
//! - [`link`]: how task and plot nodes join the relay and heartbeat.
//! - [`tasknode`]: runs stages with the task library.
//! - [`plotnode`]: the chart page.
//! - [`supervisor`]: `rtl start|stop|status` and the daemonized services.
//! - [`embedded`]: the relay and task nodes as threads of one process.
//!
//! This crate knows the task library only through `rtl_tasks::run_stage`
//! and the job language only as a parsed `rtl_dsl::Plan`.

pub mod auth;
pub mod cache;
pub mod charts;
pub mod connections;
pub mod embedded;
pub mod flow;
pub mod gallery;
pub mod link;
pub mod log;
pub mod plotnode;
pub mod relay;
pub mod render;
pub mod routing;
pub mod supervisor;
pub mod tasknode;
pub mod wire;
