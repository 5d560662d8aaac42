//! (placeholder until the accounting module lands)

/// Emissions of a run from its dynamic and static IT energy.
pub fn run_breakdown(
    dynamic_kwh: f64,
    static_kwh: f64,
    pue: f64,
    intensity: f64,
) -> crate::record::EmissionsKg {
    let it = dynamic_kwh + static_kwh;
    let op = it * pue * intensity / 1000.0;
    crate::record::EmissionsKg {
        dynamic: dynamic_kwh * intensity / 1000.0,
        static_: static_kwh * intensity / 1000.0,
        infrastructure: (pue - 1.0) * it * intensity / 1000.0,
        embodied: 0.0,
        operational: op,
        total: op,
    }
}
