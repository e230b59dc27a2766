//! The client side of every proxy: an [`Object`] (the manager's address, key and instance, the
//! object's id, the call timeout) and the connections that carry its calls.
//!
//! Each thread keeps one connection per manager, made on its first call and kept until the
//! thread exits (as Python's proxies do): a lock belongs to the connection, so to the thread,
//! that took it, and one thread blocked in a wait never holds up another's calls. A connection
//! inherited through `fork` is the parent's and is never used: the child makes its own.

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::wire::{Op, Reply, Request};
use crate::connection::{Address, Client};
use crate::error::{Error, Result};
use crate::sys;

/// The limit on each proxy call, beyond any wait it asks for, unless set otherwise: 30 s.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest request or reply, both ways: 64 MiB.
pub(crate) const MAX_MESSAGE: usize = 64 << 20;

const WHAT: &str = "manager proxy";

/// Where a manager is, and which server it was: what every proxy carries.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Remote {
    pub(crate) address: Address,
    pub(crate) authkey: Vec<u8>,
    /// The server's instance number: a restarted server at the same address is another.
    pub(crate) instance: u64,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Remote").field("address", &self.address).finish_non_exhaustive()
    }
}

/// One object on a manager's server, as a proxy holds it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Object {
    pub(crate) remote: Remote,
    pub(crate) id: u64,
    /// The limit on each call, beyond any wait it asks for.
    pub(crate) timeout: Duration,
}

impl Object {
    /// Applies `op`; `wait` is how long the server may wait inside it.
    pub(crate) fn call(&self, op: Op, wait: Option<Duration>) -> Result<Reply> {
        call(&self.remote, &Request::Call { id: self.id, op }, wait, self.timeout)
    }

