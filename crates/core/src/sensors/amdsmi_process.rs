//! The processes on an AMD GPU and their use of it, from amdsmi's process list
//! (`amdsmi_get_gpu_process_list`), for the host ledger's per-process split of a card
//! ([`crate::gpu_share`]): the sensor side of [`crate::sensor::Sensor::device_pids`] and
//! [`crate::sensor::Sensor::device_process_util`] for [`super::amdsmi::AmdSmiSensor`].
//!
//! amdsmi gives, per process, the time its contexts kept the GFX engine busy
//! (`engine_usage.gfx`, nanoseconds, cumulative since the process opened the GPU). A process's
//! use of the card over an interval is the growth of that time over the wall-clock time of the
//! interval, in %: the same unit as NVML's per-process SM utilisation, and used the same way
//! (only the ratios between the runs holding a card matter). A process seen for the first time,
//! or whose time went backwards (its pid reused), has no use for that interval.
//!
//! `amdsmi_proc_info_t` is read only as laid out in library versions 24.x (identical in
//! ROCm/amdsmi's `amdsmi.h` from 24.5.0, ROCm 6.1, to 24.7.0; 23.x had another layout): with any
//! other version the process list is not read, and a message says so once.

use std::collections::BTreeMap;

/// At most this many processes are read per GPU and call.
pub const MAX_PROCESSES: usize = 256;
/// A process's GFX time may exceed wall time on parts whose engine time is summed over several
/// compute dies; the use kept per process is at most this (%), the bound
/// [`crate::gpu_share`] applies to a holder.
pub const MAX_USE_PERCENT: f64 = 100.0 * 1024.0;

/// `amdsmi_proc_info_t` as laid out in library versions 24.x (224 bytes).
#[allow(dead_code)] // mirrors the C layout: every field is needed, not every one is read
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct ProcInfoV24 {
    pub name: [u8; 32],
    pub pid: u32,
    pub mem: u64,
    /// `engine_usage.gfx`: GFX engine busy time, ns.
    pub gfx_ns: u64,
    pub enc_ns: u64,
    pub engine_reserved: [u32; 12],
    pub gtt_mem: u64,
    pub cpu_mem: u64,
    pub vram_mem: u64,
    pub memory_reserved: [u32; 10],
    pub container_name: [u8; 32],
    pub reserved: [u32; 4],
}

const _: () = assert!(std::mem::size_of::<ProcInfoV24>() == 224);

impl ProcInfoV24 {
    pub(crate) fn zeroed() -> ProcInfoV24 {
        // SAFETY: all-zero bytes are a valid ProcInfoV24 (integers and byte arrays only).
        unsafe { std::mem::zeroed() }
    }
}

/// One process on one GPU at one instant: `(pid, GFX busy time in ns)`.
pub type ProcSample = (u32, u64);

/// The previous sample of each process on one GPU, to difference the next against.
#[derive(Debug, Default, Clone)]
pub struct ProcessUse {
    prev: BTreeMap<u32, u64>,
    prev_at_ns: Option<u128>,
}

impl ProcessUse {
    /// Each process's use (%) since the previous call, `(pid, %)` sorted by pid, from `now`'s
    /// samples taken `at_ns` (any monotonic clock, ns). Processes gone since are forgotten; a
    /// pid listed twice (several contexts) counts its times summed.
    pub fn update(&mut self, samples: &[ProcSample], at_ns: u128) -> Vec<(u32, f64)> {
        let mut now: BTreeMap<u32, u64> = BTreeMap::new();
        for &(pid, ns) in samples {
            let e = now.entry(pid).or_insert(0);
            *e = e.saturating_add(ns);
        }
        let dt = self
            .prev_at_ns
            .and_then(|p| at_ns.checked_sub(p))
            .filter(|d| *d > 0);
        let mut out = Vec::new();
        if let Some(dt) = dt {
            for (&pid, &ns) in &now {
                if let Some(&before) = self.prev.get(&pid) {
                    if let Some(d) = ns.checked_sub(before) {
                        let pct = (d as f64 / dt as f64 * 100.0).min(MAX_USE_PERCENT);
                        if pct.is_finite() {
                            out.push((pid, pct));
                        }
                    }
                }
            }
        }
        self.prev = now;
        self.prev_at_ns = Some(at_ns);
        out
    }
}

/// The pids of `samples`, sorted and deduplicated.
pub fn pids(samples: &[ProcSample]) -> Vec<u32> {
    let mut v: Vec<u32> = samples.iter().map(|(p, _)| *p).collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_amdsmi_24() {
        // offsets from amdsmi.h 24.x: pid after name[32], mem aligned to 8, engine_usage at 48,
        // memory_usage at 112, container_name at 176.
        let p = ProcInfoV24::zeroed();
        let base = std::ptr::addr_of!(p) as usize;
        assert_eq!(std::ptr::addr_of!(p.pid) as usize - base, 32);
        assert_eq!(std::ptr::addr_of!(p.mem) as usize - base, 40);
        assert_eq!(std::ptr::addr_of!(p.gfx_ns) as usize - base, 48);
        assert_eq!(std::ptr::addr_of!(p.gtt_mem) as usize - base, 112);
        assert_eq!(std::ptr::addr_of!(p.container_name) as usize - base, 176);
    }

    #[test]
    fn use_is_the_growth_of_gfx_time_over_wall_time() {
        let mut u = ProcessUse::default();
        // first sight: no interval yet
        assert!(u
            .update(&[(10, 1_000), (20, 5_000)], 1_000_000_000)
            .is_empty());
        // 1 s later: pid 10 busy 0.6 s, pid 20 0.2 s, pid 30 new
        let v = u.update(
            &[(10, 600_001_000), (20, 200_005_000), (30, 9)],
            2_000_000_000,
        );
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].0, 10);
        assert!((v[0].1 - 60.0).abs() < 1e-9, "{v:?}");
        assert!((v[1].1 - 20.0).abs() < 1e-9, "{v:?}");
        // time going backwards (pid reused) gives nothing; the clock not moving neither
        assert!(u.update(&[(10, 5)], 3_000_000_000).is_empty());
        assert!(u.update(&[(10, 99)], 3_000_000_000).is_empty());
        // a pid listed twice sums; absurd growth is bounded
        let mut u = ProcessUse::default();
        u.update(&[(7, 0), (7, 0)], 0);
        let v = u.update(&[(7, u64::MAX / 2), (7, u64::MAX / 2)], 1);
        assert_eq!(v, vec![(7, MAX_USE_PERCENT)]);
        assert_eq!(pids(&[(3, 0), (1, 0), (3, 5)]), vec![1, 3]);
    }
}
