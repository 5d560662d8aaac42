//! Embodied (manufacturing) emissions per server component, and the server lifetime.
//!
//! Coefficients from Cloud Carbon Coefficients (ccf-coefficients, which follows the Teads method
//! and the Dell PowerEdge R740 LCA), derived by `scripts/build-factors.py` from
//! `output/coefficients-aws-embodied.csv` joined with `data/aws-instances.csv` and checked to be
//! constant over all 621 AWS rows:
//!
//! * server base (1 socket, 16 GB DRAM, no disk): 1000 kgCO2e (`total - Σ additional_*`);
//! * per GPU: 150 kgCO2e (`additional_gpus / Platform GPU Quantity`: p2 2400/16, p3/p4d/g4dn
//!   1200/8, g3/g4ad 600/4);
//! * per GB DRAM above 16 GB: 533/384 kgCO2e (R740: 533 kg for 384 GB);
//! * per SSD: 100 kgCO2e, per HDD: 50 kgCO2e, per additional CPU socket: 100 kgCO2e;
//! * lifetime: CCF `SERVER_EXPECTED_LIFESPAN` 35 040 h (4 years).
//!
//! Server total = `base + 150·gpus + 533/384·max(0, dram − 16) + 100·ssd + 50·hdd +
//! 100·(sockets − 1)`. A job's share is `total × hours / lifetime` (SCI / CCF linear
//! allocation, not capped: [`crate::accounting::amortisation_fraction`]).

use super::table;
use super::Provenance;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

const CSV: &str = include_str!("../../data/factors/embodied.csv");

/// One embodied-emissions coefficient.
#[derive(Debug, Clone, Serialize)]
pub struct EmbodiedFactor {
    /// `server_base`, `gpu`, `dram_gb`, `dram_baseline_gb`, `ssd`, `hdd`, `cpu_socket`,
    /// `lifetime_hours`.
    pub component: String,
    pub value: f64,
    pub unit: String,
    pub provenance: Provenance,
}

#[derive(Deserialize)]
struct Raw {
    component: String,
    value: f64,
    unit: String,
    source: String,
    dataset: String,
    year: Option<u16>,
    licence: String,
    kind: String,
    scope: String,
    note: String,
}

fn load() -> Result<Vec<EmbodiedFactor>, String> {
    let raw: Vec<Raw> = table::parse("embodied.csv", CSV)?;
    raw.into_iter()
        .map(|r| {
            Ok(EmbodiedFactor {
                value: table::check_value("embodied.csv", &r.component, r.value)?,
                provenance: table::provenance(
                    "embodied.csv",
                    &r.source,
                    &r.dataset,
                    r.year,
                    &r.licence,
                    &r.kind,
                    &r.scope,
                    &r.note,
                )?,
                component: r.component,
                unit: r.unit,
            })
        })
        .collect()
}

/// All embodied coefficients.
pub fn embodied_table() -> &'static [EmbodiedFactor] {
    static T: OnceLock<Vec<EmbodiedFactor>> = OnceLock::new();
    T.get_or_init(|| load().expect("embedded embodied.csv is valid (checked by tests)"))
}

/// The coefficient for one component, if shipped.
pub fn embodied_factor(component: &str) -> Option<&'static EmbodiedFactor> {
    embodied_table().iter().find(|f| f.component == component)
}

/// The coefficients as plain numbers (kgCO2e; hours for the lifetime).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EmbodiedCoefficients {
    pub server_base_kg: f64,
    pub per_gpu_kg: f64,
    pub per_gb_dram_kg: f64,
    /// DRAM included in the server base, GB.
    pub dram_baseline_gb: f64,
    pub per_ssd_kg: f64,
    pub per_hdd_kg: f64,
    pub per_cpu_socket_kg: f64,
    pub lifetime_hours: f64,
}

