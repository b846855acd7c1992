//! A node's link to the relay: its routing id, its connection and the
//! heartbeats both ways. Task nodes and plot nodes join the relay the same
//! way. The node heartbeats every `heartbeat`; the relay does too, and a
//! node that has not heard it for `node_timeout` says so in its log (and
//! again when it is back: ZeroMQ reconnects by itself, and the node's next
//! heartbeat makes it known to a restarted relay).

use crate::auth::{Prover, Secret};
use crate::connection::{Connection, Options};
use crate::{Envelope, Message, NodeInfo, WireError};
use rtl_log::Log;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A node's link to the relay: its connection, its heartbeat and the
/// handshake, reconnecting when the relay goes silent.
pub struct RelayLink {
    /// Routing id: `<service>-<pid>-<16 hex>`.
    pub id: String,
    /// The connection to the relay.
    pub connection: Connection,
    next_heartbeat: Instant,
    heartbeat: Duration,
    timeout: Duration,
    heard: Instant,
    silent: bool,
    /// Answers the relay's challenges when the cluster has a secret.
    prover: Option<Prover>,
    /// Whether the relay has welcomed this node (always, without a secret).
    trusted: bool,
    /// What the socket could not take yet, in order: a burst of progress
    /// (a stage of many quick tasks) outruns the relay's reading, and an
    /// answer behind it must wait, not be lost.
    waiting: VecDeque<Envelope>,
    /// Progress messages among `waiting`.
    progress_waiting: usize,
    /// Progress messages left out since the last warning about them.
    left_out: u64,
}

/// Progress messages kept waiting at most. Past it the node waits for the
/// relay to take some (a relay slower than its nodes slows them down); a
/// relay silent for `node_timeout` gets the rest left out, so a node with
/// no relay does not stall or grow. The answers and charts behind them are
/// always kept, and are few: a node holds at most `max_in_flight`
/// envelopes.
const PROGRESS_KEPT: usize = 4096;

impl RelayLink {
    /// Connects a DEALER named after `service` to the relay's node endpoint.
    pub fn connect(
        ctx: &zmq::Context,
        service: &str,
        relay: &str,
        heartbeat: Duration,
        timeout: Duration,
        secret: Option<Secret>,
    ) -> Result<RelayLink, WireError> {
        // Readable in logs, and with 64 random bits nobody can guess it to
        // squat on it.
        let short = Uuid::new_v4().simple().to_string();
        let id = format!("{service}-{}-{}", std::process::id(), &short[..16]);
        // A second of linger lets answers already sent reach the relay when
        // the node stops.
        let options = Options {
            identity: Some(id.clone().into_bytes()),
            linger: Duration::from_secs(1),
            max_message_bytes: 0,
        };
        let connection = Connection::connect(ctx, relay, &options)?;
        Ok(RelayLink {
            id,
            connection,
            next_heartbeat: Instant::now(),
            heartbeat,
            timeout,
            heard: Instant::now(),
            silent: false,
            trusted: secret.is_none(),
            prover: secret.map(Prover::new),
            waiting: VecDeque::new(),
            progress_waiting: 0,
            left_out: 0,
        })
    }

    /// Sends without blocking while the relay keeps up: what the socket
    /// cannot take now waits, in order, and goes with [`RelayLink::flush`].
    /// Past [`PROGRESS_KEPT`] progress messages waiting, it waits for the
    /// relay, and leaves progress out (the log says how many) once the
    /// relay has been silent for `node_timeout`.
    pub fn send(&mut self, env: Envelope, log: &Log) {
        self.answer(env, log, &mut |_| {});
    }

    /// Sends an answer, after what waits; when one cannot go at all,
    /// `undelivered` gets the cache entries its table was written to, to
    /// delete them, since no one else will read them.
    pub fn answer(&mut self, env: Envelope, log: &Log, undelivered: &mut dyn FnMut(&[String])) {
        if is_progress(&env) && self.progress_waiting >= PROGRESS_KEPT && self.left_out == 0 {
            self.catch_up(log, undelivered);
        }
        if is_progress(&env) {
            if self.progress_waiting >= PROGRESS_KEPT {
                if self.left_out == 0 {
                    log.warn(format!(
                        "the relay took none of this node's progress messages for {} ms; some are left out",
                        self.timeout.as_millis()
                    ));
                }
                self.left_out += 1;
                return;
            }
            self.progress_waiting += 1;
        }
        self.waiting.push_back(env);
        self.flush(log, undelivered);
    }

