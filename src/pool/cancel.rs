//! Cancelling what a job has not started: the parent closes the claim cursor and marks every
//! chunk nobody claimed finished, so the job ends as soon as the chunks already running do.
//! Dropping a streaming iterator (`imap`, `imap_unordered`, `imap_buffered`) does this, and
//! does not wait: the next call that publishes a job waits for the running chunks first.

use std::sync::atomic::Ordering::SeqCst;

use super::state::Pool;
use super::words::JobIndex;

impl Pool {
    /// Closes the cursor of the job in flight and marks its unclaimed chunks finished (not
    /// failed). A worker that read the open cursor fails its compare-and-swap, as at any
    /// publish, and looks again; chunks on the retry ring still run. Chunks already claimed
    /// run to the end.
    pub(crate) fn cancel_unclaimed(&mut self) {
        let Some(a) = &self.active else { return };
        let (job, chunks) = (a.job, a.chunks);
        let c = &*self.ctl;
        let mut cur = c.cursor.load(SeqCst);
        let from = loop {
            if cur.job() != job || cur.is_closed() {
                return;
            }
            match c.cursor.compare_exchange(cur, JobIndex::closed(job), SeqCst, SeqCst) {
                Ok(_) => break cur.index().min(chunks),
                Err(now) => cur = now,
            }
        };
        // Nobody can claim `from..chunks` any more: the cursor is closed for this job. A dead
        // worker's suspect among them is found done and dropped (README.md, "Death").
        let marked = (from..chunks).filter(|&i| c.mark_done(i)).count() as u64;
        c.done.fetch_add(marked, SeqCst);
    }
}
