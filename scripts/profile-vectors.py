#!/usr/bin/env python3
"""Compute the factor-profile test vectors from the tools' own data files.

Usage: scripts/profile-vectors.py --shared /path/to/shared/data > /tmp/vectors.rs

Each tool's published formula is re-implemented here, independently of wattprint's Rust code,
over the upstream files in the shared data folder (Green Algorithms data v3.0, mlco2/impact,
codecarbon 3.3.2, Cloud Carbon Footprint transcribed constants). The output is the table of
`crates/core/tests/profiles.rs`; rerun it when the data changes.
"""
import argparse, csv, json, math, os

ap = argparse.ArgumentParser()
ap.add_argument("--shared", required=True)
A = ap.parse_args()
S = A.shared

def rows(path, skip=0):
    with open(os.path.join(S, path), encoding="utf-8-sig") as f:
        r = list(csv.reader(f))[skip:]
    h = r[0]
    return [dict(zip(h, x)) for x in r[1:] if x and any(x)]

# ---- Green Algorithms v3.0
GA_CI = {r["location"]: float(r["carbonIntensity"]) for r in rows("green-algorithms/CI_aggregated.csv", 1)}
GA_DC = {(r["provider"], r["Name"]): (r["location"], r["PUE"]) for r in rows("green-algorithms/cloudProviders_datacenters.csv", 1)}
GA_PUE = {r["provider"]: float(r["PUE"]) for r in rows("green-algorithms/defaults_PUE.csv", 1)}
GA_GPU = {r["model"]: float(r["TDP"]) for r in rows("green-algorithms/TDP_gpu.csv", 1) if r["TDP"]}
GA_MEM = [float(r["value"]) for r in rows("green-algorithms/referenceValues.csv", 1) if r["variable"] == "memoryPower"][0]
# ---- ML CO2 Impact
ML_IMPACT = {(r["provider"], r["region"]): float(r["impact"]) for r in rows("mlco2-impact/impact.csv")}
ML_GPU = {}
for line in open(os.path.join(S, "mlco2-impact/gpus.csv"), encoding="utf-8").read().splitlines()[1:]:
    p = line.split(",")
    if len(p) > 2 and p[1] in ("gpu", "tpu"):
        ML_GPU[p[0]] = float(p[2])
# ---- CodeCarbon 3.3.2
CC_GCP = {r["region"]: float(r["impact"]) for r in rows("codecarbon/cloud/impact.csv")}
CC_MIX = json.load(open(os.path.join(S, "codecarbon/private_infra/global_energy_mix.json")))
CC_US = json.load(open(os.path.join(S, "codecarbon/private_infra/2023/usa_emissions.json")))
CC_CA = json.load(open(os.path.join(S, "codecarbon/private_infra/2023/canada_energy_mix.json")))
CC_NORDIC = json.load(open(os.path.join(S, "codecarbon/private_infra/nordic_emissions.json")))["data"]
CC_SRC = json.load(open(os.path.join(S, "codecarbon/private_infra/carbon_intensity_per_source.json")))
# ---- CCF
CCF_EF = {}
for r in rows("ccf/cloud-carbon-footprint/transcribed/ccf_grid_emission_factors.csv"):
    if r["variant"] in ("default", "grid"):
        CCF_EF[(r["provider"], r["region"])] = float(r["grid_tco2e_per_kwh"]) * 1e6
CCF_PUE = {}
for r in rows("ccf/cloud-carbon-footprint/transcribed/ccf_pue.csv"):
    CCF_PUE[(r["provider"], r["region"] if not r["region"].startswith("(") else "*")] = float(r["pue"])
CCF_K = {(r["provider"], r["constant"]): float(r["value"]) for r in rows("ccf/cloud-carbon-footprint/transcribed/ccf_other_constants.csv")}
# GPU model strings used by the vectors → each tool's own table row (None: not in that table,
# so the user types its TDP, taken from wattprint's table), CCF's min/max watts, and wattprint's
# TDP (used where the tool measures, i.e. CodeCarbon's NVML).
GA_NAME = {"A100 SXM4": None, "T4": "NVIDIA Tesla T4", "V100 PCIe 16GB": "NVIDIA Tesla V100"}
ML_NAME = {"A100 SXM4": "A100 SXM4 80 GB", "T4": "T4", "V100 PCIe 16GB": "Tesla V100-PCIE-16GB"}
WP_TDP = {}
for r in csv.DictReader(l for l in open(os.path.join(os.path.dirname(__file__), "..", "crates/core/data/factors/gpus.csv")) if not l.startswith("#")):
    WP_TDP[r["name"]] = float(r["tdp_w"])
WP_TDP = {"A100 SXM4": WP_TDP["NVIDIA A100 SXM4"], "T4": WP_TDP["NVIDIA T4"], "V100 PCIe 16GB": WP_TDP["NVIDIA V100 PCIe"]}
CCF_GPU = {"A100 SXM4": (46, 407), "V100 PCIe 16GB": (35, 306), "T4": (8, 71)}

