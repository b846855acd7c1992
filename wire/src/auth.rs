//! The cluster secret and the handshake that proves a peer holds it.
//!
//! `rtl keygen` writes 32 random bytes (hex) to `<home>/secret`, mode 0600;
//! the operator copies that file to every machine of the cluster. When the
//! relay has a secret, every peer (client, task node, plot node) proves it
//! holds it before the relay takes anything from it:
//!
//! 1. the peer's first message, whatever it is, is answered with
//!    `challenge` carrying a fresh 16-byte relay nonce (the message itself
//!    is dropped, and the refusal logged);
//! 2. the peer answers `proof` with its own nonce and
//!    HMAC-SHA256(secret, "rtl peer" || relay nonce || peer nonce);
//! 3. the relay checks it and answers `welcome` with
//!    HMAC-SHA256(secret, "rtl relay" || peer nonce || relay nonce), so the
//!    peer knows it talks to a relay of its cluster.
//!
//! The secret never crosses the wire; nonces make every proof single-use.
//! After that the peer's routing id is trusted until the relay forgets the
//! peer (a node that stops heartbeating, or a relay restart, which sends a
//! new challenge). Messages are not encrypted: use this on networks where
//! nobody can read or rewrite the traffic, or tunnel it.

use crate::Peer;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

type HmacSha256 = Hmac<Sha256>;

/// Proof sizes and nonce sizes on the wire.
pub const NONCE: usize = 16;

/// A cluster secret, loaded from its file.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Writes a new secret to `path` (mode 0600); refuses to overwrite one.
    pub fn generate(path: &Path) -> Result<(), SecretError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let bytes = random::<32>()?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| SecretError::io("create", dir, e))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => SecretError::Exists(path.to_path_buf()),
                _ => SecretError::io("write", path, e),
            })?;
        writeln!(file, "{hex}").map_err(|e| SecretError::io("write", path, e))
    }

    /// The secret in `path`, if the file exists; an error if it exists but
    /// is unusable (readable by others, or not 32 bytes of hex).
    pub fn load(path: &Path) -> Result<Option<Secret>, SecretError> {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SecretError::io("read", path, e)),
        };
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(SecretError::Exposed(path.to_path_buf()));
        }
        let text = std::fs::read_to_string(path).map_err(|e| SecretError::io("read", path, e))?;
        let text = text.trim();
        let bytes: Option<Vec<u8>> = (text.len() == 64)
            .then(|| {
                (0..32)
                    .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
                    .collect()
            })
            .flatten();
        bytes
            .map(|b| Some(Secret(b)))
            .ok_or_else(|| SecretError::NotASecret(path.to_path_buf()))
    }

    fn mac(&self, label: &[u8], first: &[u8], second: &[u8]) -> Vec<u8> {
        // An HMAC key of any length is valid.
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("any key length");
        mac.update(label);
        mac.update(first);
        mac.update(second);
        mac.finalize().into_bytes().to_vec()
    }

    /// The peer's proof for a relay nonce and its own nonce.
    pub fn peer_proof(&self, relay_nonce: &[u8], peer_nonce: &[u8]) -> Vec<u8> {
        self.mac(b"rtl peer", relay_nonce, peer_nonce)
    }

    /// The relay's answer, proving it holds the secret too.
    pub fn relay_proof(&self, peer_nonce: &[u8], relay_nonce: &[u8]) -> Vec<u8> {
        self.mac(b"rtl relay", peer_nonce, relay_nonce)
    }

    fn verify(&self, expected_label: &[u8], first: &[u8], second: &[u8], proof: &[u8]) -> bool {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("any key length");
        mac.update(expected_label);
        mac.update(first);
        mac.update(second);
        mac.verify_slice(proof).is_ok()
    }

    /// Whether `proof` is the relay's answer to `peer_nonce`.
    pub fn check_relay(&self, peer_nonce: &[u8], relay_nonce: &[u8], proof: &[u8]) -> bool {
        self.verify(b"rtl relay", peer_nonce, relay_nonce, proof)
    }
}

/// A peer's side of the handshake.
pub struct Prover {
    secret: Secret,
    /// The nonces of the last proof sent: (relay's, own).
    sent: Option<(Vec<u8>, [u8; NONCE])>,
}

