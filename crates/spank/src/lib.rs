//! The wattprint SPANK plugin (`libwattprint_spank.so`): every Slurm job step measured, per
//! step and node, by a wattprint session inside slurmstepd (docs/slurm.md).
//!
//! Thin by design: the measuring is `wattprint-session`'s; this crate only reads what Slurm
//! says about the step ([`ffi`]), the site's options ([`plugin_config`]), and drives one
//! [`step::MeasuredStep`] from `slurm_spank_init_post_opt` to `slurm_spank_exit`. Nothing it
//! does may fail a job: every callback returns 0 (success) whatever happens, panics included,
//! and problems go to slurmd's log.

pub mod ffi;
pub mod plugin_config;
pub mod slurm_log;
/// The Slurm version built against and the running one.
pub mod slurm_version;
pub mod step;
pub mod step_stopper;

use ffi::{item, LogLevel, Spank, SpankOption, SpankT};
use plugin_config::PluginConfig;
use std::ffi::{c_char, c_int, c_uint, CStr};
use std::sync::Mutex;
use step::{MeasuredStep, StepInfo};

include!(concat!(env!("OUT_DIR"), "/built_version.rs"));

/// `plugin_name` (Slurm's plugin loader).
#[no_mangle]
pub static plugin_name: [u8; 10] = *b"wattprint\0";
/// `plugin_type`: a SPANK plugin.
#[no_mangle]
pub static plugin_type: [u8; 6] = *b"spank\0";
/// `plugin_version`: `SLURM_VERSION_NUMBER` of the headers built against; Slurm refuses to load
/// a plugin of another major.minor release.
#[no_mangle]
pub static plugin_version: c_uint = BUILT_SLURM_VERSION;
/// `spank_plugin_version` (`SPANK_PLUGIN(name, 1)`).
#[no_mangle]
pub static spank_plugin_version: c_uint = 1;

/// What the plugin knows in this process.
struct Plugin {
    cfg: PluginConfig,
    /// Off: the running Slurm is not the one built against, or the functions are missing.
    disabled: bool,
    step: Option<MeasuredStep>,
}

static PLUGIN: Mutex<Option<Plugin>> = Mutex::new(None);
/// The job's `--wattprint` (set by Slurm through [`option_cb`]).
static SWITCH: Mutex<Option<bool>> = Mutex::new(None);

fn log(level: LogLevel, text: &str) {
    ffi::api().log(level, text);
}

/// Run a callback's body: a panic is logged, and Slurm always sees success.
fn guarded(what: &str, f: impl FnOnce()) -> c_int {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        log(
            LogLevel::Error,
            &format!("internal error in {what}; the job goes on"),
        );
    }
    0
}

fn args(ac: c_int, av: *mut *mut c_char) -> Vec<String> {
    let mut out = Vec::new();
    if av.is_null() {
        return out;
    }
    for i in 0..ac.clamp(0, 256) as usize {
        // SAFETY: Slurm passes `ac` NUL-terminated strings in `av`.
        let p = unsafe { *av.add(i) };
        if !p.is_null() {
            // SAFETY: as above.
            out.push(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned());
        }
    }
    out
}

unsafe extern "C" fn option_cb(_val: c_int, optarg: *const c_char, _remote: c_int) -> c_int {
    let v = if optarg.is_null() {
        String::new()
    } else {
        // SAFETY: Slurm passes the option's NUL-terminated argument.
        unsafe { CStr::from_ptr(optarg) }
            .to_string_lossy()
            .into_owned()
    };
    match plugin_config::parse_switch(&v) {
        Some(b) => {
            if let Ok(mut s) = SWITCH.lock() {
                *s = Some(b);
            }
            0
        }
        // The one place the plugin says no: srun/sbatch reject a misspelt option at once.
        None => {
            log(
                LogLevel::Error,
                &format!("--wattprint={v}: must be on or off"),
            );
            -1
        }
    }
}

/// `--wattprint=off|on` for srun, sbatch and salloc.
fn register_option(sp: Spank) {
    let opt = Box::leak(Box::new(SpankOption {
        name: c"wattprint".as_ptr(),
        arginfo: c"off|on".as_ptr(),
        usage: c"Measure this job's energy and carbon with wattprint (on), or not (off, where the cluster allows it)".as_ptr(),
        has_arg: 1,
        val: 0,
        cb: Some(option_cb),
    }));
    if !ffi::api().register_option(sp, opt) {
        log(LogLevel::Error, "cannot register the --wattprint option");
    }
}

/// # Safety
/// Called by Slurm with its handle and the plugin's plugstack.conf words.
#[no_mangle]
pub unsafe extern "C" fn slurm_spank_init(sp: SpankT, ac: c_int, av: *mut *mut c_char) -> c_int {
    let words = args(ac, av);
    // SAFETY: Slurm's handle for this callback.
    let sp = unsafe { Spank::from_raw(sp) };
    guarded("slurm_spank_init", || {
        let api = ffi::api();
        if !api.complete() {
            return;
        }
        let ctx = api.context();
        if matches!(
            ctx,
            ffi::S_CTX_LOCAL | ffi::S_CTX_REMOTE | ffi::S_CTX_ALLOCATOR
        ) {
            register_option(sp);
        }
        if ctx != ffi::S_CTX_REMOTE {
            return;
        }
        let built = slurm_version::SlurmVersion::from_number(BUILT_SLURM_VERSION);
        let major = api
            .str_item(sp, item::S_SLURM_VERSION_MAJOR)
            .unwrap_or_default();
        let minor = api
            .str_item(sp, item::S_SLURM_VERSION_MINOR)
            .unwrap_or_default();
        let mut disabled = false;
        if let Some(why) = BUILT_WITHOUT_HEADERS {
            log(LogLevel::Error, why);
            disabled = true;
        } else if let Err(e) = slurm_version::check_running(built, &major, &minor) {
            log(LogLevel::Error, &e);
            disabled = true;
        }
        let (cfg, problems) = PluginConfig::parse(&words);
        for p in problems {
            log(LogLevel::Error, &p);
        }
        if let Ok(mut g) = PLUGIN.lock() {
            *g = Some(Plugin {
                cfg,
                disabled,
                step: None,
            });
        }
    })
}

