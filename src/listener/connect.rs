//! Connecting a [`Client`] to a listener's address: the socket, then the handshake's client
//! side (`auth.rs`).

use std::io;
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::address::Address;
use super::auth;
use super::client::{Client, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_MESSAGE, check_max};
use crate::error::{Error, Result};

impl Client {
    /// Connects to the listener at `address` and proves both sides hold `authkey`, within
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// [`Error::AuthenticationFailed`] when the keys differ (on both sides);
    /// [`Error::Io`] when nothing listens there; [`Error::Timeout`] when the listener does not
    /// answer in time.
    ///
    /// ```
    /// use shmpool::connection::{Address, Client, Listener};
    /// let l = Listener::bind(&Address::localhost(0), b"k1")?;
    /// let addr = l.address().clone();
    /// let t = std::thread::spawn(move || l.accept().map(|_| ()));
    /// let e = Client::connect(&addr, b"k2").unwrap_err();
    /// assert!(matches!(e, shmpool::Error::AuthenticationFailed { .. }), "{e}");
    /// assert!(matches!(t.join().unwrap(), Err(shmpool::Error::AuthenticationFailed { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn connect(address: &Address, authkey: &[u8]) -> Result<Client> {
        Client::connect_with(address, authkey, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_MESSAGE)
    }

    /// As [`connect`](Client::connect), with a limit on connecting plus the handshake and on
    /// messages (at most 4 GiB - 1 bytes).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let addr: shmpool::connection::Address = "127.0.0.1:6000".parse()?;
    /// let c = shmpool::connection::Client::connect_with(&addr, b"k", Duration::from_secs(1), 1 << 20)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn connect_with(
        address: &Address,
        authkey: &[u8],
        timeout: Duration,
        max_message: usize,
    ) -> Result<Client> {
        check_max(max_message)?;
        let deadline = Instant::now().checked_add(timeout);
        let fd = open_stream(address, timeout)?;
        let mut c = Client::over(fd, address.to_string(), max_message);
        auth::answer(&mut c, authkey, deadline, timeout)?;
        Ok(c)
    }
}

/// A connected stream socket to `address`, within `timeout` (TCP: no Nagle delay, since every
/// exchange is a request and its reply).
fn open_stream(address: &Address, timeout: Duration) -> Result<OwnedFd> {
    match address {
        Address::Unix(path) => UnixStream::connect(path)
            .map(OwnedFd::from)
            .map_err(Error::io("connecting a Unix socket")),
        Address::Tcp(a) => {
            let s = TcpStream::connect_timeout(a, timeout).map_err(|e| {
                if e.kind() == io::ErrorKind::TimedOut {
                    Error::Timeout { what: "connecting over TCP", after: timeout }
                } else {
                    Error::io("connecting over TCP")(e)
                }
            })?;
            s.set_nodelay(true).map_err(Error::io("setting TCP_NODELAY"))?;
            Ok(OwnedFd::from(s))
        }
    }
}