impl Prover {
    /// A prover holding `secret`.
    pub fn new(secret: Secret) -> Prover {
        Prover { secret, sent: None }
    }

    /// The proof answering a relay's challenge nonce: (own nonce, proof).
    /// The same challenge again (the relay challenges every message of a
    /// peer it does not trust yet, and a node that reconnects has several
    /// in flight) gets the same answer, so whichever the relay welcomes,
    /// its welcome matches.
    pub fn answer(&mut self, relay_nonce: &[u8]) -> Result<(Vec<u8>, Vec<u8>), SecretError> {
        let own = match &self.sent {
            Some((relay, own)) if relay == relay_nonce => *own,
            _ => random::<NONCE>()?,
        };
        let proof = self.secret.peer_proof(relay_nonce, &own);
        self.sent = Some((relay_nonce.to_vec(), own));
        Ok((own.to_vec(), proof))
    }

    /// Whether the relay's welcome proves it holds the secret too.
    pub fn welcomed(&mut self, relay_proof: &[u8]) -> bool {
        self.sent
            .take()
            .is_some_and(|(relay, own)| self.secret.check_relay(&own, &relay, relay_proof))
    }
}

/// Why a handshake did not get a peer in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofError {
    /// The relay did not finish the handshake within this long.
    Silent(std::time::Duration),
    /// The relay refused the proof, or it is another cluster's relay.
    Refused(String),
    /// The socket failed, or the relay sent something unreadable.
    Transport(String),
}

impl std::fmt::Display for ProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProofError::Silent(waited) => write!(
                f,
                "the relay did not finish the handshake within {} ms",
                waited.as_millis()
            ),
            ProofError::Refused(why) | ProofError::Transport(why) => f.write_str(why),
        }
    }
}

/// `N` bytes from the operating system's random source.
pub fn random<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| SecretError::NoRandom(e.to_string()))?;
    Ok(bytes)
}

/// Why a cluster secret could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// The file or its folder could not be read, written or created.
    Io {
        /// What was being done: `read`, `write` or `create`.
        doing: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        reason: String,
    },
    /// A secret is there already; a new one would lock out every machine
    /// that holds the old one.
    Exists(PathBuf),
    /// Other users can read the file.
    Exposed(PathBuf),
    /// The file does not hold 64 hex digits.
    NotASecret(PathBuf),
    /// The operating system's random source failed.
    NoRandom(String),
}

impl SecretError {
    fn io(doing: &'static str, path: &Path, e: std::io::Error) -> SecretError {
        SecretError::Io {
            doing,
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }
}

impl std::fmt::Display for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretError::Io {
                doing,
                path,
                reason,
            } => write!(f, "cannot {doing} {}: {reason}", path.display()),
            SecretError::Exists(path) => write!(
                f,
                "{} already exists; remove it first to make a new secret (and copy the new one to every machine)",
                path.display()
            ),
            SecretError::Exposed(path) => write!(
                f,
                "{} can be read by other users; `chmod 600 {}`",
                path.display(),
                path.display()
            ),
            SecretError::NotASecret(path) => write!(
                f,
                "{} is not a cluster secret (64 hex digits); make one with `rtl keygen`",
                path.display()
            ),
            SecretError::NoRandom(reason) => write!(f, "cannot read random bytes: {reason}"),
        }
    }
}

impl std::error::Error for SecretError {}

impl From<SecretError> for String {
    fn from(e: SecretError) -> String {
        e.to_string()
    }
}

/// What the relay does with a message from a peer.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The peer is trusted: handle the message.
    Pass,
    /// Send the peer this challenge nonce; drop its message (later
    /// challenges of one peer repeat the question).
    Challenge {
        /// The nonce to send.
        nonce: Vec<u8>,
        /// Whether the peer is asked for the first time.
        first: bool,
    },
    /// The proof holds: welcome the peer with this relay proof.
    Welcome(Vec<u8>),
    /// Drop the message; the reason is for the log.
    Refuse(String),
}

