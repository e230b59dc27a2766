//! Python's `multiprocessing.connection.Listener` and `Client`: connections between processes
//! that find each other by address (a Unix socket path or TCP), authenticated by a shared
//! `authkey` before anything else is read. Re-exported from [`crate::connection`].
//!
//! One file per concept: `address.rs` (where), `client.rs` (a framed, authenticated
//! connection), `auth.rs` (the handshake), `connect.rs` (connecting a client), `listen.rs`
//! (binding and accepting). The wire and the handshake are described in `docs/manager.md`,
//! whose server is built on them.

pub(crate) mod address;
pub(crate) mod auth;
pub(crate) mod client;
pub(crate) mod connect;
pub(crate) mod listen;

pub use address::Address;
pub use client::{Client, DEFAULT_HANDSHAKE_TIMEOUT};
pub use listen::{Listener, ListenerBuilder, Unauthenticated};
