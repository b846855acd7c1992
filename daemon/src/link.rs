//! A node's link to the relay: its routing id, its DEALER socket and the
//! heartbeats both ways. Task nodes and plot nodes join the relay the same
//! way. The node heartbeats every `heartbeat`; the relay does too, and a
//! node that has not heard it for `node_timeout` says so in its log (and
//! again when it is back: ZeroMQ reconnects by itself, and the node's next
//! heartbeat makes it known to a restarted relay).

use crate::log::Log;
use crate::wire::{Body, Envelope, Header, Kind, NodeInfo};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub struct RelayLink {
    /// Routing id: `<service>-<pid>-<8 hex>`.
    pub id: String,
    pub socket: zmq::Socket,
    next_heartbeat: Instant,
    heartbeat: Duration,
    timeout: Duration,
    heard: Instant,
    silent: bool,
}

impl RelayLink {
    /// Connects a DEALER named after `service` to the relay's node endpoint.
    pub fn connect(
        ctx: &zmq::Context,
        service: &str,
        relay: &str,
        heartbeat: Duration,
        timeout: Duration,
    ) -> Result<RelayLink, String> {
        let short = Uuid::new_v4().simple().to_string();
        let id = format!("{service}-{}-{}", std::process::id(), &short[..8]);
        let socket = ctx
            .socket(zmq::DEALER)
            .map_err(|e| format!("cannot create the node socket: {e}"))?;
        // A second of linger lets answers already sent reach the relay when
        // the node stops.
        socket
            .set_identity(id.as_bytes())
            .and_then(|_| socket.set_linger(1000))
            .map_err(|e| format!("cannot configure the node socket: {e}"))?;
        socket
            .connect(relay)
            .map_err(|e| format!("cannot connect to the relay at {relay}: {e}"))?;
        Ok(RelayLink {
            id,
            socket,
            next_heartbeat: Instant::now(),
            heartbeat,
            timeout,
            heard: Instant::now(),
            silent: false,
        })
    }

    /// Sends without blocking: a relay that is away must not stall the node.
    pub fn send(&mut self, env: Envelope, log: &Log) {
        if let Err(e) = env.send_now(&mut self.socket, None) {
            log.warn(format!("could not send to the relay: {e}"));
        }
    }

    /// Sends a heartbeat carrying `info` when one is due.
    pub fn heartbeat_if_due(&mut self, info: &NodeInfo, log: &Log) {
        if Instant::now() < self.next_heartbeat {
            return;
        }
        let header = Header {
            node: Some(info.clone()),
            ..Header::new(Kind::Heartbeat, Uuid::nil())
        };
        self.send(Envelope::new(header, Body::Empty), log);
        self.next_heartbeat = Instant::now() + self.heartbeat;
        if !self.silent && self.heard.elapsed() > self.timeout {
            self.silent = true;
            log.warn(format!(
                "the relay has been silent for {} ms; still trying",
                self.heard.elapsed().as_millis()
            ));
        }
    }

    /// Notes that the relay spoke (any message counts).
    pub fn heard(&mut self, log: &Log) {
        self.heard = Instant::now();
        if self.silent {
            self.silent = false;
            log.info("the relay answers again");
        }
    }

    /// How long a poll may wait before the next heartbeat is due.
    pub fn until_heartbeat(&self) -> Duration {
        self.next_heartbeat
            .saturating_duration_since(Instant::now())
    }
}

/// This machine's host name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most
    // that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