/// The relay's side: which peers are trusted and which were challenged,
/// each tied to the connection it spoke over. A routing id is only a name,
/// free for anyone to take once its connection closes: trust goes with
/// the connection (the relay forgets a peer whose connection closed, see
/// [`crate::connections`]), and a message under a trusted id that comes
/// over another connection is refused.
pub struct Gate {
    secret: Secret,
    challenged: HashMap<Vec<u8>, Pending>,
    /// The connection each trusted peer proved the secret over.
    trusted: HashMap<Vec<u8>, Option<i32>>,
    /// Challenges issued so far, to tell the oldest.
    issued: u64,
}

/// A challenge waiting for its proof.
struct Pending {
    nonce: Vec<u8>,
    connection: Option<i32>,
    issued: u64,
}

/// Most peers remembered as challenged at once: a flood of new connections
/// cannot grow the relay's memory without bound. Past it the oldest
/// challenge goes (its peer, if it ever answers, is asked again).
const MAX_CHALLENGED: usize = 4096;

impl Gate {
    /// A gate that trusts peers proving `secret`.
    pub fn new(secret: Secret) -> Gate {
        Gate {
            secret,
            challenged: HashMap::new(),
            trusted: HashMap::new(),
            issued: 0,
        }
    }

    /// Judges a message of kind `proof` (with its nonce and proof) or any
    /// other kind (`proof` None) from `peer`.
    pub fn admit(&mut self, peer: &Peer, proof: Option<(&[u8], &[u8])>) -> Verdict {
        let route = peer.route.as_slice();
        match self.trusted.get(route) {
            Some(c) if *c == peer.connection => return Verdict::Pass,
            Some(_) => {
                return Verdict::Refuse(
                    "it uses the routing id of another connection, which proved the secret".into(),
                )
            }
            None => {}
        }
        let pending = self
            .challenged
            .get(route)
            .filter(|p| p.connection == peer.connection);
        match (proof, pending) {
            (Some((peer_nonce, mac)), Some(pending)) => {
                let relay_nonce = pending.nonce.clone();
                self.challenged.remove(route);
                if peer_nonce.len() == NONCE
                    && self
                        .secret
                        .verify(b"rtl peer", &relay_nonce, peer_nonce, mac)
                {
                    self.trusted.insert(route.to_vec(), peer.connection);
                    Verdict::Welcome(self.secret.relay_proof(peer_nonce, &relay_nonce))
                } else {
                    Verdict::Refuse("its proof does not match the cluster secret".into())
                }
            }
            (None, Some(pending)) => Verdict::Challenge {
                nonce: pending.nonce.clone(),
                first: false,
            },
            _ => {
                if self.challenged.len() >= MAX_CHALLENGED {
                    let oldest = self
                        .challenged
                        .iter()
                        .min_by_key(|(_, p)| p.issued)
                        .map(|(r, _)| r.clone());
                    if let Some(oldest) = oldest {
                        self.challenged.remove(&oldest);
                    }
                }
                match random::<NONCE>() {
                    Ok(nonce) => {
                        self.issued += 1;
                        self.challenged.insert(
                            route.to_vec(),
                            Pending {
                                nonce: nonce.to_vec(),
                                connection: peer.connection,
                                issued: self.issued,
                            },
                        );
                        Verdict::Challenge {
                            nonce: nonce.to_vec(),
                            first: true,
                        }
                    }
                    Err(e) => Verdict::Refuse(e.to_string()),
                }
            }
        }
    }

    /// Whether a peer has proven it holds the secret over this connection.
    pub fn trusts(&self, peer: &Peer) -> bool {
        self.trusted.get(&peer.route) == Some(&peer.connection)
    }

    /// Forgets a peer (it left, was dropped, or its connection closed): it
    /// must prove itself again.
    pub fn forget(&mut self, route: &[u8]) {
        self.trusted.remove(route);
        self.challenged.remove(route);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret((0..32).collect())
    }

    fn peer(route: &[u8]) -> Peer {
        on(route, 7)
    }

    /// `route` speaking over connection `fd`.
    fn on(route: &[u8], fd: i32) -> Peer {
        Peer {
            route: route.to_vec(),
            connection: Some(fd),
        }
    }

