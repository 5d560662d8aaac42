#![allow(clippy::unwrap_used)]
//! Tests of the shipped factor tables, location parsing/resolution, GPU lookup and region ranking.
//! Expected values are those of the shared README's "Values that disagree between sources" table
//! and the methodology reference (sections 3.3 and 5.5).

use wattprint_core::factors::{
    self, cloud_region, cloud_regions, default_pue, embodied, embodied_table, gpu_fallback,
    gpu_lookup, gpu_table, intensity_codes, intensity_table, pick_intensity, pue_table,
    rank_regions, regions_report, source_info, sources, world_average, GpuMatch, Level, Provider,
    PueRole, RegionsQuery, DEFAULT_PUE, FACTORS_VERSION, WORLD_AVERAGE_G_PER_KWH,
};
use wattprint_core::location::{
    location_from_env, parse_location, resolve, LocationError, LocationSpec, LOCATION_ENV,
};

/// Relative tolerance for values that are exact conversions of the source numbers.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn assert_close(a: f64, b: f64, what: &str) {
    assert!(close(a, b), "{what}: got {a}, expected {b}");
}

// ------------------------------------------------------------------------------------------
// tables load, counts sane, no NaN / negative, provenance keys known

#[test]
fn all_tables_load_with_sane_counts_and_values() {
    let it = intensity_table();
    assert!(it.len() > 400, "intensity rows: {}", it.len());
    let codes = intensity_codes();
    assert!(codes.len() > 300, "codes: {}", codes.len());
    for r in it {
        assert!(r.g_per_kwh.is_finite() && r.g_per_kwh >= 0.0, "{}", r.code);
        assert!(
            r.g_per_kwh < 1500.0,
            "{} implausible {}",
            r.code,
            r.g_per_kwh
        );
        assert_eq!(r.year, r.provenance.year);
        assert!(source_info(r.provenance.source).is_some());
    }
    assert_eq!(it.iter().filter(|r| r.level == Level::World).count(), 1);

    let cr = cloud_regions();
    let count = |p| cr.iter().filter(|c| c.provider == p).count();
    assert_eq!(count(Provider::Aws), 27);
    assert_eq!(count(Provider::Gcp), 41);
    assert_eq!(count(Provider::Azure), 48);
    for c in cr {
        assert!(c.intensity_g_per_kwh.is_finite() && c.intensity_g_per_kwh >= 0.0);
        assert!(
            c.intensity_g_per_kwh < 1500.0,
            "{}: {}",
            c.id,
            c.intensity_g_per_kwh
        );
        assert!(c.pue >= 1.0 && c.pue < 2.0, "{}: {}", c.id, c.pue);
        assert!(
            factors::AREAS.contains(&c.area.as_str()),
            "{}: {}",
            c.id,
            c.area
        );
        assert_eq!(c.country.len(), 2, "{}", c.id);
        for a in &c.alternatives {
            assert!(a.g_per_kwh.is_finite() && a.g_per_kwh >= 0.0 && a.g_per_kwh < 1500.0);
        }
        assert!(source_info(c.intensity_provenance.source).is_some());
    }

    let gpus = gpu_table();
    assert!(gpus.len() >= 40, "gpus: {}", gpus.len());
    for g in &gpus {
        assert!(g.tdp_w > 0.0 && g.tdp_w.is_finite(), "{}", g.name);
        if let Some(idle) = g.idle_w {
            assert!(idle > 0.0 && idle < g.tdp_w, "{}: idle {idle}", g.name);
            assert!(g.idle_provenance.is_some());
        }
        if let Some(max) = g.max_w {
            assert!(max >= g.tdp_w, "{}: max {max} < tdp {}", g.name, g.tdp_w);
        }
    }
    assert_eq!(gpu_fallback().tdp_w, 200.0);

    assert_eq!(embodied_table().len(), 8);
    for e in embodied_table() {
        assert!(e.value.is_finite() && e.value > 0.0, "{}", e.component);
    }
    assert!(pue_table()
        .iter()
        .all(|p| p.pue >= 1.0 && p.pue.is_finite()));
}

