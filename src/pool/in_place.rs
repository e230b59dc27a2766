//! [`InPlace`]: the argument types a task reads where the parent put them, in the pool's
//! shared memory, without deserializing or allocating (`Pool::map_ref`): `str`, `Path` and
//! slices of `Pod` values (`[u8]` among them).
//!
//! The parent copies each argument's bytes into the job's argument region (the offsets table
//! of [`codec`](super::codec), then the bytes, back to back: no postcard, no length prefix);
//! the worker hands the task a reference into that region. The task is a `fn(&B) -> R`, a
//! higher-ranked `for<'a> fn(&'a B) -> R`, so its result cannot hold the borrow: nothing of the
//! region outlives the call.

use std::path::Path;

/// An argument type a task can borrow in place from shared memory: `str`,
/// [`Path`](std::path::Path), and `[T]` for any `Pod` `T` aligned to at most 8 bytes (`[u8]`,
/// `[f64]`, ...; a more aligned or zero-sized `T` is refused when the call is made). The
/// task takes `&B` (`fn(&str) -> usize`), the caller passes anything that is `AsRef<B>`
/// (`String`, `&str`, `PathBuf`, `Vec<u8>`, `Vec<f64>`), and no worker allocates to read it.
/// Sealed: the pool relies on how each type's bytes are checked.
///
/// ```no_run
/// let mut pool = shmpool::Pool::new(2)?;
/// let names = vec!["a.txt".to_string(), "bb.txt".to_string()];
/// assert_eq!(pool.map_ref(|s: &str| s.len(), &names, None)?, [5, 6]);
/// let rows = vec![vec![1.0f64, 2.0], vec![3.0]];
/// assert_eq!(pool.map_ref(|r: &[f64]| r.iter().sum::<f64>(), &rows, None)?, [3.0, 3.0]);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub trait InPlace: sealed::Raw {}

pub(crate) mod sealed {
    use std::ops::Range;

    /// How an [`InPlace`](super::InPlace) type goes into and comes out of an argument region.
    /// A worker checks a chunk's arguments once, as one run of bytes ([`run`](Raw::run):
    /// one UTF-8 validation of the chunk's strings, not one per string), then cuts each value
    /// out of the run ([`piece`](Raw::piece)).
    pub trait Raw {
        /// A run of values' bytes, checked.
        type Run<'a>: Copy;

        /// Why values of this type cannot be staged, if they cannot (the fix included).
        fn refused() -> Option<String> {
            None
        }

        /// The bytes the parent copies into the region.
        fn raw(&self) -> &[u8];

        /// The values of a chunk, back to back, checked (UTF-8 for `str`), or why not. The
        /// run starts 8-aligned.
        fn run(bytes: &[u8]) -> Result<Self::Run<'_>, String>;

        /// The value at `range` of `run` (offsets into it), if it is one: not out of the run,
        /// at character boundaries, aligned and a whole number of `Pod` values. Called once
        /// per task, so it says no with `None` and [`why_not`](Raw::why_not) says why.
        fn piece<'a>(run: Self::Run<'a>, range: Range<usize>) -> Option<&'a Self>;

        /// Why [`piece`](Raw::piece) refused `range` of `run`.
        fn why_not(run: Self::Run<'_>, range: Range<usize>) -> String;
    }

    /// A chunk's strings, back to back, checked UTF-8, and whether they are all ASCII.
    #[derive(Clone, Copy)]
    pub struct StrRun<'a> {
        pub(super) s: &'a str,
        pub(super) ascii: bool,
    }

    /// Why `run[range]` is refused when its bytes are not out of it: `refused(bytes)`.
    pub(super) fn bytes_why(
        run: &[u8],
        range: Range<usize>,
        refused: impl FnOnce(&[u8]) -> String,
    ) -> String {
        let len = run.len();
        match run.get(range.clone()) {
            None => format!("bytes {range:?} lie outside its {len}"),
            Some(b) => refused(b),
        }
    }
}

impl InPlace for str {}
impl sealed::Raw for str {
    type Run<'a> = sealed::StrRun<'a>;
    fn raw(&self) -> &[u8] {
        self.as_bytes()
    }
    /// One pass over the chunk: ASCII (file names, keys), where every offset is a character
    /// boundary, or else UTF-8.
    fn run(bytes: &[u8]) -> Result<sealed::StrRun<'_>, String> {
        if bytes.is_ascii() {
            // SAFETY: ASCII bytes are UTF-8.
            let s = unsafe { std::str::from_utf8_unchecked(bytes) };
            return Ok(sealed::StrRun { s, ascii: true });
        }
        let s = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        Ok(sealed::StrRun { s, ascii: false })
    }
    /// In an ASCII run only the bounds are checked: reading the bytes at both ends of every
    /// piece to find character boundaries cost a short task about a third of its time.
    #[inline]
    fn piece<'a>(run: Self::Run<'a>, range: std::ops::Range<usize>) -> Option<&'a str> {
        if run.ascii {
            if range.start > range.end || range.end > run.s.len() {
                return None;
            }
            // SAFETY: `range` lies in `run.s` (checked), whose bytes are all ASCII, so both
            // ends are character boundaries.
            return Some(unsafe { run.s.get_unchecked(range) });
        }
        run.s.get(range)
    }
    fn why_not(run: sealed::StrRun<'_>, range: std::ops::Range<usize>) -> String {
        let len = run.s.len();
        format!("bytes {range:?} of {len} do not start and end at character boundaries")
    }
}