    #[test]
    fn a_peer_with_the_secret_gets_in_and_can_check_the_relay() {
        let mut gate = Gate::new(secret());
        let Verdict::Challenge {
            nonce: relay_nonce, ..
        } = gate.admit(&peer(b"peer"), None)
        else {
            panic!("first contact is challenged");
        };
        let peer_nonce = [7u8; NONCE];
        let proof = secret().peer_proof(&relay_nonce, &peer_nonce);
        let Verdict::Welcome(answer) = gate.admit(&peer(b"peer"), Some((&peer_nonce, &proof)))
        else {
            panic!("a good proof is welcomed");
        };
        assert!(secret().check_relay(&peer_nonce, &relay_nonce, &answer));
        assert_eq!(gate.admit(&peer(b"peer"), None), Verdict::Pass);
        gate.forget(b"peer");
        assert!(matches!(
            gate.admit(&peer(b"peer"), None),
            Verdict::Challenge { first: true, .. }
        ));
    }

    #[test]
    fn the_prover_answers_challenges_and_checks_welcomes() {
        let mut gate = Gate::new(secret());
        let mut prover = Prover::new(secret());
        let Verdict::Challenge { nonce, .. } = gate.admit(&peer(b"p"), None) else {
            panic!("challenged");
        };
        let (own, proof) = prover.answer(&nonce).expect("answer");
        let Verdict::Welcome(welcome) = gate.admit(&peer(b"p"), Some((&own, &proof))) else {
            panic!("welcomed");
        };
        assert!(prover.welcomed(&welcome));
        assert!(!prover.welcomed(&welcome), "a welcome counts once");
        let mut impostor = Prover::new(Secret(vec![9; 32]));
        let (own, _) = impostor.answer(&nonce).expect("answer");
        let fake = Secret(vec![9; 32]).relay_proof(&own, b"other");
        assert!(!impostor.welcomed(&fake));
    }

    #[test]
    fn a_challenge_asked_twice_gets_one_answer_so_the_welcome_matches() {
        // A node reconnecting to a restarted relay has several messages in
        // flight; each is challenged with the same nonce.
        let mut gate = Gate::new(secret());
        let mut prover = Prover::new(secret());
        let Verdict::Challenge { nonce, .. } = gate.admit(&peer(b"n"), None) else {
            panic!("challenged");
        };
        let Verdict::Challenge { nonce: again, .. } = gate.admit(&peer(b"n"), None) else {
            panic!("challenged again");
        };
        let first = prover.answer(&nonce).expect("answer");
        assert_eq!(prover.answer(&again).expect("answer"), first);
        let Verdict::Welcome(welcome) = gate.admit(&peer(b"n"), Some((&first.0, &first.1))) else {
            panic!("welcomed");
        };
        assert_eq!(
            gate.admit(&peer(b"n"), Some((&first.0, &first.1))),
            Verdict::Pass
        );
        assert!(prover.welcomed(&welcome));
    }

    #[test]
    fn wrong_secrets_and_replayed_proofs_are_refused() {
        let mut gate = Gate::new(secret());
        let Verdict::Challenge {
            nonce: relay_nonce, ..
        } = gate.admit(&peer(b"mallory"), None)
        else {
            panic!("challenged");
        };
        let wrong = Secret(vec![1; 32]);
        let peer_nonce = [1u8; NONCE];
        let bad = wrong.peer_proof(&relay_nonce, &peer_nonce);
        assert!(matches!(
            gate.admit(&peer(b"mallory"), Some((&peer_nonce, &bad))),
            Verdict::Refuse(_)
        ));
        // A proof made for one challenge is worth nothing for the next.
        let Verdict::Challenge { nonce: second, .. } = gate.admit(&peer(b"mallory"), None) else {
            panic!("challenged again");
        };
        assert_ne!(second, relay_nonce);
        let old = secret().peer_proof(&relay_nonce, &peer_nonce);
        assert!(matches!(
            gate.admit(&peer(b"mallory"), Some((&peer_nonce, &old))),
            Verdict::Refuse(_)
        ));
        // Until it answers, a peer is asked the same question.
        let Verdict::Challenge { nonce: pending, .. } = gate.admit(&peer(b"slow"), None) else {
            panic!("challenged");
        };
        assert_eq!(
            gate.admit(&peer(b"slow"), None),
            Verdict::Challenge {
                nonce: pending,
                first: false
            }
        );
        // A proof before any challenge only gets a challenge.
        assert!(matches!(
            gate.admit(&peer(b"eve"), Some((&peer_nonce, &old))),
            Verdict::Challenge { .. }
        ));
    }

