//! Large results as per-rank files plus an index: each rank writes its own rows to its own
//! file (in parallel, no rank holding more than its block), and rank 0 writes, last, a small
//! text index saying which file holds which rows. [`read_parts`] (no MPI needed) reassembles
//! the whole array.
//!
//! The index, `NAME.index`, is written only after every rank's part is complete (a barrier
//! stands between them), so its presence means the parts are whole:
//!
//! ```text
//! shmpool-mpi parts 1
//! shape 100 64
//! elem_size 8
//! part 0 34 NAME.rank00000.bin
//! part 34 33 NAME.rank00001.bin
//! part 67 33 NAME.rank00002.bin
//! ```
//!
//! Each `part FIRST_ROW ROWS FILE` line names a file beside the index holding those rows,
//! row-major, in the machine's byte order.

use std::path::{Path, PathBuf};

use crate::error::DistError;

/// The index's first line.
const MAGIC: &str = "shmpool-mpi parts 1";

/// A whole array read back from its parts: its global shape and its elements, row-major.
///
/// ```
/// let a = shmpool_mpi::parts::Parts::<u8> { shape: vec![2, 2], data: vec![1, 2, 3, 4] };
/// assert_eq!(a.data.len(), a.shape.iter().product::<usize>());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Parts<T> {
    /// The global shape, outer axis first.
    pub shape: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<T>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DistError + '_ {
    move |source| DistError::Io { path: path.to_path_buf(), source }
}

fn bad(path: &Path, reason: impl Into<String>) -> DistError {
    DistError::BadIndex { path: path.to_path_buf(), reason: reason.into() }
}

/// The contents of `path` when it is a regular file of exactly `want` bytes, `None` when it is
/// not: reads at most `want + 1` bytes, so a part that is a device (`/dev/zero` behind a
/// symlink), a FIFO or a huge file costs neither memory nor a wait.
fn read_exactly(path: &Path, want: usize) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    // Not `open` first: opening a FIFO waits for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Ok(None);
    }
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(want as u64 + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() == want).then_some(bytes))
}

/// Whether `name` can name part files in a directory: not empty, not `.` or `..`, only ASCII
/// letters, digits, `.`, `-` and `_` (so no path separator and nothing the index's
/// whitespace-separated lines cannot carry).
#[cfg(any(feature = "mpi", test))]
pub(crate) fn is_part_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Reads the whole array that `DistArray::write_parts` (feature `mpi`) wrote, from its
/// index file: every part must be there, of the size the index says, and the parts must cover
/// the rows in order.
///
/// # Errors
///
/// [`DistError::Io`] when a file cannot be read; [`DistError::BadIndex`] when the index is not
/// one `write_parts` wrote, its element size is not `T`'s, or a part is missing rows.
///
/// ```no_run
/// let a = shmpool_mpi::parts::read_parts::<f64>("/tmp/heat/grid.index".as_ref())?;
/// println!("{:?}: {} elements", a.shape, a.data.len());
/// # Ok::<(), shmpool_mpi::DistError>(())
/// ```
pub fn read_parts<T: bytemuck::Pod>(index: &Path) -> Result<Parts<T>, DistError> {
    let text = std::fs::read_to_string(index).map_err(io(index))?;
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(bad(index, format!("the first line is not `{MAGIC}`")));
    }
    let nums = |line: Option<&str>, key: &str| -> Result<Vec<usize>, DistError> {
        let line = line.ok_or_else(|| bad(index, format!("no `{key}` line")))?;
        let rest = line
            .strip_prefix(key)
            .ok_or_else(|| bad(index, format!("expected `{key} ...`, got `{line}`")))?;
        rest.split_whitespace()
            .map(|n| n.parse().map_err(|_| bad(index, format!("`{n}` in `{line}` is not a count"))))
            .collect()
    };
    let shape = nums(lines.next(), "shape ")?;
    let elem = nums(lines.next(), "elem_size ")?;
    if elem != [size_of::<T>()] {
        return Err(bad(
            index,
            format!("elements of {elem:?} bytes, read as {} bytes", size_of::<T>()),
        ));
    }
    let (&rows, rest) = shape.split_first().ok_or_else(|| bad(index, "an empty shape"))?;
    let too_large = || bad(index, "a shape larger than memory");
    let row_len = rest.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(too_large)?;
    let total = rows.checked_mul(row_len).ok_or_else(too_large)?;
    total.checked_mul(size_of::<T>()).ok_or_else(too_large)?;
    let dir = index.parent().unwrap_or(Path::new("."));
    // Grown from the parts actually read, never reserved from the index's claims.
    let mut data: Vec<T> = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let (Some("part"), Some(first), Some(n), Some(file), None) =
            (words.next(), words.next(), words.next(), words.next(), words.next())
        else {
            return Err(bad(index, format!("expected `part FIRST_ROW ROWS FILE`, got `{line}`")));
        };
        let (first, n): (usize, usize) = match (first.parse(), n.parse()) {
            (Ok(f), Ok(n)) => (f, n),
            _ => return Err(bad(index, format!("bad row numbers in `{line}`"))),
        };
        let continues = first.checked_mul(row_len) == Some(data.len())
            && first.checked_add(n).is_some_and(|end| end <= rows);
        if !continues || file.contains('/') {
            return Err(bad(index, format!("`{line}` does not continue the rows before it")));
        }
        let path: PathBuf = dir.join(file);
        // `n` rows fit in `rows`, and `rows * row_len * size_of::<T>()` was checked above.
        let want = n * row_len * size_of::<T>();
        let bytes = read_exactly(&path, want).map_err(io(&path))?;
        let Some(bytes) = bytes else {
            return Err(bad(index, format!("{file} is not a regular file of {n} rows")));
        };
        data.extend(bytes.chunks_exact(size_of::<T>()).map(bytemuck::pod_read_unaligned::<T>));
    }
    if data.len() != total {
        return Err(bad(index, format!("the parts hold {} of {total} elements", data.len())));
    }
    Ok(Parts { shape, data })
}

