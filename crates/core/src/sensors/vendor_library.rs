//! Loading a GPU vendor's C library at run time (`dlopen`), shared by the AMD (amdsmi, ROCm
//! SMI) and Intel (Level Zero) sensors. NVML goes through the `nvml-wrapper` crate, which does the
//! same.
//!
//! wattprint builds and runs on machines without the library; a missing library or symbol is an
//! error that names the file and says what to set, never a crash.

use std::ffi::OsString;
use std::path::Path;

/// A loaded vendor library. Function pointers taken from it with [`VendorLibrary::function`]
/// stay valid as long as it is alive: keep it in the same struct as the pointers.
pub struct VendorLibrary {
    lib: libloading::Library,
    shown: String,
}

impl std::fmt::Debug for VendorLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorLibrary")
            .field("library", &self.shown)
            .finish_non_exhaustive()
    }
}

impl VendorLibrary {
    /// Load the first of `candidates` that loads (a path, or a file name for the dynamic
    /// loader's search). The error lists every candidate tried and why each failed.
    pub fn open(candidates: &[OsString]) -> Result<VendorLibrary, String> {
        let mut tried = Vec::new();
        for c in candidates {
            // SAFETY: loading a shared library runs its initialisers; the candidates are the
            // vendor's library (or the one the user named), which is what we mean to run.
            match unsafe { libloading::Library::new(c) } {
                Ok(lib) => {
                    return Ok(VendorLibrary {
                        lib,
                        shown: c.to_string_lossy().into_owned(),
                    })
                }
                Err(e) => tried.push(format!("{}: {e}", c.to_string_lossy())),
            }
        }
        Err(tried.join("; "))
    }

    /// The library as it was named to the loader.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The C function `name` as a function pointer of type `F`.
    ///
    /// # Safety
    /// `F` must be an `unsafe extern "C" fn` type matching the symbol's C declaration, and the
    /// pointer must not be called after this library is dropped.
    pub unsafe fn function<F: Copy>(&self, name: &str) -> Result<F, String> {
        let mut bytes = name.as_bytes().to_vec();
        bytes.push(0);
        // SAFETY: the caller guarantees that F matches the symbol's type.
        match unsafe { self.lib.get::<F>(&bytes) } {
            Ok(sym) => Ok(*sym),
            Err(e) => Err(format!("{} has no `{name}` ({e})", self.shown)),
        }
    }
}

/// The candidates to load: the given path (a flag or its variable), else the defaults.
pub fn candidates(library: Option<&Path>, defaults: &[&str]) -> Vec<OsString> {
    match library {
        Some(p) => vec![p.as_os_str().to_owned()],
        None => defaults.iter().map(OsString::from).collect(),
    }
}

/// The text of a NUL-terminated C string in `buf` (all of `buf` when it has no NUL), invalid
/// UTF-8 replaced, surrounding blanks removed.
pub fn c_string(buf: &[u8]) -> String {
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).trim().to_string()
}

/// Whether the kernel module `name` is loaded, per `<sysfs>/module/<name>` (the sysfs root
/// follows `WATTPRINT_SYSFS_ROOT`). The AMD and Intel sensors load their vendor's library by
/// default only where its driver runs: elsewhere the libraries print diagnostics of their own.
pub fn kernel_module_loaded(paths: &crate::host::HostPaths, name: &str) -> bool {
    paths.sys.join("module").join(name).is_dir()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn c_strings_stop_at_nul_and_are_bounded_by_the_buffer() {
        assert_eq!(
            c_string(b"AMD Instinct MI250X\0junk"),
            "AMD Instinct MI250X"
        );
        assert_eq!(c_string(b"no terminator"), "no terminator");
        assert_eq!(c_string(b"\0"), "");
        assert_eq!(c_string(b" padded \0"), "padded");
        assert_eq!(c_string(&[0xff, b'a', 0]), "\u{fffd}a");
    }

    #[test]
    fn a_missing_library_names_every_candidate() {
        let e = VendorLibrary::open(&candidates(
            None,
            &["/nonexistent/a.so", "/nonexistent/b.so"],
        ))
        .unwrap_err();
        assert!(
            e.contains("/nonexistent/a.so") && e.contains("/nonexistent/b.so"),
            "{e}"
        );
        let c = candidates(Some(Path::new("/x/lib.so")), &["default.so"]);
        assert_eq!(c, vec![OsString::from("/x/lib.so")]);
    }
}
