//! `Manager` and `ManagerBuilder`: start a server process (or connect to a running one) and
//! make the objects it holds, returning proxies.

use std::fmt;
use std::marker::PhantomData;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::array::ArrayProxy;
use super::barrier::BarrierProxy;
use super::condition::ConditionProxy;
use super::custom::{CustomProxy, Managed, Registry};
use super::dict::DictProxy;
use super::event::EventProxy;
use super::list::ListProxy;
use super::lock::{LockProxy, RLockProxy};
use super::named::Named;
use super::queue::QueueProxy;
use super::semaphore::SemaphoreProxy;
use super::server::{ServerConfig, serve};
use super::session::{self, DEFAULT_CALL_TIMEOUT, Object, Remote, encode, unexpected};
use super::value::ValueProxy;
use super::wire::{Kind, Reply, Request};
use crate::connection::Address;
use crate::error::{Error, Result};
use crate::process::{Process, StartMethod, get_context};
use crate::queue::MessageQueue;
use crate::sys;

/// How long a new server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a server may take to stop when asked, before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Python's `Manager()`: a server process holding objects (dicts, lists, values, queues,
/// locks, events, semaphores, and custom types) that other processes reach through proxies,
/// over a Unix socket or TCP, after proving they hold its `authkey`.
///
/// [`Manager::start`] starts a server that dies with this process (however it dies) and is
/// stopped when the `Manager` is dropped; [`Manager::connect`] reaches a running one by
/// address and key. Each proxy is `Clone` and serde (it carries the address and key), so it can
/// be a `Process` argument under every start method. Requests and replies are typed and
/// encoded with postcard: nothing received is ever run. See `docs/manager.md`.
///
/// ```
/// fn work(d: shmpool::manager::DictProxy<u32, String>) -> shmpool::Result<()> {
///     d.set(&1, &"from a child".to_string())
/// }
/// let m = shmpool::Manager::start()?;
/// let d = m.dict::<u32, String>()?;
/// let mut p = shmpool::get_context(shmpool::StartMethod::Spawn).start(work, d.clone())?;
/// assert!(p.join()?.success());
/// assert_eq!(d.get(&1)?.as_deref(), Some("from a child"));
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct Manager {
    remote: Remote,
    timeout: Duration,
    server: Option<Process>,
    /// The private directory holding the default Unix socket.
    dir: Option<PathBuf>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("address", &self.remote.address)
            .field("server_pid", &self.server_pid())
            .finish_non_exhaustive()
    }
}

/// Options for a [`Manager`]'s server, and the custom types it holds (`R`, built by
/// [`register`](ManagerBuilder::register)).
///
/// ```
/// let m = shmpool::Manager::builder()
///     .address("127.0.0.1:0".parse()?)
///     .authkey(b"a long random key")
///     .start_method(shmpool::StartMethod::Spawn)
///     .call_timeout(std::time::Duration::from_secs(5))
///     .start()?;
/// # Ok::<(), shmpool::Error>(())
/// ```
#[must_use = "a builder does nothing until start()"]
pub struct ManagerBuilder<R = ()> {
    address: Option<Address>,
    authkey: Option<Vec<u8>>,
    method: Option<StartMethod>,
    timeout: Duration,
    max_connections: usize,
    handshake_timeout: Duration,
    _r: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for ManagerBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("address", &self.address)
            .field("start_method", &self.method)
            .field("call_timeout", &self.timeout)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl<R: Registry> ManagerBuilder<R> {
    /// Where the server listens (default: a Unix socket in a new private directory, mode
    /// 0700, under the temporary directory). TCP port 0 picks a free port;
    /// [`Manager::address`] tells which.
    ///
    /// ```
    /// let b = shmpool::Manager::builder().address(shmpool::connection::Address::localhost(0));
    /// # let _ = b;
    /// ```
    pub fn address(mut self, address: Address) -> Self {
        self.address = Some(address);
        self
    }

    /// The key clients must prove they hold (default: 32 random bytes; read it back with
    /// [`Manager::authkey`] to give to other processes).
    ///
    /// ```
    /// let b = shmpool::Manager::builder().authkey(b"shared secret");
    /// # let _ = b;
    /// ```
    pub fn authkey(mut self, key: &[u8]) -> Self {
        self.authkey = Some(key.to_vec());
        self
    }

    /// The start method of the server process (default: the process-wide default,
    /// [`get_start_method`](crate::get_start_method)).
    ///
    /// ```
    /// let b = shmpool::Manager::builder().start_method(shmpool::StartMethod::ForkServer);
    /// # let _ = b;
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// The limit on each proxy call, beyond any wait the call asks for (default
    /// [`DEFAULT_CALL_TIMEOUT`]); each proxy can change its own with `with_timeout`.
    ///
    /// ```
    /// let b = shmpool::Manager::builder().call_timeout(std::time::Duration::from_secs(2));
    /// # let _ = b;
    /// ```
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most connections the server serves at once (default 256); one more is closed
    /// before its handshake. Each thread of each process using the manager holds one.
    ///
    /// ```
    /// let b = shmpool::Manager::builder().max_connections(16);
    /// # let _ = b;
    /// ```
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Registers the custom type `T` ([`Managed`]): [`Manager::custom::<T>`](Manager::custom)
    /// then makes one on the server (Python's `BaseManager.register`).
    ///
    /// ```
    /// #[derive(Default)]
    /// struct Tally(u64);
    /// impl shmpool::manager::Managed for Tally {
    ///     const NAME: &'static str = "Tally";
    ///     type Request = u64;
    ///     type Reply = u64;
    ///     fn handle(&mut self, n: u64) -> u64 { self.0 += n; self.0 }
    /// }
    /// let m = shmpool::Manager::builder().register::<Tally>().start()?;
    /// assert_eq!(m.custom::<Tally>()?.call(5)?, 5);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn register<T: Managed>(self) -> ManagerBuilder<(T, R)> {
        ManagerBuilder {
            address: self.address,
            authkey: self.authkey,
            method: self.method,
            timeout: self.timeout,
            max_connections: self.max_connections,
            handshake_timeout: self.handshake_timeout,
            _r: PhantomData,
        }
    }