#[test]
fn intensity_year_collisions_are_resolved_by_source_preference() {
    let mut seen = std::collections::HashMap::new();
    let mut dups = Vec::new();
    for r in intensity_table() {
        if let Some(prev) = seen.insert((r.code.clone(), r.year), r.provenance.source) {
            assert_ne!(
                prev, r.provenance.source,
                "same source twice for {}",
                r.code
            );
            dups.push((r.code.clone(), r.year));
        }
    }
    // Only Israel 2022: GA (Electricity Maps, April 2022) and codecarbon (OWID, full year).
    assert_eq!(dups, [("IL".to_string(), Some(2022))]);
    let il = pick_intensity("IL", Some(2022)).unwrap();
    assert_eq!(il.row.provenance.source, "A-CC");
    assert_close(il.row.g_per_kwh, 582.927, "IL 2022");
    assert!(il.note.contains("preferred over 1 other"), "{}", il.note);
}

#[test]
fn version_and_sources() {
    assert!(FACTORS_VERSION.starts_with("wattprint-factors-"));
    let s = sources();
    let keys: Vec<_> = s.iter().map(|s| s.key).collect();
    assert_eq!(keys, ["A-CC", "A-GA", "A-ML", "A-CCFC", "A-CCF", "WP-DS"]);
    assert!(s
        .iter()
        .all(|s| !s.attribution.is_empty() && !s.url.is_empty()));
    assert!(source_info("A-GA")
        .unwrap()
        .attribution
        .contains("CC BY 4.0"));
    assert!(source_info("A-CC")
        .unwrap()
        .attribution
        .contains("CodeCarbon 3.3.2"));
}

// ------------------------------------------------------------------------------------------
// values from the README's "values that disagree" table

#[test]
fn country_values_by_year() {
    // France: codecarbon 56.039 (FRA, 2023, life-cycle) vs Green Algorithms 51.28 (2020 data).
    let latest = pick_intensity("FR", None).unwrap();
    assert_close(latest.row.g_per_kwh, 56.039, "FR latest");
    assert_eq!(latest.row.year, Some(2023));
    assert_eq!(latest.row.provenance.source, "A-CC");
    assert_eq!(latest.row.provenance.scope, "life-cycle");
    let y2020 = pick_intensity("fr", Some(2020)).unwrap();
    assert_close(y2020.row.g_per_kwh, 51.28, "FR 2020");
    assert_eq!(y2020.row.provenance.source, "A-GA");
    assert_eq!(y2020.row.provenance.scope, "direct");
    // 2021 and 2022 runs use the latest year <= run year, i.e. 2020.
    let y2022 = pick_intensity("FR", Some(2022)).unwrap();
    assert_eq!(y2022.row.year, Some(2020));
    assert!(y2022.note.contains("<= run year 2022"), "{}", y2022.note);
    // Before any data: the earliest row, and the note says so.
    let y2010 = pick_intensity("FR", Some(2010)).unwrap();
    assert_eq!(y2010.row.year, Some(2020));
    assert!(y2010.note.contains("no data for 2010"), "{}", y2010.note);
    // After the latest: the latest.
    assert_eq!(
        pick_intensity("FR", Some(2030)).unwrap().row.year,
        Some(2023)
    );

    for (code, new, old) in [
        ("SE", 40.695, 5.67),
        ("PL", 661.926, 759.62),
        ("US", 369.473, 423.94),
        ("DE", 380.95, 338.66),
    ] {
        assert_close(
            pick_intensity(code, Some(2024)).unwrap().row.g_per_kwh,
            new,
            code,
        );
        assert_close(
            pick_intensity(code, Some(2020)).unwrap().row.g_per_kwh,
            old,
            code,
        );
    }
    assert!(pick_intensity("XX", None).is_none());
}

