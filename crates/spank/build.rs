//! Reads the Slurm version the plugin is built against from `slurm/slurm_version.h`
//! (`$SLURM_INCLUDE_DIR`, else /usr/include): without it the build stops with a clear message.

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
    let text = match std::fs::read_to_string(&header) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "wattprint-spank: cannot read {} ({e}): the SPANK plugin is built against the Slurm that will load it; install its headers (Debian: apt-get install libslurm-dev) or set SLURM_INCLUDE_DIR to the directory holding slurm/slurm_version.h",
                header.display()
            );
            std::process::exit(1);
        }
    };
    let v = match parse_header(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("wattprint-spank: {}: {e}", header.display());
            std::process::exit(1);
        }
    };
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(
        out.join("built_version.rs"),
        format!(
            "/// `SLURM_VERSION_NUMBER` of the headers the plugin was built against ({}).\npub const BUILT_SLURM_VERSION: u32 = {:#08x};\n",
            header.display(),
            v.number()
        ),
    )
    .expect("writing built_version.rs");
}
