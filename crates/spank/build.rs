//! Reads the Slurm version the plugin is built against from `slurm/slurm_version.h`
//! (`$SLURM_INCLUDE_DIR`, else /usr/include).
//!
//! Without the headers the workspace still builds (CI lints before it installs Slurm), but
//! loudly: a cargo warning, and a plugin whose `plugin_version` is 0, which Slurm refuses to
//! load ("Incompatible Slurm plugin version") and which logs why if it is ever called.

#[allow(dead_code)]
mod slurm_version {
    include!("src/slurm_version.rs");
}
use slurm_version::parse_header;

fn main() {
    println!("cargo:rerun-if-env-changed=SLURM_INCLUDE_DIR");
    let dir = std::env::var("SLURM_INCLUDE_DIR").unwrap_or_else(|_| "/usr/include".to_string());
    let header = std::path::Path::new(&dir).join("slurm/slurm_version.h");
    println!("cargo:rerun-if-changed={}", header.display());
    let version = std::fs::read_to_string(&header)
        .map_err(|e| format!("cannot read {} ({e})", header.display()))
        .and_then(|t| parse_header(&t).map_err(|e| format!("{}: {e}", header.display())));
    let (number, missing) = match version {
        Ok(v) => (v.number(), None),
        Err(why) => {
            let msg = format!(
                "{why}: this SPANK plugin will not load (plugin_version 0); build it against the Slurm that loads it: install its headers (Debian: apt-get install libslurm-dev) or set SLURM_INCLUDE_DIR to the directory holding slurm/slurm_version.h"
            );
            println!("cargo:warning={msg}");
            (0, Some(msg))
        }
    };
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(
        out.join("built_version.rs"),
        format!(
            "/// `SLURM_VERSION_NUMBER` of the headers the plugin was built against ({}); 0 without them.\npub const BUILT_SLURM_VERSION: u32 = {number:#08x};\n/// Why the plugin was built without Slurm's headers, if it was.\npub const BUILT_WITHOUT_HEADERS: Option<&str> = {missing:?};\n",
            header.display(),
        ),
    )
    .expect("writing built_version.rs");
}
