#![allow(clippy::unwrap_used)]
//! Property-based tests: record validation (what it accepts can be summed, charted and serialised;
//! it accepts exactly the records within the bounds), the chart/axis helpers (total over any
//! input, output bounded), and the duration parser.

use proptest::prelude::*;
use std::collections::BTreeMap;
use time::format_description::well_known::Rfc3339;
use wattprint_core::accounting::{Assumption, EmissionsKg, EnergyKwh, Equivalents};
use wattprint_core::record::{
    CarbonIntensity, DeviceRecord, GpuInfo, HostInfo, LocationRecord, Methods, RunRecord,
    RunStatus, SCHEMA,
};
use wattprint_core::sensor::{DeviceKind, Method};
use wattprint_core::svg::{self, BarsLayout, Segment};
use wattprint_core::units::{parse_duration, GramsCo2e, KilowattHours, JOULES_PER_KWH};
use wattprint_core::validate::*;

/// "Now" of the validation tests: 2026-06-01T00:00:00Z.
const NOW: i64 = 1_780_272_000;

/// The raw figures a record derives from.
#[derive(Debug, Clone)]
struct Raw {
    cpu: Vec<f64>,
    gpu: Vec<f64>,
    ram: f64,
    other: f64,
    static_frac: f64,
    pue: f64,
    intensity: f64,
    embodied: f64,
    duration: f64,
    /// Seconds between the end and NOW.
    back: f64,
}

/// 0, or 10^x for x in `lo..hi` (so both tiny and beyond-the-bound values appear).
fn magnitude(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), (lo..hi).prop_map(|x| 10f64.powf(x))]
}

fn raw() -> impl Strategy<Value = Raw> {
    (
        prop::collection::vec(magnitude(-12.0, 6.3), 1..4),
        prop::collection::vec(magnitude(-12.0, 6.3), 0..9),
        magnitude(-12.0, 6.3),
        magnitude(-12.0, 5.0),
        0.0..=1.0f64,
        1.0..3.5f64,
        0.0..2500.0f64,
        magnitude(-6.0, 5.3),
        magnitude(-3.0, 7.8),
        magnitude(0.0, 9.0),
    )
        .prop_map(
            |(cpu, gpu, ram, other, static_frac, pue, intensity, embodied, duration, back)| Raw {
                cpu,
                gpu,
                ram,
                other,
                static_frac,
                pue,
                intensity,
                embodied,
                duration,
                back,
            },
        )
}

fn rfc3339(unix: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos((unix * 1e9) as i128).unwrap();
    t.format(&Rfc3339).unwrap()
}

fn device(id: String, kind: DeviceKind, kwh: f64, secs: f64) -> DeviceRecord {
    DeviceRecord {
        id: id.clone(),
        kind,
        method: Method::Model,
        name: id,
        energy_kwh: kwh,
        avg_power_w: if secs > 0.0 {
            kwh * JOULES_PER_KWH / secs
        } else {
            0.0
        },
        machine_energy_kwh: kwh,
        idle_power_w: None,
        uuid: None,
    }
}

