//! Finding and removing named segments whose creator died without unlinking them.

use std::io;

use super::Segment;
use super::handle::Locator;
use super::name::{PREFIX, os_name};
use crate::error::{Error, Result};
use crate::sys;

/// Removes every `/dev/shm/shmpool-*` segment whose creating process no longer exists, and
/// returns the names it removed.
///
/// The creator is read from the segment's header, or from its generated name when the header was
/// never finished. Segments with names the user chose are left alone, as are those whose creator
/// runs (or whose pid is in use again; a reused pid errs on the side of keeping).
///
/// ```
/// let removed = shmpool::clean_stale()?;
/// for name in removed {
///     println!("removed stale segment {name}");
/// }
/// # Ok::<(), shmpool::Error>(())
/// ```
pub fn clean_stale() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let dir = match std::fs::read_dir("/dev/shm") {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(Error::io("reading /dev/shm")(e)),
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = creator_of(&name) else { continue };
        if sys::proc::pid_alive(pid) {
            continue;
        }
        match sys::shm::shm_unlink(&os_name(&name)) {
            Ok(()) => removed.push(name),
            // Someone else cleaned it, or it belongs to another user (sticky /dev/shm): skip.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                ) => {}
            Err(e) => return Err(Error::io("shm_unlink")(e)),
        }
    }
    Ok(removed)
}

/// The creator pid of a shmpool-generated segment, from its header when readable, else from
/// the name (`shmpool-<pid>-<random>`). `None` for names that are not shmpool's.
fn creator_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let from_name: u32 = rest.split('-').next()?.parse().ok()?;
    match Segment::open(&Locator::Named(name.to_string()), None, false) {
        Ok(seg) => Some(seg.header().creator_pid),
        Err(_) => Some(from_name),
    }
}
