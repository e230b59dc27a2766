//! `Progress`: the batch's progress bar on stderr (files, files/s, MB/s, ETA), drawn only when
//! stderr is a terminal.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress bar of a batch of `n` files.
pub(crate) struct Progress {
    bar: ProgressBar,
    start: Instant,
    bytes: u64,
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
        let style = ProgressStyle::with_template("{bar:30} {pos}/{len} files  {msg}  ETA {eta}")
            .expect("the template is valid");
        bar.set_style(style);
        Progress { bar, start: Instant::now(), bytes: 0 }
    }

    /// One more file done, of `bytes` read.
    pub(crate) fn done(&mut self, bytes: u64) {
        self.bytes += bytes;
        self.bar.inc(1);
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_message(format!(
            "{:.1} files/s  {:.1} MB/s",
            self.bar.position() as f64 / secs,
            self.bytes as f64 / 1e6 / secs
        ));
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
