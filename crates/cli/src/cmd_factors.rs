//! `wattprint factors`: list and search the shipped factor tables, with their sources.
//!
//! All values and choices live in `wattprint_core::factors`; this module only formats them.

use anyhow::{bail, Result};
use serde::Serialize;
use wattprint_core::factors::{
    self, cloud_regions, embodied_table, gpu_lookup, gpu_table, intensity_rows, intensity_table,
    pick_intensity, pue_table, sources, CloudRegion, GpuMatch, GpuSpec, IntensityRow, Provenance,
    Provider, FACTORS_VERSION,
};
use wattprint_core::location::{parse_location, LocationSpec};

/// `writeln!` into the output buffer (writing to a `String` cannot fail).
macro_rules! outln {
    ($o:expr) => {{
        $o.push('\n');
    }};
    ($o:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($t)*);
    }};
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Table {
    /// Grid carbon intensity per country and sub-national zone (gCO2e/kWh), all data years.
    Intensity,
    /// Cloud regions (AWS, GCP, Azure): grid intensity and PUE.
    Cloud,
    /// Accelerator power: TDP, idle and max watts, memory.
    Gpu,
    /// Embodied emissions per server component and server lifetime.
    Embodied,
    /// PUE values: default, provider fleet averages, per region, alternatives.
    Pue,
    /// CPU model → TDP per socket (CodeCarbon and Green Algorithms tables); needs a QUERY.
    Cpu,
    /// Cloud instance types → host platform embodied kgCO2e and vCPU share (Cloud Carbon
    /// Coefficients).
    Instances,
}

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  wattprint factors intensity FR --year 2021\n  \
wattprint factors cloud aws:eu-west-3\n  wattprint factors gpu \"a100 sxm\"\n  wattprint factors --sources"
)]
pub struct Args {
    /// Table to show; without one, a summary of all tables.
    #[arg(value_enum)]
    pub table: Option<Table>,
    /// Filter: a code (FR, US-CA), a region (aws:eu-west-3), a provider, a GPU name, or text.
    pub query: Option<String>,
    /// Run year used to pick an intensity row (latest data year <= run year).
    #[arg(long)]
    pub year: Option<u16>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Print the datasets, their licences and the attribution lines, and the factor-set version.
    #[arg(long)]
    pub sources: bool,
}

#[derive(Serialize)]
struct JsonOut<'a, T: Serialize> {
    factors_version: &'static str,
    table: &'a str,
    rows: T,
}

