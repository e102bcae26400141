//! What the server logs, captured for tests that assert on it: one global subscriber for the
//! whole `it` binary, installed the first time a test asks for it, that keeps every line
//! in memory. Tests run in parallel and share it, so a test reads only the lines of its
//! own requests (by request id) or searches for text only it sent (a fresh key).
//!
//! keygate's own crates are captured at every level; other crates at `info` and above
//! (sqlx logs each statement at `debug`, which would only cost time here).

use std::io::Write;
use std::sync::{Mutex, Once};

use tracing_subscriber::fmt::MakeWriter;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Installs the capturing subscriber once; later calls do nothing. Call it before the
/// requests whose lines the test reads.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::new("info,keygate=trace,keygate_server=trace,keygate_store=trace,keygate_core=trace");
        let subscriber =
            tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_target(true).with_writer(CaptureWriter).finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber in the it binary");
    });
}

/// Every line captured so far whose text contains `needle`.
pub fn lines_containing(needle: &str) -> Vec<String> {
    LINES.lock().expect("not poisoned").iter().filter(|line| line.contains(needle)).cloned().collect()
}

/// The access-log line of the request with `request_id`, waiting a little for it: the
/// line is written after the response is built, so it may trail the answer.
pub async fn access_log_line(request_id: &str) -> Option<String> {
    let field = format!("request_id={request_id} ");
    for _ in 0..100 {
        if let Some(line) = lines_containing(&field).into_iter().find(|line| line.contains(" request ")) {
            return Some(line);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    None
}

#[derive(Clone, Copy)]
struct CaptureWriter;

/// Each formatted event arrives as one write of the whole line.
impl Write for CaptureWriter {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buffer);
        let mut lines = LINES.lock().expect("not poisoned");
        lines.extend(text.lines().map(str::to_string));
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'writer> MakeWriter<'writer> for CaptureWriter {
    type Writer = CaptureWriter;

    fn make_writer(&'writer self) -> CaptureWriter {
        *self
    }
}