/// A record whose derived figures follow from `r` (as `build_record` derives them).
fn consistent(r: &Raw) -> RunRecord {
    let cpu: f64 = r.cpu.iter().sum();
    let gpu: f64 = r.gpu.iter().sum();
    let it = cpu + gpu + r.ram + r.other;
    let static_ = it * r.static_frac;
    let dynamic = it - static_;
    let kwh = KilowattHours;
    let facility = it * r.pue;
    let i_kg = r.intensity / 1000.0;
    let operational = facility * i_kg;
    let total = operational + r.embodied;
    let end = NOW as f64 - r.back;
    let start = end - r.duration;
    let mut devices = Vec::new();
    for (i, e) in r.cpu.iter().enumerate() {
        devices.push(device(
            format!("cpu:package-{i}"),
            DeviceKind::Cpu,
            *e,
            r.duration,
        ));
    }
    for (i, e) in r.gpu.iter().enumerate() {
        devices.push(device(format!("gpu:{i}"), DeviceKind::Gpu, *e, r.duration));
    }
    devices.push(device("ram".into(), DeviceKind::Ram, r.ram, r.duration));
    RunRecord {
        schema: SCHEMA.into(),
        id: "run-1".into(),
        project: "p".into(),
        tags: BTreeMap::new(),
        command: vec!["python".into(), "train.py".into()],
        started_at: rfc3339(start),
        ended_at: Some(rfc3339(end)),
        duration_s: r.duration,
        status: RunStatus::Completed,
        exit_code: Some(0),
        signal: None,
        host: HostInfo {
            hostname: "node-1".into(),
            cpu_model: "cpu".into(),
            logical_cpus: 64,
            ram_gb: 512.0,
            gpus: (0..r.gpu.len() as u32)
                .map(|index| GpuInfo {
                    index,
                    name: "gpu".into(),
                    uuid: format!("GPU-{index}"),
                })
                .collect(),
        },
        scope: "machine".into(),
        interval_s: 1.0,
        energy_kwh: EnergyKwh {
            cpu: kwh(cpu),
            gpu: kwh(gpu),
            ram: kwh(r.ram),
            other: kwh(r.other),
            dynamic: kwh(dynamic),
            static_: kwh(static_),
            it: kwh(it),
            infrastructure: kwh(it * (r.pue - 1.0)),
            facility: kwh(facility),
            total: kwh(it),
        },
        devices,
        methods: Methods {
            cpu: "model".into(),
            gpu: "model".into(),
            ram: "model".into(),
        },
        pue: r.pue,
        carbon_intensity: CarbonIntensity {
            g_per_kwh: r.intensity,
            source: "test".into(),
            signal: Some("average".into()),
            resolution: Some("constant".into()),
            live: None,
        },
        location: LocationRecord {
            code: "FR".into(),
            name: "France".into(),
            known: true,
            pue_source: "test".into(),
        },
        emissions_kg: EmissionsKg {
            dynamic: dynamic * i_kg,
            static_: static_ * i_kg,
            infrastructure: it * (r.pue - 1.0) * i_kg,
            embodied: r.embodied,
            operational,
            total,
            embodied_counted: true,
        },
        equivalents: Equivalents::of(GramsCo2e(total * 1000.0)),
        assumptions: vec![Assumption::new("PUE", r.pue, "ratio", "test")],
        factors_version: "test".into(),
        warnings: vec![],
        samples: 10,
        skipped_ticks: 0,
        wattprint_version: "0.1.0".into(),
        limits: None,
        limit_events: vec![],
        stopped: None,
        prediction: None,
        tracker: None,
        embodied_not_counted: None,
        imported: None,
        segments: None,
        job: None,
        sharing: None,
        job_nodes: None,
        job_nodelist: None,
        lineage: None,
        discarded: None,
        io: None,
    }
}

/// Whether `r` is within every bound of docs/server.md (the record from [`consistent`]).
fn within_bounds(r: &Raw, rec: &RunRecord) -> bool {
    let it = rec.energy_kwh.it.0;
    let start_ok = NOW as f64 - r.back - r.duration >= EARLIEST_UNIX as f64;
    it <= MAX_ENERGY_KWH
        && rec
            .devices
            .iter()
            .all(|d| d.energy_kwh <= MAX_ENERGY_KWH && d.avg_power_w <= MAX_HOST_POWER_W)
        && r.pue <= MAX_PUE
        && r.intensity <= MAX_INTENSITY_G_PER_KWH
        && r.embodied <= MAX_EMBODIED_KG
        && r.duration <= MAX_DURATION_S
        && start_ok
}

fn bars(rec: &RunRecord) -> Vec<(String, Vec<Segment>)> {
    let seg = |label: &str, value: f64| Segment {
        label: label.into(),
        value,
        color: "#000",
        text: format!("{value}"),
    };
    let e = &rec.energy_kwh;
    let m = &rec.emissions_kg;
    vec![
        (
            "energy".into(),
            vec![
                seg("cpu", e.cpu.0),
                seg("gpu", e.gpu.0),
                seg("ram", e.ram.0),
                seg("other", e.other.0),
            ],
        ),
        (
            "emissions".into(),
            vec![
                seg("dynamic", m.dynamic),
                seg("static", m.static_),
                seg("overhead", m.infrastructure),
                seg("embodied", m.embodied),
            ],
        ),
    ]
}

