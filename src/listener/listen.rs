//! `Listener`: a bound socket that accepts authenticated connections (Python's
//! `multiprocessing.connection.Listener`).

use std::fmt;
use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use super::address::Address;
use super::auth;
use super::client::{Client, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_MESSAGE, check_max};
use crate::error::{Error, Result};
use crate::sys::fdpass;

/// The socket a listener holds.
enum Socket {
    Unix(UnixListener),
    Tcp(TcpListener),
}

/// A socket bound to an [`Address`] that accepts connections from clients holding its
/// `authkey`; each accepted connection is a [`Client`].
///
/// [`accept`](Listener::accept) runs the handshake on the calling thread: a client that
/// stalls holds it for at most the handshake timeout (5 s unless
/// [`ListenerBuilder::handshake_timeout`] says otherwise). A server that must not wait on one
/// client takes connections with [`accept_raw`](Listener::accept_raw) and authenticates each on
/// its own thread ([`Unauthenticated::authenticate`]). A Unix socket's file is removed when the
/// listener is dropped.
///
/// ```
/// use shmpool::connection::{Address, Client, Listener};
/// let l = Listener::bind(&Address::localhost(0), b"key")?;
/// let addr = l.address().clone();
/// let t = std::thread::spawn(move || Client::connect(&addr, b"key")?.send(&"hi"));
/// let got: String = l.accept()?.recv()?;
/// t.join().unwrap()?;
/// assert_eq!(got, "hi");
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct Listener {
    socket: Socket,
    address: Address,
    authkey: Vec<u8>,
    max: usize,
    handshake: Duration,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .field("max_message", &self.max)
            .field("handshake_timeout", &self.handshake)
            .finish_non_exhaustive()
    }
}

/// Options for a [`Listener`]: message limit and handshake timeout.
///
/// ```
/// use std::time::Duration;
/// use shmpool::connection::{Address, Listener};
/// let l = Listener::builder(Address::localhost(0), b"key")
///     .max_message(1 << 20)
///     .handshake_timeout(Duration::from_secs(1))
///     .bind()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until bind()"]
pub struct ListenerBuilder {
    address: Address,
    authkey: Vec<u8>,
    max: usize,
    handshake: Duration,
}

impl fmt::Debug for ListenerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerBuilder")
            .field("address", &self.address)
            .field("max_message", &self.max)
            .field("handshake_timeout", &self.handshake)
            .finish_non_exhaustive()
    }
}

impl ListenerBuilder {
    /// The largest message accepted connections send or take (default
    /// [`DEFAULT_MAX_MESSAGE`](crate::connection::DEFAULT_MAX_MESSAGE), at most 4 GiB - 1).
    ///
    /// ```
    /// let b = shmpool::connection::Listener::builder(shmpool::connection::Address::localhost(0), b"k")
    ///     .max_message(4096);
    /// # let _ = b;
    /// ```
    pub fn max_message(mut self, bytes: usize) -> ListenerBuilder {
        self.max = bytes;
        self
    }

    /// How long a client may take over the handshake (default [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    ///
    /// ```
    /// let b = shmpool::connection::Listener::builder(shmpool::connection::Address::localhost(0), b"k")
    ///     .handshake_timeout(std::time::Duration::from_millis(200));
    /// # let _ = b;
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> ListenerBuilder {
        self.handshake = timeout;
        self
    }

    /// Binds the socket.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an empty key or a message limit over 4 GiB - 1;
    /// [`Error::Io`] when the address cannot be bound (in use, no such directory, no right).
    ///
    /// ```
    /// let l = shmpool::connection::Listener::builder(shmpool::connection::Address::localhost(0), b"k").bind()?;
    /// assert_ne!(l.address().to_string(), "127.0.0.1:0");
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn bind(self) -> Result<Listener> {
        check_max(self.max)?;
        if self.authkey.is_empty() {
            return Err(Error::InvalidArgument {
                what: "authkey",
                reason: "an empty key authenticates nobody; use at least 16 random bytes".into(),
            });
        }
        let (socket, address) = match &self.address {
            Address::Unix(path) => {
                let l = UnixListener::bind(path).map_err(Error::io("binding a Unix socket"))?;
                (Socket::Unix(l), self.address.clone())
            }
            Address::Tcp(a) => {
                let l = TcpListener::bind(a).map_err(Error::io("binding a TCP socket"))?;
                let bound = l.local_addr().map_err(Error::io("getsockname"))?;
                (Socket::Tcp(l), Address::Tcp(bound))
            }
        };
        Ok(Listener {
            socket,
            address,
            authkey: self.authkey,
            max: self.max,
            handshake: self.handshake,
        })
    }
}

/// An accepted connection whose client has not proved its key yet: nothing can be read from
/// it but the handshake.
#[derive(Debug)]
pub struct Unauthenticated {
    client: Client,
    authkey: Vec<u8>,
    handshake: Duration,
}

