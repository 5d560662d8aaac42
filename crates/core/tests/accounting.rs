#![allow(clippy::unwrap_used)]
//! Accounting and estimate tests: published test vectors (Green Algorithms, CCF), the hourly
//! sum-of-products rule, breakdown identities, JSON field names and input validation.

use std::time::Duration;
use wattprint_core::accounting::{
    account, account_checked, embodied, operational_detail, operational_emissions, AccountInput,
    Assumption, Breakdown, EmbodiedComponent, EmbodiedInput, Intensity,
};
use wattprint_core::estimate::{estimate, EmbodiedSpec, EstimateError, EstimateInput};
use wattprint_core::units::{GramsPerKwh, Joules, KilowattHours};

const HOUR: u64 = 3600;

/// Assert `got` equals `want` within `rel` relative tolerance.
fn close(got: f64, want: f64, rel: f64, what: &str) {
    let tol = rel * want.abs().max(1e-12);
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (±{tol})"
    );
}

fn kwh(k: f64) -> Joules {
    KilowattHours(k).joules()
}

fn hours(h: u64) -> Duration {
    Duration::from_secs(h * HOUR)
}

/// GA-2a (methodology §5.1): 8 GPUs × 400 W, 72 h, u = 1, no memory, PUE 1.2 (AWS default),
/// US-VA 308 g/kWh → 276.48 kWh facility energy, 85 155.84 g.
fn ga_2a() -> EstimateInput {
    let mut i = EstimateInput::new(hours(72), 1.2, GramsPerKwh(308.0));
    i.gpus = 8;
    i.gpu_watts = Some(400.0);
    i
}