const LAYOUT: BarsLayout = BarsLayout {
    width: 600.0,
    left: 100.0,
    right: 20.0,
    top: 30.0,
    row_pad: 10.0,
    pct_px: 12.0,
    title_x: 100.0,
    title_y: 18.0,
};

/// An SVG with only finite numbers in it.
fn assert_clean_svg(s: &str) {
    assert!(s.starts_with("<svg") && s.ends_with("</svg>"), "{s}");
    for bad in ["NaN", "inf"] {
        assert!(!s.contains(bad), "{bad} in {s}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The validator accepts exactly the consistent records within the bounds; what it accepts
    /// sums (ten thousand runs), charts and serialises without error.
    #[test]
    fn accepted_records_sum_chart_and_serialise(r in raw()) {
        let rec = consistent(&r);
        let verdict = rec.validate_at(NOW);
        prop_assert_eq!(verdict.is_ok(), within_bounds(&r, &rec), "{:?}", verdict);
        if verdict.is_ok() {
            let (mut kwh, mut kg) = (0.0f64, 0.0f64);
            for _ in 0..10_000 {
                kwh += rec.energy_kwh.total.0;
                kg += rec.emissions_kg.total;
            }
            prop_assert!(kwh.is_finite() && kg.is_finite());
            prop_assert!(kwh <= 1e4 * MAX_ENERGY_KWH && kg <= 1e4 * MAX_EMISSIONS_KG);
            let chart = svg::stacked_bars("run", &bars(&rec), &LAYOUT);
            assert_clean_svg(&chart);
            prop_assert!(chart.len() < 20_000, "{}", chart.len());
            let json = serde_json::to_string(&rec).unwrap();
            let back: RunRecord = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back.validate_at(NOW), Ok(()));
        }
    }

    /// Any one figure replaced by any number (huge, negative, NaN, ∞): refused, or still a
    /// record whose figures are finite and bounded.
    #[test]
    fn one_bad_figure_is_refused_or_harmless(
        r in raw(),
        which in 0usize..14,
        v in prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(1e308),
            Just(-1.0),
            Just(-0.0),
        ],
    ) {
        let mut rec = consistent(&r);
        let e = &mut rec.energy_kwh;
        match which {
            0 => e.total.0 = v,
            1 => e.cpu.0 = v,
            2 => e.it.0 = v,
            3 => e.facility.0 = v,
            4 => rec.emissions_kg.total = v,
            5 => rec.emissions_kg.operational = v,
            6 => rec.emissions_kg.embodied = v,
            7 => rec.pue = v,
            8 => rec.carbon_intensity.g_per_kwh = v,
            9 => rec.duration_s = v,
            10 => rec.devices[0].energy_kwh = v,
            11 => rec.devices[0].avg_power_w = v,
            12 => rec.equivalents.car_km = v,
            _ => rec.host.ram_gb = v,
        }
        if let Err(err) = rec.validate_at(NOW) {
            // The error names a JSON path and a reason.
            prop_assert!(!err.path.is_empty() && !err.reason.is_empty());
        } else {
            let e = &rec.energy_kwh;
            for x in [e.total.0, e.it.0, e.facility.0, rec.emissions_kg.total, rec.pue,
                      rec.carbon_intensity.g_per_kwh, rec.duration_s, rec.host.ram_gb,
                      rec.equivalents.car_km] {
                prop_assert!(x.is_finite() && x >= 0.0);
            }
            prop_assert!(e.total.0 <= MAX_ENERGY_KWH);
            prop_assert!(rec.emissions_kg.total <= MAX_EMISSIONS_KG);
        }
    }

    /// Times: any text in `started_at` is either refused or between 2000 and now + skew.
    #[test]
    fn accepted_times_are_possible(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})") {
        let mut rec = consistent(&Raw {
            cpu: vec![1.0],
            gpu: vec![],
            ram: 0.0,
            other: 0.0,
            static_frac: 0.0,
            pue: 1.0,
            intensity: 100.0,
            embodied: 0.0,
            duration: 0.0,
            back: 0.0,
        });
        rec.started_at = s.clone();
        rec.ended_at = None;
        if rec.validate_at(NOW).is_ok() {
            let t = time::OffsetDateTime::parse(&s, &Rfc3339).unwrap().unix_timestamp();
            prop_assert!((EARLIEST_UNIX..=NOW + MAX_CLOCK_SKEW_S).contains(&t));
            prop_assert!(&s[17..19] != "60");
        }
    }

    /// Axis helpers are total: any input gives a bounded number of finite, increasing ticks.
    #[test]
    fn axis_helpers_are_total(
        max in prop_oneof![any::<f64>(), Just(0.0), Just(-5.0), Just(f64::NAN), Just(f64::INFINITY),
                           Just(f64::MAX), Just(1e-320), (-300.0..300.0f64).prop_map(|x| 10f64.powf(x))],
        min in any::<f64>(),
        step in any::<f64>(),
        target in any::<usize>(),
    ) {
        let s = svg::nice_step(max, target);
        prop_assert!(s.is_finite() && s > 0.0, "nice_step({max}, {target}) = {s}");
        let (top, ticks) = svg::axis_ticks(max, target);
        prop_assert!(top.is_finite() && top > 0.0);
        prop_assert!((2..=svg::MAX_TICKS + 1).contains(&ticks.len()), "{}", ticks.len());
        prop_assert!(ticks.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(ticks.iter().all(|t| t.is_finite() && *t <= top * (1.0 + 1e-9)));
        if max.is_finite() && max > 0.0 && max <= svg::MAX_CHART_VALUE {
            prop_assert!(top >= max * (1.0 - 1e-9), "top {top} below max {max}");
        }
        for ticks in [svg::ticks_upto(max, target), svg::ticks_between(min, max, step)] {
            prop_assert!(ticks.len() <= svg::MAX_TICKS + 1);
            prop_assert!(ticks.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(ticks.iter().all(|t| t.is_finite()));
        }
        let n = svg::num(max);
        prop_assert!(!n.contains("NaN") && !n.contains("inf") && n.len() <= 400 && n != "-0", "{n}");
        let c = svg::chart_value(max);
        prop_assert!((0.0..=svg::MAX_CHART_VALUE).contains(&c));
    }

    /// Stacked bars over any values (empty, zero, huge, negative, non-finite): a valid SVG whose
    /// size grows only with the number of rows and segments.
    #[test]
    fn stacked_bars_are_total_and_bounded(
        rows in prop::collection::vec(
            prop::collection::vec(
                prop_oneof![any::<f64>(), Just(0.0), Just(f64::NAN), Just(f64::INFINITY),
                            Just(f64::NEG_INFINITY), Just(f64::MAX), Just(-1.0)],
                0..6),
            0..5),
    ) {
        let rows: Vec<(String, Vec<Segment>)> = rows
            .iter()
            .enumerate()
            .map(|(i, vs)| {
                (
                    format!("row {i}"),
                    vs.iter()
                        .map(|v| Segment { label: "x".into(), value: *v, color: "#000", text: "t".into() })
                        .collect(),
                )
            })
            .collect();
        let out = svg::stacked_bars("t", &rows, &LAYOUT);
        assert_clean_svg(&out);
        let segs: usize = rows.iter().map(|r| r.1.len()).sum();
        prop_assert!(out.len() <= 600 + 400 * rows.len() + 500 * segs, "{}", out.len());
    }

    /// Durations: any text parses or fails with a message, never panics; a number with a unit
    /// reads back as that many seconds.
    #[test]
    fn durations_parse_or_explain(s in "\\PC{0,24}") {
        match parse_duration(&s) {
            Ok(d) => prop_assert!(d.as_secs_f64().is_finite()),
            Err(e) => prop_assert!(e.to_string().contains("invalid duration")),
        }
    }

    #[test]
    fn durations_round_trip(
        v in prop_oneof![0.0..1e6f64, (0u32..100_000).prop_map(f64::from)],
        unit in prop::sample::select(vec![
            ("", 1.0), ("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("m", 60.0), ("min", 60.0),
            ("h", 3600.0), ("hours", 3600.0), ("d", 86_400.0), ("w", 604_800.0),
            ("y", 365.25 * 86_400.0),
        ]),
        pad in prop::sample::select(vec!["", " ", "  "]),
    ) {
        let text = format!("{pad}{v}{}{pad}", unit.0);
        let d = parse_duration(&text).unwrap();
        let want = v * unit.1;
        prop_assert!((d.as_secs_f64() - want).abs() <= 2e-9 + 1e-12 * want, "{text}: {d:?}");
    }
}
