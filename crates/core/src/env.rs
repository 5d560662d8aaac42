//! The environment a front end runs in, captured once and passed in.
//!
//! Libraries never read the process environment themselves: a SPANK plugin runs inside
//! slurmstepd, whose environment is not the job's, and a Python process may change its own
//! environment after import. A front end captures what applies ([`Env::process`] for the CLI,
//! the job's variables for the plugin) and hands the value to every function that needs it.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Environment variables by name (values made valid UTF-8, lossily).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    /// This process's environment, now.
    pub fn process() -> Env {
        Env(std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect())
    }

    /// An environment holding exactly `pairs` (tests, or a job's environment).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect())
    }

    /// The variable's value, if set and not blank (blank is treated as unset everywhere).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// The value as a path, if set and not blank.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).map(PathBuf::from)
    }

    /// Set (or replace) a variable in this value (never in the process).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    /// Every variable, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_count_as_unset() {
        let e = Env::from_pairs([("A", " "), ("B", "x"), ("C", "")]);
        assert_eq!(e.get("A"), None);
        assert_eq!(e.get("B"), Some("x"));
        assert_eq!(e.get("C"), None);
        assert_eq!(e.get("D"), None);
    }
}
