//! CPU model → TDP (thermal design power, W per package) table, shipped inside the binary.
//!
//! The table (`crates/core/data/cpu_tdp.csv`, built by `scripts/build-cpu-table.py`) merges
//! CodeCarbon 3.3.2 `cpu_power.csv` (MIT) and Green Algorithms data v3.0 `TDP_cpu.csv`
//! (CC BY 4.0); see `crates/core/data/README.md` for attribution and the rows dropped.
//!
//! Matching a `/proc/cpuinfo` model name:
//! 1. both sides are normalised ([`normalise`]): lowercase; `(R)`, `(TM)`, `®`, `™` removed;
//!    everything from `@` on (the frequency) cut; parenthesised notes, `with …` suffixes,
//!    `CPU`, `Processor`, `APU`, `N-Core` and `x.y GHz` removed; spaces collapsed;
//! 2. a name without any digit (e.g. "AMD EPYC Processor", "Intel Xeon Processor", "Intel(R)
//!    Xeon(R) CPU @ 2.20GHz" as some cloud VMs report) never matches: [`CpuMatch::Unknown`];
//! 3. an exact match of the normalised names wins;
//! 4. otherwise the query's model-number tokens (e.g. `8375c`, `7b13`, `i7-1165g7`: at least
//!    three characters with a digit, not an ordinal like `11th`, not a decimal like `2.20`, not a
//!    `v4` revision) must all be whole tokens of a candidate, whose `vN` revision tokens must
//!    equal the query's (so "E5-2670" does not match "E5-2670 v2") and whose vendor (Intel,
//!    AMD, …), if named, must agree;
//! 5. candidates that all give the same TDP → [`CpuMatch::Found`]; different TDPs →
//!    [`CpuMatch::Ambiguous`] (never a guess); none → [`CpuMatch::Unknown`].

use std::sync::OnceLock;

/// The table as shipped (CSV: `model,tdp_w,cores,source`).
pub const CPU_TDP_CSV: &str = include_str!("../data/cpu_tdp.csv");

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuEntry {
    /// Model name as the source spells it.
    pub model: &'static str,
    /// TDP in W per package (socket).
    pub tdp_w: f64,
    /// Physical cores, where the source gives them.
    pub cores: Option<u32>,
    /// `codecarbon-3.3.2`, `green-algorithms-v3.0`, or both joined by `+`.
    pub source: &'static str,
}

struct Indexed {
    entry: CpuEntry,
    norm: String,
    tokens: Vec<String>,
}

/// Result of [`lookup`].
#[derive(Debug, Clone, PartialEq)]
pub enum CpuMatch {
    Found {
        model: String,
        tdp_w: f64,
        cores: Option<u32>,
        source: &'static str,
    },
    /// Several rows match with different TDPs: `(model, tdp_w)` of each.
    Ambiguous {
        candidates: Vec<(String, f64)>,
    },
    Unknown,
}

fn parse_table(csv: &'static str) -> (Vec<CpuEntry>, Vec<String>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in csv.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        // The model may contain commas (then it is quoted); the other fields never do.
        let mut it = line.rsplitn(4, ',');
        let (Some(source), Some(cores), Some(tdp), Some(model)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            errors.push(format!("line {}: expected 4 fields: {line}", i + 1));
            continue;
        };
        let model = model
            .strip_prefix('"')
            .and_then(|m| m.strip_suffix('"'))
            .unwrap_or(model);
        let Ok(tdp_w) = tdp.parse::<f64>() else {
            errors.push(format!("line {}: bad tdp_w `{tdp}`", i + 1));
            continue;
        };
        let cores = if cores.is_empty() {
            None
        } else if let Ok(c) = cores.parse::<u32>() {
            Some(c)
        } else {
            errors.push(format!("line {}: bad cores `{cores}`", i + 1));
            continue;
        };
        if !(tdp_w.is_finite() && tdp_w > 0.0) || model.is_empty() || source.is_empty() {
            errors.push(format!(
                "line {}: empty or non-positive field: {line}",
                i + 1
            ));
            continue;
        }
        rows.push(CpuEntry {
            model,
            tdp_w,
            cores,
            source,
        });
    }
    (rows, errors)
}