    /// Waits until the relay has taken some of the progress that waits, or
    /// has taken nothing for `node_timeout`.
    fn catch_up(&mut self, log: &Log, undelivered: &mut dyn FnMut(&[String])) {
        let mut last_taken = Instant::now();
        while self.progress_waiting >= PROGRESS_KEPT {
            let left = self.timeout.saturating_sub(last_taken.elapsed());
            if left.is_zero() {
                return;
            }
            let millis = i64::try_from(left.as_millis()).unwrap_or(i64::MAX);
            match self.connection.socket().poll(zmq::POLLOUT, millis) {
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(e) => {
                    log.warn(format!("could not wait for the relay ({e})"));
                    return;
                }
            }
            let before = self.waiting.len();
            self.flush(log, undelivered);
            if self.waiting.len() < before {
                last_taken = Instant::now();
            }
        }
    }

    /// Sends what waits, as far as the socket takes it; `undelivered` gets
    /// the cache entries of answers that cannot go at all.
    pub fn flush(&mut self, log: &Log, undelivered: &mut dyn FnMut(&[String])) {
        while let Some(env) = self.waiting.pop_front() {
            if is_progress(&env) {
                self.progress_waiting -= 1;
            }
            match self.connection.send_or_keep(env) {
                Ok(()) => {}
                Err((zmq::Error::EAGAIN, Some(env))) => {
                    self.progress_waiting += usize::from(is_progress(&env));
                    self.waiting.push_front(*env);
                    return;
                }
                Err((e, unsent)) => {
                    log.warn(format!(
                        "could not send to the relay ({e}); a message is dropped"
                    ));
                    if let Some(env) = unsent {
                        undelivered(&env.body.keys());
                    }
                }
            }
        }
        if self.left_out > 0 {
            log.warn(format!(
                "{} progress message(s) were left out while the relay caught up",
                self.left_out
            ));
            self.left_out = 0;
        }
    }

    /// What to poll the socket for: messages, and room when some wait.
    pub fn poll_events(&self) -> zmq::PollEvents {
        if self.waiting.is_empty() {
            zmq::POLLIN
        } else {
            zmq::POLLIN | zmq::POLLOUT
        }
    }

    /// Sends a heartbeat carrying `info` when one is due; true when it did.
    pub fn heartbeat_if_due(&mut self, info: &NodeInfo, log: &Log) -> bool {
        if Instant::now() < self.next_heartbeat {
            return false;
        }
        // Until the relay has welcomed it, a node asks to be challenged
        // instead of heartbeating.
        let message = if self.trusted {
            Message::Heartbeat(Some(info.clone()))
        } else {
            Message::Proof {
                nonce: Vec::new(),
                proof: Vec::new(),
            }
        };
        self.send(Envelope::control(message), log);
        self.next_heartbeat = Instant::now() + self.heartbeat;
        if !self.silent && self.heard.elapsed() > self.timeout {
            self.silent = true;
            log.warn(format!(
                "the relay has been silent for {} ms; still trying",
                self.heard.elapsed().as_millis()
            ));
        }
        true
    }

    /// The next message from the relay for the node to act on, without
    /// waiting: None when there is none for now. Heartbeats and the
    /// handshake are dealt with here; a bad message is logged and dropped.
    pub fn next_message(&mut self, log: &Log) -> Option<Envelope> {
        loop {
            match self.connection.try_recv() {
                Ok(Some(env)) => {
                    self.heard(log);
                    if !matches!(env.message, Message::Heartbeat(_)) && !self.handshake(&env, log) {
                        return Some(env);
                    }
                }
                Ok(None) => return None,
                Err(e) => log.warn(format!("dropped a message from the relay: {e}")),
            }
        }
    }

    /// Takes part in the handshake: answers a challenge with a proof and
    /// checks the relay's welcome. True when `env` was a handshake message.
    fn handshake(&mut self, env: &Envelope, log: &Log) -> bool {
        if matches!(env.message, Message::Challenge { .. }) {
            self.trusted = false;
        }
        match (&env.message, &mut self.prover) {
            (Message::Challenge { nonce }, Some(prover)) => match prover.answer(nonce) {
                // A challenge out of the blue means a relay that does not
                // know this node (it restarted): prove it again.
                Ok((nonce, proof)) => {
                    self.send(Envelope::control(Message::Proof { nonce, proof }), log);
                }
                Err(e) => log.error(format!("cannot answer the relay's challenge: {e}")),
            },
            (Message::Challenge { .. }, None) => log.error(
                "the relay asks for the cluster secret and this machine has none; copy the relay's secret file here (see `rtl keygen`)",
            ),
            (Message::Welcome { proof }, Some(prover)) => {
                if prover.welcomed(proof) {
                    self.trusted = true;
                    // Heartbeat at once: the relay learns the node now.
                    self.next_heartbeat = Instant::now();
                    log.info("joined the relay with the cluster secret");
                } else {
                    log.error("the relay's welcome does not match our cluster secret: another cluster's relay?");
                }
            }
            (Message::Welcome { .. }, None) => {}
            _ => return false,
        }
        true
    }

    /// Notes that the relay spoke (any message counts).
    fn heard(&mut self, log: &Log) {
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

fn is_progress(env: &Envelope) -> bool {
    matches!(env.message, Message::Progress(_))
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