/// Remote context, options known, tasks not started: start measuring the step.
///
/// # Safety
/// Called by Slurm with its handle.
#[no_mangle]
pub unsafe extern "C" fn slurm_spank_init_post_opt(
    sp: SpankT,
    _ac: c_int,
    _av: *mut *mut c_char,
) -> c_int {
    // SAFETY: Slurm's handle for this callback.
    let sp = unsafe { Spank::from_raw(sp) };
    guarded("slurm_spank_init_post_opt", || {
        let api = ffi::api();
        if api.context() != ffi::S_CTX_REMOTE {
            return;
        }
        let Ok(mut g) = PLUGIN.lock() else { return };
        let Some(p) = g.as_mut() else { return };
        if p.disabled || p.step.is_some() {
            return;
        }
        let (Some(job_id), Some(step_id)) = (
            api.u32_item(sp, item::S_JOB_ID),
            api.u32_item(sp, item::S_JOB_STEPID),
        ) else {
            log(
                LogLevel::Error,
                "cannot read the job and step ids; not measured",
            );
            return;
        };
        let info = StepInfo {
            job_id,
            step_id,
            job_env: api.job_env(sp, step::MAX_ENV).unwrap_or_default(),
        };
        if !info.measurable() {
            return;
        }
        let switch = SWITCH.lock().ok().and_then(|s| *s);
        let (on, note) = p.cfg.measured(switch);
        if let Some(n) = &note {
            log(LogLevel::Info, &format!("step {}: {n}", info.name()));
        }
        if !on {
            log(
                LogLevel::Info,
                &format!(
                    "step {} not measured ({})",
                    info.name(),
                    if switch.is_some() {
                        "--wattprint=off"
                    } else {
                        "default=off"
                    }
                ),
            );
            return;
        }
        let name = info.name();
        match MeasuredStep::start(&p.cfg, info, note.into_iter().collect(), |s| {
            log(LogLevel::Info, s)
        }) {
            Ok(m) => {
                for (k, v) in m.task_env(&p.cfg) {
                    if !api.setenv(sp, &k, &v) {
                        log(LogLevel::Debug, &format!("cannot set {k} for the tasks"));
                    }
                }
                p.step = Some(m);
            }
            Err(e) => log(LogLevel::Error, &format!("step {name} not measured: {e:#}")),
        }
    })
}

/// Remote context, in slurmstepd after a task was forked: its pid.
///
/// # Safety
/// Called by Slurm with its handle.
#[no_mangle]
pub unsafe extern "C" fn slurm_spank_task_post_fork(
    sp: SpankT,
    _ac: c_int,
    _av: *mut *mut c_char,
) -> c_int {
    // SAFETY: Slurm's handle for this callback.
    let sp = unsafe { Spank::from_raw(sp) };
    guarded("slurm_spank_task_post_fork", || {
        let Some(pid) = ffi::api().int_item(sp, item::S_TASK_PID) else {
            return;
        };
        if let Ok(g) = PLUGIN.lock() {
            if let Some(m) = g.as_ref().and_then(|p| p.step.as_ref()) {
                if pid > 0 {
                    m.task_started(pid as u32);
                }
            }
        }
    })
}

/// Remote context, in slurmstepd after a task ended: its status.
///
/// # Safety
/// Called by Slurm with its handle.
#[no_mangle]
pub unsafe extern "C" fn slurm_spank_task_exit(
    sp: SpankT,
    _ac: c_int,
    _av: *mut *mut c_char,
) -> c_int {
    // SAFETY: Slurm's handle for this callback.
    let sp = unsafe { Spank::from_raw(sp) };
    guarded("slurm_spank_task_exit", || {
        let Some(status) = ffi::api().int_item(sp, item::S_TASK_EXIT_STATUS) else {
            return;
        };
        if let Ok(mut g) = PLUGIN.lock() {
            if let Some(m) = g.as_mut().and_then(|p| p.step.as_mut()) {
                m.task_ended(status);
            }
        }
    })
}

/// The step ended (remote context): the final record.
///
/// # Safety
/// Called by Slurm with its handle.
#[no_mangle]
pub unsafe extern "C" fn slurm_spank_exit(_sp: SpankT, _ac: c_int, _av: *mut *mut c_char) -> c_int {
    guarded("slurm_spank_exit", || {
        let step = PLUGIN
            .lock()
            .ok()
            .and_then(|mut g| g.as_mut().and_then(|p| p.step.take()));
        let Some(m) = step else { return };
        let name = m.info.name();
        let done = m.finish();
        let r = &done.record;
        log(
            LogLevel::Info,
            &format!(
                "step {name}: run {} {}, {} kWh, {} kg CO2e{}",
                r.id,
                r.status.as_str(),
                wattprint_core::format::sig(r.energy_kwh.total.0),
                wattprint_core::format::sig(r.emissions_kg.total),
                if done.saved_locally {
                    ""
                } else {
                    " (not saved in the site store)"
                }
            ),
        );
    })
}