    /// Starts the server process and waits until it listens.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an empty key or two custom types of one name; the start
    /// method's errors; [`Error::ManagerGone`] when the server could not listen (the address is
    /// taken, say) or died starting; [`Error::Timeout`] when it did not listen within 20 s.
    ///
    /// ```
    /// let m = shmpool::Manager::builder().start()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn start(self) -> Result<Manager> {
        let mut names = R::names();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::InvalidArgument {
                what: "custom managed types",
                reason: format!("two types are registered as {:?}; give each its own NAME", w[0]),
            });
        }
        let authkey = match self.authkey {
            Some(k) if k.is_empty() => {
                return Err(Error::InvalidArgument {
                    what: "authkey",
                    reason: "an empty key authenticates nobody; use at least 16 random bytes"
                        .into(),
                });
            }
            Some(k) => k,
            None => (0..4).flat_map(|_| sys::proc::random_u64().to_le_bytes()).collect(),
        };
        let (address, dir) = match self.address {
            Some(a) => (a, None),
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "shmpool-manager-{}-{:016x}",
                    sys::proc::getpid(),
                    sys::proc::random_u64()
                ));
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&dir)
                    .map_err(Error::io("creating the manager's socket directory"))?;
                (Address::Unix(dir.join("socket")), Some(dir))
            }
        };
        let cleanup = |dir: &Option<PathBuf>| {
            if let Some(d) = dir {
                let _ = std::fs::remove_dir_all(d);
            }
        };
        let instance = sys::proc::random_u64();
        let ready = MessageQueue::new().inspect_err(|_| cleanup(&dir))?;
        let cfg = ServerConfig {
            address: address.clone(),
            authkey: authkey.clone(),
            instance,
            max_connections: self.max_connections,
            handshake_timeout: self.handshake_timeout,
            ready: ready.clone(),
        };
        let ctx = self.method.map(get_context).unwrap_or_default();
        let started = ctx.process().name("shmpool-manager").daemon(true).start(serve::<R>, cfg);
        let mut server = started.inspect_err(|_| cleanup(&dir))?;
        let bound = wait_ready(&ready, &mut server, &address).inspect_err(|_| {
            let _ = server.kill();
            let _ = server.join();
            cleanup(&dir);
        })?;
        Ok(Manager {
            remote: Remote { address: bound, authkey, instance },
            timeout: self.timeout,
            server: Some(server),
            dir,
        })
    }
}

/// Waits for the server's report: the address it bound.
fn wait_ready(ready: &MessageQueue, server: &mut Process, address: &Address) -> Result<Address> {
    let start = Instant::now();
    let gone = |reason: String| Error::ManagerGone { address: address.to_string(), reason };
    loop {
        match ready.get_timeout::<std::result::Result<Address, String>>(Duration::from_millis(50)) {
            Ok(Ok(bound)) => return Ok(bound),
            Ok(Err(why)) => return Err(gone(format!("its server could not listen: {why}"))),
            Err(_) => {}
        }
        if !server.is_alive() {
            return Err(gone("its server exited while starting".into()));
        }
        if start.elapsed() > START_TIMEOUT {
            return Err(Error::Timeout { what: "manager server start", after: START_TIMEOUT });
        }
    }
}