#[test]
fn subnational_values() {
    // Virginia: eGRID2023 539.599 lbs/MWh x 0.45359237 = 244.758 g/kWh; GA US-VA 308 (2020).
    let va = pick_intensity("US-VA", Some(2023)).unwrap();
    assert_close(va.row.g_per_kwh, 539.599 * 0.45359237, "US-VA 2023");
    assert_eq!(va.row.provenance.scope, "direct");
    assert_close(
        pick_intensity("US-VA", Some(2021)).unwrap().row.g_per_kwh,
        308.0,
        "US-VA 2021",
    );
    // Quebec: GA 1.5 (2019) and the 2023 mix x life-cycle factors:
    // (0.2*743 + 0.3*816 + 0.7*230 + 0.01*48 + 6.7*26 + 92.1*26) / 100.01.
    let qc_mix =
        (0.2 * 743.0 + 0.3 * 816.0 + 0.7 * 230.0 + 0.01 * 48.0 + 6.7 * 26.0 + 92.1 * 26.0) / 100.01;
    let qc = pick_intensity("CA-QC", None).unwrap();
    assert!(
        (qc.row.g_per_kwh - qc_mix).abs() < 1e-6,
        "{}",
        qc.row.g_per_kwh
    );
    assert_eq!(qc.row.provenance.scope, "life-cycle");
    assert_close(
        pick_intensity("CA-QC", Some(2019)).unwrap().row.g_per_kwh,
        1.5,
        "CA-QC 2019",
    );
    // Manitoba: GA's CA-MT is shipped under ISO CA-MB.
    assert_close(
        pick_intensity("CA-MB", Some(2020)).unwrap().row.g_per_kwh,
        1.3,
        "CA-MB",
    );
    // Nordic zone: life-cycle, lower bound flagged.
    let se3 = pick_intensity("SE-SE3", None).unwrap();
    assert_close(se3.row.g_per_kwh, 27.0, "SE-SE3");
    assert_eq!(se3.row.year, Some(2025));
    assert!(se3.row.provenance.note.contains("lower bound"));
    // China provinces: CO2 only, said so.
    let bj = pick_intensity("CN-BJ", None).unwrap();
    assert_close(bj.row.g_per_kwh, 555.4, "CN-BJ");
    assert!(bj.row.provenance.note.contains("CO2 only"));
    // Australian state (GA only).
    assert_close(
        pick_intensity("AU-NSW", None).unwrap().row.g_per_kwh,
        870.0,
        "AU-NSW",
    );
}

#[test]
fn world_average_and_default_pue() {
    assert_eq!(world_average().g_per_kwh, WORLD_AVERAGE_G_PER_KWH);
    assert_eq!(WORLD_AVERAGE_G_PER_KWH, 475.0);
    let (pue, prov) = default_pue();
    assert_eq!(pue, DEFAULT_PUE);
    assert_eq!(pue, 1.56);
    assert_eq!(prov.source, "A-GA");
    assert_eq!(
        pue_table()
            .iter()
            .filter(|p| p.role == PueRole::Default)
            .count(),
        1
    );
}

