//! Progress of long operations: on a terminal, a status line that says what
//! is still under way and for how long, redrawn every quarter second so a
//! long image pull does not look like a hang; elsewhere (logs, CI), plain
//! lines only.

use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const REDRAW: Duration = Duration::from_millis(250);

pub struct Progress {
    /// Present on a terminal only.
    live: Option<Live>,
}

struct Live {
    shared: Arc<(Mutex<Status>, Condvar)>,
    ticker: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Status {
    /// What is under way, and since when.
    current: Option<(String, Instant)>,
    done: bool,
}

impl Default for Progress {
    fn default() -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress { live: None };
        }
        let shared = Arc::new((Mutex::new(Status::default()), Condvar::new()));
        let ticker = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || tick(&shared))
        };
        Progress {
            live: Some(Live {
                shared,
                ticker: Some(ticker),
            }),
        }
    }
}

/// Redraws the status line until the progress is dropped.
fn tick(shared: &(Mutex<Status>, Condvar)) {
    let (lock, wake) = shared;
    let mut status = lock.lock().unwrap_or_else(|e| e.into_inner());
    while !status.done {
        if let Some((text, since)) = &status.current {
            draw(text, since.elapsed());
        }
        status = wake
            .wait_timeout(status, REDRAW)
            .map(|(guard, _)| guard)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}

fn draw(text: &str, elapsed: Duration) {
    let _ = write!(
        std::io::stderr().lock(),
        "\r\x1b[K[{:5.1}s] {text}",
        elapsed.as_secs_f32()
    );
}

/// `1 unit`, `3 units`: a count and its noun (regular plurals only).
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

impl Progress {
    /// A wait worth mentioning (a pull, the settle time): on a terminal the
    /// ticking status line; elsewhere, so that a log does not go silent, one
    /// line saying what is awaited.
    pub fn waiting(&self, text: &str) {
        if self.live.is_some() {
            self.status(text);
        } else {
            self.line(&format!("{text} ..."));
        }
    }

    fn with_status(&self, change: impl FnOnce(&mut Status)) {
        if let Some(live) = &self.live {
            let (lock, _) = &*live.shared;
            change(&mut lock.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// A finished step or a message: always printed on its own line (on a
    /// terminal, above the status line, which is drawn again below it).
    /// One line: a line feed in a name it tells (a fleet machine's, a
    /// Docker error's) is shown, or it would add a step of its own.
    pub fn line(&self, text: &str) {
        let text = &crate::diagnostic::shown(text);
        let mut printed = false;
        self.with_status(|status| {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K{text}\n");
            if let Some((current, since)) = &status.current {
                draw(current, since.elapsed());
            }
            printed = true;
        });
        if !printed {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }

    /// What is under way now (on a terminal only; each result is printed
    /// as a line anyway). The clock runs from the first status after the
    /// last `finish`.
    pub fn status(&self, text: &str) {
        self.with_status(|status| {
            let since = match &status.current {
                Some((_, since)) => *since,
                None => Instant::now(),
            };
            let text = crate::diagnostic::shown(text);
            draw(&text, since.elapsed());
            status.current = Some((text, since));
        });
    }

    /// Clears the status line: nothing is under way.
    pub fn finish(&self) {
        self.with_status(|status| {
            if status.current.take().is_some() {
                let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
            }
        });
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
        if let Some(live) = &mut self.live {
            let (lock, wake) = &*live.shared;
            lock.lock().unwrap_or_else(|e| e.into_inner()).done = true;
            wake.notify_all();
            if let Some(ticker) = live.ticker.take() {
                let _ = ticker.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(super::count(1, "unit"), "1 unit");
        assert_eq!(super::count(0, "unit"), "0 units");
        assert_eq!(super::count(3, "service"), "3 services");
    }
}
