//! The contenders: who runs each workload.

/// Where a contender runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Host {
    /// In the bench process itself (Rust).
    Native,
    /// In the Python child process (`cli/python/bench_contenders.py`).
    Python,
    /// In the C/OpenMP child process (`cli/src/bench/bench_openmp.c`, built by the harness).
    OpenMp,
}

/// One contender. The order of [`Contender::ALL`] is the order of every table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Contender {
    /// A shmpool `Pool` of worker processes.
    Shmpool,
    /// A rayon thread pool of as many threads.
    Rayon,
    /// The same kernel, in one thread: the reference every result is checked against.
    Sequential,
    /// The same kernel in C, `gcc -O3 -march=native -fopenmp`: the hardware's reference.
    COpenMp,
    /// Python `multiprocessing.Pool` over `shared_memory`, NumPy on each chunk in place.
    PythonShm,
    /// Python `multiprocessing.Pool` pickling chunks (or tasks) there and back.
    PythonPool,
    /// NumPy in one Python process.
    Numpy,
    /// joblib's `Parallel` with the loky backend.
    Joblib,
    /// pebble's `ProcessPool`.
    Pebble,
}

impl Contender {
    /// Every contender, in table order.
    pub(crate) const ALL: [Contender; 9] = [
        Contender::Shmpool,
        Contender::Rayon,
        Contender::Sequential,
        Contender::COpenMp,
        Contender::PythonShm,
        Contender::PythonPool,
        Contender::Numpy,
        Contender::Joblib,
        Contender::Pebble,
    ];

    /// The name used by `--contenders`, the tables and the JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Contender::Shmpool => "shmpool",
            Contender::Rayon => "rayon",
            Contender::Sequential => "sequential",
            Contender::COpenMp => "c-openmp",
            Contender::PythonShm => "python-shm",
            Contender::PythonPool => "python-pool",
            Contender::Numpy => "numpy",
            Contender::Joblib => "joblib",
            Contender::Pebble => "pebble",
        }
    }

    /// The contender called `name`, if any.
    pub(crate) fn from_name(name: &str) -> Option<Contender> {
        Contender::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Where it runs.
    pub(crate) fn host(self) -> Host {
        match self {
            Contender::Shmpool | Contender::Rayon | Contender::Sequential => Host::Native,
            Contender::COpenMp => Host::OpenMp,
            _ => Host::Python,
        }
    }

    /// One line for `--list`.
    pub(crate) fn about(self) -> &'static str {
        match self {
            Contender::Shmpool => "shmpool Pool of W worker processes",
            Contender::Rayon => "rayon thread pool of W threads",
            Contender::Sequential => "the same Rust kernel in one thread (the reference)",
            Contender::COpenMp => "the kernel in C, gcc -O3 -march=native -fopenmp, W threads",
            Contender::PythonShm => "Python Pool(W) over shared_memory, NumPy per chunk in place",
            Contender::PythonPool => {
                "Python Pool(W), chunks or tasks pickled there and back (queue: a Queue and a Process)"
            }
            Contender::Numpy => "NumPy in one Python process",
            Contender::Joblib => "joblib Parallel(n_jobs=W), loky backend",
            Contender::Pebble => "pebble ProcessPool(max_workers=W)",
        }
    }
}