fn table() -> &'static [Indexed] {
    static TABLE: OnceLock<Vec<Indexed>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // Rows that fail to parse are impossible for the shipped file (a unit test checks that
        // every row parses); they would only be skipped.
        parse_table(CPU_TDP_CSV)
            .0
            .into_iter()
            .map(|entry| {
                let norm = normalise(entry.model);
                let tokens = norm.split(' ').map(str::to_string).collect();
                Indexed {
                    entry,
                    norm,
                    tokens,
                }
            })
            .collect()
    })
}

/// Every row of the shipped table.
pub fn entries() -> Vec<&'static CpuEntry> {
    table().iter().map(|i| &i.entry).collect()
}

/// Normalise a CPU model name for matching (see the module documentation).
pub fn normalise(name: &str) -> String {
    let mut s = name.to_lowercase();
    for junk in ["(r)", "(tm)", "(c)", "®", "™"] {
        s = s.replace(junk, " ");
    }
    if let Some(at) = s.find('@') {
        s.truncate(at);
    }
    // Drop parenthesised notes: "(OEM Only)", "(with IBPB)", "(125W)".
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(if c == ',' { ' ' } else { c }),
            _ => {}
        }
    }
    let mut toks: Vec<&str> = Vec::new();
    for t in out.split_whitespace() {
        if t == "with" || t == "w/" {
            break; // "with Radeon Graphics", "w/ Radeon Vega Mobile Gfx"
        }
        if matches!(t, "cpu" | "processor" | "apu") || is_core_count(t) || is_freq(t) {
            continue;
        }
        if matches!(t, "ghz" | "mhz") {
            if toks.last().is_some_and(|p| is_decimal(p)) {
                toks.pop();
            }
            continue;
        }
        toks.push(t);
    }
    toks.join(" ")
}

/// `64-core`, `16-cores`.
fn is_core_count(t: &str) -> bool {
    let Some((n, rest)) = t.split_once('-') else {
        return false;
    };
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (rest == "core" || rest == "cores")
}

fn is_decimal(t: &str) -> bool {
    !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && t.bytes().any(|b| b.is_ascii_digit())
}

/// `2.90ghz`, `3200mhz`.
fn is_freq(t: &str) -> bool {
    t.strip_suffix("ghz")
        .or_else(|| t.strip_suffix("mhz"))
        .is_some_and(is_decimal)
}

/// `v2`, `v4`: a revision of a model number, compared separately.
fn is_revision(t: &str) -> bool {
    t.strip_prefix('v')
        .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
}

