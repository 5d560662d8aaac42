//! Where a session keeps its files: the local store, the upload spool, the cached server
//! policy, progress files. Resolved once by the front end from its [`Env`].

use std::path::PathBuf;
use wattprint_core::env::Env;

/// The data directory and the places under it.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `$WATTPRINT_HOME`, else `$XDG_DATA_HOME/wattprint`, else `~/.local/share/wattprint`; or
    /// why none could be found.
    pub home: Result<PathBuf, String>,
}

impl Paths {
    pub fn resolve(env: &Env) -> Paths {
        Paths {
            home: wattprint_store::store::home_dir(env).map_err(|e| format!("{e:#}")),
        }
    }

    /// Everything under `dir` (tests, embedders).
    pub fn at(dir: impl Into<PathBuf>) -> Paths {
        Paths {
            home: Ok(dir.into()),
        }
    }

    /// The local store's database file.
    pub fn store_db(&self) -> Result<PathBuf, String> {
        self.home.clone().map(|h| h.join("wattprint.db"))
    }

    /// What could not be sent to the server, to be sent by `wattprint sync`.
    pub fn spool(&self) -> Result<PathBuf, String> {
        self.home.clone().map(|h| h.join("spool"))
    }

    /// The server's policy, as last fetched.
    pub fn policy_cache(&self) -> Option<PathBuf> {
        self.home.as_ref().ok().map(|h| h.join("policy.json"))
    }

    /// Where jobs write their progress (`WATTPRINT_PROGRESS_FILE`): under the home directory,
    /// else the system's temporary directory.
    pub fn progress_dir(&self) -> PathBuf {
        self.home
            .as_ref()
            .ok()
            .map(|h| h.join("progress"))
            .and_then(|d| std::fs::create_dir_all(&d).ok().map(|_| d))
            .unwrap_or_else(std::env::temp_dir)
    }
}