/// The shipped coefficients.
pub fn embodied() -> EmbodiedCoefficients {
    let get = |c: &str| {
        embodied_factor(c)
            .map(|f| f.value)
            .expect("embedded embodied.csv has every component (checked by tests)")
    };
    EmbodiedCoefficients {
        server_base_kg: get("server_base"),
        per_gpu_kg: get("gpu"),
        per_gb_dram_kg: get("dram_gb"),
        dram_baseline_gb: get("dram_baseline_gb"),
        per_ssd_kg: get("ssd"),
        per_hdd_kg: get("hdd"),
        per_cpu_socket_kg: get("cpu_socket"),
        lifetime_hours: get("lifetime_hours"),
    }
}

impl EmbodiedCoefficients {
    /// Embodied emissions of a whole server, kgCO2e:
    /// base + per_gpu·gpus + per_gb·max(0, dram − baseline) + per_ssd·ssds + per_hdd·hdds
    /// + per_socket·(sockets − 1).
    pub fn server_kg(&self, gpus: u32, dram_gb: f64, ssds: u32, hdds: u32, sockets: u32) -> f64 {
        self.server_base_kg
            + self.per_gpu_kg * f64::from(gpus)
            + self.per_gb_dram_kg * (dram_gb - self.dram_baseline_gb).max(0.0)
            + self.per_ssd_kg * f64::from(ssds)
            + self.per_hdd_kg * f64::from(hdds)
            + self.per_cpu_socket_kg * f64::from(sockets.saturating_sub(1))
    }

    /// Linear allocation of `total_kg` to a use of `hours`:
    /// `total × hours / lifetime`, not capped (the one rule,
    /// [`crate::accounting::amortisation_fraction`]).
    pub fn amortised_kg(&self, total_kg: f64, hours: f64) -> f64 {
        total_kg * crate::accounting::amortisation_fraction(hours, self.lifetime_hours, 1.0)
    }

    /// The components of a server described by `spec`, each with its coefficient and source:
    /// the base (1 socket, 16 GB, no disk), extra sockets, DRAM above the base, GPUs, SSDs and
    /// HDDs, as Cloud Carbon Footprint's coefficients count them. Components with a zero count
    /// are left out; the base is always there.
    pub fn components(&self, spec: &ServerSpec) -> Vec<crate::accounting::EmbodiedComponent> {
        let life = self.lifetime_hours;
        let src = |what: &str| {
            embodied_factor(what)
                .map(|f| format!("{}; lifetime {life} h; {}", f.unit, f.provenance))
                .unwrap_or_else(|| "wattprint factors embodied".to_string())
        };
        let mut v = vec![crate::accounting::EmbodiedComponent {
            name: "server (1 socket, 16 GB)".into(),
            kg_co2e: self.server_base_kg,
            count: 1.0,
            lifetime_hours: life,
            source: src("server_base"),
        }];
        let mut push = |name: &str, kg: f64, count: f64, what: &str| {
            if count > 0.0 {
                v.push(crate::accounting::EmbodiedComponent {
                    name: name.into(),
                    kg_co2e: kg,
                    count,
                    lifetime_hours: life,
                    source: src(what),
                });
            }
        };
        push(
            "additional CPU socket",
            self.per_cpu_socket_kg,
            f64::from(spec.sockets.saturating_sub(1)),
            "cpu_socket",
        );
        push(
            "DRAM above 16 GB (GB)",
            self.per_gb_dram_kg,
            (spec.dram_gb - self.dram_baseline_gb).max(0.0),
            "dram_gb",
        );
        push("GPU", self.per_gpu_kg, f64::from(spec.gpus), "gpu");
        push("SSD", self.per_ssd_kg, f64::from(spec.ssds), "ssd");
        push("HDD", self.per_hdd_kg, f64::from(spec.hdds), "hdd");
        v
    }
}

/// What a server holds, for its embodied emissions ([`EmbodiedCoefficients::components`]).
/// `dram_gb` must be finite and non-negative (callers bound it).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ServerSpec {
    /// CPU sockets (0 and 1 both mean the base server's single socket).
    pub sockets: u32,
    /// Installed memory, GB.
    pub dram_gb: f64,
    pub gpus: u32,
    /// SSD drives (Cloud Carbon Footprint counts drives, not capacity).
    pub ssds: u32,
    /// Hard-disk drives.
    pub hdds: u32,
}