fn print_json<T: Serialize>(o: &mut String, table: &str, rows: T) -> Result<i32> {
    let out = JsonOut {
        factors_version: FACTORS_VERSION,
        table,
        rows,
    };
    outln!(o, "{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}

fn year_str(y: Option<u16>) -> String {
    y.map_or_else(|| "n/s".to_string(), |y| y.to_string())
}

fn opt_w(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |w| format!("{w}"))
}

fn print_provenance(o: &mut String, label: &str, p: &Provenance) {
    outln!(o, "  {label}: {p}");
    if !p.note.is_empty() {
        outln!(o, "    note: {}", p.note);
    }
}

pub fn run(args: Args) -> Result<i32> {
    let mut o = String::new();
    let code = run_into(&mut o, args)?;
    emit(&o)?;
    Ok(code)
}

/// Writes the command output to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn run_into(o: &mut String, args: Args) -> Result<i32> {
    if args.sources {
        return print_sources(o, args.json);
    }
    let q = args
        .query
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match args.table {
        None => {
            if q.is_some() {
                bail!("a query needs a table: wattprint factors intensity|cloud|gpu|embodied|pue|cpu|instances QUERY");
            }
            print_summary(o, args.json)
        }
        Some(Table::Intensity) => intensity(o, q, args.year, args.json),
        Some(Table::Cloud) => cloud(o, q, args.json),
        Some(Table::Gpu) => gpu(o, q, args.json),
        Some(Table::Embodied) => {
            if args.json {
                return print_json(o, "embodied", embodied_table());
            }
            outln!(o, "Embodied emissions ({FACTORS_VERSION})");
            for e in embodied_table() {
                outln!(o, "{:<18} {:>10.4} {}", e.component, e.value, e.unit);
                print_provenance(o, "source", &e.provenance);
            }
            Ok(0)
        }
        Some(Table::Cpu) => {
            let Some(q) = q else {
                bail!("`wattprint factors cpu` needs a QUERY (e.g. `wattprint factors cpu 8375C`): the table has {} models", wattprint_core::cpu_table::entries().len());
            };
            let rows: Vec<_> = wattprint_core::cpu_table::search(q)
                .into_iter()
                .take(200)
                .map(|(model, tdp_w, source)| serde_json::json!({"model": model, "tdp_w": tdp_w, "source": source}))
                .collect();
            if rows.is_empty() {
                bail!("no CPU model matches '{q}'; give a model number such as 8375C or 6248");
            }
            if args.json {
                return print_json(o, "cpu", rows);
            }
            outln!(
                o,
                "CPU TDP per socket ({FACTORS_VERSION}); at most 200 rows"
            );
            for r in &rows {
                outln!(
                    o,
                    "{:<48} {:>6} W  {}",
                    r["model"].as_str().unwrap_or_default(),
                    r["tdp_w"],
                    r["source"].as_str().unwrap_or_default()
                );
            }
            Ok(0)
        }
        Some(Table::Instances) => {
            let rows: Vec<_> = wattprint_core::factors::instances::instance_table()
                .iter()
                .filter(|r| {
                    q.is_none_or(|q| {
                        let q = q.to_ascii_lowercase();
                        r.provider == q
                            || r.instance_type.to_ascii_lowercase().contains(&q)
                            || format!("{}:{}", r.provider, r.instance_type.to_ascii_lowercase())
                                .contains(&q)
                    })
                })
                .collect();
            if rows.is_empty() {
                bail!(
                    "no instance type matches '{}'; try a family such as m5 or a provider (aws, azure, gcp)",
                    q.unwrap_or_default()
                );
            }
            if args.json {
                return print_json(o, "instances", rows);
            }
            outln!(
                o,
                "Cloud instance embodied emissions ({FACTORS_VERSION}; ccf-coefficients @ b0032d9, Apache-2.0)"
            );
            outln!(
                o,
                "{:<7} {:<28} {:>12} {:>10}",
                "cloud",
                "type",
                "platform kg",
                "vCPU share"
            );
            for r in rows {
                outln!(
                    o,
                    "{:<7} {:<28} {:>12.2} {:>4}/{:<5}",
                    r.provider,
                    r.instance_type,
                    r.total_kg,
                    r.instance_vcpu,
                    r.platform_vcpu
                );
            }
            Ok(0)
        }
        Some(Table::Pue) => {
            let rows: Vec<_> = pue_table()
                .iter()
                .filter(|r| q.is_none_or(|q| r.provider.eq_ignore_ascii_case(q)))
                .collect();
            if rows.is_empty() {
                let providers: Vec<&str> =
                    pue_table().iter().map(|r| r.provider.as_str()).collect();
                bail!(
                    "no PUE value for '{}'; providers: {}",
                    q.unwrap_or_default(),
                    dedup(providers).join(", ")
                );
            }
            if args.json {
                return print_json(o, "pue", rows);
            }
            outln!(o, "PUE values ({FACTORS_VERSION})");
            outln!(
                o,
                "{:<12} {:<12} {:<18} {:>6}  source",
                "role",
                "provider",
                "region",
                "PUE"
            );
            for r in rows {
                let role = serde_json::to_value(r.role)?;
                outln!(
                    o,
                    "{:<12} {:<12} {:<18} {:>6}  {}",
                    role.as_str().unwrap_or_default(),
                    r.provider,
                    r.region,
                    r.pue,
                    r.provenance
                );
            }
            Ok(0)
        }
    }
}

fn dedup(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v.dedup();
    v
}

fn print_sources(o: &mut String, json: bool) -> Result<i32> {
    let s = sources();
    if json {
        return print_json(o, "sources", s);
    }
    outln!(o, "Factor set: {FACTORS_VERSION}");
    outln!(
        o,
        "Licence texts are shipped in crates/core/data/factors/licenses/."
    );
    for s in s {
        outln!(o);
        outln!(o, "[{}] {} ({})", s.key, s.name, s.licence);
        outln!(o, "  {} @ {}", s.url, s.version);
        outln!(o, "  {}", s.attribution);
    }
    Ok(0)
}

