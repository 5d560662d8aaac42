#![allow(clippy::unwrap_used)]
//! The plugin says which Slurm it was built against: `plugin_version` is the
//! `SLURM_VERSION_NUMBER` of the installed headers (Slurm's loader refuses another major.minor),
//! and a running Slurm of another release is refused with a message naming both; the real Slurm
//! refuses the same plugin patched to claim another release (or 0, built without headers).

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

/// The file offset of the plugin's `plugin_version` (its address in the loaded image, found
/// with dladdr, mapped through the ELF section headers).
fn plugin_version_offset(so: &[u8]) -> usize {
    let path = std::ffi::CString::new(common::plugin_path().display().to_string()).unwrap();
    // SAFETY: dlopen/dlsym/dladdr of the built plugin (RTLD_LAZY: Slurm's functions are looked
    // up by the plugin itself, never at load).
    let vaddr = unsafe {
        let h = libc::dlopen(path.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
        assert!(!h.is_null());
        let p = libc::dlsym(h, c"plugin_version".as_ptr());
        let mut info: libc::Dl_info = std::mem::zeroed();
        assert!(libc::dladdr(p, &mut info) != 0);
        p as usize - info.dli_fbase as usize
    };
    let u16_at = |o: usize| u16::from_le_bytes(so[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(so[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(so[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(&so[..5], b"\x7fELF\x02", "a 64-bit ELF file");
    let (shoff, shentsize, shnum) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c));
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        const SHT_NOBITS: u32 = 8;
        let (addr, off, size) = (u64_at(sh + 0x10), u64_at(sh + 0x18), u64_at(sh + 0x20));
        if u32_at(sh + 4) != SHT_NOBITS && addr <= vaddr && vaddr < addr + size {
            return vaddr - addr + off;
        }
    }
    panic!("plugin_version at {vaddr:#x} is in no section");
}

#[test]
fn slurm_refuses_a_plugin_built_for_another_release() {
    let c = common::Cluster::get();
    let so = std::fs::read(common::plugin_path()).unwrap();
    let at = plugin_version_offset(&so);
    let header = std::fs::read_to_string("/usr/include/slurm/slurm_version.h").unwrap();
    let built = parse_header(&header).unwrap().number();
    assert_eq!(
        u32::from_le_bytes(so[at..at + 4].try_into().unwrap()),
        built
    );
    // The same plugin as if built against Slurm 23.02, and as built without the headers (0).
    for (version, shown) in [(0x17_02_00u32, "23.02"), (0, "0.00")] {
        let mut patched = so.clone();
        patched[at..at + 4].copy_from_slice(&version.to_le_bytes());
        let lib = c.t().join(format!("libwattprint_spank-{version:x}.so"));
        std::fs::write(&lib, &patched).unwrap();
        let plugstack = c.t().join("plugstack.conf");
        std::fs::write(&plugstack, format!("required {}\n", lib.display())).unwrap();
        let conf = std::fs::read_to_string(c.dir.join("etc/slurm.conf")).unwrap();
        let conf: String = conf
            .lines()
            .map(|l| {
                if l.starts_with("PlugStackConfig=") {
                    format!("PlugStackConfig={}\n", plugstack.display())
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let conf_path = c.t().join("slurm.conf");
        std::fs::write(&conf_path, conf).unwrap();
        // srun loads the plugin stack to list the plugins' options.
        let o = std::process::Command::new("srun")
            .arg("--help")
            .env("SLURM_CONF", &conf_path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("Incompatible Slurm plugin") && err.contains(&format!("({shown}")),
            "srun --help with a plugin for Slurm {shown}: {err}"
        );
    }
}