#[test]
fn green_algorithms_gpu_only_vector() {
    let b = estimate(&ga_2a()).unwrap();
    close(b.energy_kwh.facility.0, 276.48, 1e-9, "facility kWh");
    close(b.energy_kwh.it.0, 230.4, 1e-9, "IT kWh");
    close(b.energy_kwh.gpu.0, 230.4, 1e-9, "GPU kWh");
    close(b.emissions_kg.total, 85.15584, 1e-9, "total kg");
    close(b.emissions_kg.operational, 85.15584, 1e-9, "operational kg");
    // GA's printed equivalents for this vector: 92.897 tree-months, 486.6 km, 0.774 PAR-DUB.
    close(b.equivalents.tree_months, 92.89728, 1e-9, "tree-months");
    close(b.equivalents.car_km, 486.6048, 1e-9, "car km");
    close(
        b.equivalents.flights_paris_dublin,
        0.774144,
        1e-9,
        "PAR-DUB flights",
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
}

#[test]
fn green_algorithms_gpu_cpu_memory_vector() {
    // GA-2b: + 48 cores × 12 W ("Any") + 1 152 GB × 0.3725 W/GB.
    // (3200 + 576 + 429.12) W × 72 h × 1.2 = 363.322368 kWh; × 308 g/kWh = 111 903.289344 g.
    let mut i = ga_2a();
    i.cores = 48;
    i.core_watts = None; // GA "Any" 12 W/core default
    i.memory_gb = 1152.0;
    let b = estimate(&i).unwrap();
    close(b.energy_kwh.facility.0, 363.322368, 1e-9, "facility kWh");
    close(b.emissions_kg.total, 111.903289344, 1e-9, "total kg");
    // The figures as published, to their printed precision.
    assert_eq!(format!("{:.3}", b.energy_kwh.facility.0), "363.322");
    assert_eq!(format!("{:.5}", b.emissions_kg.total), "111.90329");
    // Per-component split as published: CPU 15 328.05 g, GPU 85 155.84 g, memory 11 419.40 g.
    let g = |k: KilowattHours| k.0 * 1.2 * 308.0;
    close(g(b.energy_kwh.cpu), 15_328.051_2, 1e-9, "CPU g");
    close(g(b.energy_kwh.gpu), 85_155.84, 1e-9, "GPU g");
    close(g(b.energy_kwh.ram), 11_419.398_144, 1e-9, "memory g");
    let core = b
        .assumptions
        .iter()
        .find(|a| a.name == "cpu_power_per_core")
        .unwrap();
    assert_eq!(core.value, 12.0);
    assert!(core.source.contains("Green Algorithms"), "{}", core.source);
    let mem = b
        .assumptions
        .iter()
        .find(|a| a.name == "memory_power")
        .unwrap();
    assert_eq!(mem.value, 0.3725);
    assert!(mem.source.contains("memoryPower"), "{}", mem.source);
}

#[test]
fn green_algorithms_usage_factor_and_runs_vectors() {
    // GA-3: 2 h; 4 cores × 12 W, u = 0.5; 16 GB; PUE 1; FR 51.28; PSF 3 → 0.17976 kWh, 9.21809 g.
    let mut i = EstimateInput::new(hours(2), 1.0, GramsPerKwh(51.28));
    i.cores = 4;
    i.core_watts = Some(12.0);
    i.utilization = 0.5;
    i.memory_gb = 16.0;
    i.runs = 3;
    let b = estimate(&i).unwrap();
    close(b.energy_kwh.facility.0, 0.17976, 1e-9, "GA-3 kWh");
    close(b.emissions_kg.total * 1000.0, 9.2180928, 1e-9, "GA-3 g");

    // GA-1: 12 h; 12 cores × 7.5 W; 64 GB; PUE 1.67; AT 111.18 → 2.281354 kWh, 253.641 g.
    let mut i = EstimateInput::new(hours(12), 1.67, GramsPerKwh(111.18));
    i.cores = 12;
    i.core_watts = Some(7.5);
    i.memory_gb = 64.0;
    let b = estimate(&i).unwrap();
    close(b.energy_kwh.facility.0, 2.2813536, 1e-9, "GA-1 kWh");
    close(b.emissions_kg.total * 1000.0, 253.640893248, 1e-9, "GA-1 g");
}

#[test]
fn ccf_embodied_vector() {
    // CCF (methodology §5.4): p4d.24xlarge 4 675.5184 kgCO2e × 72 h / 35 040 h = 9.6072 kg.
    let c = vec![EmbodiedComponent {
        name: "p4d.24xlarge".into(),
        kg_co2e: 4675.5184,
        count: 1.0,
        lifetime_hours: 35_040.0,
        source: "CCF AWSInstanceTypes.ts".into(),
    }];
    let g = embodied(&c, hours(72), 1.0, 1.0);
    close(g.kg(), 9.607229589041096, 1e-9, "embodied kg");
    assert_eq!(format!("{:.4}", g.kg()), "9.6072");
    // Use rate 0.5 doubles the hourly allocation; share 0.25 quarters it.
    close(
        embodied(&c, hours(72), 0.5, 1.0).kg(),
        2.0 * 9.607229589041096,
        1e-9,
        "use rate",
    );
    close(
        embodied(&c, hours(72), 1.0, 0.25).kg(),
        9.607229589041096 / 4.0,
        1e-9,
        "share",
    );

    // The same through estimate(): one server, no GPUs counted, 4-year lifetime.
    let mut i = ga_2a();
    i.embodied = Some(EmbodiedSpec::explicit(
        1,
        4675.5184,
        0,
        150.0,
        hours(35_040),
        1.0,
        "CCF",
    ));
    let b = estimate(&i).unwrap();
    close(
        b.emissions_kg.embodied,
        9.607229589041096,
        1e-9,
        "estimate embodied kg",
    );
    close(
        b.emissions_kg.total,
        85.15584 + 9.607229589041096,
        1e-9,
        "total = op + embodied",
    );
    assert!(b
        .assumptions
        .iter()
        .any(|a| a.name == "embodied.server" && a.value == 4675.5184));

    // Methodology §5.5: 8 GPUs × 150 kg over 26 280 h → 3.288 kg for 72 h.
    let gpus = vec![EmbodiedComponent {
        name: "gpu".into(),
        kg_co2e: 150.0,
        count: 8.0,
        lifetime_hours: 26_280.0,
        source: "CCF/Teads".into(),
    }];
    assert_eq!(
        format!("{:.3}", embodied(&gpus, hours(72), 1.0, 1.0).kg()),
        "3.288"
    );
}

#[test]
fn hourly_series_is_sum_of_products_not_mean_times_mean() {
    // Hour 1: 3 kWh at 100 g/kWh; hour 2: 1 kWh at 500 g/kWh.
    // Σ E_i × I_i = 300 + 500 = 800 g. Mean energy × mean intensity × 2 h = 4 kWh × 300 = 1 200 g.
    let series = Intensity::hourly(vec![
        (3600, 7200, GramsPerKwh(500.0)),
        (0, 3600, GramsPerKwh(100.0)),
    ])
    .unwrap();
    let energy = [(0, 3600, kwh(3.0)), (3600, 7200, kwh(1.0))];
    let g = operational_emissions(&energy, &series, 1.0);
    close(g.0, 800.0, 1e-12, "Σ E×I");
    let mean_times_mean = 4.0 * series.time_weighted_mean().unwrap().0;
    close(mean_times_mean, 1200.0, 1e-12, "mean×mean");
    assert!((g.0 - mean_times_mean).abs() > 100.0);
    // PUE multiplies the whole sum.
    close(
        operational_emissions(&energy, &series, 1.5).0,
        1200.0,
        1e-12,
        "with PUE",
    );

    // An energy interval straddling the boundary is split by time: 2 kWh over [1800, 5400)
    // → 1 kWh at 100 + 1 kWh at 500 = 600 g.
    let d = operational_detail(&[(1800, 5400, kwh(2.0))], &series, 1.0);
    close(d.emissions.0, 600.0, 1e-12, "split interval");
    close(
        d.effective_intensity.unwrap().0,
        300.0,
        1e-12,
        "effective intensity",
    );
    assert_eq!(d.uncovered, Joules::ZERO);

    // Energy outside the series is charged at the nearest interval and reported.
    let d = operational_detail(&[(7200, 10800, kwh(1.0))], &series, 1.0);
    close(d.emissions.0, 500.0, 1e-12, "uncovered charged at nearest");
    close(d.uncovered.kwh().0, 1.0, 1e-12, "uncovered energy");

    // Through account(): operational = IT × PUE × effective intensity, effective = 200 g/kWh.
    let mut ai = AccountInput::new(1.2, series, hours(2));
    ai.set_components(kwh(4.0), Joules::ZERO, Joules::ZERO, Joules::ZERO, kwh(1.0));
    ai.energy_by_interval = energy.to_vec();
    let b = account(&ai);
    close(b.intensity_g_per_kwh, 200.0, 1e-12, "breakdown intensity");
    close(
        b.emissions_kg.operational,
        0.8 * 1.2,
        1e-12,
        "breakdown operational kg",
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);

    // A constant intensity needs no intervals.
    let g = operational_emissions(&energy, &Intensity::Constant(GramsPerKwh(300.0)), 1.0);
    close(g.0, 1200.0, 1e-12, "constant");
}

#[test]
fn hourly_without_interval_energy_warns() {
    let series = Intensity::hourly(vec![
        (0, 3600, GramsPerKwh(100.0)),
        (3600, 7200, GramsPerKwh(300.0)),
    ])
    .unwrap();
    let mut ai = AccountInput::new(1.0, series, hours(2));
    ai.set_components(
        kwh(1.0),
        Joules::ZERO,
        Joules::ZERO,
        Joules::ZERO,
        Joules::ZERO,
    );
    let b = account(&ai);
    close(b.intensity_g_per_kwh, 200.0, 1e-12, "time-weighted mean");
    assert!(
        b.warnings.iter().any(|w| w.contains("time-weighted mean")),
        "{:?}",
        b.warnings
    );
}

fn sample_breakdown() -> Breakdown {
    let mut ai = AccountInput::new(1.4, Intensity::Constant(GramsPerKwh(250.0)), hours(10));
    ai.set_components(kwh(3.0), kwh(5.0), kwh(1.0), kwh(0.5), kwh(2.5));
    ai.embodied = Some(EmbodiedInput {
        components: vec![EmbodiedComponent {
            name: "gpu".into(),
            kg_co2e: 150.0,
            count: 2.0,
            lifetime_hours: 35_040.0,
            source: "CCF".into(),
        }],
        use_rate: 0.8,
        share: 1.0,
    });
    ai.assumptions
        .push(Assumption::new("pue", 1.4, "ratio", "test"));
    account_checked(&ai).unwrap()
}

#[test]
fn breakdown_identities() {
    let b = sample_breakdown();
    let e = &b.energy_kwh;
    let m = &b.emissions_kg;
    close(
        e.dynamic.0 + e.static_.0,
        e.it.0,
        1e-12,
        "dynamic + static = IT",
    );
    close(e.it.0, 9.5, 1e-12, "IT");
    close(
        e.cpu.0 + e.gpu.0 + e.ram.0 + e.other.0,
        e.it.0,
        1e-12,
        "components = IT",
    );
    close(e.total.0, e.it.0, 1e-12, "total = IT");
    close(e.facility.0, 9.5 * 1.4, 1e-12, "facility = IT × PUE");
    close(
        e.infrastructure.0,
        9.5 * 0.4,
        1e-12,
        "infrastructure = (PUE-1) × IT",
    );
    close(
        m.operational,
        9.5 * 1.4 * 250.0 / 1000.0,
        1e-12,
        "operational = IT × PUE × I",
    );
    close(
        m.dynamic + m.static_ + m.infrastructure,
        m.operational,
        1e-12,
        "dyn+static+infra",
    );
    close(m.dynamic, 7.0 * 0.25, 1e-12, "dynamic kg");
    close(m.static_, 2.5 * 0.25, 1e-12, "static kg");
    let emb = 2.0 * 150.0 * 10.0 / (35_040.0 * 0.8);
    close(m.embodied, emb, 1e-12, "embodied kg");
    close(
        m.total,
        m.operational + m.embodied,
        1e-12,
        "total = operational + embodied",
    );
    close(
        b.equivalents.car_km,
        m.total * 1000.0 / 175.0,
        1e-12,
        "car km of total",
    );
    close(
        b.equivalents.phone_charges,
        m.total * 1000.0 / 8.22,
        1e-12,
        "phone charges",
    );
    close(
        b.equivalents.flights_paris_london,
        m.total * 1000.0 / 50_000.0,
        1e-12,
        "PAR-LON",
    );
    close(
        b.equivalents.flights_new_york_san_francisco,
        m.total * 1000.0 / 570_000.0,
        1e-12,
        "NY-SF",
    );
    assert!(b.assumptions.iter().any(|a| a.name == "pue"));
    assert!(b
        .assumptions
        .iter()
        .any(|a| a.name == "embodied.use_rate" && a.value == 0.8));
}

#[test]
fn breakdown_json_field_names() {
    let b = sample_breakdown();
    let v = serde_json::to_value(&b).unwrap();
    let keys = |o: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = o.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let sorted = |s: &[&str]| -> Vec<String> {
        let mut k: Vec<String> = s.iter().map(|x| x.to_string()).collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&v),
        sorted(&[
            "energy_kwh",
            "emissions_kg",
            "pue",
            "intensity_g_per_kwh",
            "equivalents",
            "assumptions"
        ])
    );
    assert_eq!(
        keys(&v["energy_kwh"]),
        sorted(&[
            "cpu",
            "gpu",
            "ram",
            "other",
            "dynamic",
            "static",
            "it",
            "infrastructure",
            "facility",
            "total"
        ])
    );
    assert_eq!(
        keys(&v["emissions_kg"]),
        sorted(&[
            "dynamic",
            "static",
            "infrastructure",
            "embodied",
            "operational",
            "total"
        ])
    );
    assert_eq!(
        keys(&v["equivalents"]),
        sorted(&[
            "car_km",
            "tree_months",
            "flights_paris_london",
            "flights_paris_dublin",
            "flights_new_york_san_francisco",
            "phone_charges"
        ])
    );
    assert_eq!(
        keys(&v["assumptions"][0]),
        sorted(&["name", "value", "unit", "source"])
    );
    // Numbers, not wrapped objects; round trip preserves everything.
    assert!((v["energy_kwh"]["static"].as_f64().unwrap() - 2.5).abs() < 1e-12);
    let back: Breakdown = serde_json::from_value(v).unwrap();
    assert_eq!(back, b);
}