impl Unauthenticated {
    /// Runs the handshake: the connection once the client proved it holds the key.
    ///
    /// # Errors
    ///
    /// [`Error::AuthenticationFailed`] for a client with another key or one that sends anything
    /// but an answer (garbage, an oversized frame); [`Error::Timeout`] for one that stalls past
    /// the handshake timeout. The connection is closed then.
    ///
    /// ```
    /// use shmpool::connection::{Address, Client, Listener};
    /// let l = Listener::bind(&Address::localhost(0), b"key")?;
    /// let addr = l.address().clone();
    /// let t = std::thread::spawn(move || Client::connect(&addr, b"key").map(|_| ()));
    /// let conn = l.accept_raw()?.authenticate()?;
    /// t.join().unwrap()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn authenticate(mut self) -> Result<Client> {
        auth::challenge(&mut self.client, &self.authkey, self.handshake)?;
        Ok(self.client)
    }
}

impl Listener {
    /// Binds `address` with `authkey` and the default limits ([`Listener::builder`] for others).
    ///
    /// ```
    /// let l = shmpool::connection::Listener::bind(&"127.0.0.1:0".parse()?, b"key")?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn bind(address: &Address, authkey: &[u8]) -> Result<Listener> {
        Listener::builder(address.clone(), authkey).bind()
    }

    /// A builder for a listener at `address` with `authkey`.
    ///
    /// ```
    /// let l = shmpool::connection::Listener::builder("127.0.0.1:0".parse()?, b"key").bind()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn builder(address: Address, authkey: &[u8]) -> ListenerBuilder {
        ListenerBuilder {
            address,
            authkey: authkey.to_vec(),
            max: DEFAULT_MAX_MESSAGE,
            handshake: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// The address clients connect to (a TCP port 0 replaced by the port bound).
    ///
    /// ```
    /// let l = shmpool::connection::Listener::bind(&"127.0.0.1:0".parse()?, b"key")?;
    /// println!("listening on {}", l.address());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Accepts the next connection and runs the handshake, waiting as long as it takes for a
    /// client to connect.
    ///
    /// # Errors
    ///
    /// As [`Unauthenticated::authenticate`]: a client that fails the handshake is an error
    /// here (call again for the next one).
    ///
    /// ```no_run
    /// let l = shmpool::connection::Listener::bind(&"127.0.0.1:6000".parse()?, b"key")?;
    /// let mut conn = l.accept()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn accept(&self) -> Result<Client> {
        self.accept_raw()?.authenticate()
    }

    /// As [`accept`](Listener::accept), giving up with [`Error::Timeout`] when no client
    /// connects within `timeout` (the handshake has its own timeout).
    ///
    /// ```
    /// let l = shmpool::connection::Listener::bind(&"127.0.0.1:0".parse()?, b"key")?;
    /// let e = l.accept_timeout(std::time::Duration::from_millis(10)).unwrap_err();
    /// assert!(matches!(e, shmpool::Error::Timeout { .. }));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Client> {
        self.accept_raw_timeout(Some(timeout))?.authenticate()
    }

    /// Accepts the next connection without running the handshake, for a server that
    /// authenticates each connection on a thread of its own.
    ///
    /// ```no_run
    /// let l = shmpool::connection::Listener::bind(&"127.0.0.1:6000".parse()?, b"key")?;
    /// let pending = l.accept_raw()?;
    /// std::thread::spawn(move || pending.authenticate());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn accept_raw(&self) -> Result<Unauthenticated> {
        self.accept_raw_timeout(None)
    }

    /// As [`accept_raw`](Listener::accept_raw), giving up after `timeout` (`None`: never).
    pub(crate) fn accept_raw_timeout(&self, timeout: Option<Duration>) -> Result<Unauthenticated> {
        if let Some(t) = timeout
            && !fdpass::wait_readable(self.as_fd(), Some(t)).map_err(Error::io("poll"))?
        {
            return Err(Error::Timeout { what: "accepting a connection", after: t });
        }
        let fd = loop {
            let r = match &self.socket {
                Socket::Unix(l) => l.accept().map(|(s, _)| OwnedFd::from(s)),
                Socket::Tcp(l) => l.accept().and_then(|(s, _)| {
                    s.set_nodelay(true)?;
                    Ok(OwnedFd::from(s))
                }),
            };
            match r {
                Ok(fd) => break fd,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // A client that gave up between the poll and the accept.
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
                Err(e) => return Err(Error::io("accept")(e)),
            }
        };
        Ok(Unauthenticated {
            client: Client::over(fd, "a client".into(), self.max),
            authkey: self.authkey.clone(),
            handshake: self.handshake,
        })
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.socket {
            Socket::Unix(l) => l.as_fd(),
            Socket::Tcp(l) => l.as_fd(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Address::Unix(path) = &self.address {
            let _ = std::fs::remove_file(path);
        }
    }
}
