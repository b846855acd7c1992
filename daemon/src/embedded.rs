//! The embedded mode: the same relay and task-node code as the daemon, run
//! as threads of the calling process and joined over inproc sockets.
//!
//! `rtl run` uses it when no daemon answers; library users get it from
//! `Transform::embedded`. Dropping the [`Cluster`] stops and joins every
//! thread.

use crate::relay::{Endpoints, Relay, RelayConfig};
use crate::tasknode::{self, TaskNodeConfig};
use crate::DaemonError;
use rtl_cache::Cache;
use rtl_config::Config;
use rtl_log::Log;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use uuid::Uuid;

/// A relay and its task nodes running in this process.
pub struct Cluster {
    ctx: zmq::Context,
    endpoint: String,
    cache: Cache,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Cluster {
    /// Starts a relay and `max(task_workers, 1)` task nodes, talking over
    /// inproc endpoints.
    pub fn start(config: &Config) -> Result<Cluster, DaemonError> {
        let tag = Uuid::new_v4().simple().to_string();
        Cluster::start_on(
            config,
            Endpoints {
                clients: format!("inproc://rtl-{tag}-clients"),
                nodes: format!("inproc://rtl-{tag}-nodes"),
            },
        )
    }

    /// The same on TCP loopback, on ports the system picks as the relay
    /// binds: what a daemon's clients and nodes go through, in one process
    /// (`rtl bench`).
    pub fn start_on_loopback(config: &Config) -> Result<Cluster, DaemonError> {
        Cluster::start_on(
            config,
            Endpoints {
                clients: "tcp://127.0.0.1:*".into(),
                nodes: "tcp://127.0.0.1:*".into(),
            },
        )
    }

    fn start_on(config: &Config, at: Endpoints) -> Result<Cluster, DaemonError> {
        let ctx = zmq::Context::new();
        let cache = Cache::open(&config.cache_dir(), config.cache_map_size)?;
        let log = Log::file(
            "embedded",
            &config.log_dir().join("embedded.log"),
            config.debug,
            config.profile,
        );
        let relay = Relay::bind(
            &ctx,
            &at,
            cache.clone(),
            log.named("relay"),
            RelayConfig::from(config),
        )?;
        // The endpoints as bound: the ports the system picked.
        let at = relay.endpoints()?;
        let joined = relay.task_nodes_joined();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let spawn = |name: String, job: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(job)
                .map_err(DaemonError::system("start an embedded thread"))
        };
        {
            let stop = stop.clone();
            threads.push(spawn(
                "rtl-relay".into(),
                Box::new(move || relay.run(&stop)),
            )?);
        }
        for n in 0..config.task_workers.max(1) {
            let (ctx, stop, log) = (ctx.clone(), stop.clone(), log.named("tasknode"));
            let settings = TaskNodeConfig::new(config, at.nodes.clone(), Some(cache.clone()));
            let job = move || {
                if let Err(e) = tasknode::run(&ctx, settings, log.clone(), &stop) {
                    log.error(e);
                }
            };
            threads.push(spawn(format!("rtl-tasknode-{n}"), Box::new(job))?);
        }
        // A job sent before its nodes have said which installed tasks they
        // have would be refused for a task "no node has": wait for them
        // (for at most node_timeout; a node that fails to start says so in
        // the log, and the job then meets whichever nodes came).
        let deadline = std::time::Instant::now() + config.node_timeout();
        while joined.load(Ordering::Relaxed) < config.task_workers.max(1)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Ok(Cluster {
            ctx,
            endpoint: at.clients,
            cache,
            stop,
            threads,
        })
    }

    /// The context clients must use to reach [`Cluster::endpoint`].
    pub fn context(&self) -> &zmq::Context {
        &self.ctx
    }

    /// The relay's client endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The cache the in-process cluster shares with its client.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
