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
    out: Output,
}

/// Where progress goes: standard error, or (in tests) a buffer.
#[derive(Clone)]
enum Output {
    Stderr,
    #[cfg(test)]
    Buffer(Arc<Mutex<Vec<u8>>>),
}

impl Output {
    fn write(&self, text: &str) {
        match self {
            Output::Stderr => {
                let _ = std::io::stderr().lock().write_all(text.as_bytes());
            }
            #[cfg(test)]
            Output::Buffer(buffer) => buffer.lock().unwrap().extend_from_slice(text.as_bytes()),
        }
    }
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
        Progress::to(Output::Stderr, std::io::stderr().is_terminal())
    }
}

impl Progress {
    /// Progress written to `out`, with a status line when `live`.
    fn to(out: Output, live: bool) -> Self {
        if !live {
            return Progress { live: None, out };
        }
        let shared = Arc::new((Mutex::new(Status::default()), Condvar::new()));
        let ticker = {
            let (shared, out) = (Arc::clone(&shared), out.clone());
            std::thread::spawn(move || tick(&shared, &out))
        };
        Progress {
            live: Some(Live {
                shared,
                ticker: Some(ticker),
            }),
            out,
        }
    }
}

/// Redraws the status line until the progress is dropped.
fn tick(shared: &(Mutex<Status>, Condvar), out: &Output) {
    let (lock, wake) = shared;
    let mut status = lock.lock().unwrap_or_else(|e| e.into_inner());
    while !status.done {
        if let Some((text, since)) = &status.current {
            draw(out, text, since.elapsed());
        }
        status = wake
            .wait_timeout(status, REDRAW)
            .map(|(guard, _)| guard)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}

fn draw(out: &Output, text: &str, elapsed: Duration) {
    out.write(&format!("\r\x1b[K[{:5.1}s] {text}", elapsed.as_secs_f32()));
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
            self.out.write(&format!("\r\x1b[K{text}\n"));
            if let Some((current, since)) = &status.current {
                draw(&self.out, current, since.elapsed());
            }
            printed = true;
        });
        if !printed {
            self.out.write(&format!("{text}\n"));
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
            draw(&self.out, &text, since.elapsed());
            status.current = Some((text, since));
        });
    }

    /// Clears the status line: nothing is under way.
    pub fn finish(&self) {
        self.with_status(|status| {
            if status.current.take().is_some() {
                self.out.write("\r\x1b[K");
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
    use std::sync::{Arc, Mutex};

    use super::{Output, Progress};

    /// What `use_progress` wrote, on a terminal (`live`) or not.
    fn written(live: bool, use_progress: impl FnOnce(&Progress)) -> String {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let progress = Progress::to(Output::Buffer(Arc::clone(&buffer)), live);
        use_progress(&progress);
        drop(progress);
        String::from_utf8(buffer.lock().unwrap().clone()).unwrap()
    }

    const HOSTILE: &str = "m1\nstep 2 done\r\u{1b}[2J\u{1b}]0;t\u{7}\u{202e}\u{200b}\u{85}";
    const SHOWN: &str = "m1\\nstep 2 done\\r\\u{1b}[2J\\u{1b}]0;t\\u{7}\\u{202e}\\u{200b}\\u{85}";

    /// Progress lines name what the host and its answers gave (a fleet
    /// machine, a Docker error, a snapshot's id): each is one line, what
    /// a terminal would obey in it shown as an escape.
    #[test]
    fn a_progress_line_is_one_line_shown_never_obeyed() {
        let plain = written(false, |p| {
            p.line(&format!("pulled {HOSTILE}"));
            p.waiting(&format!("pulling {HOSTILE}"));
            p.status("not shown off a terminal");
            p.finish();
        });
        assert_eq!(
            plain,
            format!("pulled {SHOWN}\npulling {SHOWN} ...\n"),
            "{plain:?}"
        );

        // On a terminal, unitgen's own `\r ESC [K` redraws the status line;
        // nothing else of the text reaches the terminal as it is.
        let live = written(true, |p| {
            p.waiting(&format!("pulling {HOSTILE}"));
            p.line(&format!("pulled {HOSTILE}"));
            p.finish();
        });
        let own = live.replace("\r\u{1b}[K", "");
        assert!(own.contains(&format!("pulling {SHOWN}")), "{live:?}");
        assert!(own.contains(&format!("pulled {SHOWN}\n")), "{live:?}");
        let obeyed: Vec<char> = (own.chars())
            .filter(|&c| c != '\n' && crate::diagnostic::acts_on_terminal(c))
            .collect();
        assert_eq!(obeyed, Vec::<char>::new(), "{live:?}");
        assert_eq!(own.matches('\n').count(), 1, "{live:?}");
    }

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(super::count(1, "unit"), "1 unit");
        assert_eq!(super::count(0, "unit"), "0 units");
        assert_eq!(super::count(3, "service"), "3 services");
    }
}
