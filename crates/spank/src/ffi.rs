//! The few SPANK and logging functions the plugin calls, hand-declared (spank.h, Slurm 22.05)
//! and looked up in the process that loaded the plugin (slurmstepd, srun, sbatch) when the
//! plugin starts: nothing is linked at build time, so a missing function is a message in
//! Slurm's log, not a plugin that fails to load.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;

/// `spank_t`.
pub type SpankT = *mut c_void;

/// Slurm's handle for the current callback, as Slurm passed it (only Slurm's callbacks make
/// one).
#[derive(Clone, Copy)]
pub struct Spank(SpankT);

impl Spank {
    /// # Safety
    /// `sp` is the handle Slurm passed to the running callback.
    pub unsafe fn from_raw(sp: SpankT) -> Spank {
        Spank(sp)
    }
}

/// `spank_err_t` value for success.
pub const ESPANK_SUCCESS: c_int = 0;

/// `enum spank_item` (spank.h): the items the plugin asks for.
pub mod item {
    use std::ffi::c_int;
    pub const S_JOB_UID: c_int = 0;
    pub const S_JOB_ID: c_int = 2;
    pub const S_JOB_STEPID: c_int = 3;
    pub const S_JOB_NCPUS: c_int = 8;
    pub const S_JOB_ENV: c_int = 10;
    pub const S_TASK_EXIT_STATUS: c_int = 13;
    pub const S_TASK_PID: c_int = 14;
    pub const S_SLURM_VERSION_MAJOR: c_int = 21;
    pub const S_SLURM_VERSION_MINOR: c_int = 22;
}

/// `enum spank_context`.
pub const S_CTX_LOCAL: c_int = 1;
pub const S_CTX_REMOTE: c_int = 2;
pub const S_CTX_ALLOCATOR: c_int = 3;

/// Step ids Slurm gives its special steps (slurm.h).
pub const SLURM_BATCH_SCRIPT: u32 = 0xffff_fffb;
pub const SLURM_EXTERN_CONT: u32 = 0xffff_fffc;
pub const SLURM_INTERACTIVE_STEP: u32 = 0xffff_fffa;

/// `struct spank_option`.
#[repr(C)]
pub struct SpankOption {
    pub name: *const c_char,
    pub arginfo: *const c_char,
    pub usage: *const c_char,
    pub has_arg: c_int,
    pub val: c_int,
    pub cb: Option<unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int>,
}

type GetItem = unsafe extern "C" fn(SpankT, c_int, ...) -> c_int;
type OptionRegister = unsafe extern "C" fn(SpankT, *mut SpankOption) -> c_int;
type Context = unsafe extern "C" fn() -> c_int;
type SetEnv = unsafe extern "C" fn(SpankT, *const c_char, *const c_char, c_int) -> c_int;
type Log = unsafe extern "C" fn(*const c_char, ...);

/// The functions found in the loading process.
pub struct Api {
    get_item: Option<GetItem>,
    option_register: Option<OptionRegister>,
    context: Option<Context>,
    setenv: Option<SetEnv>,
    info: Option<Log>,
    error: Option<Log>,
    debug: Option<Log>,
}

fn sym(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the symbol up.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// The functions, looked up once.
pub fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        // SAFETY: each symbol, when present, is the Slurm function of the declared C type.
        unsafe {
            Api {
                get_item: sym(c"spank_get_item").map(|p| std::mem::transmute::<_, GetItem>(p)),
                option_register: sym(c"spank_option_register")
                    .map(|p| std::mem::transmute::<_, OptionRegister>(p)),
                context: sym(c"spank_context").map(|p| std::mem::transmute::<_, Context>(p)),
                setenv: sym(c"spank_setenv").map(|p| std::mem::transmute::<_, SetEnv>(p)),
                info: sym(c"slurm_info").map(|p| std::mem::transmute::<_, Log>(p)),
                error: sym(c"slurm_error").map(|p| std::mem::transmute::<_, Log>(p)),
                debug: sym(c"slurm_debug").map(|p| std::mem::transmute::<_, Log>(p)),
            }
        }
    })
}

/// Where Slurm's log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Error,
    Debug,
}

impl Api {
    /// Whether the SPANK functions the plugin needs are all there.
    pub fn complete(&self) -> bool {
        self.get_item.is_some() && self.context.is_some()
    }

    /// `spank_context()`, or -1 when unknown.
    pub fn context(&self) -> c_int {
        // SAFETY: spank_context takes no argument.
        self.context.map(|f| unsafe { f() }).unwrap_or(-1)
    }