#[test]
fn cloud_values_and_sources() {
    // AWS eu-west-3: CCF application 51.1, ccf-coefficients 52, mlco2 105; PUE CCF 1.135.
    let paris = cloud_region("aws:eu-west-3").unwrap();
    assert_close(paris.intensity_g_per_kwh, 51.1, "eu-west-3");
    assert_eq!(paris.intensity_provenance.source, "A-CCF");
    assert_close(paris.pue, 1.135, "eu-west-3 PUE");
    assert_eq!(paris.pue_provenance.source, "A-CCF");
    assert_eq!(paris.country, "FR");
    let alt = |c: &factors::CloudRegion, s: &str| {
        c.alternatives
            .iter()
            .find(|a| a.source == s)
            .map(|a| a.g_per_kwh)
    };
    assert_close(alt(paris, "A-CCFC").unwrap(), 52.0, "eu-west-3 ccfc");
    assert_close(alt(paris, "A-ML").unwrap(), 105.0, "eu-west-3 mlco2");

    let va = cloud_region("AWS:US-EAST-1").unwrap();
    assert_close(va.intensity_g_per_kwh, 379.069, "us-east-1");
    assert_eq!(va.intensity_provenance.year, Some(2020));
    assert_close(alt(va, "A-CCFC").unwrap(), 415.755, "us-east-1 ccfc");
    assert_close(alt(va, "A-ML").unwrap(), 367.8, "us-east-1 mlco2");

    let sto = cloud_region("aws:eu-north-1").unwrap();
    assert_close(sto.intensity_g_per_kwh, 8.8, "eu-north-1");
    assert_close(alt(sto, "A-CCFC").unwrap(), 8.0, "eu-north-1 ccfc");
    assert_close(alt(sto, "A-ML").unwrap(), 47.0, "eu-north-1 mlco2");

    let fra = cloud_region("aws:eu-central-1").unwrap();
    assert_close(fra.intensity_g_per_kwh, 311.0, "eu-central-1");
    assert_close(alt(fra, "A-CCFC").unwrap(), 338.0, "eu-central-1 ccfc");

    // GCP: the Google 'grid' variant, not CFE-adjusted; per-region PUE where CCF has one.
    let waw = cloud_region("gcp:europe-central2").unwrap();
    assert_close(waw.intensity_g_per_kwh, 576.0, "europe-central2");
    assert_close(
        alt(waw, "A-CC").unwrap(),
        723.0,
        "europe-central2 codecarbon",
    );
    assert_close(waw.pue, 1.1, "gcp fleet PUE");
    let iowa = cloud_region("gcp:us-central1").unwrap();
    assert_close(iowa.intensity_g_per_kwh, 456.0, "us-central1");
    assert_close(iowa.pue, 1.11, "us-central1 PUE");
    assert_eq!(iowa.pue_provenance.kind, "trailing-12-month");
    assert_close(alt(iowa, "A-CCFC").unwrap(), 479.0, "us-central1 ccfc");
    assert_close(alt(iowa, "A-ML").unwrap(), 566.3, "us-central1 mlco2");
    assert_close(alt(iowa, "A-CC").unwrap(), 430.0, "us-central1 codecarbon");
    // GCP region only in codecarbon (typo me-cenrtal1 fixed).
    let doha = cloud_region("gcp:me-central1").unwrap();
    assert_eq!(doha.intensity_provenance.source, "A-CC");
    assert_close(doha.intensity_g_per_kwh, 575.0, "me-central1");

    // Azure: Sweden Central 5.67 (CCF), 9 (ccf-coefficients); fleet PUE 1.185.
    let se = cloud_region("azure:swedencentral").unwrap();
    assert_close(se.intensity_g_per_kwh, 5.67, "swedencentral");
    assert_close(alt(se, "A-CCFC").unwrap(), 9.0, "swedencentral ccfc");
    assert_close(se.pue, 1.185, "azure PUE");
    assert!(cloud_region("azure:France Central").is_some());
    // Geographies and staging endpoints of the CCF constants are not regions.
    assert!(cloud_region("azure:europe").is_none());
    assert!(cloud_region("azure:eastusstage").is_none());
    assert!(cloud_region("gcp:nam4").is_none());
}

#[test]
fn azure_malformed_rows_are_repaired_not_off_by_a_million() {
    // `Finland Central,Helsinki,,000077,EEA,` → 0.000077 t/kWh = 77 g/kWh.
    let fi = cloud_region("azure:finlandcentral").unwrap();
    assert_close(fi.intensity_g_per_kwh, 77.0, "finlandcentral");
    assert_eq!(fi.intensity_provenance.source, "A-CCFC");
    assert!(fi.intensity_provenance.note.contains("repaired"));
    // `Germany West Central,Frankfurt,,000402,EEA` → 402 g/kWh (kept as an alternative; the
    // CCF application value 338.66 is used).
    let de = cloud_region("azure:germanywestcentral").unwrap();
    assert_close(de.intensity_g_per_kwh, 338.66, "germanywestcentral");
    let a = de
        .alternatives
        .iter()
        .find(|a| a.source == "A-CCFC")
        .unwrap();
    assert_close(a.g_per_kwh, 402.0, "germanywestcentral ccfc");
    assert!(a.note.contains("repaired"));
}