fn print_summary(o: &mut String, json: bool) -> Result<i32> {
    let codes = factors::intensity_codes().len();
    let regions = cloud_regions();
    let per = |p: Provider| regions.iter().filter(|c| c.provider == p).count();
    let (pue, pue_prov) = factors::default_pue();
    let world = factors::world_average();
    if json {
        #[derive(Serialize)]
        struct Summary {
            intensity_rows: usize,
            intensity_codes: usize,
            cloud_regions: usize,
            gpus: usize,
            embodied: usize,
            pue_rows: usize,
            world_average_g_per_kwh: f64,
            default_pue: f64,
        }
        return print_json(
            o,
            "summary",
            Summary {
                intensity_rows: intensity_table().len(),
                intensity_codes: codes,
                cloud_regions: regions.len(),
                gpus: gpu_table().len(),
                embodied: embodied_table().len(),
                pue_rows: pue_table().len(),
                world_average_g_per_kwh: world.g_per_kwh,
                default_pue: pue,
            },
        );
    }
    outln!(o, "Factor set {FACTORS_VERSION}");
    outln!(o,
        "  intensity  {} rows for {codes} codes (world, countries, zones; several data years)   wattprint factors intensity [CODE] [--year Y]",
        intensity_table().len()
    );
    outln!(o,
        "  cloud      {} regions (aws {}, gcp {}, azure {})   wattprint factors cloud [REGION|PROVIDER]",
        regions.len(),
        per(Provider::Aws),
        per(Provider::Gcp),
        per(Provider::Azure)
    );
    outln!(
        o,
        "  gpu        {} models   wattprint factors gpu [NAME]",
        gpu_table().len()
    );
    outln!(
        o,
        "  embodied   {} coefficients   wattprint factors embodied",
        embodied_table().len()
    );
    outln!(
        o,
        "  pue        {} values   wattprint factors pue [PROVIDER]",
        pue_table().len()
    );
    outln!(
        o,
        "  cpu        {} models   wattprint factors cpu QUERY",
        wattprint_core::cpu_table::entries().len()
    );
    outln!(
        o,
        "  instances  {} cloud instance types   wattprint factors instances [TYPE|PROVIDER]",
        wattprint_core::factors::instances::instance_table().len()
    );
    outln!(
        o,
        "Defaults: world average {} gCO2e/kWh ({}); PUE {pue} for unknown/on-premise ({} {}).",
        world.g_per_kwh,
        world.provenance,
        pue_prov.source,
        year_str(pue_prov.year)
    );
    outln!(
        o,
        "Sources, licences and attribution: wattprint factors --sources"
    );
    Ok(0)
}

fn print_intensity_rows(o: &mut String, rows: &[&IntensityRow]) {
    outln!(
        o,
        "{:<8} {:>5} {:>10}  {:<7} {:<11} name",
        "code",
        "year",
        "gCO2e/kWh",
        "source",
        "scope"
    );
    for r in rows {
        outln!(
            o,
            "{:<8} {:>5} {:>10.2}  {:<7} {:<11} {}",
            r.code,
            year_str(r.year),
            r.g_per_kwh,
            r.provenance.source,
            r.provenance.scope,
            r.name
        );
    }
}