def ccf_vcpu(p):
    if p == "gcp":
        return CCF_K[(p, "MIN_WATTS_MEDIAN")], CCF_K[(p, "MAX_WATTS_MEDIAN")]
    return CCF_K[(p, "MIN_WATTS_AVG")], CCF_K[(p, "MAX_WATTS_AVG")]

# region → (country ISO2, zone) as wattprint's cloud_regions.csv places them
ZONE = {
    ("aws", "us-east-1"): ("US", "US-VA", "USA"), ("aws", "us-west-2"): ("US", "US-OR", "USA"),
    ("aws", "ca-central-1"): ("CA", "CA-QC", "CAN"), ("aws", "eu-west-3"): ("FR", None, "FRA"),
    ("aws", "eu-north-1"): ("SE", "SE-SE3", "SWE"), ("aws", "ap-northeast-1"): ("JP", None, "JPN"),
    ("azure", "francecentral"): ("FR", None, "FRA"), ("azure", "canadaeast"): ("CA", "CA-QC", "CAN"),
    ("gcp", "us-central1"): ("US", "US-IA", "USA"), ("gcp", "europe-west1"): ("BE", None, "BEL"),
    ("gcp", "northamerica-northeast1"): ("CA", "CA-QC", "CAN"), ("gcp", "asia-east1"): ("TW", None, "TWN"),
}
US_STATE = {"US-VA": "virginia", "US-OR": "oregon", "US-IA": "iowa"}
CA_PROV = {"CA-QC": "quebec"}

def cc_intensity(prov, region, loc):
    if prov == "gcp":
        return CC_GCP[region]
    if prov:
        _, zone, iso3 = ZONE[(prov, region)]
    else:
        zone, iso3 = (loc if "-" in loc else None), {"FR": "FRA", "CA-QC": "CAN", "DE": "DEU", "AT": "AUT"}[loc]
    if zone in US_STATE:
        return CC_US[US_STATE[zone]]["emissions"] * 0.45359237
    if zone and zone.startswith("SE-"):
        return CC_NORDIC[zone[3:]]["emission_factor"]
    if zone in CA_PROV:
        mix = CC_CA[CA_PROV[zone]]
        key = {"hydro": "hydroelectricity", "naturalGas": "natural_gas", "nuclear": "nuclear", "coal": "coal",
               "wind": "wind", "solar": "solar", "biomass": "biomass", "petroleum": "petroleum"}
        return sum(mix.get(k, 0) / 100 * CC_SRC[v]["carbon_intensity"] if isinstance(CC_SRC[v], dict) else mix.get(k, 0) / 100 * CC_SRC[v]
                   for k, v in key.items())
    return CC_MIX[iso3]["carbon_intensity"]

def cc_ram(gb):
    if gb <= 2: d = 1
    elif gb <= 16: d = 2
    elif gb <= 64: d = 4
    elif gb <= 128: d = 8
    else:
        size = next((s for s in [128, 64, 32, 16, 8, 4] if s <= gb / 8), 4)
        d = min(math.ceil(gb / size), 32)
    w = 5 * d if d <= 4 else 20 + 4.5 * (d - 4) if d <= 8 else 38 + 4 * (d - 8) if d <= 16 else 70 + 3.5 * (d - 16)
    return max(w, 10)

# jobs: (id, hours, runs, gpus, gpu model key per tool, gpu_watts, cores, core_watts, mem GB, u_cpu, u_gpu, location, pue)
JOBS = [
    ("ga2a-us-east-1", 72, 1, 8, None, 400, 0, None, 0, 1, 1, "aws:us-east-1", None),
    ("ga2b-us-east-1", 72, 1, 8, None, 400, 48, None, 1152, 1, 1, "aws:us-east-1", None),
    ("a100-ca-central-1", 100, 1, 1, "A100 SXM4", None, 0, None, 0, 1, 1, "aws:ca-central-1", None),
    ("v100-us-central1", 100, 1, 1, "V100 PCIe 16GB", None, 8, 10, 64, 0.5, 1, "gcp:us-central1", None),
    ("v100-quebec-gcp", 100, 1, 1, "V100 PCIe 16GB", None, 0, None, 0, 1, 1, "gcp:northamerica-northeast1", None),
    ("t4-francecentral", 100, 1, 1, "T4", None, 4, None, 16, 1, 0.5, "azure:francecentral", None),
    ("t4-canadaeast", 24, 3, 2, "T4", None, 16, 5, 128, 0.8, 0.8, "azure:canadaeast", None),
    ("a100-eu-west-3", 12, 2, 4, "A100 SXM4", None, 32, 8, 256, 0.25, 0.9, "aws:eu-west-3", None),
    ("a100-eu-north-1", 48, 1, 8, "A100 SXM4", None, 96, None, 1152, 0.5, 0.5, "aws:eu-north-1", None),
    ("v100-us-west-2", 10, 5, 4, "V100 PCIe 16GB", None, 8, 12, 61, 1, 0.7, "aws:us-west-2", None),
    ("t4-europe-west1", 6, 1, 1, "T4", None, 2, 15, 8, 1, 1, "gcp:europe-west1", None),
    ("a100-asia-east1", 30, 1, 2, "A100 SXM4", None, 24, 9, 340, 0.6, 0.4, "gcp:asia-east1", None),
    ("v100-ap-northeast-1", 5, 2, 1, "V100 PCIe 16GB", None, 4, None, 32, 1, 1, "aws:ap-northeast-1", None),
    ("ga1-austria", 12, 1, 0, None, None, 12, 7.5, 64, 1, 1, "AT", None),
    ("ga3-france-pc", 2, 3, 0, None, None, 4, 12, 16, 0.5, 1, "FR", 1.0),
    ("quebec-on-premise", 10, 1, 1, "A100 SXM4", None, 8, 10, 32, 1, 1, "CA-QC", None),
]

