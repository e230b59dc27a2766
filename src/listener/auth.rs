//! The `authkey` handshake: a challenge and response each way, HMAC-SHA256, compared in
//! constant time, before anything else on the connection is read.
//!
//! ```text
//! listener -> client  kind 16 CHALLENGE  "shmpool-auth-hmac-sha256-v1" | nonce_l (32 random bytes)
//! client -> listener  kind 17 RESPONSE   HMAC(key, "client" | nonce_l | nonce_c) | nonce_c (32 random bytes)
//! listener -> client  kind 18 WELCOME    HMAC(key, "listener" | nonce_l | nonce_c)
//!                  or kind 19 REFUSED    (empty; the listener closes)
//! ```
//!
//! Each side proves it holds the key over a nonce the other chose, so neither a recorded
//! exchange nor a reflected answer passes (the labels differ by direction). Handshake frames are
//! read under a 256-byte limit, refused unread above it, and under the handshake's timeout.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::client::Client;
use crate::error::{Error, Result};

/// The handshake's frame kinds.
const CHALLENGE: u32 = 16;
const RESPONSE: u32 = 17;
const WELCOME: u32 = 18;
const REFUSED: u32 = 19;

/// The protocol's name, first in the challenge.
const PROTOCOL: &[u8] = b"shmpool-auth-hmac-sha256-v1";
const NONCE: usize = 32;
const MAC: usize = 32;
/// The largest handshake frame read.
const MAX_HANDSHAKE: usize = 256;

type HmacSha256 = Hmac<Sha256>;

/// `HMAC(key, label | a | b)`.
fn mac(key: &[u8], label: &[u8], a: &[u8], b: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length.
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts every key length");
    m.update(label);
    m.update(a);
    m.update(b);
    m
}

/// 32 bytes from the kernel's random source.
fn nonce() -> Result<[u8; NONCE]> {
    let mut n = [0u8; NONCE];
    crate::sys::socket::random_bytes(&mut n).map_err(Error::io("getrandom"))?;
    Ok(n)
}

/// The time left before `deadline` (none: `fallback`), at least a millisecond.
fn left(deadline: Option<Instant>, fallback: Duration) -> Duration {
    deadline
        .map(|d| d.saturating_duration_since(Instant::now()))
        .unwrap_or(fallback)
        .max(Duration::from_millis(1))
}

/// The frame the handshake expects next, of `kind` and `len` bytes exactly; anything else is
/// a peer that does not speak the protocol.
fn expect(
    c: &mut Client,
    kind: u32,
    len: usize,
    deadline: Option<Instant>,
    fallback: Duration,
) -> Result<Vec<u8>> {
    let (got, body) = c.recv_frame(Some(left(deadline, fallback)), MAX_HANDSHAKE, false)?;
    if got == REFUSED && kind != REFUSED {
        return Err(Error::AuthenticationFailed {
            peer: c.peer().to_string(),
            reason: "the listener refused our answer to its challenge",
        });
    }
    if got != kind || body.len() != len {
        return Err(Error::AuthenticationFailed {
            peer: c.peer().to_string(),
            reason: "the peer does not speak shmpool's handshake",
        });
    }
    Ok(body)
}

/// The listener's side: challenge the client, check its answer, prove our own key. Nothing
/// but handshake frames is read before the client's answer has been verified.
pub(crate) fn challenge(c: &mut Client, key: &[u8], timeout: Duration) -> Result<()> {
    let deadline = Instant::now().checked_add(timeout);
    let ours = nonce()?;
    c.send_frame(CHALLENGE, &[PROTOCOL, &ours[..]].concat())?;
    let answer = expect(c, RESPONSE, MAC + NONCE, deadline, timeout).map_err(|e| match e {
        // Garbage, an oversized frame or a stall before the answer: not authenticated.
        Error::Timeout { .. } => e,
        _ => Error::AuthenticationFailed {
            peer: c.peer().to_string(),
            reason: "the client sent no valid answer to the challenge",
        },
    })?;
    let (their_mac, theirs) = answer.split_at(MAC);
    if mac(key, b"client", &ours, theirs).verify_slice(their_mac).is_err() {
        // Best effort: the client learns why; it may be gone already.
        let _ = c.send_frame(REFUSED, &[]);
        return Err(Error::AuthenticationFailed {
            peer: c.peer().to_string(),
            reason: "the client's answer was made with another key",
        });
    }
    let proof = mac(key, b"listener", &ours, theirs).finalize().into_bytes();
    c.send_frame(WELCOME, &proof)
}

/// The client's side: answer the listener's challenge and check its proof.
pub(crate) fn answer(
    c: &mut Client,
    key: &[u8],
    deadline: Option<Instant>,
    timeout: Duration,
) -> Result<()> {
    let challenge = expect(c, CHALLENGE, PROTOCOL.len() + NONCE, deadline, timeout)?;
    let (proto, theirs) = challenge.split_at(PROTOCOL.len());
    if proto != PROTOCOL {
        return Err(Error::AuthenticationFailed {
            peer: c.peer().to_string(),
            reason: "the listener speaks another version of the handshake",
        });
    }
    let ours = nonce()?;
    let response = mac(key, b"client", theirs, &ours).finalize().into_bytes();
    c.send_frame(RESPONSE, &[&response[..], &ours[..]].concat())?;
    let proof = expect(c, WELCOME, MAC, deadline, timeout).map_err(|e| match e {
        Error::Disconnected { .. } | Error::TruncatedFrame { .. } => Error::AuthenticationFailed {
            peer: c.peer().to_string(),
            reason: "the listener closed the connection instead of accepting our answer",
        },
        e => e,
    })?;
    if mac(key, b"listener", theirs, &ours).verify_slice(&proof).is_err() {
        return Err(Error::AuthenticationFailed {
            peer: c.peer().to_string(),
            reason: "the listener's proof was made with another key",
        });
    }
    Ok(())
}