fn intensity(o: &mut String, q: Option<&str>, year: Option<u16>, json: bool) -> Result<i32> {
    let Some(q) = q else {
        let rows: Vec<&IntensityRow> = intensity_table().iter().collect();
        if json {
            return print_json(o, "intensity", rows);
        }
        outln!(
            o,
            "Grid carbon intensity ({FACTORS_VERSION}); details: wattprint factors intensity CODE"
        );
        print_intensity_rows(o, &rows);
        return Ok(0);
    };
    // An exact code (or an alias such as UK): every year, and the row a run would use.
    if let Ok(
        spec @ (LocationSpec::Country { .. } | LocationSpec::Zone { .. } | LocationSpec::World),
    ) = parse_location(q)
    {
        let code = spec.code();
        let rows = intensity_rows(&code);
        let pick = pick_intensity(&code, year);
        if json {
            #[derive(Serialize)]
            struct Detail<'a> {
                code: String,
                rows: Vec<&'a IntensityRow>,
                run_year: Option<u16>,
                used: Option<&'a IntensityRow>,
                used_note: Option<String>,
            }
            return print_json(
                o,
                "intensity",
                Detail {
                    code,
                    rows,
                    run_year: year,
                    used: pick.as_ref().map(|p| p.row),
                    used_note: pick.as_ref().map(|p| p.note.clone()),
                },
            );
        }
        outln!(o, "{code}: {} row(s)", rows.len());
        for r in &rows {
            outln!(o);
            outln!(
                o,
                "{} {} gCO2e/kWh ({} basis), data year {}: {}",
                r.code,
                r.g_per_kwh,
                r.provenance.scope,
                year_str(r.year),
                r.name
            );
            print_provenance(o, "source", &r.provenance);
        }
        if let Some(p) = pick {
            outln!(o);
            outln!(
                o,
                "Used for a run in {}: {} gCO2e/kWh ({} {}; {})",
                year.map_or_else(|| "an unknown year".to_string(), |y| y.to_string()),
                p.row.g_per_kwh,
                p.row.provenance.source,
                year_str(p.row.year),
                p.note
            );
        }
        return Ok(0);
    }
    let ql = q.to_ascii_lowercase();
    let rows: Vec<&IntensityRow> = intensity_table()
        .iter()
        .filter(|r| {
            r.code.to_ascii_lowercase().starts_with(&ql)
                || r.name.to_ascii_lowercase().contains(&ql)
        })
        .collect();
    if rows.is_empty() {
        // Let the location parser explain what is valid and suggest close codes.
        match parse_location(q) {
            Err(e) => bail!("{e}"),
            Ok(_) => bail!(
                "'{q}' is not a country or zone code; cloud regions: wattprint factors cloud {q}"
            ),
        }
    }
    if json {
        return print_json(o, "intensity", rows);
    }
    print_intensity_rows(o, &rows);
    Ok(0)
}

fn cloud_line(o: &mut String, c: &CloudRegion) {
    outln!(
        o,
        "{:<32} {:>9.2} {:<7} {:>6} {:<7} {:>9.2}  {:<3} {}",
        c.id,
        c.intensity_g_per_kwh,
        c.intensity_provenance.source,
        c.pue,
        c.pue_provenance.source,
        c.effective_g_per_kwh(),
        c.country,
        c.name
    );
}

fn cloud(o: &mut String, q: Option<&str>, json: bool) -> Result<i32> {
    let regions = cloud_regions();
    let rows: Vec<&CloudRegion> = match q {
        None => regions.iter().collect(),
        Some(q) => {
            if let Ok(LocationSpec::Cloud { provider, region }) = parse_location(q) {
                let c = factors::find_region(provider, &region)
                    .ok_or_else(|| anyhow::anyhow!("no factors for {provider}:{region}"))?;
                return cloud_detail(o, c, json);
            }
            if let Some(p) = Provider::parse(q) {
                regions.iter().filter(|c| c.provider == p).collect()
            } else {
                let ql = q.to_ascii_lowercase();
                let hits: Vec<&CloudRegion> = regions
                    .iter()
                    .filter(|c| {
                        c.id.contains(&ql)
                            || c.name.to_ascii_lowercase().contains(&ql)
                            || c.country.eq_ignore_ascii_case(&ql)
                            || c.area == ql
                    })
                    .collect();
                if hits.is_empty() {
                    // A malformed provider:region gets the parser's suggestions.
                    if let Err(e) = parse_location(q) {
                        if q.contains(':') {
                            bail!("{e}");
                        }
                    }
                    bail!(
                        "no cloud region matches '{q}'; list them all with `wattprint factors cloud` \
                         or `wattprint regions --provider all`"
                    );
                }
                hits
            }
        }
    };
    if json {
        return print_json(o, "cloud", rows);
    }
    outln!(o, "Cloud regions ({FACTORS_VERSION}); effective = intensity x PUE; details: wattprint factors cloud REGION");
    outln!(
        o,
        "{:<32} {:>9} {:<7} {:>6} {:<7} {:>9}  {:<3} name",
        "region",
        "gCO2e/kWh",
        "source",
        "PUE",
        "source",
        "effective",
        "cc"
    );
    for c in rows {
        cloud_line(o, c);
    }
    Ok(0)
}

