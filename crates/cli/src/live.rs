//! The live one-line status, drawn only when stderr is a terminal.
//!
//! To never interleave with the job's own output (which goes to the same terminal), the status
//! lives on the terminal's last row, outside a scroll region that covers every other row: the
//! job's lines scroll above it and are never split by it. The region is restored at the end.
//!
//! Each frame (cursor save, move, draw, cursor restore) is built whole and handed to the
//! terminal in ONE `write(2)`: the kernel does not interleave another process's write into a
//! single tty write, so the job's output can never land between our cursor save and restore
//! (with the cursor parked on the status row) nor inside one of our escape sequences. Writing the
//! pieces one by one, as `write!` on unbuffered stderr does, left exactly that window open.

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the status line is redrawn.
pub const REDRAW_EVERY: Duration = Duration::from_secs(1);

/// Where frames go, and how big the terminal is.
pub trait Terminal: Send {
    /// Rows and columns, when usable (at least 3 × 20).
    fn size(&self) -> Option<(u16, u16)>;
    /// Write `frame` to the terminal in a single write call.
    fn write_frame(&mut self, frame: &str);
}

/// The real terminal on stderr.
pub struct Stderr;

impl Terminal for Stderr {
    fn size(&self) -> Option<(u16, u16)> {
        // SAFETY: TIOCGWINSZ fills a winsize struct for a terminal fd.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) };
        (r == 0).then_some((ws.ws_row, ws.ws_col)).filter(usable)
    }

    fn write_frame(&mut self, frame: &str) {
        // Hold the lock so that our own other threads' messages queue behind the frame.
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(frame.as_bytes());
        let _ = e.flush();
    }
}

fn usable(&(rows, cols): &(u16, u16)) -> bool {
    rows >= 3 && cols >= 20
}

pub struct LiveLine {
    term: Option<Box<dyn Terminal>>,
    rows: u16,
}

/// Make room for the status row, then confine scrolling to the rows above it.
pub fn setup_frame(rows: u16) -> String {
    format!("\n\x1b[1A\x1b7\x1b[1;{}r\x1b8", rows - 1)
}

/// One redraw of the status row (with a new scroll region first when the terminal was resized).
pub fn draw_frame(rows: u16, cols: u16, resized: bool, text: &str) -> String {
    let line: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(cols as usize - 1)
        .collect();
    let mut f = String::with_capacity(line.len() + 40);
    if resized {
        f.push_str(&format!("\x1b7\x1b[1;{}r\x1b8", rows - 1));
    }
    f.push_str(&format!(
        "\x1b7\x1b[{rows};1H\x1b[2K\x1b[7m{line}\x1b[0m\x1b8"
    ));
    f
}

/// Clear the status row and give the whole terminal back.
pub fn finish_frame(rows: u16) -> String {
    format!("\x1b7\x1b[{rows};1H\x1b[2K\x1b[r\x1b8")
}

impl LiveLine {
    /// A status line if stderr is a terminal of usable size and `enabled`; otherwise inert.
    pub fn new(enabled: bool) -> LiveLine {
        if enabled && std::io::stderr().is_terminal() {
            LiveLine::on(Box::new(Stderr))
        } else {
            LiveLine {
                term: None,
                rows: 0,
            }
        }
    }

    /// A status line on `term` (inert when its size is unusable).
    pub fn on(mut term: Box<dyn Terminal>) -> LiveLine {
        match term.size() {
            Some((rows, _)) => {
                term.write_frame(&setup_frame(rows));
                LiveLine {
                    term: Some(term),
                    rows,
                }
            }
            None => LiveLine {
                term: None,
                rows: 0,
            },
        }
    }

    pub fn is_active(&self) -> bool {
        self.term.is_some()
    }

    pub fn draw(&mut self, text: &str) {
        let Some(term) = self.term.as_mut() else {
            return;
        };
        let Some((rows, cols)) = term.size() else {
            return;
        };
        let resized = rows != self.rows;
        self.rows = rows;
        term.write_frame(&draw_frame(rows, cols, resized, text));
    }

    /// Clear the status row and give the whole terminal back.
    pub fn finish(&mut self) {
        if let Some(mut term) = self.term.take() {
            term.write_frame(&finish_frame(self.rows));
        }
    }
}