// ------------------------------------------------------------------------------------------
// location parsing and resolution

#[test]
fn parse_accepts_the_documented_forms() {
    assert_eq!(
        parse_location("fr").unwrap(),
        LocationSpec::Country { code: "FR".into() }
    );
    assert_eq!(
        parse_location(" us-ca ").unwrap(),
        LocationSpec::Zone {
            code: "US-CA".into()
        }
    );
    assert_eq!(
        parse_location("CA-QC").unwrap(),
        LocationSpec::Zone {
            code: "CA-QC".into()
        }
    );
    assert_eq!(
        parse_location("se-se3").unwrap(),
        LocationSpec::Zone {
            code: "SE-SE3".into()
        }
    );
    assert_eq!(
        parse_location("UK").unwrap(),
        LocationSpec::Country { code: "GB".into() }
    );
    assert_eq!(
        parse_location("CA-MT").unwrap(),
        LocationSpec::Zone {
            code: "CA-MB".into()
        }
    );
    assert_eq!(parse_location("world").unwrap(), LocationSpec::World);
    let cloud = |p, r: &str| LocationSpec::Cloud {
        provider: p,
        region: r.to_string(),
    };
    assert_eq!(
        parse_location("AWS:US-EAST-1").unwrap(),
        cloud(Provider::Aws, "us-east-1")
    );
    assert_eq!(
        parse_location("gcp:europe-west1").unwrap(),
        cloud(Provider::Gcp, "europe-west1")
    );
    assert_eq!(
        parse_location("azure:France Central").unwrap(),
        cloud(Provider::Azure, "francecentral")
    );
    // A bare region name unique to one provider.
    assert_eq!(
        parse_location("eu-west-3").unwrap(),
        cloud(Provider::Aws, "eu-west-3")
    );
    assert_eq!(
        parse_location("aws:eu-west-3").unwrap().code(),
        "aws:eu-west-3"
    );
}