fn cloud_detail(o: &mut String, c: &CloudRegion, json: bool) -> Result<i32> {
    if json {
        return print_json(o, "cloud", [c]);
    }
    outln!(o, "{}: {} ({}, area {})", c.id, c.name, c.country, c.area);
    if let Some(z) = &c.zone {
        outln!(o, "  grid zone: {z} (see wattprint factors intensity {z})");
    }
    outln!(
        o,
        "  grid intensity: {} gCO2e/kWh ({} basis)",
        c.intensity_g_per_kwh,
        c.intensity_provenance.scope
    );
    print_provenance(o, "source", &c.intensity_provenance);
    outln!(o, "  PUE: {}", c.pue);
    print_provenance(o, "source", &c.pue_provenance);
    outln!(
        o,
        "  effective: {:.3} gCO2e per kWh of IT energy",
        c.effective_g_per_kwh()
    );
    if !c.alternatives.is_empty() {
        outln!(o, "  other datasets (not used):");
        for a in &c.alternatives {
            let note = if a.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", a.note)
            };
            outln!(
                o,
                "    {} gCO2e/kWh  {} {}{note}",
                a.g_per_kwh,
                a.source,
                a.dataset
            );
        }
    }
    Ok(0)
}

fn gpu_line(o: &mut String, g: &GpuSpec) {
    let mem = if g.memory_gb.is_empty() {
        "-".to_string()
    } else {
        g.memory_gb
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join("/")
    };
    outln!(
        o,
        "{:<32} {:>6} {:>6} {:>6} {:>7}  {:<6} {}",
        g.name,
        g.tdp_w,
        opt_w(g.idle_w),
        opt_w(g.max_w),
        mem,
        g.provenance.source,
        g.aliases.join(", ")
    );
}

fn gpu_header(o: &mut String) {
    outln!(
        o,
        "{:<32} {:>6} {:>6} {:>6} {:>7}  {:<6} aliases",
        "model",
        "TDP W",
        "idle W",
        "max W",
        "mem GB",
        "source"
    );
}

fn gpu(o: &mut String, q: Option<&str>, json: bool) -> Result<i32> {
    let Some(q) = q else {
        let rows = gpu_table();
        if json {
            return print_json(o, "gpu", rows);
        }
        outln!(
            o,
            "Accelerators ({FACTORS_VERSION}); details: wattprint factors gpu NAME"
        );
        gpu_header(o);
        for g in rows {
            gpu_line(o, g);
        }
        return Ok(0);
    };
    match gpu_lookup(q) {
        GpuMatch::Found(g) => {
            if json {
                return print_json(o, "gpu", [&g]);
            }
            let kind = match g.kind {
                factors::AcceleratorKind::Gpu => "GPU",
                factors::AcceleratorKind::Tpu => "TPU",
                factors::AcceleratorKind::Fallback => "generic fallback",
            };
            outln!(o, "{} ({kind})", g.name);
            if !g.aliases.is_empty() {
                outln!(o, "  also: {}", g.aliases.join(", "));
            }
            outln!(o, "  TDP: {} W", g.tdp_w);
            print_provenance(o, "source", &g.provenance);
            if g.idle_w.is_some() || g.max_w.is_some() {
                outln!(o, "  idle (min): {} W, max: {} W", opt_w(g.idle_w), opt_w(g.max_w));
                if let Some(p) = &g.idle_provenance {
                    print_provenance(o, "source", p);
                }
            }
            if let Some(a) = g.avg_w {
                outln!(o, "  measured average: {a} W (not a TDP)");
                if let Some(p) = &g.avg_provenance {
                    print_provenance(o, "source", p);
                }
            }
            if !g.memory_gb.is_empty() {
                let m: Vec<String> = g.memory_gb.iter().map(|m| m.to_string()).collect();
                outln!(o, "  memory: {} GB", m.join(" or "));
            }
            Ok(0)
        }
        GpuMatch::Ambiguous(v) => {
            if json {
                return print_json(o, "gpu", &v);
            }
            outln!(o, "'{q}' matches {} models; name one more precisely:", v.len());
            gpu_header(o);
            for g in &v {
                gpu_line(o, g);
            }
            Ok(0)
        }
        GpuMatch::Unknown => bail!(
            "unknown GPU '{q}'; list the known models with `wattprint factors gpu` (or give its TDP explicitly)"
        ),
    }
}
