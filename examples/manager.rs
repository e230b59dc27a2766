//! The manager programs of Python's `multiprocessing` documentation, ported.
//!
//! 1. "Server process": a dict and a list shared with a child through a `Manager()`:
//!
//! ```python
//! def f(d, l):
//!     d[1] = '1'
//!     d['2'] = 2
//!     d[0.25] = None
//!     l.reverse()
//!
//! with Manager() as manager:
//!     d = manager.dict()
//!     l = manager.list(range(10))
//!     p = Process(target=f, args=(d, l)); p.start(); p.join()
//!     print(d)    # {1: '1', '2': 2, 0.25: None}
//!     print(l)    # [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
//! ```
//!
//! Python's dict mixes key and value types; here they are one enum, `Py`, printed as Python
//! prints them. (Keys come back ordered by their encoding, which for this enum is the order
//! Python inserted them in.)
//!
//! 2. "Using a remote manager": a queue served on TCP with `authkey=b'abracadabra'`, a client
//!    that puts `'hello'` knowing only the address and key, and another that gets it. Here the
//!    server listens on 127.0.0.1 at a free port, and the first client is a child process.
//!
//! Run: `cargo run --example manager`; it prints the three lines Python prints.

use std::fmt;

use serde::{Deserialize, Serialize};
use shmpool::connection::Address;
use shmpool::manager::{DictProxy, ListProxy, QueueProxy};
use shmpool::{Manager, StartMethod, get_context};

/// A Python value of the kinds the example uses.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
enum Py {
    Int(i64),
    Str(String),
    Float(f64),
    None,
}

impl fmt::Display for Py {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Py::Int(n) => write!(f, "{n}"),
            Py::Str(s) => write!(f, "'{s}'"),
            Py::Float(x) => write!(f, "{x}"),
            Py::None => write!(f, "None"),
        }
    }
}

/// The child of the first program: Python's `f(d, l)`.
fn f(args: (DictProxy<Py, Py>, ListProxy<i64>)) -> shmpool::Result<()> {
    let (d, l) = args;
    d.set(&Py::Int(1), &Py::Str("1".into()))?;
    d.set(&Py::Str("2".into()), &Py::Int(2))?;
    d.set(&Py::Float(0.25), &Py::None)?;
    // l.reverse(): a snapshot, reversed, written back.
    let mut items = l.snapshot()?;
    items.reverse();
    l.clear()?;
    l.extend(items)
}

/// The first client of the second program: connects by address and key, puts 'hello'.
fn put_hello(args: (String, Vec<u8>)) -> shmpool::Result<()> {
    let m = Manager::connect(&args.0.parse()?, &args.1)?;
    let queue: QueueProxy<String> = m.named("get_queue")?;
    queue.put(&"hello".to_string())
}

fn main() -> shmpool::Result<()> {
    // 1. A dict and a list shared with a child.
    let manager = Manager::start()?;
    let d = manager.dict::<Py, Py>()?;
    let l = manager.list::<i64>()?;
    l.extend(0..10)?;
    let mut p = get_context(StartMethod::Spawn).start(f, (d.clone(), l.clone()))?;
    assert!(p.join()?.success());
    let items: Vec<String> = d.items()?.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    println!("{{{}}}", items.join(", "));
    println!("{:?}", l.snapshot()?);
    manager.shutdown()?;

    // 2. A remote queue: served on TCP, reached by address and key alone.
    let server =
        Manager::builder().address(Address::localhost(0)).authkey(b"abracadabra").start()?;
    let args = (server.address().to_string(), b"abracadabra".to_vec());
    let mut client = get_context(StartMethod::Spawn).start(put_hello, args)?;
    assert!(client.join()?.success());
    let other = Manager::connect(server.address(), b"abracadabra")?;
    let queue: QueueProxy<String> = other.named("get_queue")?;
    println!("'{}'", queue.get()?);
    drop(other);
    server.shutdown()?;
    shmpool::process::shutdown_forkserver()?;
    Ok(())
}