impl Manager {
    /// Starts a server with the defaults: a Unix socket in a private directory, a random key,
    /// the default start method (Python's `Manager()`). See [`Manager::builder`].
    ///
    /// ```
    /// let m = shmpool::Manager::start()?;
    /// let l = m.list::<u8>()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn start() -> Result<Manager> {
        Manager::builder().start()
    }

    /// A builder for a server: address, key, start method, timeouts, custom types.
    ///
    /// ```
    /// let m = shmpool::Manager::builder().address("127.0.0.1:0".parse()?).start()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn builder() -> ManagerBuilder<()> {
        ManagerBuilder {
            address: None,
            authkey: None,
            method: None,
            timeout: DEFAULT_CALL_TIMEOUT,
            max_connections: 256,
            handshake_timeout: crate::connection::DEFAULT_HANDSHAKE_TIMEOUT,
            _r: PhantomData,
        }
    }

    /// Connects to a running manager's server from a process that knows only its address and
    /// key (Python's `BaseManager(address, authkey).connect()`). Dropping the result leaves the
    /// server running.
    ///
    /// # Errors
    ///
    /// [`Error::AuthenticationFailed`] for a wrong key; [`Error::Io`] when nothing listens
    /// there.
    ///
    /// ```
    /// let m = shmpool::Manager::builder().address("127.0.0.1:0".parse()?).start()?;
    /// let remote = shmpool::Manager::connect(m.address(), m.authkey())?;
    /// let q = remote.queue::<u8>()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn connect(address: &Address, authkey: &[u8]) -> Result<Manager> {
        let remote = session::hello(address, authkey, DEFAULT_CALL_TIMEOUT)?;
        Ok(Manager { remote, timeout: DEFAULT_CALL_TIMEOUT, server: None, dir: None })
    }

    /// The address the server listens on.
    ///
    /// ```
    /// let m = shmpool::Manager::start()?;
    /// assert!(m.address().is_unix());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn address(&self) -> &Address {
        &self.remote.address
    }

    /// The key clients prove they hold.
    ///
    /// ```
    /// let m = shmpool::Manager::start()?;
    /// assert_eq!(m.authkey().len(), 32);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn authkey(&self) -> &[u8] {
        &self.remote.authkey
    }

    /// The server's pid, when this `Manager` started it.
    ///
    /// ```
    /// let m = shmpool::Manager::start()?;
    /// assert!(m.server_pid().is_some());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(Process::pid)
    }

    fn create(&self, kind: Kind) -> Result<Object> {
        match session::call(&self.remote, &Request::Create(kind), None, self.timeout)? {
            Reply::Id(id) => Ok(Object { remote: self.remote.clone(), id, timeout: self.timeout }),
            r => Err(unexpected(r)),
        }
    }

    /// A new, empty dict on the server (Python's `manager.dict()`).
    ///
    /// ```no_run
    /// let d = shmpool::Manager::start()?.dict::<String, f64>()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn dict<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned>(
        &self,
    ) -> Result<DictProxy<K, V>> {
        Ok(DictProxy::new(self.create(Kind::Dict)?))
    }

    /// A new, empty dict whose table lives in shared memory (the fast path): proxies on the
    /// server's machine read and write it directly, under its robust lock, with no round trip
    /// to the server (about a microsecond a call instead of tens); remote proxies go through
    /// the server, which uses the same table. It holds up to `keys` keys and `bytes` bytes of
    /// encoded keys and values, reserved now; a set beyond that is refused
    /// ([`Error::ManagerRefused`](crate::Error::ManagerRefused)). See `docs/manager.md`, "Fast
    /// path".
    ///
    /// ```
    /// let m = shmpool::Manager::start()?;
    /// let d = m.dict_with_capacity::<u64, String>(1000, 1 << 20)?;
    /// d.set(&1, &"one".to_string())?; // in shared memory, no round trip
    /// assert_eq!(d.get(&1)?.as_deref(), Some("one"));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn dict_with_capacity<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned>(
        &self,
        keys: u64,
        bytes: u64,
    ) -> Result<DictProxy<K, V>> {
        Ok(DictProxy::new(self.create(Kind::SharedDict { keys, bytes })?))
    }

    /// A new, empty queue that is a ring of `capacity` bytes in shared memory (the fast path):
    /// proxies on the server's machine put and get directly, waking each other through the
    /// ring's futexes, with no round trip to the server; remote proxies go through the server,
    /// which uses the same ring. Items are at most `max_item` bytes encoded (`capacity` must be
    /// at least `max_item + 12`); a put waits while the ring is full. A proxy's wait checks
    /// every 50 ms that the server is alive, so a killed server ends it with
    /// [`Error::ManagerGone`](crate::Error::ManagerGone).
    ///
    /// ```
    /// let m = shmpool::Manager::start()?;
    /// let q = m.queue_with_capacity::<String>(1 << 16, 1024)?;
    /// q.put(&"job".to_string())?; // in shared memory, no round trip
    /// assert_eq!(q.get()?, "job");
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn queue_with_capacity<T: Serialize + DeserializeOwned>(
        &self,
        capacity: usize,
        max_item: usize,
    ) -> Result<QueueProxy<T>> {
        let kind = Kind::SharedQueue { capacity: capacity as u64, max_item: max_item as u64 };
        Ok(QueueProxy::new(self.create(kind)?))
    }

    /// A new condition variable on the server, with its own reentrant lock (Python's
    /// `manager.Condition()`).
    ///
    /// ```no_run
    /// let c = shmpool::Manager::start()?.condition()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn condition(&self) -> Result<ConditionProxy> {
        Ok(ConditionProxy::new(self.create(Kind::Condition)?))
    }

    /// A new barrier for `parties` parties on the server (Python's `manager.Barrier(parties)`;
    /// a party's timeout is its [`wait_timeout`](BarrierProxy::wait_timeout)).
    ///
    /// ```no_run
    /// let b = shmpool::Manager::start()?.barrier(4)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn barrier(&self, parties: u64) -> Result<BarrierProxy> {
        Ok(BarrierProxy::new(self.create(Kind::Barrier(parties))?))
    }

    /// A new array of `len` zeroed elements of `T` on the server, in shared memory that proxies
    /// on the server's machine map (Python's `manager.Array(typecode, [0] * len)`; see
    /// [`ArrayProxy`]).
    ///
    /// ```no_run
    /// let a = shmpool::Manager::start()?.array::<f64>(1 << 20)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a zero-sized `T` or a size
    /// that does not fit in memory; the server's refusal if it cannot make the segment.
    pub fn array<T: bytemuck::Pod>(&self, len: usize) -> Result<ArrayProxy<T>> {
        let bytes = len.checked_mul(size_of::<T>()).filter(|_| size_of::<T>() > 0);
        let bytes = bytes.ok_or_else(|| crate::Error::InvalidArgument {
            what: "manager array",
            reason: format!(
                "{len} elements of {} bytes: the element type must have a size, and the array \
                 must fit in memory",
                size_of::<T>()
            ),
        })?;
        Ok(ArrayProxy::new(self.create(Kind::Array(bytes as u64))?))
    }

    /// A new array on the server holding `values` (Python's `manager.Array(typecode, values)`).
    ///
    /// ```no_run
    /// let a = shmpool::Manager::start()?.array_from(&[1u32, 2, 3])?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn array_from<T: bytemuck::Pod>(&self, values: &[T]) -> Result<ArrayProxy<T>> {
        let a = self.array::<T>(values.len())?;
        a.set_slice(0, values)?;
        Ok(a)
    }

    /// A new, empty list on the server (Python's `manager.list()`).
    ///
    /// ```no_run
    /// let l = shmpool::Manager::start()?.list::<String>()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn list<T: Serialize + DeserializeOwned>(&self) -> Result<ListProxy<T>> {
        Ok(ListProxy::new(self.create(Kind::List)?))
    }

    /// A new value on the server, starting as `initial` (Python's `manager.Value`; a struct of
    /// your own here is Python's `manager.Namespace()`, typed).
    ///
    /// ```no_run
    /// let v = shmpool::Manager::start()?.value(&0.5f64)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn value<T: Serialize + DeserializeOwned>(&self, initial: &T) -> Result<ValueProxy<T>> {
        Ok(ValueProxy::new(self.create(Kind::Value(encode(initial)?))?))
    }

    /// A new unbounded queue on the server (Python's `manager.Queue()`).
    ///
    /// ```no_run
    /// let q = shmpool::Manager::start()?.queue::<Vec<u8>>()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn queue<T: Serialize + DeserializeOwned>(&self) -> Result<QueueProxy<T>> {
        Ok(QueueProxy::new(self.create(Kind::Queue { maxsize: 0 })?))
    }

    /// A new queue on the server holding at most `maxsize` items (at least 1; Python's
    /// `manager.Queue(maxsize)`).
    ///
    /// ```no_run
    /// let q = shmpool::Manager::start()?.bounded_queue::<u32>(8)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn bounded_queue<T: Serialize + DeserializeOwned>(
        &self,
        maxsize: usize,
    ) -> Result<QueueProxy<T>> {
        if maxsize == 0 {
            return Err(Error::InvalidArgument {
                what: "queue size",
                reason: "a bounded queue holds at least 1 item; use queue() for no bound".into(),
            });
        }
        Ok(QueueProxy::new(self.create(Kind::Queue { maxsize: maxsize as u64 })?))
    }

    /// A new lock on the server (Python's `manager.Lock()`).
    ///
    /// ```no_run
    /// let l = shmpool::Manager::start()?.lock()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn lock(&self) -> Result<LockProxy> {
        Ok(LockProxy::new(self.create(Kind::Lock)?))
    }

    /// A new reentrant lock on the server (Python's `manager.RLock()`).
    ///
    /// ```no_run
    /// let r = shmpool::Manager::start()?.rlock()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn rlock(&self) -> Result<RLockProxy> {
        Ok(RLockProxy::new(self.create(Kind::RLock)?))
    }

    /// A new event on the server, not set (Python's `manager.Event()`).
    ///
    /// ```no_run
    /// let e = shmpool::Manager::start()?.event()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn event(&self) -> Result<EventProxy> {
        Ok(EventProxy::new(self.create(Kind::Event)?))
    }

    /// A new semaphore on the server with `value` units (Python's `manager.Semaphore(value)`).
    ///
    /// ```no_run
    /// let s = shmpool::Manager::start()?.semaphore(4)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn semaphore(&self, value: u64) -> Result<SemaphoreProxy> {
        Ok(SemaphoreProxy::new(self.create(Kind::Semaphore(value))?))
    }

    /// A new custom object of type `T`, made with `T::default()` on the server.
    ///
    /// # Errors
    ///
    /// [`Error::ManagerRefused`] when `T` was not registered on the builder that started the
    /// server.
    ///
    /// ```no_run
    /// # #[derive(Default)] struct Tally(u64);
    /// # impl shmpool::manager::Managed for Tally {
    /// #     const NAME: &'static str = "Tally"; type Request = u64; type Reply = u64;
    /// #     fn handle(&mut self, n: u64) -> u64 { self.0 += n; self.0 }
    /// # }
    /// let m = shmpool::Manager::builder().register::<Tally>().start()?;
    /// let t = m.custom::<Tally>()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn custom<T: Managed>(&self) -> Result<CustomProxy<T>> {
        Ok(CustomProxy::new(self.create(Kind::Custom(T::NAME.to_string()))?))
    }

    /// The object named `name` on the server, made by the first process to ask for it: how
    /// processes that know only the address and key find the objects they share (Python's
    /// `BaseManager.register("get_queue", ...)`). The type says the kind: a
    /// [`DictProxy`], [`ListProxy`], [`QueueProxy`], [`LockProxy`], [`RLockProxy`],
    /// [`EventProxy`] or [`CustomProxy`].
    ///
    /// # Errors
    ///
    /// [`Error::ManagerRefused`] when the name holds an object of another kind.
    ///
    /// ```
    /// let m = shmpool::Manager::start()?;
    /// let results: shmpool::manager::DictProxy<String, f64> = m.named("results")?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn named<P: Named>(&self, name: &str) -> Result<P> {
        let req = Request::Named { name: name.to_string(), kind: P::kind() };
        match session::call(&self.remote, &req, None, self.timeout)? {
            Reply::Id(id) => {
                Ok(P::wrap(Object { remote: self.remote.clone(), id, timeout: self.timeout }))
            }
            r => Err(unexpected(r)),
        }
    }

    /// Stops the server this `Manager` started (asking, then killing it after 5 s) and waits
    /// for it; a `Manager` from [`connect`](Manager::connect) only lets go. Dropping does the
    /// same. Every proxy then fails with [`Error::ManagerGone`].
    ///
    /// ```
    /// let m = shmpool::Manager::start()?;
    /// let d = m.dict::<u8, u8>()?;
    /// m.shutdown()?;
    /// assert!(matches!(d.len(), Err(shmpool::Error::ManagerGone { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn shutdown(mut self) -> Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> Result<()> {
        let result = match self.server.take() {
            None => Ok(()),
            Some(mut server) => {
                let _ = session::call(&self.remote, &Request::Shutdown, None, STOP_TIMEOUT);
                session::forget(&self.remote);
                super::shared::forget(self.remote.instance);
                match server.join_timeout(STOP_TIMEOUT) {
                    Ok(Some(_)) => Ok(()),
                    _ => {
                        let _ = server.kill();
                        server.join().map(|_| ())
                    }
                }
            }
        };
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
        result
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