    #[test]
    fn trust_belongs_to_the_connection_that_proved_the_secret() {
        let mut gate = Gate::new(secret());
        let mut prover = Prover::new(secret());
        let Verdict::Challenge { nonce, .. } = gate.admit(&on(b"c", 10), None) else {
            panic!("challenged");
        };
        // A proof over another connection does not answer that challenge.
        let (own, proof) = prover.answer(&nonce).expect("answer");
        assert!(matches!(
            gate.admit(&on(b"c", 11), Some((&own, &proof))),
            Verdict::Challenge { first: true, .. }
        ));
        let Verdict::Challenge { nonce, .. } = gate.admit(&on(b"c", 10), None) else {
            panic!("challenged");
        };
        let (own, proof) = prover.answer(&nonce).expect("answer");
        assert!(matches!(
            gate.admit(&on(b"c", 10), Some((&own, &proof))),
            Verdict::Welcome(_)
        ));
        assert!(gate.trusts(&on(b"c", 10)));
        // The same name over another connection gets nothing.
        assert!(!gate.trusts(&on(b"c", 11)));
        assert!(matches!(
            gate.admit(&on(b"c", 11), None),
            Verdict::Refuse(_)
        ));
        // Once the connection closed, the name is worth nothing.
        gate.forget(b"c");
        assert!(matches!(
            gate.admit(&on(b"c", 10), None),
            Verdict::Challenge { first: true, .. }
        ));
    }

    #[test]
    fn a_flood_of_challenges_evicts_the_oldest_one_at_a_time() {
        let mut gate = Gate::new(secret());
        let mut prover = Prover::new(secret());
        let Verdict::Challenge { nonce, .. } = gate.admit(&on(b"early", 1), None) else {
            panic!("challenged");
        };
        let Verdict::Challenge { nonce: late, .. } = gate.admit(&on(b"late", 2), None) else {
            panic!("challenged");
        };
        for k in 0..MAX_CHALLENGED as i32 - 2 {
            gate.admit(&on(format!("flood-{k}").as_bytes(), 100 + k), None);
        }
        // Still room for everyone so far: the late peer's challenge holds.
        let (own, proof) = prover.answer(&late).expect("answer");
        assert!(matches!(
            gate.admit(&on(b"late", 2), Some((&own, &proof))),
            Verdict::Welcome(_)
        ));
        for k in 0..5000 {
            gate.admit(&on(format!("more-{k}").as_bytes(), 10_000 + k), None);
        }
        assert!(gate.challenged.len() <= MAX_CHALLENGED);
        // The early peer's challenge was evicted: its proof gets a fresh
        // challenge, which it answers.
        let (own, proof) = prover.answer(&nonce).expect("answer");
        let Verdict::Challenge { nonce, .. } = gate.admit(&on(b"early", 1), Some((&own, &proof)))
        else {
            panic!("asked again");
        };
        let (own, proof) = prover.answer(&nonce).expect("answer");
        assert!(matches!(
            gate.admit(&on(b"early", 1), Some((&own, &proof))),
            Verdict::Welcome(_)
        ));
        assert!(
            gate.trusts(&on(b"late", 2)),
            "the flood never touches trust"
        );
    }

    #[test]
    fn keygen_writes_a_private_secret_that_loads() {
        let dir = std::env::temp_dir().join(format!("rtl-auth-{}", std::process::id()));
        let path = dir.join("secret");
        let _ = std::fs::remove_file(&path);
        Secret::generate(&path).expect("keygen");
        assert_eq!(
            Secret::generate(&path),
            Err(SecretError::Exists(path.clone())),
            "never overwrites"
        );
        assert!(Secret::load(&path).expect("load").is_some());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let exposed = Secret::load(&path).expect_err("world-readable");
        assert_eq!(exposed, SecretError::Exposed(path.clone()));
        assert!(exposed.to_string().contains("chmod 600"), "{exposed}");
        assert!(Secret::load(&dir.join("none")).expect("absent").is_none());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
