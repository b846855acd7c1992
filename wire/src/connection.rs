//! A connection to the relay from a client or a node: one DEALER socket,
//! and everything about speaking over it. It waits for and receives whole
//! envelopes (a bad one is an error, never a panic), sends without
//! blocking when asked to, and proves the cluster secret. Clients, nodes
//! and the supervisor's status query all go through it; nothing else polls
//! or receives on a relay socket.

use crate::auth::{ProofError, Prover, Secret};
use crate::{Envelope, Message, WireError};
use std::time::{Duration, Instant};

/// How a connection's socket is set up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The routing id the relay will know it by (libzmq makes one up
    /// when absent).
    pub identity: Option<Vec<u8>>,
    /// How long messages still queued may delay closing.
    pub linger: Duration,
    /// Largest message accepted (0: no limit).
    pub max_message_bytes: usize,
}

/// One DEALER socket connected to the relay.
pub struct Connection {
    socket: zmq::Socket,
}

impl Connection {
    /// Connects a DEALER to `endpoint`.
    pub fn connect(
        ctx: &zmq::Context,
        endpoint: &str,
        options: &Options,
    ) -> Result<Connection, WireError> {
        let socket = ctx.socket(zmq::DEALER)?;
        if let Some(id) = &options.identity {
            socket.set_identity(id)?;
        }
        socket.set_linger(i32::try_from(options.linger.as_millis()).unwrap_or(i32::MAX))?;
        if options.max_message_bytes > 0 {
            socket.set_maxmsgsize(i64::try_from(options.max_message_bytes).unwrap_or(i64::MAX))?;
        }
        socket.connect(endpoint)?;
        Ok(Connection { socket })
    }

    /// Wraps a socket made elsewhere (a DEALER or PAIR).
    pub fn from_socket(socket: zmq::Socket) -> Connection {
        Connection { socket }
    }

    /// The socket, given back.
    pub fn into_socket(self) -> zmq::Socket {
        self.socket
    }

    /// The socket, for polling it together with other things.
    pub fn socket(&self) -> &zmq::Socket {
        &self.socket
    }

    /// Sends, waiting while the socket has no room.
    pub fn send(&mut self, env: Envelope) -> Result<(), zmq::Error> {
        env.send(&mut self.socket, None)
    }

    /// Sends without waiting: EAGAIN when the relay cannot take it now.
    /// While the relay is away libzmq keeps what is sent for it, up to its
    /// high-water mark.
    pub fn send_now(&mut self, env: Envelope) -> Result<(), zmq::Error> {
        env.send_now(&mut self.socket, None)
    }

    /// The next envelope, waiting at most `wait` for one: None when none
    /// came (or a signal cut the wait short).
    pub fn recv(&mut self, wait: Duration) -> Result<Option<Envelope>, WireError> {
        let millis = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        match self.socket.poll(zmq::POLLIN, millis) {
            Ok(0) | Err(zmq::Error::EINTR) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(WireError::Zmq(e)),
        }
        self.try_recv()
    }

    /// The next envelope if one is there now.
    pub fn try_recv(&mut self) -> Result<Option<Envelope>, WireError> {
        match Envelope::recv(&self.socket, zmq::DONTWAIT) {
            Ok(env) => Ok(Some(env)),
            Err(WireError::Zmq(zmq::Error::EAGAIN | zmq::Error::EINTR)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Proves to the relay that this peer holds `secret`, and checks that
    /// the relay does too; for clients, before they send anything else.
    pub fn prove(&mut self, secret: &Secret, timeout: Duration) -> Result<(), ProofError> {
        let mut prover = Prover::new(secret.clone());
        // An empty proof asks for a challenge.
        self.send_proof(Vec::new(), Vec::new())?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ProofError::Silent(timeout));
            }
            let env = match self.recv(left) {
                Ok(Some(env)) => env,
                Ok(None) => continue,
                Err(e) => {
                    return Err(ProofError::Transport(format!(
                        "bad message from the relay: {e}"
                    )))
                }
            };
            match env.message {
                Message::Challenge { nonce } => {
                    let (nonce, proof) = prover.answer(&nonce).map_err(ProofError::Transport)?;
                    self.send_proof(nonce, proof)?;
                }
                Message::Welcome { proof } if prover.welcomed(&proof) => return Ok(()),
                Message::Welcome { .. } => {
                    return Err(ProofError::Refused(
                        "the relay's answer does not match this machine's cluster secret: is it another cluster's relay?"
                            .into(),
                    ))
                }
                Message::Error(failure) => {
                    return Err(ProofError::Refused(format!(
                        "the relay refused this machine's cluster secret: {}",
                        failure.message
                    )));
                }
                _ => {}
            }
        }
    }

    fn send_proof(&mut self, nonce: Vec<u8>, proof: Vec<u8>) -> Result<(), ProofError> {
        self.send(Envelope::control(Message::Proof { nonce, proof }))
            .map_err(|e| ProofError::Transport(format!("cannot reach the relay: {e}")))
    }
}