#[test]
fn parse_errors_list_choices_and_how_to_see_them() {
    assert_eq!(parse_location("  ").unwrap_err(), LocationError::Empty);

    let e = parse_location("aws:eu-west-9").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("aws:eu-west-1"), "{msg}");
    assert!(msg.contains("wattprint regions --provider aws"), "{msg}");
    match e {
        LocationError::UnknownRegion { suggestions, .. } => {
            assert!(
                suggestions.iter().all(|s| s.starts_with("aws:")),
                "{suggestions:?}"
            )
        }
        other => panic!("unexpected {other:?}"),
    }

    let msg = parse_location("ibm:us-south").unwrap_err().to_string();
    assert!(
        msg.contains("ibm") && msg.contains("aws, gcp, azure"),
        "{msg}"
    );

    let msg = parse_location("Frnce").unwrap_err().to_string();
    assert!(msg.contains("wattprint factors intensity"), "{msg}");
    assert!(msg.contains("aws:us-east-1"), "{msg}"); // the accepted forms are listed

    // A near-miss zone code suggests the right one.
    match parse_location("US-CAL").unwrap_err() {
        LocationError::Unknown { suggestions, .. } => {
            assert!(
                suggestions.contains(&"US-CA".to_string()),
                "{suggestions:?}"
            )
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn unknown_location_resolves_to_flagged_world_average() {
    let r = resolve(None, Some(2024));
    assert!(!r.known);
    assert_eq!(r.code, "unknown");
    assert_eq!(r.intensity_g_per_kwh, 475.0);
    assert!(r.intensity_provenance.note.contains("location unknown"));
    assert_eq!(r.pue, 1.56);
    assert!(r.cloud_region.is_none());

    // A hand-built spec with no data is also flagged, not silently valued.
    let r = resolve(Some(&LocationSpec::Country { code: "ZZ".into() }), None);
    assert!(!r.known);
    assert_eq!(r.intensity_g_per_kwh, 475.0);
    assert!(r.intensity_provenance.note.contains("ZZ"));
}

#[test]
fn resolve_country_zone_and_cloud() {
    let fr = resolve(Some(&parse_location("FR").unwrap()), Some(2020));
    assert!(fr.known);
    assert_eq!(fr.code, "FR");
    assert_close(fr.intensity_g_per_kwh, 51.28, "FR 2020");
    assert!(fr.intensity_provenance.note.contains("2020"));
    assert_eq!(fr.pue, DEFAULT_PUE);

    let paris = resolve(Some(&parse_location("aws:eu-west-3").unwrap()), Some(2024));
    assert!(paris.known);
    assert_eq!(paris.code, "aws:eu-west-3");
    assert_close(paris.intensity_g_per_kwh, 51.1, "eu-west-3");
    assert_close(paris.pue, 1.135, "eu-west-3 PUE");
    assert_close(paris.effective_g_per_kwh(), 51.1 * 1.135, "effective");
    assert!(paris
        .intensity_provenance
        .note
        .contains("run year 2024 not applied"));
    assert_eq!(paris.cloud_region.unwrap().country, "FR");

    let w = resolve(Some(&LocationSpec::World), None);
    assert!(w.known);
    assert_eq!(w.intensity_g_per_kwh, 475.0);
}

#[test]
fn location_from_env_reads_and_trims() {
    use wattprint_core::env::Env;
    let env = Env::from_pairs([(LOCATION_ENV, "  aws:eu-west-3 ")]);
    assert_eq!(location_from_env(&env).as_deref(), Some("aws:eu-west-3"));
    let env = Env::from_pairs([(LOCATION_ENV, "   ")]);
    assert_eq!(location_from_env(&env), None);
    assert_eq!(location_from_env(&Env::default()), None);
}

// ------------------------------------------------------------------------------------------
// GPU lookup

fn found(q: &str) -> factors::GpuSpec {
    match gpu_lookup(q) {
        GpuMatch::Found(g) => g,
        other => panic!("{q}: expected Found, got {other:?}"),
    }
}

#[test]
fn gpu_lookup_cases() {
    match gpu_lookup("a100") {
        GpuMatch::Ambiguous(v) => {
            let names: Vec<_> = v.iter().map(|g| g.name.as_str()).collect();
            assert_eq!(
                names,
                [
                    "NVIDIA A100 SXM4",
                    "NVIDIA A100 PCIe 40GB",
                    "NVIDIA A100 PCIe 80GB"
                ]
            );
        }
        other => panic!("a100: {other:?}"),
    }
    let sxm = found("a100 sxm");
    assert_eq!((sxm.name.as_str(), sxm.tdp_w), ("NVIDIA A100 SXM4", 400.0));
    assert_eq!((sxm.idle_w, sxm.max_w), (Some(46.0), Some(407.0)));
    assert_eq!(sxm.memory_gb, vec![40, 80]);
    assert_eq!(found("A100 SXM").name, "NVIDIA A100 SXM4");
    assert_eq!(found("NVIDIA A100-SXM4-80GB").name, "NVIDIA A100 SXM4");
    assert_eq!(found("NVIDIA A100-PCIE-40GB").tdp_w, 250.0);
    assert_eq!(found("a100 pcie 80gb").tdp_w, 300.0);

    let h = found("h100 sxm");
    assert_eq!((h.name.as_str(), h.tdp_w), ("NVIDIA H100 SXM", 700.0));
    assert_eq!(found("NVIDIA H100 80GB HBM3").name, "NVIDIA H100 SXM");
    assert_eq!(found("NVIDIA H100 PCIe").tdp_w, 350.0);
    assert_eq!(found("NVIDIA H100 PCIe").provenance.source, "WP-DS");
    assert!(matches!(gpu_lookup("h100"), GpuMatch::Ambiguous(v) if v.len() == 3));

    // V100 swap repaired: PCIe 250 W, SXM2 300 W.
    assert_eq!(found("Tesla V100-PCIE-16GB").tdp_w, 250.0);
    assert_eq!(found("Tesla V100-PCIE-32GB").tdp_w, 250.0); // memory word ignored in last tier
    assert_eq!(found("v100 sxm2").tdp_w, 300.0);
    assert!(found("Tesla V100-PCIE-16GB")
        .provenance
        .note
        .contains("swapped"));
    assert!(found("Tesla V100-SXM2-16GB")
        .provenance
        .note
        .contains("swapped"));
    assert!(matches!(gpu_lookup("v100"), GpuMatch::Ambiguous(v) if v.len() == 2));

    // A10G malformed row repaired: memory 24 GB.
    let a10g = found("NVIDIA A10G");
    assert_eq!((a10g.tdp_w, a10g.memory_gb.clone()), (150.0, vec![24]));
    assert_eq!(a10g.idle_w, Some(18.0));

    assert_eq!(found("L4").tdp_w, 72.0); // not ambiguous with L40S
    assert_eq!(found("l40s").tdp_w, 350.0);
    assert_eq!(found("rtx 3080").tdp_w, 320.0); // not RTX 3080 Ti
    assert_eq!(found("GeForce RTX 3080 Ti").tdp_w, 350.0);
    let t4 = found("Tesla T4");
    assert_eq!((t4.tdp_w, t4.idle_w), (70.0, Some(8.0)));
    let tpu3 = found("tpu v3");
    assert_eq!((tpu3.tdp_w, tpu3.avg_w), (220.0, Some(283.0)));

    assert_eq!(gpu_lookup("quantum flux capacitor"), GpuMatch::Unknown);
    assert_eq!(gpu_lookup(""), GpuMatch::Unknown);
    assert_eq!(gpu_lookup("GTX 750"), GpuMatch::Unknown); // dropped: implausible upstream row
}

// ------------------------------------------------------------------------------------------
// embodied

#[test]
fn embodied_coefficients_reproduce_ccf() {
    let e = embodied();
    assert_eq!(e.server_base_kg, 1000.0);
    assert_eq!(e.per_gpu_kg, 150.0);
    assert_close(e.per_gb_dram_kg, 533.0 / 384.0, "dram");
    assert_eq!(
        (e.per_ssd_kg, e.per_hdd_kg, e.per_cpu_socket_kg),
        (100.0, 50.0, 100.0)
    );
    assert_eq!(e.lifetime_hours, 35040.0);
    // p4d.24xlarge: 1000 + (1152-16)*533/384 + 8*100 + 100 + 8*150 = 4676.79 (ccf-coefficients).
    let p4d = e.server_kg(8, 1152.0, 8, 0, 2);
    assert!((p4d - 4676.79).abs() < 0.01, "{p4d}");
    // Methodology 5.5: 8 GPUs x 150 kg over 72 h of a 35 040 h life = 2.466 kg.
    let gpus = e.amortised_kg(8.0 * e.per_gpu_kg, 72.0);
    assert!((gpus - 2.466).abs() < 0.001, "{gpus}");
    // One rule: linear, not capped (a job outliving the hardware uses replacements).
    assert_eq!(e.amortised_kg(100.0, 2.0 * 35_040.0), 200.0);
}

// ------------------------------------------------------------------------------------------
// regions ranking

#[test]
fn ranking_is_sorted_by_intensity_times_pue() {
    let aws = rank_regions(Some("aws")).unwrap();
    assert_eq!(aws.len(), 27);
    assert!(aws.iter().all(|r| r.provider == Provider::Aws));
    for w in aws.windows(2) {
        assert!(w[0].effective_g_per_kwh <= w[1].effective_g_per_kwh);
    }
    for r in &aws {
        assert_close(r.effective_g_per_kwh, r.intensity * r.pue, &r.id);
    }
    assert_eq!(aws[0].id, "aws:eu-north-1");
    let all = rank_regions(None).unwrap();
    assert_eq!(all.len(), cloud_regions().len());
    assert_eq!(rank_regions(Some("ALL")).unwrap().len(), all.len());
    assert!(matches!(
        rank_regions(Some("oracle")),
        Err(LocationError::UnknownProvider { .. })
    ));
}

#[test]
fn regions_report_near_from_and_savings() {
    let rep = regions_report(&RegionsQuery {
        provider: Some("aws".into()),
        near: Some("aws:eu-west-3".into()),
        kwh: Some(1000.0),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(rep.near_area.as_deref(), Some("europe"));
    assert!(rep.rows.iter().all(|r| r.rank.area == "europe"));
    assert_eq!(rep.rows.len(), 6); // eu-central-1, eu-west-1/2/3, eu-south-1, eu-north-1
    let refr = rep.reference.as_ref().unwrap();
    assert_eq!(refr.code, "aws:eu-west-3");
    let e_ref = 51.1 * 1.135;
    assert_close(refr.effective_g_per_kwh, e_ref, "reference");
    let sto = &rep.rows[0];
    assert_eq!(sto.rank.id, "aws:eu-north-1");
    let e_sto = 8.8 * 1.135;
    let s = sto.saving.unwrap();
    assert_close(
        s.percent.unwrap(),
        (e_ref - e_sto) / e_ref * 100.0,
        "saving %",
    );
    assert_close(
        s.kg.unwrap(),
        1000.0 * (e_ref - e_sto) / 1000.0,
        "saving kg",
    );
    assert_close(
        sto.emissions_kg.unwrap(),
        1000.0 * e_sto / 1000.0,
        "emissions kg",
    );

    // --from a country: intensity (latest year) x default PUE; --top truncates.
    let rep = regions_report(&RegionsQuery {
        provider: Some("gcp".into()),
        from: Some("PL".into()),
        top: Some(3),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(rep.rows.len(), 3);
    let refr = rep.reference.unwrap();
    assert_close(refr.effective_g_per_kwh, 661.926 * 1.56, "PL reference");
    assert!(rep
        .rows
        .iter()
        .all(|r| r.saving.unwrap().percent.unwrap() > 0.0));
    assert!(rep.rows.iter().all(|r| r.emissions_kg.is_none()));

    // Area names are accepted by --near.
    let rep = regions_report(&RegionsQuery {
        near: Some("asia-pacific".into()),
        ..Default::default()
    })
    .unwrap();
    assert!(rep.reference.is_none());
    assert!(rep.rows.iter().all(|r| r.rank.area == "asia-pacific"));

    // Errors: unknown provider, non-cloud --near, bad --kwh.
    assert!(regions_report(&RegionsQuery {
        provider: Some("ibm".into()),
        ..Default::default()
    })
    .is_err());
    let e = regions_report(&RegionsQuery {
        near: Some("FR".into()),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("--near") && e.contains("europe"), "{e}");
    assert!(regions_report(&RegionsQuery {
        kwh: Some(-1.0),
        ..Default::default()
    })
    .is_err());
}

#[test]
fn amd_and_intel_data_centre_gpus_by_the_names_their_libraries_give() {
    use wattprint_core::factors::gpu::{gpu_lookup, GpuMatch};
    let cases = [
        ("AMD Instinct MI100", "AMD Instinct MI100", 300.0),
        ("AMD Instinct MI210", "AMD Instinct MI210", 300.0),
        ("AMD Instinct MI250X", "AMD Instinct MI250X", 500.0),
        ("AMD Instinct MI250", "AMD Instinct MI250", 500.0),
        ("AMD Instinct MI300X", "AMD Instinct MI300X", 750.0),
        (
            "Intel(R) Data Center GPU Max 1550",
            "Intel Data Center GPU Max 1550",
            600.0,
        ),
    ];
    for (query, name, tdp) in cases {
        match gpu_lookup(query) {
            GpuMatch::Found(g) => {
                assert_eq!((g.name.as_str(), g.tdp_w), (name, tdp), "{query}");
                // datasheet figures, cited; no idle figure is published: none invented
                assert_eq!(g.provenance.source, "WP-DS");
                assert!(
                    g.provenance.dataset.contains("datasheet")
                        || g.provenance.dataset.contains("specification")
                );
                assert_eq!(g.idle_w, None, "{query}");
            }
            other => panic!("{query}: {other:?}"),
        }
    }
}