#[cfg(feature = "mpi")]
mod write {
    use std::path::{Path, PathBuf};

    use bytemuck::Pod;
    use mpi::datatype::Equivalence;
    use mpi::traits::Communicator;

    use super::{MAGIC, io, is_part_name};
    use crate::dist_array::DistArray;
    use crate::error::DistError;
    use crate::reduce::allreduce_max;

    impl<T: Pod + Equivalence> DistArray<T> {
        /// Writes the whole array as per-rank files in `dir` (created if missing; every rank
        /// must reach it: a shared file system on a cluster): rank `r` writes its own rows to
        /// `NAME.rankRRRRR.bin`, then, once every rank has finished, rank 0 writes `NAME.index`
        /// (format in [`parts`](crate::parts); written whole or not at all). Returns the
        /// index's path. Collective.
        ///
        /// # Errors
        ///
        /// [`DistError::BadName`] on every rank when `name` is not a plain file name (letters,
        /// digits, `.`, `-`, `_`; directories go in `dir`), before anything is written;
        /// [`DistError::Io`] on every rank when any rank could not write its part (each rank
        /// reports its own file, or the index when another rank's part failed; an index from
        /// an earlier write is removed before any part is rewritten, so none is left to pair
        /// with a mix of parts); when rank 0 could not remove the old index or write the new
        /// one, [`DistError::Io`] on rank 0 and [`DistError::OtherRank`] on the others (no rank
        /// waits for rank 0).
        ///
        /// ```no_run
        /// let universe = shmpool_mpi::mpi::initialize().expect("MPI initialised once");
        /// let a = shmpool_mpi::DistArray::<f64>::zeroed(&universe.world(), &[1000, 1000], 1)?;
        /// let index = a.write_parts("/tmp".as_ref(), "grid")?;
        /// # Ok::<(), shmpool_mpi::DistError>(())
        /// ```
        pub fn write_parts(&self, dir: &Path, name: &str) -> Result<PathBuf, DistError> {
            // The same verdict on every rank (same arguments), before any file or message.
            if !is_part_name(name) {
                return Err(DistError::BadName { name: name.to_string() });
            }
            let part = |r: usize| format!("{name}.rank{r:05}.bin");
            let rank = self.comm.rank() as usize;
            let index = dir.join(format!("{name}.index"));
            // An index left by an earlier write goes before any part is rewritten: otherwise a
            // reader (or this write failing half-way) would pair it with a mix of old and new
            // parts. Rank 0 removes it; every rank learns the outcome before writing.
            let removed = if rank == 0 {
                std::fs::create_dir_all(dir).and_then(|()| match std::fs::remove_file(&index) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    other => other,
                })
            } else {
                Ok(())
            };
            let failed = allreduce_max(&self.comm, if removed.is_err() { 1.0 } else { 0.0 });
            removed.map_err(io(&index))?;
            if failed > 0.0 {
                return Err(DistError::OtherRank { what: "remove the old index" });
            }
            let mine = dir.join(part(rank));
            let wrote = std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&mine, bytemuck::cast_slice::<T, u8>(self.own())));
            // Everyone learns whether every part is whole before the index is written.
            let failed = allreduce_max(&self.comm, if wrote.is_err() { 1.0 } else { 0.0 });
            wrote.map_err(io(&mine))?;
            if failed > 0.0 {
                let source = std::io::Error::other("another rank could not write its part");
                return Err(DistError::Io { path: index, source });
            }
            let indexed = if rank == 0 {
                let mut text = format!("{MAGIC}\nshape");
                for d in &self.shape {
                    text += &format!(" {d}");
                }
                text += &format!("\nelem_size {}\n", size_of::<T>());
                for r in 0..self.split.ranks() {
                    let rows = self.split.range(r);
                    text += &format!("part {} {} {}\n", rows.start, rows.len(), part(r));
                }
                // Whole or absent: written beside it, then renamed over it.
                let partial = dir.join(format!("{name}.index.partial"));
                std::fs::write(&partial, text).and_then(|()| std::fs::rename(&partial, &index))
            } else {
                Ok(())
            };
            // Rank 0's outcome to every rank (a barrier that also says whether it worked).
            let failed = allreduce_max(&self.comm, if indexed.is_err() { 1.0 } else { 0.0 });
            indexed.map_err(io(&index))?;
            if failed > 0.0 {
                return Err(DistError::OtherRank { what: "write the index" });
            }
            Ok(index)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{is_part_name, read_parts};
    use crate::error::DistError;

    /// A scratch directory with `index` as `a.index` and two parts of 2 and 1 rows of 2 `u16`.
    fn dir_with(test: &str, index: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("shmpool-mpi-parts-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.rank00000.bin"), bytemuck::cast_slice::<u16, u8>(&[1, 2, 3, 4]))
            .unwrap();
        std::fs::write(dir.join("a.rank00001.bin"), bytemuck::cast_slice::<u16, u8>(&[5, 6]))
            .unwrap();
        std::fs::write(dir.join("a.index"), index).unwrap();
        dir
    }

    const GOOD: &str = "shmpool-mpi parts 1\nshape 3 2\nelem_size 2\npart 0 2 a.rank00000.bin\npart 2 1 a.rank00001.bin\n";

    #[test]
    fn reads_back_what_the_index_lists() {
        let dir = dir_with("good", GOOD);
        let p = read_parts::<u16>(&dir.join("a.index")).unwrap();
        assert_eq!((p.shape, p.data), (vec![3, 2], vec![1, 2, 3, 4, 5, 6]));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_hostile_or_broken_indexes_with_an_error() {
        let cases = [
            ("magic", GOOD.replace("parts 1", "parts 9")),
            ("elem", GOOD.replace("elem_size 2", "elem_size 8")),
            ("gap", GOOD.replace("part 2 1", "part 1 1")),
            ("short", GOOD.replace("part 2 1 a.rank00001.bin\n", "")),
            ("rows", GOOD.replace("part 2 1", "part 2 2")),
            ("escape", GOOD.replace("a.rank00001.bin", "../a.rank00001.bin")),
            ("huge", GOOD.replace("shape 3 2", "shape 18446744073709551615 2")),
            ("overflow", GOOD.replace("part 2 1", "part 18446744073709551615 1")),
            ("words", GOOD.replace("part 2 1 a.rank00001.bin", "part 2 x a.rank00001.bin")),
        ];
        for (name, index) in cases {
            let dir = dir_with(name, &index);
            let e = read_parts::<u16>(&dir.join("a.index"));
            assert!(matches!(e, Err(DistError::BadIndex { .. })), "{name}: {e:?}");
            std::fs::remove_dir_all(dir).unwrap();
        }
        let dir = dir_with("missing", &GOOD.replace("a.rank00001.bin", "gone.bin"));
        let e = read_parts::<u16>(&dir.join("a.index"));
        assert!(matches!(e, Err(DistError::Io { .. })), "missing part: {e:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn parts_that_are_devices_fifos_or_oversized_are_refused_without_reading_them() {
        // A part behind a symlink to /dev/zero would be read forever; a FIFO would block the
        // open; a huge file would be read whole before its size was compared.
        let dir = dir_with("zero", GOOD);
        std::fs::remove_file(dir.join("a.rank00001.bin")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.join("a.rank00001.bin")).unwrap();
        let e = read_parts::<u16>(&dir.join("a.index"));
        assert!(matches!(e, Err(DistError::BadIndex { .. })), "/dev/zero part: {e:?}");
        std::fs::remove_dir_all(dir).unwrap();

        let dir = dir_with("fifo", GOOD);
        std::fs::remove_file(dir.join("a.rank00001.bin")).unwrap();
        let fifo = std::ffi::CString::new(dir.join("a.rank00001.bin").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) reads the NUL-terminated path, which outlives the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0, "mkfifo");
        let e = read_parts::<u16>(&dir.join("a.index"));
        assert!(matches!(e, Err(DistError::BadIndex { .. })), "FIFO part: {e:?}");
        std::fs::remove_dir_all(dir).unwrap();

        let dir = dir_with("big", GOOD);
        let f = std::fs::File::create(dir.join("a.rank00001.bin")).unwrap();
        f.set_len(1 << 40).unwrap(); // sparse: 1 TiB claimed, nothing stored
        let e = read_parts::<u16>(&dir.join("a.index"));
        assert!(matches!(e, Err(DistError::BadIndex { .. })), "1 TiB part: {e:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn part_names_are_plain_file_names() {
        for ok in ["grid", "a.b-c_9", "..x", "x.."] {
            assert!(is_part_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../grid", "/tmp/grid", "a/b", "a b", "a\nb", "a\0b", "é"] {
            assert!(!is_part_name(bad), "{bad:?}");
        }
    }
}
