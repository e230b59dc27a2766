//! The manager's server process: binds its listener, says where it listens, then accepts
//! connections, each served by a thread of its own (authentication first, then one request and
//! its reply at a time, until the client disconnects). See `docs/manager.md` for why a thread
//! per connection.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::custom::Registry;
use super::store::Store;
use super::wire::{Reply, Request};
use crate::connection::{Address, Client, Listener};
use crate::error::Error;
use crate::queue::MessageQueue;

/// How long a client may stall inside a request before the server hangs up.
const STALL: Duration = Duration::from_secs(30);

/// How often the accept loop looks for a shutdown.
const TICK: Duration = Duration::from_millis(100);

/// What the server process is started with.
#[derive(Serialize, Deserialize)]
pub(crate) struct ServerConfig {
    pub(crate) address: Address,
    pub(crate) authkey: Vec<u8>,
    pub(crate) instance: u64,
    pub(crate) max_connections: usize,
    pub(crate) handshake_timeout: Duration,
    /// Where the server reports the address it bound, or why it could not.
    pub(crate) ready: MessageQueue,
}

/// State every connection thread shares.
struct Shared {
    store: Store,
    instance: u64,
    stop: AtomicBool,
    live: AtomicUsize,
    next_conn: AtomicU64,
}

/// The server process's body: serves until a `Shutdown` request (exit 0), or until its owner
/// dies (the alive pipe kills it). Exit 2: it could not bind.
pub(crate) fn serve<R: Registry>(cfg: ServerConfig) -> i32 {
    let listener = match Listener::builder(cfg.address.clone(), &cfg.authkey)
        .max_message(super::session::MAX_MESSAGE)
        .handshake_timeout(cfg.handshake_timeout)
        .bind()
    {
        Ok(l) => l,
        Err(e) => {
            let _ = cfg.ready.put(&Err::<Address, String>(e.to_string()));
            return 2;
        }
    };
    if cfg.ready.put(&Ok::<Address, String>(listener.address().clone())).is_err() {
        return 2;
    }
    drop(cfg.ready);
    let shared = Arc::new(Shared {
        store: Store::default(),
        instance: cfg.instance,
        stop: AtomicBool::new(false),
        live: AtomicUsize::new(0),
        next_conn: AtomicU64::new(1),
    });
    while !shared.stop.load(Ordering::Acquire) {
        let pending = match listener.accept_raw_timeout(Some(TICK)) {
            Ok(p) => p,
            Err(Error::Timeout { .. }) => continue,
            // Out of descriptors, say: wait a tick rather than spin.
            Err(_) => {
                std::thread::sleep(TICK);
                continue;
            }
        };
        if shared.live.load(Ordering::Acquire) >= cfg.max_connections {
            // Over the limit: closed before the handshake.
            drop(pending);
            continue;
        }
        shared.live.fetch_add(1, Ordering::AcqRel);
        let s = Arc::clone(&shared);
        let spawned = std::thread::Builder::new().name("manager-conn".into()).spawn(move || {
            if let Ok(client) = pending.authenticate() {
                let conn = s.next_conn.fetch_add(1, Ordering::Relaxed);
                serve_connection::<R>(&s, conn, client);
                s.store.release_all(conn);
            }
            s.live.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            shared.live.fetch_sub(1, Ordering::AcqRel);
        }
    }
    0
}

/// Whether the peer of `client` hung up (checked while a request waits).
fn hung_up(client: &Client) -> bool {
    crate::sys::socket::peer_hung_up(client.as_fd())
}

/// One connection's requests, until it ends. Anything that is not a request ends it: a
/// frame that does not decode, one over the limit (refused unread), a stream cut or stalled
/// (30 s) inside a frame, a reply the client does not take within 30 s. Each request
/// is applied whole or not at all, so a client dying mid-request leaves nothing half-done.
fn serve_connection<R: Registry>(s: &Shared, conn: u64, mut client: Client) {
    // A client that stops reading its replies holds this thread no longer than a stall.
    if client.set_send_timeout(STALL).is_err() {
        return;
    }
    loop {
        let Ok(bytes) = client.recv_untrusted(STALL) else { return };
        let Ok(req) = postcard::from_bytes::<Request>(&bytes) else { return };
        let reply = match req {
            Request::Hello => Reply::Hello { instance: s.instance },
            Request::Create(kind) => s.store.create(kind, R::create),
            Request::Named { name, kind } => s.store.named(name, kind, R::create),
            Request::Call { id, op } => s.store.call(conn, id, op, || hung_up(&client)),
            Request::Shutdown => {
                s.stop.store(true, Ordering::Release);
                Reply::Done
            }
        };
        if client.send(&reply).is_err() {
            return;
        }
    }
}