    /// A line in Slurm's log (slurmd's for the remote context), `wattprint: ` first.
    pub fn log(&self, level: LogLevel, text: &str) {
        let f = match level {
            LogLevel::Info => self.info,
            LogLevel::Error => self.error,
            LogLevel::Debug => self.debug,
        };
        let Some(f) = f else { return };
        let line =
            CString::new(format!("wattprint: {}", text.replace('\0', " "))).unwrap_or_default();
        // SAFETY: a "%s" format with one NUL-terminated string argument.
        unsafe { f(c"%s".as_ptr(), line.as_ptr()) }
    }

    /// A `uint32_t` item.
    pub fn u32_item(&self, sp: Spank, it: c_int) -> Option<u32> {
        let f = self.get_item?;
        let mut v: u32 = 0;
        // SAFETY: the item's documented out-argument is a `uint32_t *`.
        (unsafe { f(sp.0, it, &mut v as *mut u32) } == ESPANK_SUCCESS).then_some(v)
    }

    /// A `uint16_t` item (S_JOB_NCPUS).
    pub fn u16_item(&self, sp: Spank, it: c_int) -> Option<u16> {
        let f = self.get_item?;
        let mut v: u16 = 0;
        // SAFETY: the item's documented out-argument is a `uint16_t *`.
        (unsafe { f(sp.0, it, &mut v as *mut u16) } == ESPANK_SUCCESS).then_some(v)
    }

    /// An `int` or `pid_t` item (S_TASK_PID, S_TASK_EXIT_STATUS).
    pub fn int_item(&self, sp: Spank, it: c_int) -> Option<c_int> {
        let f = self.get_item?;
        let mut v: c_int = 0;
        // SAFETY: the item's documented out-argument is an `int *` (pid_t is int).
        (unsafe { f(sp.0, it, &mut v as *mut c_int) } == ESPANK_SUCCESS).then_some(v)
    }

    /// A `char **` item (S_SLURM_VERSION_*).
    pub fn str_item(&self, sp: Spank, it: c_int) -> Option<String> {
        let f = self.get_item?;
        let mut p: *const c_char = std::ptr::null();
        // SAFETY: the item's documented out-argument is a `char **`; Slurm owns the string.
        if unsafe { f(sp.0, it, &mut p as *mut *const c_char) } != ESPANK_SUCCESS || p.is_null() {
            return None;
        }
        // SAFETY: a NUL-terminated string owned by Slurm, read at once.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    /// The job's environment (S_JOB_ENV, a NULL-terminated `char **`), at most `max` entries.
    pub fn job_env(&self, sp: Spank, max: usize) -> Option<Vec<(String, String)>> {
        let f = self.get_item?;
        let mut p: *const *const c_char = std::ptr::null();
        // SAFETY: S_JOB_ENV's out-argument is a `char ***`.
        if unsafe { f(sp.0, item::S_JOB_ENV, &mut p as *mut *const *const c_char) }
            != ESPANK_SUCCESS
            || p.is_null()
        {
            return None;
        }
        let mut out = Vec::new();
        for i in 0..max {
            // SAFETY: a NULL-terminated array of NUL-terminated strings owned by slurmstepd.
            let e = unsafe { *p.add(i) };
            if e.is_null() {
                break;
            }
            // SAFETY: as above.
            let s = unsafe { CStr::from_ptr(e) }.to_string_lossy();
            if let Some((k, v)) = s.split_once('=') {
                out.push((k.to_string(), v.to_string()));
            }
        }
        Some(out)
    }

    /// Register a command-line option (`--NAME=ARG` of srun, sbatch and salloc).
    pub fn register_option(&self, sp: Spank, opt: &'static mut SpankOption) -> bool {
        match self.option_register {
            // SAFETY: the option lives for the process's life, as Slurm requires.
            Some(f) => (unsafe { f(sp.0, opt as *mut SpankOption) }) == ESPANK_SUCCESS,
            None => false,
        }
    }

    /// Set a variable in the job's environment (remote context, before the tasks start).
    pub fn setenv(&self, sp: Spank, name: &str, value: &str) -> bool {
        let (Some(f), Ok(n), Ok(v)) = (self.setenv, CString::new(name), CString::new(value)) else {
            return false;
        };
        // SAFETY: NUL-terminated strings; overwrite = 1.
        unsafe { f(sp.0, n.as_ptr(), v.as_ptr(), 1) == ESPANK_SUCCESS }
    }
}
