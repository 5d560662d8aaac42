// The Slurm version the plugin is built against and the one that loads it.
//
// `build.rs` reads `SLURM_VERSION_NUMBER` from `slurm/slurm_version.h` (libslurm-dev) and the
// plugin exports it as `plugin_version`: Slurm's plugin loader refuses a plugin whose major or
// minor differs from its own ("Incompatible Slurm plugin version"). The plugin also compares
// the running Slurm's version (`S_SLURM_VERSION_MAJOR`/`MINOR`) with its own at
// `slurm_spank_init` and, on a mismatch, says so in slurmd's log and measures nothing.
//
// This file is also compiled into `build.rs` (`include!`): keep it free of crate imports.

/// Slurm's version as (major, minor, micro).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlurmVersion {
    pub major: u32,
    pub minor: u32,
    pub micro: u32,
}

impl SlurmVersion {
    /// From `SLURM_VERSION_NUMBER` (`0xMMmmuu`).
    pub fn from_number(n: u32) -> SlurmVersion {
        SlurmVersion {
            major: (n >> 16) & 0xff,
            minor: (n >> 8) & 0xff,
            micro: n & 0xff,
        }
    }

    /// `SLURM_VERSION_NUMBER`.
    pub fn number(&self) -> u32 {
        (self.major << 16) | (self.minor << 8) | self.micro
    }

    /// `22.05`: Slurm releases are named by year and month (minor zero-padded).
    pub fn release(&self) -> String {
        format!("{}.{:02}", self.major, self.minor)
    }
}

/// `SLURM_VERSION_NUMBER` from the text of `slurm_version.h`, or why it is not there.
pub fn parse_header(text: &str) -> Result<SlurmVersion, String> {
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("#define") && words.next() == Some("SLURM_VERSION_NUMBER") {
            let v = words.next().unwrap_or("");
            let hex = v.trim_start_matches('(').trim_end_matches(')');
            let n = hex
                .strip_prefix("0x")
                .or_else(|| hex.strip_prefix("0X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .filter(|n| *n > 0 && *n <= 0xff_ff_ff)
                .ok_or_else(|| format!("SLURM_VERSION_NUMBER `{v}` is not a version number"))?;
            return Ok(SlurmVersion::from_number(n));
        }
    }
    Err("no `#define SLURM_VERSION_NUMBER` in it".to_string())
}

/// Whether the running Slurm (its major and minor release, as `spank_get_item` gives them)
/// can load a plugin built against `built`: the same major and minor (micro releases keep the
/// plugin interface). The error is the message for slurmd's log.
pub fn check_running(built: SlurmVersion, major: &str, minor: &str) -> Result<(), String> {
    let parse = |s: &str| s.trim().parse::<u32>().ok();
    match (parse(major), parse(minor)) {
        (Some(ma), Some(mi)) if ma == built.major && mi == built.minor => Ok(()),
        (Some(ma), Some(mi)) => Err(format!(
            "wattprint plugin built against Slurm {} but loaded by Slurm {ma}.{mi:02}: rebuild it against this Slurm's headers (libslurm-dev; docs/slurm.md); this step is not measured",
            built.release()
        )),
        _ => Err(format!(
            "wattprint plugin built against Slurm {} cannot tell the running Slurm's version (`{major}`.`{minor}`); this step is not measured",
            built.release()
        )),
    }
}