impl InPlace for Path {}
impl sealed::Raw for Path {
    type Run<'a> = &'a [u8];
    fn raw(&self) -> &[u8] {
        use std::os::unix::ffi::OsStrExt;
        self.as_os_str().as_bytes()
    }
    fn run(bytes: &[u8]) -> Result<&[u8], String> {
        Ok(bytes)
    }
    #[inline]
    fn piece<'a>(run: Self::Run<'a>, range: std::ops::Range<usize>) -> Option<&'a Path> {
        use std::os::unix::ffi::OsStrExt;
        Some(Path::new(std::ffi::OsStr::from_bytes(run.get(range)?)))
    }
    fn why_not(run: &[u8], range: std::ops::Range<usize>) -> String {
        sealed::bytes_why(run, range, |_| "any bytes are a path".to_string())
    }
}

impl<T: bytemuck::Pod> InPlace for [T] {}
impl<T: bytemuck::Pod> sealed::Raw for [T] {
    type Run<'a> = &'a [u8];
    fn refused() -> Option<String> {
        let (size, align) = (size_of::<T>(), align_of::<T>());
        if size == 0 {
            return Some(format!(
                "{} is zero-sized, so its slices' lengths cannot travel as bytes; pass the \
                 lengths instead",
                std::any::type_name::<T>()
            ));
        }
        (align > 8).then(|| {
            format!(
                "{} is aligned to {align} bytes, more than the 8 an argument region guarantees; \
                 use map with an owned Vec, or put the data in a SharedArray and pass indices",
                std::any::type_name::<T>()
            )
        })
    }
    fn raw(&self) -> &[u8] {
        bytemuck::cast_slice(self)
    }
    fn run(bytes: &[u8]) -> Result<&[u8], String> {
        Ok(bytes)
    }
    #[inline]
    fn piece<'a>(run: Self::Run<'a>, range: std::ops::Range<usize>) -> Option<&'a [T]> {
        bytemuck::try_cast_slice(run.get(range)?).ok()
    }
    fn why_not(run: &[u8], range: std::ops::Range<usize>) -> String {
        sealed::bytes_why(run, range, |b| match bytemuck::try_cast_slice::<u8, T>(b) {
            Err(e) => format!("{e:?}"),
            Ok(_) => "none".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::sealed::Raw;
    use std::path::Path;

    /// `from_raw` as a worker does it: the run, then the piece.
    fn back<B: Raw + ?Sized>(bytes: &[u8]) -> Result<&B, String> {
        let run = B::run(bytes)?;
        B::piece(run, 0..bytes.len()).ok_or_else(|| B::why_not(run, 0..bytes.len()))
    }

    #[test]
    fn each_type_reads_back_what_it_wrote() {
        assert_eq!(back::<str>("héllo".raw()).unwrap(), "héllo");
        assert!(back::<str>(&[0xff, b'a']).unwrap_err().contains("invalid utf-8"));
        // A run of valid UTF-8 cut inside a character: refused, not an invalid `&str`.
        let run = str::run("é".as_bytes()).unwrap();
        assert!(str::piece(run, 0..1).is_none());
        assert!(str::why_not(run, 0..1).contains("character boundaries"));
        let backwards = std::ops::Range { start: 2, end: 1 };
        assert!(str::piece(run, 0..3).is_none() && str::piece(run, backwards).is_none());
        // An ASCII run: bounds only, the same answers.
        let ascii = str::run(b"abc").unwrap();
        assert_eq!(str::piece(ascii, 1..3), Some("bc"));
        let backwards = std::ops::Range { start: 2, end: 1 };
        assert!(str::piece(ascii, 2..4).is_none() && str::piece(ascii, backwards).is_none());
        assert!(str::piece(ascii, usize::MAX..usize::MAX).is_none());
        assert_eq!(back::<[u8]>(&[1, 2, 255]).unwrap(), [1, 2, 255]);
        let p = Path::new("/tmp/a\u{e9}.csv");
        assert_eq!(back::<Path>(p.raw()).unwrap(), p);
        // Any bytes are a path on Unix, even ones that are not UTF-8.
        assert!(back::<Path>(&[0xff]).is_ok());
        assert!(Path::piece(&[1, 2], 1..3).is_none());
        assert!(Path::why_not(&[1, 2], 1..3).contains("outside"));
        let words = [1u64, u64::MAX];
        let bytes = <[u64]>::raw(&words);
        assert_eq!(back::<[u64]>(bytes).unwrap(), words);
        assert!(back::<[u64]>(&bytes[..12]).is_err(), "not a whole number of values");
        assert!(back::<[u64]>(&bytes[4..12]).is_err(), "misaligned");
        assert!(<[u64]>::refused().is_none());
        assert!(<[()]>::refused().unwrap().contains("zero-sized"));
        #[derive(Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
        #[repr(C, align(16))]
        struct Wide([u8; 16]);
        assert!(<[Wide]>::refused().unwrap().contains("aligned to 16"));
    }
}