def gpu_w(model, gw, table, names):
    if gw is not None:
        return gw
    if model is None:
        return 0
    n = names[model]
    return table[n] if n else WP_TDP[model]

def ga(j):
    _, h, runs, g, model, gw, c, cw, mem, uc, ug, loc, pue = j
    if ":" in loc:
        prov, reg = loc.split(":")
        dcl, dcp = GA_DC.get((prov, reg), ("", ""))
        p = float(dcp) if dcp else GA_PUE[prov]
        zone = ZONE[(prov, reg)][1]
        code = dcl or (zone if zone in GA_CI else ZONE[(prov, reg)][0])
    else:
        p, code = GA_PUE["Unknown"], loc
    if pue is not None:
        p = pue
    cw = 12.0 if cw is None else cw
    kwh = h * runs * (c * cw * uc + g * gpu_w(model, gw, GA_GPU, GA_NAME) * ug + mem * GA_MEM) / 1000 * p
    return kwh, kwh * GA_CI[code] / 1000

def mlco2(j):
    _, h, runs, g, model, gw, c, cw, mem, uc, ug, loc, pue = j
    if ":" not in loc:
        return None
    prov, reg = loc.split(":")
    tdp = gpu_w(model, gw, ML_GPU, ML_NAME)
    kwh = h * runs * g * tdp / 1000
    return kwh, kwh * ML_IMPACT[(prov, reg)] / 1000

def codecarbon(j):
    _, h, runs, g, model, gw, c, cw, mem, uc, ug, loc, pue = j
    prov, reg = loc.split(":") if ":" in loc else (None, None)
    tdp = c * (cw if cw is not None else 4.0)
    cpu = tdp * (0.1 + 0.9 * uc ** 3) if c else 0
    ram = cc_ram(mem) if mem else 0
    gpu = g * (gw if gw is not None else (WP_TDP[model] if model else 0)) * ug
    kwh = h * runs * (cpu + ram + gpu) / 1000 * (pue or 1.0)
    return kwh, kwh * cc_intensity(prov, reg, loc) / 1000

def ccf(j):
    _, h, runs, g, model, gw, c, cw, mem, uc, ug, loc, pue = j
    if ":" not in loc:
        return None
    prov, reg = loc.split(":")
    lo, hi = ccf_vcpu(prov)
    cpu = c * (lo + uc * (hi - lo))
    glo, ghi = CCF_GPU[model] if model else (0, 0)
    gpu = g * (glo + ug * (ghi - glo))
    ram = mem * 0.392
    p = CCF_PUE.get((prov, reg), CCF_PUE[(prov, "*")])
    kwh = h * runs * (cpu + gpu + ram) / 1000 * p
    return kwh, kwh * CCF_EF[(prov, reg)] / 1000

print("// Generated by scripts/profile-vectors.py from the shared reference data; do not edit.")
print("// (id, hours, runs, gpus, gpu model, gpu W, cores, W/core, GB, u_cpu, u_gpu, location, PUE)")
print("const JOBS: &[Vector] = &[")
for j in JOBS:
    jid, h, runs, g, model, gw, c, cw, mem, uc, ug, loc, pue = j
    def o(x):
        return "None" if x is None else "Some((%r, %r))" % (x[0], x[1])
    def f(x):
        return "None" if x is None else "Some(%r)" % float(x)
    print("    Vector { id: %r, hours: %r, runs: %d, gpus: %d, gpu_model: %s, gpu_watts: %s, cores: %d, core_watts: %s, memory_gb: %r, cpu_usage: %r, gpu_usage: %r, location: %r, pue: %s," % (
        jid, float(h), runs, g, 'Some("%s")' % model if model else "None", f(gw), c, f(cw), float(mem), float(uc), float(ug), loc, f(pue)))
    print("        ga: %s, mlco2: %s, codecarbon: %s, ccf: %s }," % (o(ga(j)), o(mlco2(j)), o(codecarbon(j)), o(ccf(j))))
print("];")
