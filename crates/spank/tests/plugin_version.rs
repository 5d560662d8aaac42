#![allow(clippy::unwrap_used)]
//! The plugin says which Slurm it was built against: `plugin_version` is the
//! `SLURM_VERSION_NUMBER` of the installed headers (Slurm's loader refuses another major.minor),
//! and a running Slurm of another release is refused with a message naming both.

use wattprint_spank::slurm_version::{check_running, parse_header, SlurmVersion};

mod common;

#[test]
fn the_built_plugin_exports_the_headers_version_and_its_names() {
    let header = std::fs::read_to_string("/usr/include/slurm/slurm_version.h").unwrap();
    let v = parse_header(&header).unwrap();
    let path = std::ffi::CString::new(common::plugin_path().display().to_string()).unwrap();
    // SAFETY: dlopen/dlsym of the built plugin; RTLD_LAZY leaves Slurm's functions unresolved
    // (the plugin looks them up itself when Slurm calls it).
    unsafe {
        let h = libc::dlopen(path.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
        assert!(!h.is_null(), "dlopen {}", common::plugin_path().display());
        let ver = libc::dlsym(h, c"plugin_version".as_ptr()) as *const u32;
        assert!(!ver.is_null());
        assert_eq!(*ver, v.number());
        let ty = libc::dlsym(h, c"plugin_type".as_ptr()) as *const std::ffi::c_char;
        assert_eq!(std::ffi::CStr::from_ptr(ty).to_str().unwrap(), "spank");
        let name = libc::dlsym(h, c"plugin_name".as_ptr()) as *const std::ffi::c_char;
        assert_eq!(
            std::ffi::CStr::from_ptr(name).to_str().unwrap(),
            "wattprint"
        );
        for f in [
            c"slurm_spank_init",
            c"slurm_spank_init_post_opt",
            c"slurm_spank_exit",
        ] {
            assert!(!libc::dlsym(h, f.as_ptr()).is_null());
        }
    }
}

#[test]
fn another_slurm_release_is_refused_with_a_clear_message() {
    let built = SlurmVersion::from_number(0x16_05_08);
    assert_eq!(built.release(), "22.05");
    assert!(check_running(built, "22", "05").is_ok());
    assert!(check_running(built, "22", "5").is_ok());
    let e = check_running(built, "23", "02").unwrap_err();
    assert!(
        e.contains("built against Slurm 22.05 but loaded by Slurm 23.02") && e.contains("rebuild"),
        "{e}"
    );
    let e = check_running(built, "22.05.8", "22").unwrap_err();
    assert!(e.contains("cannot tell"), "{e}");
}

#[test]
fn the_header_is_read_or_the_build_says_why() {
    let v = parse_header("#define SLURM_VERSION_NUMBER 0x170b02\n").unwrap();
    assert_eq!((v.major, v.minor, v.micro), (23, 11, 2));
    assert!(parse_header("#define SLURM_VERSION_NUMBER banana\n")
        .unwrap_err()
        .contains("banana"));
    assert!(parse_header("/* nothing */")
        .unwrap_err()
        .contains("no `#define"));
}
