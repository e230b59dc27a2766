//! `Address`: where a [`Listener`](super::Listener) listens and a [`Client`](super::Client)
//! connects: a Unix socket path or a TCP socket address (Python's `Listener(address)`, where a
//! string is a Unix path and a `(host, port)` tuple is TCP).

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A socket address: a Unix socket's path, or a TCP host and port.
///
/// Parsed from text: a string that starts with `/`, `./` or `unix:` is a Unix path, anything
/// else a TCP address (`127.0.0.1:5000`, `[::1]:5000`, `localhost:5000`, resolved once, to its
/// first address). Displayed the same way (`unix:` omitted). It is serde, so it can travel as a
/// `Process` argument.
///
/// ```
/// use shmpool::connection::Address;
/// let tcp: Address = "127.0.0.1:5000".parse()?;
/// assert!(matches!(tcp, Address::Tcp(a) if a.port() == 5000));
/// let unix: Address = "/tmp/app.sock".parse()?;
/// assert_eq!(unix.to_string(), "/tmp/app.sock");
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Address {
    /// A Unix stream socket at this path.
    Unix(PathBuf),
    /// A TCP socket at this address.
    Tcp(SocketAddr),
}

impl Address {
    /// TCP on 127.0.0.1 at `port` (0: a free port the system picks, which
    /// [`Listener::address`](super::Listener::address) then tells).
    ///
    /// ```
    /// assert_eq!(shmpool::connection::Address::localhost(0).to_string(), "127.0.0.1:0");
    /// ```
    pub fn localhost(port: u16) -> Address {
        Address::Tcp(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Whether this is a Unix socket path.
    ///
    /// ```
    /// assert!(shmpool::connection::Address::Unix("/tmp/s".into()).is_unix());
    /// ```
    pub fn is_unix(&self) -> bool {
        matches!(self, Address::Unix(_))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "{}", p.display()),
            Address::Tcp(a) => write!(f, "{a}"),
        }
    }
}

impl FromStr for Address {
    type Err = Error;

    fn from_str(s: &str) -> Result<Address, Error> {
        if let Some(path) = s.strip_prefix("unix:") {
            return Ok(Address::Unix(path.into()));
        }
        if s.starts_with('/') || s.starts_with("./") {
            return Ok(Address::Unix(s.into()));
        }
        let bad = |reason: String| Error::InvalidArgument { what: "address", reason };
        let mut addrs = s.to_socket_addrs().map_err(|e| {
            bad(format!(
                "{s:?} is neither a Unix socket path (start it with / or unix:) nor a TCP \
                 host:port ({e})"
            ))
        })?;
        addrs.next().map(Address::Tcp).ok_or_else(|| bad(format!("{s:?} resolves to no address")))
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Address {
        Address::Tcp(a)
    }
}

impl From<PathBuf> for Address {
    fn from(p: PathBuf) -> Address {
        Address::Unix(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_parses_to_the_right_family_and_back() {
        let a: Address = "unix:/run/x.sock".parse().unwrap();
        assert_eq!(a, Address::Unix("/run/x.sock".into()));
        let t: Address = "[::1]:80".parse().unwrap();
        assert_eq!(t.to_string(), "[::1]:80");
        let e = "no port here".parse::<Address>().unwrap_err();
        assert!(e.to_string().contains("start it with / or unix:"), "{e}");
    }
}
