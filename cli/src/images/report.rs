//! `FileReport`: what a worker sends back for one file it wrote.

use serde::{Deserialize, Serialize};

/// Each file's result, `None` for those never run.
pub(crate) type Results = Vec<Option<Result<FileReport, String>>>;

/// One file's result from its worker: sizes, pixels and the time of each stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct FileReport {
    /// The file written.
    pub(crate) output: String,
    /// Bytes read.
    pub(crate) in_bytes: u64,
    /// Bytes written.
    pub(crate) out_bytes: u64,
    /// The decoded image's shape `(h, w, c)`.
    pub(crate) in_shape: [usize; 3],
    /// The written image's shape `(h, w, c)`.
    pub(crate) out_shape: [usize; 3],
    /// Reading and decoding, in milliseconds.
    pub(crate) decode_ms: f64,
    /// The pipeline's operations, in milliseconds.
    pub(crate) process_ms: f64,
    /// Encoding, writing and renaming into place, in milliseconds.
    pub(crate) encode_ms: f64,
}

impl FileReport {
    /// Pixels decoded.
    pub(crate) fn pixels(&self) -> u64 {
        (self.in_shape[0] * self.in_shape[1]) as u64
    }
}
