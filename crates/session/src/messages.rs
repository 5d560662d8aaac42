//! What a session has to tell its user, handed to the front end: the CLI prints it on stderr,
//! Python sends it to `warnings`/`logging`, the Slurm plugin to the job's output. Libraries
//! never print.

use std::sync::Arc;

/// How much a message matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Progress worth a line (a stop decision, a wait).
    Info,
    /// Something is missing, guessed or going wrong; the run goes on.
    Warning,
    /// A record or part of one was lost: always shown, even when the user asked for quiet.
    Loss,
    /// Diagnostics shown only on request.
    Debug,
}

type Handler = dyn Fn(Level, &str) + Send + Sync;

/// Messages kept in memory by [`Messages::collect`].
pub type Collected = Arc<std::sync::Mutex<Vec<(Level, String)>>>;

/// Where messages go, and which reach the user (`quiet` keeps only [`Level::Loss`]). Cheap to
/// clone; callable from any thread.
#[derive(Clone)]
pub struct Messages {
    handler: Arc<Handler>,
    quiet: bool,
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Messages")
    }
}

impl Messages {
    pub fn new(f: impl Fn(Level, &str) + Send + Sync + 'static) -> Messages {
        Messages {
            handler: Arc::new(f),
            quiet: false,
        }
    }

    /// Only losses reach the user (the CLI's `--quiet`).
    pub fn quiet(mut self, quiet: bool) -> Messages {
        self.quiet = quiet;
        self
    }

    /// Whether a message of `level` reaches the user.
    pub fn shows(&self, level: Level) -> bool {
        !self.quiet || level == Level::Loss
    }

    /// Messages dropped (tests, embedders that read the record's warnings instead).
    pub fn discard() -> Messages {
        Messages::new(|_, _| {})
    }

    pub fn say(&self, level: Level, text: &str) {
        if self.shows(level) {
            (self.handler)(level, text)
        }
    }

    pub fn info(&self, text: &str) {
        self.say(Level::Info, text)
    }

    pub fn warn(&self, text: &str) {
        self.say(Level::Warning, text)
    }

    pub fn loss(&self, text: &str) {
        self.say(Level::Loss, text)
    }

    /// Messages collected in memory (tests).
    pub fn collect() -> (Messages, Collected) {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let m = Messages::new(move |l, t| {
            if let Ok(mut v) = s.lock() {
                v.push((l, t.to_string()));
            }
        });
        (m, seen)
    }
}