#[test]
fn account_reports_bad_inputs_instead_of_hiding_them() {
    // Components that do not sum to dynamic + static.
    let mut ai = AccountInput::new(1.0, Intensity::Constant(GramsPerKwh(100.0)), hours(1));
    ai.cpu = kwh(1.0);
    ai.dynamic = kwh(2.0);
    let b = account(&ai);
    assert!(
        b.warnings.iter().any(|w| w.contains("differs")),
        "{:?}",
        b.warnings
    );
    close(b.energy_kwh.it.0, 2.0, 1e-12, "IT = dynamic + static");

    // Invalid embodied lifetime: left out with a warning, and account_checked rejects it.
    let mut ai = AccountInput::new(1.0, Intensity::Constant(GramsPerKwh(100.0)), hours(1));
    ai.embodied = Some(EmbodiedInput {
        components: vec![EmbodiedComponent {
            name: "server".into(),
            kg_co2e: 1000.0,
            count: 1.0,
            lifetime_hours: 0.0,
            source: "x".into(),
        }],
        use_rate: 1.0,
        share: 1.0,
    });
    let b = account(&ai);
    assert_eq!(b.emissions_kg.embodied, 0.0);
    assert!(
        b.warnings.iter().any(|w| w.contains("lifetime")),
        "{:?}",
        b.warnings
    );
    let e = account_checked(&ai).unwrap_err().to_string();
    assert!(e.contains("server") && e.contains("lifetime"), "{e}");

    // PUE below 1.
    let ai = AccountInput::new(0.9, Intensity::Constant(GramsPerKwh(100.0)), hours(1));
    let e = account_checked(&ai).unwrap_err().to_string();
    assert!(e.contains("PUE") && e.contains("0.9"), "{e}");

    // Malformed series.
    let e = Intensity::hourly(vec![
        (0, 3600, GramsPerKwh(1.0)),
        (1800, 7200, GramsPerKwh(2.0)),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("overlap"), "{e}");
    let e = Intensity::hourly(vec![]).unwrap_err().to_string();
    assert!(e.contains("no intervals"), "{e}");
    let e = Intensity::hourly(vec![(10, 5, GramsPerKwh(1.0))])
        .unwrap_err()
        .to_string();
    assert!(e.contains("start < end"), "{e}");
}

#[test]
fn estimate_validation_errors_are_clear() {
    let err = |f: &dyn Fn(&mut EstimateInput)| -> (EstimateError, String) {
        let mut i = ga_2a();
        f(&mut i);
        let e = estimate(&i).unwrap_err();
        let s = e.to_string();
        (e, s)
    };

    let (e, s) = err(&|i| i.utilization = 1.5);
    assert_eq!(e, EstimateError::Utilization(1.5));
    assert!(s.contains("between 0 and 1") && s.contains("1.5"), "{s}");

    let (e, s) = err(&|i| i.gpu_watts = Some(-400.0));
    assert!(
        matches!(e, EstimateError::Negative { value, .. } if value == -400.0),
        "{e:?}"
    );
    assert!(s.contains("GPU power") && s.contains("negative"), "{s}");

    let (e, s) = err(&|i| i.duration = Duration::ZERO);
    assert_eq!(e, EstimateError::ZeroDuration);
    assert!(s.contains("duration is zero"), "{s}");

    let (e, s) = err(&|i| i.pue = 0.9);
    assert_eq!(e, EstimateError::PueBelowOne(0.9));
    assert!(
        s.contains("PUE must be at least 1.0") && s.contains("0.9"),
        "{s}"
    );

    let (e, s) = err(&|i| i.utilization = f64::NAN);
    assert!(
        matches!(
            e,
            EstimateError::NotFinite {
                what: "utilization",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(s.contains("finite"), "{s}");

    let (_, s) = err(&|i| i.memory_gb = f64::NAN);
    assert!(s.contains("memory") && s.contains("finite"), "{s}");

    let (_, s) = err(&|i| i.pue = f64::INFINITY);
    assert!(s.contains("PUE") && s.contains("finite"), "{s}");

    let (_, s) = err(&|i| i.intensity = GramsPerKwh(-1.0));
    assert!(
        s.contains("carbon intensity") && s.contains("negative"),
        "{s}"
    );

    let (e, _) = err(&|i| i.runs = 0);
    assert_eq!(e, EstimateError::ZeroRuns);

    let (e, s) = err(&|i| {
        i.gpus = 0;
    });
    assert!(
        matches!(e, EstimateError::PowerWithoutCount { .. }),
        "{e:?}"
    );
    assert!(s.contains("GPU power") && s.contains("is 0"), "{s}");

    let (e, s) = err(&|i| i.cpus = 2);
    assert!(
        matches!(e, EstimateError::MissingPower { n: 2, .. }),
        "{e:?}"
    );
    assert!(s.contains("per socket"), "{s}");

    let (e, _) = err(&|i| {
        i.cpus = 2;
        i.cpu_watts = Some(205.0);
        i.cores = 48;
    });
    assert_eq!(e, EstimateError::CpuTwice);

    let (_, s) = err(&|i| i.idle_fraction = Some(1.2));
    assert!(s.contains("idle fraction") && s.contains("1.2"), "{s}");

    let (e, _) = err(&|i| {
        i.gpus = 0;
        i.gpu_watts = None;
    });
    assert_eq!(e, EstimateError::Nothing);

    let (e, _) = err(&|i| {
        i.embodied = Some(EmbodiedSpec::explicit(
            1,
            2500.0,
            8,
            150.0,
            Duration::ZERO,
            1.0,
            "x",
        ))
    });
    assert_eq!(e, EstimateError::ZeroLifetime);
}

#[test]
fn estimate_static_and_idle_split() {
    // 1 GPU × 300 W for 10 h = 3 kWh modelled; idle fraction 0.2 → 0.6 kWh static;
    // plus 1 kWh static energy given → static 1.6 kWh, dynamic 2.4 kWh, IT 4 kWh.
    let mut i = EstimateInput::new(hours(10), 1.5, GramsPerKwh(100.0));
    i.gpus = 1;
    i.gpu_watts = Some(300.0);
    i.idle_fraction = Some(0.2);
    i.static_kwh = 1.0;
    let b = estimate(&i).unwrap();
    close(b.energy_kwh.static_.0, 1.6, 1e-12, "static kWh");
    close(b.energy_kwh.dynamic.0, 2.4, 1e-12, "dynamic kWh");
    close(b.energy_kwh.it.0, 4.0, 1e-12, "IT kWh");
    close(
        b.energy_kwh.other.0,
        1.0,
        1e-12,
        "static_kwh counted as other",
    );
    close(b.energy_kwh.facility.0, 6.0, 1e-12, "facility kWh");
    close(b.emissions_kg.static_, 0.16, 1e-12, "static kg");
    close(
        b.emissions_kg.infrastructure,
        0.2,
        1e-12,
        "infrastructure kg",
    );
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);

    // Default GPU power is GA "Any" 200 W and says so.
    let mut i = EstimateInput::new(hours(1), 1.0, GramsPerKwh(100.0));
    i.gpus = 2;
    let b = estimate(&i).unwrap();
    close(b.energy_kwh.gpu.0, 0.4, 1e-12, "2 × 200 W × 1 h");
    let a = b
        .assumptions
        .iter()
        .find(|a| a.name == "gpu_power")
        .unwrap();
    assert!(a.source.starts_with("default"), "{}", a.source);
}