impl Drop for LiveLine {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The status line redrawn by a background thread until [`LiveThread::finish`].
pub struct LiveThread {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl LiveThread {
    /// Draw `text()` at once (so a run shows its line however short it is), then every
    /// [`REDRAW_EVERY`]. `None` when `line` is inert.
    pub fn start(
        mut line: LiveLine,
        mut text: impl FnMut() -> String + Send + 'static,
    ) -> Option<LiveThread> {
        if !line.is_active() {
            return None;
        }
        line.draw(&text());
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("wattprint-live".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(REDRAW_EVERY) {
                    line.draw(&text());
                }
                line.finish();
            })
            .ok()?;
        Some(LiveThread { stop, thread })
    }

    /// Stop at once (no redraw period is waited out), clear the line and give the terminal back.
    pub fn finish(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records every write call it is given, as a terminal driver would see them.
    struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>, (u16, u16));

    impl Terminal for Recorder {
        fn size(&self) -> Option<(u16, u16)> {
            Some(self.1).filter(usable)
        }
        fn write_frame(&mut self, frame: &str) {
            // count the write(2) calls a `Write` impl would make for this frame
            struct Count<'a>(&'a Mutex<Vec<Vec<u8>>>);
            impl Write for Count<'_> {
                fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                    self.0.lock().unwrap().push(b.to_vec());
                    Ok(b.len())
                }
                fn flush(&mut self) -> std::io::Result<()> {
                    Ok(())
                }
            }
            Count(&self.0).write_all(frame.as_bytes()).unwrap();
        }
    }

    #[test]
    fn every_frame_reaches_the_terminal_in_one_write() {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let mut l = LiveLine::on(Box::new(Recorder(Arc::clone(&writes), (24, 80))));
        assert!(l.is_active());
        l.draw(" wattprint 1.0 W");
        l.draw("second\nline\x1b[31m with controls");
        l.finish();
        let w = writes.lock().unwrap();
        // setup, two draws, finish: one write each, each a whole frame
        assert_eq!(w.len(), 4, "{w:?}");
        let s: Vec<String> = w
            .iter()
            .map(|b| String::from_utf8_lossy(b).into())
            .collect();
        assert_eq!(s[0], "\n\x1b[1A\x1b7\x1b[1;23r\x1b8");
        assert_eq!(
            s[1],
            "\x1b7\x1b[24;1H\x1b[2K\x1b[7m wattprint 1.0 W\x1b[0m\x1b8"
        );
        // control characters of the text cannot break out of the status row
        assert_eq!(
            s[2],
            "\x1b7\x1b[24;1H\x1b[2K\x1b[7msecondline[31m with controls\x1b[0m\x1b8"
        );
        assert_eq!(s[3], "\x1b7\x1b[24;1H\x1b[2K\x1b[r\x1b8");
    }

    #[test]
    fn a_tiny_terminal_gets_no_line_and_a_long_text_is_cut_to_the_width() {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let l = LiveLine::on(Box::new(Recorder(Arc::clone(&writes), (2, 80))));
        assert!(!l.is_active());
        drop(l);
        assert!(writes.lock().unwrap().is_empty());
        let f = draw_frame(10, 20, false, &"x".repeat(100));
        assert!(
            f.contains(&format!("\x1b[7m{}\x1b[0m", "x".repeat(19))),
            "{f:?}"
        );
    }

    #[test]
    fn the_thread_draws_at_once_and_stops_without_waiting_a_period() {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let l = LiveLine::on(Box::new(Recorder(Arc::clone(&writes), (24, 80))));
        let t = LiveThread::start(l, || "now".to_string()).unwrap();
        // the first frame is drawn before start returns
        assert_eq!(writes.lock().unwrap().len(), 2);
        let t0 = std::time::Instant::now();
        t.finish();
        assert!(t0.elapsed() < REDRAW_EVERY, "{:?}", t0.elapsed());
        let w = writes.lock().unwrap();
        assert_eq!(
            String::from_utf8_lossy(w.last().unwrap()),
            "\x1b7\x1b[24;1H\x1b[2K\x1b[r\x1b8"
        );
    }
}