/// `11th`, `2nd`.
fn is_ordinal(t: &str) -> bool {
    ["st", "nd", "rd", "th"].iter().any(|suf| {
        t.strip_suffix(suf)
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// A token that identifies a model: ≥ 3 characters, a digit, not an ordinal, a decimal number,
/// a revision or an architecture name (`armv8`).
fn is_model_token(t: &str) -> bool {
    t.len() >= 3
        && t.bytes().any(|b| b.is_ascii_digit())
        && !t.contains('.')
        && !is_ordinal(t)
        && !is_revision(t)
        && !t.starts_with("armv")
}

const VENDORS: [&str; 7] = [
    "intel", "amd", "arm", "apple", "ampere", "qualcomm", "nvidia",
];

fn vendors<'a>(tokens: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    tokens.filter(|t| VENDORS.contains(t)).collect()
}

fn resolve(cands: &[&'static Indexed]) -> CpuMatch {
    let Some(first) = cands.first() else {
        return CpuMatch::Unknown;
    };
    let same_tdp = cands
        .iter()
        .all(|c| (c.entry.tdp_w - first.entry.tdp_w).abs() < 1e-9);
    if same_tdp {
        // Prefer a row that knows the core count; cores only if no row disagrees.
        let cores: Vec<u32> = cands.iter().filter_map(|c| c.entry.cores).collect();
        let cores = match cores.first() {
            Some(c) if cores.iter().all(|x| x == c) => Some(*c),
            _ => None,
        };
        let best = cands
            .iter()
            .find(|c| c.entry.cores.is_some())
            .unwrap_or(first);
        return CpuMatch::Found {
            model: best.entry.model.to_string(),
            tdp_w: best.entry.tdp_w,
            cores,
            source: best.entry.source,
        };
    }
    let mut candidates: Vec<(String, f64)> = Vec::new();
    for c in cands {
        let item = (c.entry.model.to_string(), c.entry.tdp_w);
        if !candidates.contains(&item) {
            candidates.push(item);
        }
    }
    CpuMatch::Ambiguous { candidates }
}

/// Find the TDP of a CPU from its `/proc/cpuinfo` model name. See the module documentation for
/// the matching rules; a vague name gives [`CpuMatch::Unknown`], never an arbitrary row.
pub fn lookup(name: &str) -> CpuMatch {
    let norm = normalise(name);
    if !norm.bytes().any(|b| b.is_ascii_digit()) {
        return CpuMatch::Unknown;
    }
    let table = table();
    let exact: Vec<&Indexed> = table.iter().filter(|i| i.norm == norm).collect();
    if !exact.is_empty() {
        return resolve(&exact);
    }
    let qtokens: Vec<&str> = norm.split(' ').collect();
    let model_tokens: Vec<&str> = qtokens
        .iter()
        .copied()
        .filter(|t| is_model_token(t))
        .collect();
    if model_tokens.is_empty() {
        return CpuMatch::Unknown;
    }
    let mut qrev: Vec<&str> = qtokens.iter().copied().filter(|t| is_revision(t)).collect();
    qrev.sort_unstable();
    let qvendors = vendors(qtokens.iter().copied());
    let cands: Vec<&Indexed> = table
        .iter()
        .filter(|i| model_tokens.iter().all(|m| i.tokens.iter().any(|t| t == m)))
        .filter(|i| {
            let mut rev: Vec<&str> = i
                .tokens
                .iter()
                .map(String::as_str)
                .filter(|t| is_revision(t))
                .collect();
            rev.sort_unstable();
            rev == qrev
        })
        .filter(|i| {
            let v = vendors(i.tokens.iter().map(String::as_str));
            qvendors.is_empty() || v.is_empty() || v.iter().any(|x| qvendors.contains(x))
        })
        .collect();
    resolve(&cands)
}

/// Rows whose model contains `query` (case-insensitive; also tried on normalised names, so
/// "Xeon(R) Gold 6248" finds "Intel Xeon Gold 6248"): `(model, tdp_w, source)`, table order.
pub fn search(query: &str) -> Vec<(String, f64, &'static str)> {
    let q = query.trim().to_lowercase();
    let qn = normalise(query);
    table()
        .iter()
        .filter(|i| {
            (!q.is_empty() && i.entry.model.to_lowercase().contains(&q))
                || (!qn.is_empty() && i.norm.contains(&qn))
        })
        .map(|i| (i.entry.model.to_string(), i.entry.tdp_w, i.entry.source))
        .collect()
}

/// Logical CPUs per package of CPUs that cloud hosts use (CSV: `model,threads_per_package,source`),
/// from Cloud Carbon Coefficients' `aws-instances-cpus.csv` (Apache-2.0), built by
/// `scripts/build-cpu-table.py`.
pub const CPU_THREADS_CSV: &str = include_str!("../data/cpu_threads.csv");

/// How many logical CPUs one package of a CPU model has, and how that is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageThreads {
    /// Listed in Cloud Carbon Coefficients' cloud host CPU list (vCPUs per socket).
    Listed { threads: u32, source: &'static str },
    /// Two per physical core (simultaneous multithreading, as cloud vCPUs are hyper-threads),
    /// the core count from the TDP table.
    TwiceCores { cores: u32 },
}

impl PackageThreads {
    pub fn threads(&self) -> u32 {
        match *self {
            PackageThreads::Listed { threads, .. } => threads,
            PackageThreads::TwiceCores { cores } => 2 * cores,
        }
    }
}

fn threads_table() -> &'static [(String, u32, &'static str)] {
    static TABLE: OnceLock<Vec<(String, u32, &'static str)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        CPU_THREADS_CSV
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split(',');
                let (m, n, src) = (f.next()?, f.next()?, f.next()?);
                Some((normalise(m), n.trim().parse().ok()?, src.trim()))
            })
            .filter(|(_, n, _)| *n > 0)
            .collect()
    })
}

