//! The machine a run happened on, and when: printed above the tables and kept in the JSON, so
//! every figure carries its context.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What the figures depend on besides the code.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Machine {
    /// `model name` from /proc/cpuinfo.
    pub(crate) cpu_model: String,
    /// CPUs this process may use (`sched_getaffinity`, limited by a cgroup quota).
    pub(crate) cores_allowed: usize,
    /// CPUs online.
    pub(crate) cpus_online: usize,
    /// `MemTotal` from /proc/meminfo, in bytes.
    pub(crate) memory_bytes: u64,
    /// The kernel release.
    pub(crate) kernel: String,
    /// The 1, 5 and 15 minute load averages when the run started.
    pub(crate) load_average: [f64; 3],
    /// The Python contenders' interpreter version, if it ran.
    pub(crate) python: Option<String>,
    /// NumPy's version, if importable.
    pub(crate) numpy: Option<String>,
    /// The C compiler's version line, if it built the OpenMP contender.
    pub(crate) cc: Option<String>,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Machine {
    /// Describes this machine now (the Python and C versions are filled in by their bridges).
    pub(crate) fn describe() -> Machine {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_string(), |(_, v)| v.trim().to_string());
        let memory_bytes = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024);
        let load = read("/proc/loadavg");
        let mut it = load.split_whitespace().map(|x| x.parse::<f64>().unwrap_or(0.0));
        let load_average = [0; 3].map(|_| it.next().unwrap_or(0.0));
        Machine {
            cpu_model,
            cores_allowed: shmpool::process_cpu_count(),
            cpus_online: shmpool::cpu_count(),
            memory_bytes,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            load_average,
            python: None,
            numpy: None,
            cc: None,
        }
    }

    /// One line, for the terminal and the generated docs.
    pub(crate) fn line(&self) -> String {
        format!(
            "{}, {} cores allowed ({} online), {}, Linux {}, load {:.2} {:.2} {:.2} at start, Python {}, NumPy {}, {}",
            self.cpu_model,
            self.cores_allowed,
            self.cpus_online,
            shmpool::human_bytes(self.memory_bytes),
            self.kernel,
            self.load_average[0],
            self.load_average[1],
            self.load_average[2],
            self.python.as_deref().unwrap_or("absent"),
            self.numpy.as_deref().unwrap_or("absent"),
            self.cc.as_deref().unwrap_or("no C compiler"),
        )
    }
}

/// Now, in UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
