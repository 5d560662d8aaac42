//! Where the host's `/sys` and `/proc` live. Tests and containers (which mount the host's trees
//! elsewhere, e.g. `/host/sys`) point these at other roots with `WATTPRINT_SYSFS_ROOT` and
//! `WATTPRINT_PROCFS_ROOT`.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    pub sys: PathBuf,
    pub proc: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            sys: PathBuf::from("/sys"),
            proc: PathBuf::from("/proc"),
        }
    }
}

impl HostPaths {
    pub fn new(sys: impl Into<PathBuf>, proc: impl Into<PathBuf>) -> Self {
        HostPaths {
            sys: sys.into(),
            proc: proc.into(),
        }
    }

    /// Roots from `WATTPRINT_SYSFS_ROOT` / `WATTPRINT_PROCFS_ROOT`, defaulting to `/sys`, `/proc`.
    pub fn from_env(env: &crate::env::Env) -> Self {
        let get = |k: &str, d: &str| env.path(k).unwrap_or_else(|| PathBuf::from(d));
        HostPaths {
            sys: get("WATTPRINT_SYSFS_ROOT", "/sys"),
            proc: get("WATTPRINT_PROCFS_ROOT", "/proc"),
        }
    }

    pub fn powercap(&self) -> PathBuf {
        self.sys.join("class/powercap")
    }

    pub fn proc_file(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.proc.join(rel)
    }
}
