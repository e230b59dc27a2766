//! `Progress`: the batch's progress bar on stderr (files, files/s, MB/s, ETA), drawn only when
//! stderr is a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// The progress bar of a batch of `n` files.
pub(crate) struct Progress {
    bar: ProgressBar,
    /// Bytes of the files done, read by the bar's `rates` key when it draws.
    bytes: Arc<AtomicU64>,
}

/// Whether a batch's bar is drawn: stderr is a terminal.
pub(crate) fn drawn() -> bool {
    std::io::stderr().is_terminal()
}

impl Progress {
    /// A bar for `n` files; hidden unless stderr is a terminal.
    pub(crate) fn new(n: usize) -> Progress {
        let target =
            if drawn() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(n as u64), target);
        let bytes = Arc::new(AtomicU64::new(0));
        let read = Arc::clone(&bytes);
        // The rates are written as the bar draws (one draw per update, not one for the
        // position and one for a message).
        let rates = move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let secs = s.elapsed().as_secs_f64().max(1e-9);
            let mb = read.load(Relaxed) as f64 / 1e6;
            let _ = write!(w, "{:.1} files/s  {:.1} MB/s", s.pos() as f64 / secs, mb / secs);
        };
        let style = ProgressStyle::with_template("{bar:30} {pos}/{len} files  {rates}  ETA {eta}")
            .expect("the template is valid")
            .with_key("rates", rates);
        bar.set_style(style);
        Progress { bar, bytes }
    }

    /// One more file done, of `bytes` read.
    pub(crate) fn done(&mut self, bytes: u64) {
        self.advance(1, bytes);
    }

    /// `files` more files done, of `bytes` read in all.
    pub(crate) fn advance(&mut self, files: u64, bytes: u64) {
        self.bytes.fetch_add(bytes, Relaxed);
        self.bar.inc(files);
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
