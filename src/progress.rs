//! Progress of long operations: a live line on a terminal (what is still
//! running), plain lines otherwise (logs, CI).

use std::io::{IsTerminal as _, Write as _};
use std::time::Instant;

pub struct Progress {
    live: bool,
    started: Instant,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            live: std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }
}

impl Progress {
    /// A finished step or a message: always printed on its own line.
    pub fn line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.live {
            let _ = write!(err, "\r\x1b[K");
        }
        let _ = writeln!(err, "{text}");
    }

    /// What is still under way; on a terminal it replaces the previous
    /// status line, elsewhere it is not shown (each result is).
    pub fn status(&self, text: &str) {
        if self.live {
            let secs = self.started.elapsed().as_secs_f32();
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K[{secs:5.1}s] {text}");
        }
    }

    /// Clears the status line.
    pub fn finish(&self) {
        if self.live {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}