/// Logical CPUs per package of `model` (a TDP table model name, as [`CpuMatch::Found`] gives):
/// the cloud host list first, else twice the table's physical `cores`; `None` when unknown.
pub fn package_threads(model: &str, cores: Option<u32>) -> Option<PackageThreads> {
    let norm = normalise(model);
    if let Some((_, threads, source)) = threads_table().iter().find(|(m, _, _)| *m == norm) {
        return Some(PackageThreads::Listed {
            threads: *threads,
            source,
        });
    }
    cores
        .filter(|c| *c > 0)
        .map(|cores| PackageThreads::TwiceCores { cores })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn package_threads_come_from_the_cloud_list_or_the_cores() {
        // every shipped row parses
        assert_eq!(
            threads_table().len(),
            CPU_THREADS_CSV
                .lines()
                .skip(1)
                .filter(|l| !l.is_empty())
                .count()
        );
        assert_eq!(
            package_threads("Intel Xeon Platinum 8375C", None),
            Some(PackageThreads::Listed {
                threads: 64,
                source: "ccf-coefficients-b0032d9"
            })
        );
        let t = package_threads("AMD EPYC 7763", Some(64)).unwrap();
        assert_eq!(
            (t, t.threads()),
            (PackageThreads::TwiceCores { cores: 64 }, 128)
        );
        assert_eq!(package_threads("Intel Xeon Gold 6248", None), None);
        assert_eq!(package_threads("Intel Xeon Gold 6248", Some(0)), None);
    }

    #[test]
    fn every_shipped_row_parses() {
        let (rows, errors) = parse_table(CPU_TDP_CSV);
        assert!(errors.is_empty(), "{errors:?}");
        let data_lines = CPU_TDP_CSV
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count();
        assert_eq!(rows.len(), data_lines);
        assert!(rows.len() > 4900, "{}", rows.len());
        // a quoted model with commas inside
        assert!(rows
            .iter()
            .any(|r| r.model == "Intel EP80579 Integrated, 1066 MHz" && r.tdp_w == 18.0));
    }

    #[test]
    fn normalisation() {
        assert_eq!(
            normalise("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"),
            "intel xeon platinum 8375c"
        );
        assert_eq!(
            normalise("AMD EPYC 7B13 64-Core Processor"),
            "amd epyc 7b13"
        );
        assert_eq!(
            normalise("AMD Ryzen 7 5800H with Radeon Graphics"),
            "amd ryzen 7 5800h"
        );
        assert_eq!(normalise("AMD EPYC Processor (with IBPB)"), "amd epyc");
        assert_eq!(normalise("Intel Xeon 3.0 GHz"), "intel xeon");
        assert_eq!(normalise("  Intel   Core i7-8700   "), "intel core i7-8700");
    }

    #[test]
    fn token_classes() {
        assert!(is_model_token("8375c") && is_model_token("i7-1165g7") && is_model_token("3500+"));
        assert!(!is_model_token("11th") && !is_model_token("v4") && !is_model_token("2.5"));
        assert!(!is_model_token("64") && !is_model_token("armv8"));
    }
}
