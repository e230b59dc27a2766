//! The C/OpenMP reference of the reduce bench: `openmp.c` (beside this file) built at run time
//! with `$CC` (default `gcc`) `-O3 -march=native -ffast-math -fopenmp -shared -fPIC` into the
//! bench's target scratch directory, and loaded with `dlopen` ([`libloading`]). Built at run
//! time, not by a build script, so `cargo build` and clippy need neither a C compiler nor
//! OpenMP: where either is missing, [`OpenMp::load`] says why and the bench skips the C rows.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use libloading::{Library, Symbol};

/// The C source.
const SOURCE: &str = include_str!("openmp.c");

type SumFn = unsafe extern "C" fn(*const f64, i64, i64, i32) -> f64;
type DotFn = unsafe extern "C" fn(*const f64, *const f64, i64, i64, i32) -> f64;
type ReadFn = unsafe extern "C" fn(*const f64, *const f64, i64, i64, i32) -> u64;

/// How long the compiler may take: a hung one is killed and the C rows skipped, not the bench
/// hung.
const COMPILE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `cmd` to its end or [`COMPILE_TIMEOUT`], its output in `dir`'s `NAME-PID.out` (removed
/// after): whether it succeeded, and what it printed.
fn bounded(cmd: &mut Command, dir: &Path, name: &str) -> Result<(bool, String), String> {
    let out = dir.join(format!("reduce_openmp-{name}-{}.out", std::process::id()));
    let run = crate::bounded::run_bounded(cmd, &out, COMPILE_TIMEOUT);
    let _ = std::fs::remove_file(&out);
    run.map(|(status, printed)| (status.success(), printed))
}

/// The loaded library and its three functions.
pub struct OpenMp {
    sum: SumFn,
    dot: DotFn,
    read: ReadFn,
    /// The compiler's first `--version` line, for the bench's header.
    pub compiler: String,
    /// Keeps the functions' code mapped (declared last: dropped after them).
    _lib: Library,
}

impl OpenMp {
    /// Builds `openmp.c` and loads it, or says why it could not.
    pub fn load() -> Result<OpenMp, String> {
        let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".to_string());
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let (_, version) = bounded(Command::new(&cc).arg("--version"), &dir, "cc-version")
            .map_err(|e| format!("{cc}: {e}; install gcc or set CC"))?;
        let compiler = version.lines().next().unwrap_or(&cc).to_string();
        // Files of this process only: two bench runs at once never read each other's
        // half-written source or library.
        let src = dir.join(format!("reduce_openmp-{}.c", std::process::id()));
        let lib = src.with_extension("so");
        std::fs::write(&src, SOURCE).map_err(|e| format!("cannot write {}: {e}", src.display()))?;
        let mut build = Command::new(&cc);
        build
            .args(["-O3", "-march=native", "-ffast-math", "-fopenmp", "-shared", "-fPIC", "-o"])
            .arg(&lib)
            .arg(&src);
        let out = bounded(&mut build, &dir, "cc-build");
        let _ = std::fs::remove_file(&src);
        let (ok, err) = out.map_err(|e| format!("{cc}: {e}"))?;
        if !ok {
            let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
            return Err(format!(
                "{cc} could not build it ({last}); install libgomp (gcc's OpenMP)"
            ));
        }
        // SAFETY: loading runs the library's and libgomp's initialisers, which only set up
        // OpenMP's state; the file is the one just built from `SOURCE`.
        let loaded = unsafe { Library::new(&lib) };
        // Unlinked once loaded (or not): the mapping stays, the directory stays clean.
        let _ = std::fs::remove_file(&lib);
        let loaded = loaded.map_err(|e| format!("cannot load it ({e}); install libgomp"))?;
        // SAFETY: the symbols are the functions of `openmp.c`, whose C signatures the three
        // types spell (`long` is `i64`, `int` `i32`, `uint64_t` `u64` on x86-64 Linux).
        let (sum, dot, read) = unsafe {
            let sum: Symbol<SumFn> = loaded.get(b"shmpool_ref_sum\0").map_err(|e| e.to_string())?;
            let dot: Symbol<DotFn> = loaded.get(b"shmpool_ref_dot\0").map_err(|e| e.to_string())?;
            let read: Symbol<ReadFn> =
                loaded.get(b"shmpool_ref_read\0").map_err(|e| e.to_string())?;
            (*sum, *dot, *read)
        };
        Ok(OpenMp { sum, dot, read, compiler, _lib: loaded })
    }

    /// Sum of `a` on `threads` OpenMP threads, `chunk` elements per scheduled chunk.
    pub fn sum(&self, a: &[f64], chunk: usize, threads: usize) -> f64 {
        // SAFETY: `a` is valid for `a.len()` reads for the call; the C code reads only those.
        unsafe { (self.sum)(a.as_ptr(), a.len() as i64, chunk as i64, threads as i32) }
    }

    /// Dot product of `a` and `b` (of `a.len()` elements each).
    pub fn dot(&self, a: &[f64], b: &[f64], chunk: usize, threads: usize) -> f64 {
        assert_eq!(a.len(), b.len());
        // SAFETY: both slices are valid for `a.len()` reads for the call.
        unsafe { (self.dot)(a.as_ptr(), b.as_ptr(), a.len() as i64, chunk as i64, threads as i32) }
    }

    /// The read kernel: OR of every word of `a` and, in the same pass, of `b` if given.
    pub fn read(&self, a: &[f64], b: Option<&[f64]>, chunk: usize, threads: usize) -> u64 {
        let pb = match b {
            Some(b) => {
                assert_eq!(a.len(), b.len());
                b.as_ptr()
            }
            None => std::ptr::null(),
        };
        // SAFETY: `a` (and `b` when not null) are valid for `a.len()` reads for the call.
        unsafe { (self.read)(a.as_ptr(), pb, a.len() as i64, chunk as i64, threads as i32) }
    }
}
