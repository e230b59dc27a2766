//! Objects found by name ([`Manager::named`](super::Manager::named)): what a process that
//! knows only the manager's address and key uses to reach the objects others share (Python's
//! `BaseManager.register("get_queue", callable=lambda: queue)`).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::custom::{CustomProxy, Managed};
use super::dict::DictProxy;
use super::event::EventProxy;
use super::list::ListProxy;
use super::lock::{LockProxy, Plain, Reentrant};
use super::queue::QueueProxy;
use super::session::Object;
use super::wire::Kind;

pub(crate) mod sealed {
    use super::{Kind, Object};

    /// How a proxy type names its kind and wraps an object; only this crate's proxies have it.
    pub trait Sealed: Sized {
        /// The kind made for the first asker.
        #[allow(private_interfaces)]
        fn kind() -> Kind;
        /// The proxy over `obj`.
        #[allow(private_interfaces)]
        fn wrap(obj: Object) -> Self;
    }
}

/// A proxy type [`Manager::named`](super::Manager::named) can find or make by name: dicts,
/// lists, unbounded queues, locks, reentrant locks, events and custom types (values and
/// semaphores need an initial state: share them through a named dict, or as arguments).
///
/// ```
/// use shmpool::manager::QueueProxy;
/// let m = shmpool::Manager::start()?;
/// let a: QueueProxy<u32> = m.named("jobs")?;
/// let b: QueueProxy<u32> = m.named("jobs")?; // the same queue
/// a.put(&1)?;
/// assert_eq!(b.get()?, 1);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub trait Named: sealed::Sealed {}

macro_rules! named {
    ([$($g:tt)*] $ty:ty, $kind:expr) => {
        impl<$($g)*> sealed::Sealed for $ty {
            #[allow(private_interfaces)]
            fn kind() -> Kind {
                $kind
            }
            #[allow(private_interfaces)]
            fn wrap(obj: Object) -> Self {
                <$ty>::new(obj)
            }
        }
        impl<$($g)*> Named for $ty {}
    };
}

named!([K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned] DictProxy<K, V>, Kind::Dict);
named!([T: Serialize + DeserializeOwned] ListProxy<T>, Kind::List);
named!([T: Serialize + DeserializeOwned] QueueProxy<T>, Kind::Queue { maxsize: 0 });
named!([] LockProxy<Plain>, Kind::Lock);
named!([] LockProxy<Reentrant>, Kind::RLock);
named!([] EventProxy, Kind::Event);
named!([T: Managed] CustomProxy<T>, Kind::Custom(T::NAME.to_string()));
