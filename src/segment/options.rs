//! How a new segment is created: anonymous or named, pre-faulted or not.

/// How a segment is named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Naming {
    /// A memfd: no name, nothing to leak.
    #[default]
    Anonymous,
    /// A POSIX shm name, generated: `shmpool-<pid>-<random>`.
    Generated,
    /// A POSIX shm name given by the user (validated, leading '/' optional).
    Given(String),
}

/// Options for creating any shared object: arrays, values, locks, queues.
///
/// The default is an anonymous segment (memfd), which is what forked children and pool workers
/// need: it has no name, so nothing can leak or be opened by a stranger. Ask for a name only when
/// an unrelated process (a Python program, say) must attach to it.
///
/// ```
/// use shmpool::{ShmOptions, SharedArray};
///
/// let opts = ShmOptions::new().generated_name().populate(true);
/// let a = SharedArray::<f32>::zeroed_with(1024, &opts)?;
/// assert!(a.name().unwrap().starts_with("shmpool-"));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ShmOptions {
    pub(crate) naming: Naming,
    pub(crate) populate: bool,
}

impl ShmOptions {
    /// Anonymous, not pre-faulted.
    pub fn new() -> ShmOptions {
        ShmOptions::default()
    }

    /// An anonymous segment (memfd), the default.
    pub fn anonymous(mut self) -> ShmOptions {
        self.naming = Naming::Anonymous;
        self
    }

    /// A named segment with an unpredictable generated name (`shmpool-<pid>-<random>`).
    pub fn generated_name(mut self) -> ShmOptions {
        self.naming = Naming::Generated;
        self
    }

    /// A named segment with this name (a leading '/' is optional). Creating fails with
    /// [`Error::AlreadyExists`](crate::Error::AlreadyExists) if the name is taken.
    pub fn named(mut self, name: impl Into<String>) -> ShmOptions {
        self.naming = Naming::Given(name.into());
        self
    }

    /// Map every page at creation (`MAP_POPULATE`), paying first-touch costs up front.
    pub fn populate(mut self, yes: bool) -> ShmOptions {
        self.populate = yes;
        self
    }
}
