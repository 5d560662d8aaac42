//! The live one-line status, drawn only when stderr is a terminal.
//!
//! To never interleave with the job's own output (which goes to the same terminal), the status
//! lives on the terminal's last row, outside a scroll region that covers every other row: the
//! job's lines scroll above it and are never split by it. The region is restored at the end.

use std::io::{IsTerminal, Write};

pub struct LiveLine {
    rows: u16,
    active: bool,
}

fn term_size() -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ fills a winsize struct for a terminal fd.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) };
    if r == 0 && ws.ws_row >= 3 && ws.ws_col >= 20 {
        Some((ws.ws_row, ws.ws_col))
    } else {
        None
    }
}

impl LiveLine {
    /// A status line if stderr is a terminal of usable size and `enabled`; otherwise inert.
    pub fn new(enabled: bool) -> LiveLine {
        let mut l = LiveLine {
            rows: 0,
            active: false,
        };
        if enabled && std::io::stderr().is_terminal() {
            if let Some((rows, _)) = term_size() {
                l.rows = rows;
                l.active = true;
                // Make room for the status row, then confine scrolling to the rows above it.
                let mut e = std::io::stderr().lock();
                let _ = write!(e, "\n\x1b[1A\x1b7\x1b[1;{}r\x1b8", rows - 1);
                let _ = e.flush();
            }
        }
        l
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    pub fn draw(&mut self, text: &str) {
        if !self.active {
            return;
        }
        let Some((rows, cols)) = term_size() else {
            return;
        };
        let mut e = std::io::stderr().lock();
        if rows != self.rows {
            self.rows = rows;
            let _ = write!(e, "\x1b7\x1b[1;{}r\x1b8", rows - 1);
        }
        let line: String = text.chars().take(cols as usize - 1).collect();
        let _ = write!(e, "\x1b7\x1b[{rows};1H\x1b[2K\x1b[7m{line}\x1b[0m\x1b8");
        let _ = e.flush();
    }

    /// Clear the status row and give the whole terminal back.
    pub fn finish(&mut self) {
        if !self.active {
            return;
        }
        self.active = false;
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\x1b7\x1b[{};1H\x1b[2K\x1b[r\x1b8", self.rows);
        let _ = e.flush();
    }
}

impl Drop for LiveLine {
    fn drop(&mut self) {
        self.finish();
    }
}