    /// Applies `op`, which the server answers with `Reply::Done`.
    pub(crate) fn call_done(&self, op: Op, wait: Option<Duration>) -> Result<()> {
        match self.call(op, wait)? {
            Reply::Done => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    /// Applies `op`, which the server answers with `Reply::Bool`.
    pub(crate) fn call_bool(&self, op: Op, wait: Option<Duration>) -> Result<bool> {
        match self.call(op, wait)? {
            Reply::Bool(b) => Ok(b),
            r => Err(unexpected(r)),
        }
    }

    /// Applies `op`, which the server answers with `Reply::Item`: the item, decoded.
    pub(crate) fn call_item<T: DeserializeOwned>(
        &self,
        op: Op,
        wait: Option<Duration>,
    ) -> Result<Option<T>> {
        match self.call(op, wait)? {
            Reply::Item(v) => v.map(|b| decode(&b)).transpose(),
            r => Err(unexpected(r)),
        }
    }

    /// Takes a lock or a semaphore's unit (`Op::Acquire`), waiting up to `timeout`: whether it
    /// did.
    pub(crate) fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.call_bool(Op::Acquire { wait_ms: millis(timeout) }, Some(timeout))
    }

    /// Takes it (as [`acquire_timeout`](Object::acquire_timeout)) within the call timeout, or
    /// fails with [`Error::Timeout`] naming `what`.
    pub(crate) fn acquire(&self, what: &'static str) -> Result<()> {
        let t = self.timeout;
        if self.acquire_timeout(t)? { Ok(()) } else { Err(Error::Timeout { what, after: t }) }
    }

    /// How many entries the object holds (`Op::Len`).
    pub(crate) fn len(&self) -> Result<usize> {
        match self.call(Op::Len, None)? {
            Reply::Len(n) => Ok(n as usize),
            r => Err(unexpected(r)),
        }
    }
}

/// A connection of this thread to one manager.
struct Conn {
    remote: Remote,
    pid: u32,
    client: Client,
}

thread_local! {
    static CONNS: RefCell<Vec<Conn>> = const { RefCell::new(Vec::new()) };
}

/// This thread's connection to `remote`, made if it has none (the caller puts it back).
fn take(remote: &Remote, timeout: Duration) -> Result<Conn> {
    let me = sys::proc::getpid();
    let found = CONNS.with(|c| {
        let mut c = c.borrow_mut();
        // Connections inherited through fork are the parent's: drop our copies.
        c.retain(|x| x.pid == me);
        let i = c.iter().position(|x| x.remote == *remote)?;
        Some(c.swap_remove(i))
    });
    if let Some(conn) = found {
        return Ok(conn);
    }
    let lost = |e: Error| match e {
        Error::Io { source, .. }
            if matches!(
                source.raw_os_error(),
                Some(libc::ECONNREFUSED) | Some(libc::ENOENT) | Some(libc::ECONNRESET)
            ) =>
        {
            gone(remote, format!("nothing accepts connections there ({source})"))
        }
        Error::Disconnected { .. } | Error::TruncatedFrame { .. } => {
            gone(remote, "it closed the connection during the handshake".into())
        }
        e => e,
    };
    let mut client = Client::connect_with(&remote.address, &remote.authkey, timeout, MAX_MESSAGE)
        .map_err(lost)?;
    let instance = match exchange(&mut client, remote, &Request::Hello, timeout)? {
        Reply::Hello { instance } => instance,
        other => return Err(unexpected(other)),
    };
    if instance != remote.instance {
        return Err(gone(remote, "a restarted server answers at its address".into()));
    }
    Ok(Conn { remote: remote.clone(), pid: me, client })
}

/// Closes this thread's connection to `remote`, if it has one (its server is being stopped).
pub(crate) fn forget(remote: &Remote) {
    CONNS.with(|c| c.borrow_mut().retain(|x| x.remote != *remote));
}

/// Learns the instance number of the server at `address`.
pub(crate) fn hello(address: &Address, authkey: &[u8], timeout: Duration) -> Result<Remote> {
    let mut client = Client::connect_with(address, authkey, timeout, MAX_MESSAGE)?;
    let remote = Remote { address: address.clone(), authkey: authkey.to_vec(), instance: 0 };
    match exchange(&mut client, &remote, &Request::Hello, timeout)? {
        Reply::Hello { instance } => Ok(Remote { instance, ..remote }),
        other => Err(unexpected(other)),
    }
}

fn gone(remote: &Remote, reason: String) -> Error {
    Error::ManagerGone { address: remote.address.to_string(), reason }
}

/// One request and its reply on `client`, the reply awaited at most `limit`.
fn exchange(client: &mut Client, remote: &Remote, req: &Request, limit: Duration) -> Result<Reply> {
    let lost = |e: Error| match e {
        Error::Disconnected { .. } | Error::TruncatedFrame { .. } => {
            gone(remote, "its server closed the connection: it exited or was killed".into())
        }
        Error::Timeout { .. } => Error::Timeout { what: "manager call", after: limit },
        e => e,
    };
    client.send(req).map_err(lost)?;
    let reply: Reply = client.recv_timeout(limit).map_err(lost)?;
    match reply {
        Reply::Refused(reason) => Err(Error::ManagerRefused { reason }),
        r => Ok(r),
    }
}

/// Sends `req` to `remote` on this thread's connection and returns the reply; the server may
/// wait `wait` inside it, and the reply is awaited `wait + timeout` at most.
pub(crate) fn call(
    remote: &Remote,
    req: &Request,
    wait: Option<Duration>,
    timeout: Duration,
) -> Result<Reply> {
    let mut conn = take(remote, timeout)?;
    let limit = wait.unwrap_or_default().saturating_add(timeout);
    let r = exchange(&mut conn.client, remote, req, limit);
    // A refusal leaves the connection in step; anything else (a timeout, a lost server) may
    // not, so the connection is dropped and the next call makes a new one.
    if matches!(r, Ok(_) | Err(Error::ManagerRefused { .. })) {
        CONNS.with(|c| c.borrow_mut().push(conn));
    }
    r
}

/// A wait in milliseconds for the wire (rounded up, at most `u64::MAX`).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// A value's postcard bytes.
pub(crate) fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(v).map_err(|e| Error::BadMessage { what: WHAT, reason: e.to_string() })
}

/// A value from its postcard bytes.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::BadMessage {
        what: WHAT,
        reason: format!("{e} (was the object made for another type?)"),
    })
}

/// A reply of the wrong shape: a server of another version.
pub(crate) fn unexpected(r: Reply) -> Error {
    Error::BadMessage {
        what: WHAT,
        reason: format!("unexpected reply {r:?}: client and server are different versions"),
    }
}
