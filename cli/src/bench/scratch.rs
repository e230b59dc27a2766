//! The run's scratch directory: the Python script, the C source and binary, the children's
//! stderr. Removed when the run ends.

use std::path::{Path, PathBuf};

/// A directory under the system temp directory, removed on drop.
pub(crate) struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Creates `$TMPDIR/shmpool-bench-<pid>`.
    pub(crate) fn new() -> std::io::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("shmpool-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch { dir })
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
