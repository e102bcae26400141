//! Progress of a long scan on stderr: a count of what was scanned, every thousand items
//! or every second, whichever comes first. On a terminal one line is rewritten in place;
//! elsewhere (with `--progress`) each update is its own line.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const EVERY_ITEMS: u64 = 1000;
const EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    terminal: bool,
    last_shown: Instant,
    /// The item count at which to show the totals next, whatever the time.
    next_milestone: u64,
    shown_anything: bool,
}

impl Progress {
    /// Shown on a terminal, or anywhere when `forced` (`--progress`).
    pub fn new(forced: bool) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        Progress { enabled: forced || terminal, terminal, last_shown: Instant::now(), next_milestone: EVERY_ITEMS, shown_anything: false }
    }

    /// Counts one more item; shows the totals when it is time.
    pub fn update(&mut self, files: u64, blobs: u64, keys_found: usize) {
        let items = files + blobs;
        if !self.enabled || (items < self.next_milestone && self.last_shown.elapsed() < EVERY) {
            return;
        }
        while self.next_milestone <= items {
            self.next_milestone += EVERY_ITEMS;
        }
        self.last_shown = Instant::now();
        self.shown_anything = true;
        let text = if blobs > 0 {
            format!("scanning: {files} files, {blobs} git blobs, {keys_found} keys found")
        } else {
            format!("scanning: {files} files, {keys_found} keys found")
        };
        let mut stderr = std::io::stderr().lock();
        let _ = if self.terminal { write!(stderr, "\r\x1b[K{text}") } else { writeln!(stderr, "{text}") };
        let _ = stderr.flush();
    }

    /// Clears the progress line before the results are printed.
    pub fn finish(&mut self) {
        if self.terminal && self.shown_anything {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}
