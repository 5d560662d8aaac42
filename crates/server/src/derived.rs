//! Figures the dashboard shows that only a run's record holds (GPU and idle GPU energy, static
//! energy, operational and embodied emissions), derived once when the run is stored and kept in
//! `runs` beside it, so that the rollups ([`crate::db::rollup_schema`]) can sum them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use wattprint_core::record::RunRecord;
use wattprint_core::sensor::DeviceKind;

/// Figures read from a run's stored record.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunDerived {
    /// Energy charged to the run's GPUs, kWh.
    pub gpu_kwh: f64,
    /// Idle (static) energy of the run's GPUs, kWh (see [`derive`]).
    pub idle_gpu_kwh: f64,
    /// Its emissions: idle kWh × PUE × intensity, kg CO2e.
    pub idle_gpu_kg: f64,
    /// Static energy of all devices (`energy_kwh.static`), kWh.
    pub static_kwh: f64,
    /// `emissions_kg.operational`.
    pub operational_kg: f64,
    /// `emissions_kg.embodied` (0 when not counted).
    pub embodied_kg: f64,
    /// The record did not count embodied emissions (`emissions_kg.embodied` is null).
    pub embodied_not_counted: bool,
    /// GPUs with no idle power, neither in the record nor in the GPU table.
    pub gpus_without_idle: u32,
}

/// Idle power of a GPU model from the GPU table (CCF min watts), memoised by name.
fn table_idle_w(name: &str) -> Option<f64> {
    static MEMO: Mutex<BTreeMap<String, Option<f64>>> = Mutex::new(BTreeMap::new());
    if let Ok(m) = MEMO.lock() {
        if let Some(v) = m.get(name) {
            return *v;
        }
    }
    let v = match wattprint_core::factors::gpu::gpu_lookup(name) {
        wattprint_core::factors::gpu::GpuMatch::Found(g) => g.idle_w,
        _ => None,
    };
    if let Ok(mut m) = MEMO.lock() {
        if m.len() < 4096 {
            m.insert(name.to_string(), v);
        }
    }
    v
}

/// The figures of one record. A GPU's idle energy is computed as the record computes static
/// energy (`wattprint_core::record::static_energy_j`): idle power × duration × the share of the
/// device's energy charged to the run, never more than that energy. The idle power is the
/// device's own (`devices[].idle_power_w`) or else the GPU table's for its model name.
pub fn derive(rec: &RunRecord) -> RunDerived {
    let mut d = RunDerived {
        static_kwh: rec.energy_kwh.static_.0,
        operational_kg: rec.emissions_kg.operational,
        embodied_kg: rec.emissions_kg.embodied,
        embodied_not_counted: !rec.emissions_kg.embodied_counted,
        ..RunDerived::default()
    };
    for dev in rec.devices.iter().filter(|x| x.kind == DeviceKind::Gpu) {
        d.gpu_kwh += dev.energy_kwh;
        let Some(idle_w) = dev.idle_power_w.or_else(|| table_idle_w(&dev.name)) else {
            d.gpus_without_idle += 1;
            continue;
        };
        let share = if dev.machine_energy_kwh > 0.0 {
            (dev.energy_kwh / dev.machine_energy_kwh).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let kwh = (idle_w * rec.duration_s * share / 3.6e6)
            .min(dev.energy_kwh)
            .max(0.0);
        if kwh.is_finite() {
            d.idle_gpu_kwh += kwh;
        }
    }
    d.idle_gpu_kg = d.idle_gpu_kwh * rec.pue * rec.carbon_intensity.g_per_kwh / 1000.0;
    d
}

impl RunDerived {
    /// The derived columns of `runs`, in the order of `crate::store_rollups::DERIVED_SET` and of
    /// the run upsert. A figure that is not finite (only a record stored before the server
    /// validated records can give one) is stored as 0 (the rollups bound every figure anyway).
    pub fn params(&self) -> Vec<crate::db::Val> {
        let f = |x: f64| crate::db::Val::F(if x.is_finite() { x } else { 0.0 });
        vec![
            f(self.gpu_kwh),
            f(self.idle_gpu_kwh),
            f(self.idle_gpu_kg),
            f(self.static_kwh),
            f(self.operational_kg),
            f(self.embodied_kg),
            crate::db::Val::I(i64::from(self.embodied_not_counted)),
            crate::db::Val::I(i64::from(self.gpus_without_idle)),
        ]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn idle_gpu_energy_follows_the_static_energy_rule() {
        let v = serde_json::json!({
            "schema": "wattprint.run/1", "id": "r", "project": "p", "tags": {}, "command": [],
            "started_at": "2025-01-01T00:00:00Z", "ended_at": null, "duration_s": 3600.0,
            "status": "completed", "exit_code": 0,
            "host": {"hostname": "h", "cpu_model": "c", "logical_cpus": 1, "ram_gb": 1.0, "gpus": []},
            "scope": "process", "interval_s": 1.0,
            "energy_kwh": {"cpu": 0.0, "gpu": 0.5, "ram": 0.0, "other": 0.0, "dynamic": 0.4,
                           "static": 0.1, "it": 0.5, "infrastructure": 0.0, "facility": 0.5, "total": 0.5},
            "devices": [
                {"id": "gpu:0", "kind": "gpu", "method": "nvml-energy", "name": "x", "energy_kwh": 0.3,
                 "avg_power_w": 300.0, "machine_energy_kwh": 0.6, "idle_power_w": 60.0},
                {"id": "gpu:1", "kind": "gpu", "method": "nvml-energy", "name": "no such gpu model",
                 "energy_kwh": 0.2, "avg_power_w": 200.0, "machine_energy_kwh": 0.2},
                {"id": "cpu:0", "kind": "cpu", "method": "rapl", "name": "c", "energy_kwh": 0.05,
                 "avg_power_w": 50.0, "machine_energy_kwh": 0.05, "idle_power_w": 10.0}
            ],
            "methods": {"cpu": "rapl", "gpu": "nvml-energy", "ram": "none"}, "pue": 1.5,
            "carbon_intensity": {"g_per_kwh": 200.0, "source": "t"},
            "location": {"code": "FR", "name": "France", "known": true, "pue_source": "t"},
            "emissions_kg": {"dynamic": 0.1, "static": 0.03, "infrastructure": 0.02, "embodied": 0.01,
                             "operational": 0.15, "total": 0.16},
            "equivalents": {"car_km": 0.0, "tree_months": 0.0, "flights_paris_london": 0.0,
                            "flights_paris_dublin": 0.0, "flights_new_york_san_francisco": 0.0, "phone_charges": 0.0},
            "assumptions": [], "factors_version": "t", "warnings": [], "samples": 1, "skipped_ticks": 0,
            "wattprint_version": "t"
        });
        let rec: RunRecord = serde_json::from_value(v).unwrap();
        let d = derive(&rec);
        // gpu:0: 60 W × 1 h × (0.3 / 0.6) = 0.03 kWh; gpu:1 has no idle power anywhere.
        assert!((d.idle_gpu_kwh - 0.03).abs() < 1e-12, "{d:?}");
        assert!((d.idle_gpu_kg - 0.03 * 1.5 * 0.2).abs() < 1e-12);
        assert_eq!(d.gpus_without_idle, 1);
        assert!((d.gpu_kwh - 0.5).abs() < 1e-12);
        assert_eq!(
            (d.static_kwh, d.operational_kg, d.embodied_kg),
            (0.1, 0.15, 0.01)
        );
    }
}
