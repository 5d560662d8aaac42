#!/usr/bin/env python3
"""Build wattprint's normalised factor tables from the shared reference datasets.

Usage:
    scripts/build-factors.py --shared /path/to/shared/data --out crates/core/data/factors

Reads the upstream files described in <shared>/README.md (codecarbon 3.3.2, Green Algorithms
data v3.0, mlco2/impact, ccf-coefficients, Cloud Carbon Footprint transcribed constants),
repairs the documented defects, converts every value to one unit per table and writes:

    intensity.csv      grid carbon intensity per world / country / sub-national zone (gCO2e/kWh)
    cloud_regions.csv  AWS / GCP / Azure regions: grid intensity, PUE, alternatives
    pue.csv            PUE values: default, provider fleet averages, per region, alternatives
    gpus.csv           accelerator power (TDP, idle/min, max, measured average), memory
    embodied.csv       embodied emissions per component and server lifetime
    licenses/          upstream licence texts (kept with the data, as the licences require)

Every row carries provenance columns: source (key of the shared README's attribution table),
dataset (file inside that source), year (data year, empty where unknown), licence, kind, scope
and a note. The script stops with an error on anything unexpected (a new region, a value that
no longer matches a documented defect) instead of guessing.

Run it once; the outputs are committed so that the crate builds without the shared folder.
"""

import argparse
import csv
import io
import json
import os
import re
import shutil
import sys

LBS_PER_MWH_TO_G_PER_KWH = 0.45359237  # 1 lb = 0.45359237 kg; lb/MWh = 0.45359237 g/kWh
T_PER_KWH_TO_G_PER_KWH = 1e6

LIC = {
    "A-CC": "MIT",
    "A-GA": "CC-BY-4.0",
    "A-ML": "MIT",
    "A-CCFC": "Apache-2.0",
    "A-CCF": "Apache-2.0",
    "WP-DS": "n/a",
}

CC = "codecarbon 3.3.2"
GA = "Green Algorithms data v3.0"
ML = "mlco2/impact @ d0d3ee5"
CCFC = "ccf-coefficients @ b0032d9"
CCF = "cloud-carbon-footprint @ b7a049c (transcribed)"


def die(msg):
    sys.stderr.write("build-factors: error: " + msg + "\n")
    sys.exit(1)


def fmt(x):
    """Shortest exact-enough decimal text for a float (no exponent, no trailing zeros)."""
    if x is None:
        return ""
    s = "%.9f" % x
    s = s.rstrip("0").rstrip(".")
    return s if s not in ("-0", "") else "0"


# ISO 3166-1 alpha-3 -> alpha-2, for every code that occurs in global_energy_mix.json.
ISO3_TO_ISO2 = {
    "ABW": "AW", "AFG": "AF", "AGO": "AO", "ALB": "AL", "ARE": "AE", "ARG": "AR", "ARM": "AM",
    "ASM": "AS", "ATG": "AG", "AUS": "AU", "AUT": "AT", "AZE": "AZ", "BDI": "BI", "BEL": "BE",
    "BEN": "BJ", "BFA": "BF", "BGD": "BD", "BGR": "BG", "BHR": "BH", "BHS": "BS", "BIH": "BA",
    "BLR": "BY", "BLZ": "BZ", "BMU": "BM", "BOL": "BO", "BRA": "BR", "BRB": "BB", "BRN": "BN",
    "BTN": "BT", "BWA": "BW", "CAF": "CF", "CAN": "CA", "CHE": "CH", "CHL": "CL", "CHN": "CN",
    "CIV": "CI", "CMR": "CM", "COD": "CD", "COG": "CG", "COK": "CK", "COL": "CO", "COM": "KM",
    "CPV": "CV", "CRI": "CR", "CUB": "CU", "CYM": "KY", "CYP": "CY", "CZE": "CZ", "DEU": "DE",
    "DJI": "DJ", "DMA": "DM", "DNK": "DK", "DOM": "DO", "DZA": "DZ", "ECU": "EC", "EGY": "EG",
    "ERI": "ER", "ESH": "EH", "ESP": "ES", "EST": "EE", "ETH": "ET", "FIN": "FI", "FJI": "FJ",
    "FLK": "FK", "FRA": "FR", "FRO": "FO", "GAB": "GA", "GBR": "GB", "GEO": "GE", "GHA": "GH",
    "GIB": "GI", "GIN": "GN", "GLP": "GP", "GMB": "GM", "GNB": "GW", "GNQ": "GQ", "GRC": "GR",
    "GRD": "GD", "GRL": "GL", "GTM": "GT", "GUF": "GF", "GUM": "GU", "GUY": "GY", "HKG": "HK",
    "HND": "HN", "HRV": "HR", "HTI": "HT", "HUN": "HU", "IDN": "ID", "IND": "IN", "IRL": "IE",
    "IRN": "IR", "IRQ": "IQ", "ISL": "IS", "ISR": "IL", "ITA": "IT", "JAM": "JM", "JOR": "JO",
    "JPN": "JP", "KAZ": "KZ", "KEN": "KE", "KGZ": "KG", "KHM": "KH", "KIR": "KI", "KNA": "KN",
    "KOR": "KR", "KWT": "KW", "LAO": "LA", "LBN": "LB", "LBR": "LR", "LBY": "LY", "LCA": "LC",
    "LKA": "LK", "LSO": "LS", "LTU": "LT", "LUX": "LU", "LVA": "LV", "MAC": "MO", "MAR": "MA",
    "MDA": "MD", "MDG": "MG", "MDV": "MV", "MEX": "MX", "MKD": "MK", "MLI": "ML", "MLT": "MT",
    "MMR": "MM", "MNE": "ME", "MNG": "MN", "MOZ": "MZ", "MRT": "MR", "MSR": "MS", "MTQ": "MQ",
    "MUS": "MU", "MWI": "MW", "MYS": "MY", "NAM": "NA", "NCL": "NC", "NER": "NE", "NGA": "NG",
    "NIC": "NI", "NLD": "NL", "NOR": "NO", "NPL": "NP", "NRU": "NR", "NZL": "NZ", "OMN": "OM",
    "PAK": "PK", "PAN": "PA", "PER": "PE", "PHL": "PH", "PNG": "PG", "POL": "PL", "PRI": "PR",
    "PRK": "KP", "PRT": "PT", "PRY": "PY", "PSE": "PS", "PYF": "PF", "QAT": "QA", "REU": "RE",
    "ROU": "RO", "RUS": "RU", "RWA": "RW", "SAU": "SA", "SDN": "SD", "SEN": "SN", "SGP": "SG",
    "SHN": "SH", "SLB": "SB", "SLE": "SL", "SLV": "SV", "SOM": "SO", "SPM": "PM", "SRB": "RS",
    "SSD": "SS", "STP": "ST", "SUR": "SR", "SVK": "SK", "SVN": "SI", "SWE": "SE", "SWZ": "SZ",
    "SYC": "SC", "SYR": "SY", "TCA": "TC", "TCD": "TD", "TGO": "TG", "THA": "TH", "TJK": "TJ",
    "TKM": "TM", "TLS": "TL", "TON": "TO", "TTO": "TT", "TUN": "TN", "TUR": "TR", "TWN": "TW",
    "TZA": "TZ", "UGA": "UG", "UKR": "UA", "URY": "UY", "USA": "US", "UZB": "UZ", "VCT": "VC",
    "VEN": "VE", "VGB": "VG", "VIR": "VI", "VNM": "VN", "VUT": "VU", "WSM": "WS", "YEM": "YE",
    "ZAF": "ZA", "ZMB": "ZM", "ZWE": "ZW",
}

US_STATE_NAMES = {}  # filled from usa_emissions.json

CA_PROVINCES = {
    "alberta": ("CA-AB", "Alberta"),
    "british columbia": ("CA-BC", "British Columbia"),
    "manitoba": ("CA-MB", "Manitoba"),
    "new brunswick": ("CA-NB", "New Brunswick"),
    "newfoundland and labrador": ("CA-NL", "Newfoundland and Labrador"),
    "nova scotia": ("CA-NS", "Nova Scotia"),
    "northwest territories": ("CA-NT", "Northwest Territories"),
    "nunavut": ("CA-NU", "Nunavut"),
    "ontario": ("CA-ON", "Ontario"),
    "prince edward island": ("CA-PE", "Prince Edward Island"),
    "quebec": ("CA-QC", "Quebec"),
    "saskatchewan": ("CA-SK", "Saskatchewan"),
    "yukon": ("CA-YT", "Yukon"),
}

# Green Algorithms uses CA-MT for Manitoba; ISO 3166-2 is CA-MB.
GA_CODE_RENAMES = {"CA-MT": "CA-MB"}

# canada_energy_mix.json source keys -> carbon_intensity_per_source.json keys (life-cycle factors).
CA_SOURCE_FACTOR = {
    "hydro": "hydroelectricity",
    "naturalGas": "natural_gas",
    "nuclear": "nuclear",
    "coal": "coal",
    "wind": "wind",
    "solar": "solar",
    "biomass": "biomass",
    "petroleum": "petroleum",
    "tidal": None,  # no factor in carbon_intensity_per_source.json
    "other": None,
}


# ----------------------------------------------------------------------------------------------
# readers


def read_text(path):
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_csv_rows(path, skip=0):
    rows = list(csv.reader(io.StringIO(read_text(path))))
    return rows[skip:]


def read_dicts(path, skip_first_row=False):
    rows = read_csv_rows(path, skip=1 if skip_first_row else 0)
    header = [h.strip() for h in rows[0]]
    out = []
    for r in rows[1:]:
        if not any(c.strip() for c in r):
            continue
        if len(r) != len(header):
            die("%s: row has %d fields, header has %d: %r" % (path, len(r), len(header), r))
        out.append(dict(zip(header, r)))
    return out


def read_json(path):
    return json.loads(read_text(path))


# ----------------------------------------------------------------------------------------------
# 1 + 2: intensity per world / country / zone


def ga_year(source, comments):
    text = source + " " + comments
    m = re.search(r"data from (?:[A-Za-z]+ )?(\d{4})", text, re.I)
    if m:
        return int(m.group(1))
    m = re.search(r"using (\d{4})/\d{2} data", text)
    if m:
        return int(m.group(1))
    return None


def build_intensity(shared):
    rows = []

    # Green Algorithms CI_aggregated.csv (two header rows).
    path = os.path.join(shared, "green-algorithms", "CI_aggregated.csv")
    for r in read_dicts(path, skip_first_row=True):
        code = r["location"].strip()
        code = GA_CODE_RENAMES.get(code, code)
        value = float(r["carbonIntensity"])
        source = r["source"].strip()
        comments = r["comments"].strip()
        year = ga_year(source, comments)
        if code == "WORLD":
            level, country, name = "world", "", "World average"
        elif "-" in code:
            level, country = "zone", code.split("-")[0]
            name = "%s, %s" % (r["regionName"].strip(), r["countryName"].strip())
        else:
            level, country = "country", code
            name = r["countryName"].strip() if r["regionName"].strip() == "Any" else r["regionName"].strip()
        note_parts = []
        if r["location"].strip() != code:
            note_parts.append("Green Algorithms code %s renamed to ISO 3166-2 %s" % (r["location"].strip(), code))
        note_parts.append("upstream source: " + source)
        if comments:
            note_parts.append(comments)
        scope = "direct"
        if "electricitymap" in source.lower():
            # Electricity Maps publishes life-cycle intensities by default.
            scope = "life-cycle"
            note_parts.append("Electricity Maps figure (life-cycle basis)")
        if code == "WORLD":
            note_parts.append("IEA Global Energy & CO2 Status Report 2019; the same 475 is codecarbon's world_average")
        if year is None:
            note_parts.append("data year not stated")
        rows.append(dict(
            code=code, name=name, level=level, country=country, year=year, g_per_kwh=value,
            source="A-GA", dataset=GA + ": CI_aggregated.csv", kind="average", scope=scope,
            note="; ".join(note_parts)))

    # codecarbon global_energy_mix.json (OWID energy dataset; Ember / Energy Institute).
    path = os.path.join(shared, "codecarbon", "private_infra", "global_energy_mix.json")
    mix = read_json(path)
    for iso3, e in sorted(mix.items()):
        if iso3 not in ISO3_TO_ISO2:
            die("global_energy_mix.json: no ISO2 code for %s (%s); add it to ISO3_TO_ISO2" % (iso3, e.get("country_name")))
        iso2 = ISO3_TO_ISO2[iso3]
        note = ("OWID energy dataset carbon_intensity_elec (Ember / Energy Institute), ISO3 %s; "
                "life-cycle factors per Ember's method" % iso3)
        if e["year"] < 2021:
            note += "; old data year"
        rows.append(dict(
            code=iso2, name=e["country_name"], level="country", country=iso2, year=int(e["year"]),
            g_per_kwh=float(e["carbon_intensity"]), source="A-CC",
            dataset=CC + ": private_infra/global_energy_mix.json", kind="average", scope="life-cycle",
            note=note))

    # US states: eGRID2023 STC2ERTA, lbs/MWh -> g/kWh.
    path = os.path.join(shared, "codecarbon", "private_infra", "2023", "usa_emissions.json")
    usa = read_json(path)
    if usa["_unit"]["emissions"] != "lbs/MWh":
        die("usa_emissions.json: unit changed to %r" % usa["_unit"]["emissions"])
    egrid_year = int(usa["_source"]["year"])
    for key, e in sorted(usa.items()):
        if key.startswith("_") or key == "usa":
            continue
        code = "US-" + e["regionCode"].upper()
        lbs = float(e["emissions"])
        rows.append(dict(
            code=code, name="%s, United States" % key.title().replace(" Of ", " of "), level="zone",
            country="US", year=egrid_year, g_per_kwh=lbs * LBS_PER_MWH_TO_G_PER_KWH, source="A-CC",
            dataset=CC + ": private_infra/2023/usa_emissions.json",
            kind="average", scope="direct",
            note="EPA eGRID2023 STC2ERTA (state annual CO2e total output emission rate) %s lbs/MWh x 0.45359237" % fmt(lbs)))

    # Canadian provinces: generation mix x life-cycle factor per source (computed here).
    factors = read_json(os.path.join(shared, "codecarbon", "private_infra", "carbon_intensity_per_source.json"))
    path = os.path.join(shared, "codecarbon", "private_infra", "2023", "canada_energy_mix.json")
    can = read_json(path)
    for key, shares in sorted(can.items()):
        if key not in CA_PROVINCES:
            die("canada_energy_mix.json: unknown province %r" % key)
        code, pname = CA_PROVINCES[key]
        total = float(shares["total"])
        acc = 0.0
        covered = 0.0
        for src, share in shares.items():
            if src == "total":
                continue
            if src not in CA_SOURCE_FACTOR:
                die("canada_energy_mix.json: unknown generation source %r" % src)
            fkey = CA_SOURCE_FACTOR[src]
            if fkey is not None:
                acc += float(share) * float(factors[fkey])
                covered += float(share)
        value = acc / total
        coverage = 100.0 * covered / total
        note = ("computed by wattprint: sum(share x life-cycle factor of carbon_intensity_per_source.json) / total "
                "share (%s %%); data year taken from the file's 2023/ folder" % fmt(total))
        if coverage < 99.995:
            note += "; lower bound: %.2f %% of generation has no factor" % (100 - coverage)
        rows.append(dict(
            code=code, name="%s, Canada" % pname, level="zone", country="CA", year=2023, g_per_kwh=value,
            source="A-CC", dataset=CC + ": private_infra/2023/canada_energy_mix.json + carbon_intensity_per_source.json",
            kind="average", scope="life-cycle", note=note))

    # Nordic bidding zones (life-cycle, production based, 2025).
    path = os.path.join(shared, "codecarbon", "private_infra", "nordic_emissions.json")
    nordic = read_json(path)
    for zone, e in sorted(nordic["data"].items()):
        if zone == "FI":
            # Country-level value of unknown year kept from an earlier codecarbon release.
            continue
        m = re.match(r"^(SE|NO)\d$", zone)
        if not m:
            die("nordic_emissions.json: unexpected zone %r" % zone)
        cov = re.match(r"^([\d.]+)%", e.get("coverage", ""))
        if not cov:
            die("nordic_emissions.json: zone %s has no coverage" % zone)
        coverage = float(cov.group(1))
        note = "ENTSO-E A75 generation shares x codecarbon life-cycle factors; coverage %s" % e["coverage"]
        if coverage < 100.0:
            note += "; lower bound (uncovered generation counted at 0)"
        rows.append(dict(
            code="%s-%s" % (m.group(1), zone), name=e["description"], level="zone", country=m.group(1),
            year=int(e["year"]), g_per_kwh=float(e["emission_factor"]), source="A-CC",
            dataset=CC + ": private_infra/nordic_emissions.json", kind="average", scope="life-cycle",
            note=note))

    # China provinces (CO2 only).
    path = os.path.join(shared, "codecarbon", "private_infra", "2023", "china_provincial_emissions.json")
    china = read_json(path)
    for code, e in sorted(china["data"].items()):
        if e["unit"] != "gCO2/kWh":
            die("china_provincial_emissions.json: unit %r" % e["unit"])
        rows.append(dict(
            code=code, name="%s, China" % e["description"], level="zone", country="CN", year=int(e["year"]),
            g_per_kwh=float(e["emission_factor"]), source="A-CC",
            dataset=CC + ": private_infra/2023/china_provincial_emissions.json", kind="average", scope="direct",
            note="CO2 only (not CO2e); MEE/NBS Announcement 2025 No. 47, provincial average incl. inter-provincial transfers"))

    for r in rows:
        if not (r["g_per_kwh"] >= 0):
            die("intensity %s: bad value %r" % (r["code"], r["g_per_kwh"]))
    level_order = {"world": 0, "country": 1, "zone": 2}
    rows.sort(key=lambda r: (level_order[r["level"]], r["code"], r["year"] or 0, r["source"]))
    return rows


# ----------------------------------------------------------------------------------------------
# 3: cloud regions

AREA = {
    "US": "north-america", "CA": "north-america",
    "BR": "south-america", "CL": "south-america",
    "DE": "europe", "IE": "europe", "GB": "europe", "IT": "europe", "FR": "europe", "SE": "europe",
    "PL": "europe", "FI": "europe", "ES": "europe", "BE": "europe", "NL": "europe", "CH": "europe",
    "NO": "europe",
    "HK": "asia-pacific", "IN": "asia-pacific", "JP": "asia-pacific", "KR": "asia-pacific",
    "SG": "asia-pacific", "ID": "asia-pacific", "TW": "asia-pacific", "CN": "asia-pacific",
    "AU": "asia-pacific",
    "BH": "middle-east", "AE": "middle-east", "QA": "middle-east", "SA": "middle-east", "IL": "middle-east",
    "ZA": "africa",
}

# region -> (display name, ISO2 country, sub-national zone or "")
AWS_REGIONS = {
    "us-east-1": ("US East (N. Virginia)", "US", "US-VA"),
    "us-east-2": ("US East (Ohio)", "US", "US-OH"),
    "us-west-1": ("US West (N. California)", "US", "US-CA"),
    "us-west-2": ("US West (Oregon)", "US", "US-OR"),
    "us-gov-east-1": ("AWS GovCloud (US-East)", "US", ""),
    "us-gov-west-1": ("AWS GovCloud (US-West)", "US", ""),
    "af-south-1": ("Africa (Cape Town)", "ZA", ""),
    "ap-east-1": ("Asia Pacific (Hong Kong)", "HK", ""),
    "ap-south-1": ("Asia Pacific (Mumbai)", "IN", ""),
    "ap-northeast-3": ("Asia Pacific (Osaka)", "JP", ""),
    "ap-northeast-2": ("Asia Pacific (Seoul)", "KR", ""),
    "ap-southeast-1": ("Asia Pacific (Singapore)", "SG", ""),
    "ap-southeast-2": ("Asia Pacific (Sydney)", "AU", "AU-NSW"),
    "ap-southeast-3": ("Asia Pacific (Jakarta)", "ID", ""),
    "ap-northeast-1": ("Asia Pacific (Tokyo)", "JP", ""),
    "ca-central-1": ("Canada (Central)", "CA", "CA-QC"),
    "cn-north-1": ("China (Beijing)", "CN", "CN-BJ"),
    "cn-northwest-1": ("China (Ningxia)", "CN", "CN-NX"),
    "eu-central-1": ("Europe (Frankfurt)", "DE", ""),
    "eu-west-1": ("Europe (Ireland)", "IE", ""),
    "eu-west-2": ("Europe (London)", "GB", ""),
    "eu-south-1": ("Europe (Milan)", "IT", ""),
    "eu-west-3": ("Europe (Paris)", "FR", ""),
    "eu-north-1": ("Europe (Stockholm)", "SE", "SE-SE3"),
    "me-south-1": ("Middle East (Bahrain)", "BH", ""),
    "me-central-1": ("Middle East (UAE)", "AE", ""),
    "sa-east-1": ("South America (Sao Paulo)", "BR", ""),
}

GCP_REGIONS = {
    "us-central1": ("Council Bluffs, Iowa", "US", "US-IA"),
    "us-central2": ("Oklahoma (TPU region)", "US", "US-OK"),
    "us-east1": ("Moncks Corner, South Carolina", "US", "US-SC"),
    "us-east4": ("Ashburn, Northern Virginia", "US", "US-VA"),
    "us-east5": ("Columbus, Ohio", "US", "US-OH"),
    "us-west1": ("The Dalles, Oregon", "US", "US-OR"),
    "us-west2": ("Los Angeles, California", "US", "US-CA"),
    "us-west3": ("Salt Lake City, Utah", "US", "US-UT"),
    "us-west4": ("Las Vegas, Nevada", "US", "US-NV"),
    "us-south1": ("Dallas, Texas", "US", "US-TX"),
    "asia-east1": ("Changhua County, Taiwan", "TW", ""),
    "asia-east2": ("Hong Kong", "HK", ""),
    "asia-northeast1": ("Tokyo, Japan", "JP", ""),
    "asia-northeast2": ("Osaka, Japan", "JP", ""),
    "asia-northeast3": ("Seoul, South Korea", "KR", ""),
    "asia-south1": ("Mumbai, India", "IN", ""),
    "asia-south2": ("Delhi, India", "IN", ""),
    "asia-southeast1": ("Jurong West, Singapore", "SG", ""),
    "asia-southeast2": ("Jakarta, Indonesia", "ID", ""),
    "australia-southeast1": ("Sydney, Australia", "AU", "AU-NSW"),
    "australia-southeast2": ("Melbourne, Australia", "AU", "AU-VIC"),
    "europe-central2": ("Warsaw, Poland", "PL", ""),
    "europe-north1": ("Hamina, Finland", "FI", ""),
    "europe-southwest1": ("Madrid, Spain", "ES", ""),
    "europe-west1": ("St. Ghislain, Belgium", "BE", ""),
    "europe-west2": ("London, United Kingdom", "GB", ""),
    "europe-west3": ("Frankfurt, Germany", "DE", ""),
    "europe-west4": ("Eemshaven, Netherlands", "NL", ""),
    "europe-west6": ("Zurich, Switzerland", "CH", ""),
    "europe-west8": ("Milan, Italy", "IT", ""),
    "europe-west9": ("Paris, France", "FR", ""),
    "europe-west10": ("Berlin, Germany", "DE", ""),
    "europe-west12": ("Turin, Italy", "IT", ""),
    "me-central1": ("Doha, Qatar", "QA", ""),
    "me-central2": ("Dammam, Saudi Arabia", "SA", ""),
    "me-west1": ("Tel Aviv, Israel", "IL", ""),
    "africa-south1": ("Johannesburg, South Africa", "ZA", ""),
    "northamerica-northeast1": ("Montreal, Canada", "CA", "CA-QC"),
    "northamerica-northeast2": ("Toronto, Canada", "CA", "CA-ON"),
    "southamerica-east1": ("Sao Paulo, Brazil", "BR", ""),
    "southamerica-west1": ("Santiago, Chile", "CL", ""),
}
# Transcribed GCP rows that are sums over several regions (per the source's own comments) or averages.
GCP_NOT_REGIONS = {"asia1", "eur4", "nam4", "asia", "europe", "us", "unknown"}

AZURE_REGIONS = {
    "southafricanorth": ("South Africa North (Johannesburg)", "ZA", ""),
    "southafricawest": ("South Africa West (Cape Town)", "ZA", ""),
    "australiacentral": ("Australia Central (Canberra)", "AU", "AU-ACT"),
    "australiacentral2": ("Australia Central 2 (Canberra)", "AU", "AU-ACT"),
    "australiaeast": ("Australia East (New South Wales)", "AU", "AU-NSW"),
    "australiasoutheast": ("Australia Southeast (Victoria)", "AU", "AU-VIC"),
    "japaneast": ("Japan East (Tokyo, Saitama)", "JP", ""),
    "japanwest": ("Japan West (Osaka)", "JP", ""),
    "koreacentral": ("Korea Central (Seoul)", "KR", ""),
    "koreasouth": ("Korea South (Busan)", "KR", ""),
    "eastasia": ("East Asia (Hong Kong)", "HK", ""),
    "southeastasia": ("Southeast Asia (Singapore)", "SG", ""),
    "centralindia": ("Central India (Pune)", "IN", ""),
    "southindia": ("South India (Chennai)", "IN", ""),
    "westindia": ("West India (Mumbai)", "IN", ""),
    "jioindiacentral": ("Jio India Central (Nagpur)", "IN", ""),
    "jioindiawest": ("Jio India West (Jamnagar)", "IN", ""),
    "northeurope": ("North Europe (Ireland)", "IE", ""),
    "westeurope": ("West Europe (Netherlands)", "NL", ""),
    "francecentral": ("France Central (Paris)", "FR", ""),
    "francesouth": ("France South (Marseille)", "FR", ""),
    "swedencentral": ("Sweden Central (Gavle)", "SE", "SE-SE3"),
    "switzerlandnorth": ("Switzerland North (Zurich)", "CH", ""),
    "switzerlandwest": ("Switzerland West (Geneva)", "CH", ""),
    "uksouth": ("UK South (London)", "GB", ""),
    "ukwest": ("UK West (Cardiff)", "GB", ""),
    "germanynorth": ("Germany North (Berlin)", "DE", ""),
    "germanywestcentral": ("Germany West Central (Frankfurt)", "DE", ""),
    "norwayeast": ("Norway East (Oslo)", "NO", "NO-NO1"),
    "norwaywest": ("Norway West (Stavanger)", "NO", "NO-NO2"),
    "uaecentral": ("UAE Central (Abu Dhabi)", "AE", ""),
    "uaenorth": ("UAE North (Dubai)", "AE", ""),
    "canadacentral": ("Canada Central (Toronto)", "CA", "CA-ON"),
    "canadaeast": ("Canada East (Quebec City)", "CA", "CA-QC"),
    "centralus": ("Central US (Iowa)", "US", "US-IA"),
    "eastus": ("East US (Virginia)", "US", "US-VA"),
    "eastus2": ("East US 2 (Virginia)", "US", "US-VA"),
    "eastus3": ("East US 3 (Georgia)", "US", "US-GA"),
    "northcentralus": ("North Central US (Illinois)", "US", "US-IL"),
    "southcentralus": ("South Central US (Texas)", "US", "US-TX"),
    "westcentralus": ("West Central US (Wyoming)", "US", "US-WY"),
    "westus": ("West US (California)", "US", "US-CA"),
    "westus2": ("West US 2 (Washington)", "US", "US-WA"),
    "westus3": ("West US 3 (Arizona)", "US", "US-AZ"),
    "brazilsouth": ("Brazil South (Sao Paulo State)", "BR", ""),
    "brazilsoutheast": ("Brazil Southeast (Rio de Janeiro)", "BR", ""),
    "finlandcentral": ("Finland Central (Helsinki)", "FI", ""),
    "belgiumcentral": ("Belgium Central (Brussels)", "BE", ""),
}
# Azure names in the CCF constants that are geographies, staging or EUAP endpoints, not regions.
AZURE_NOT_REGIONS = {
    "southafrica", "australia", "apeast", "apsoutheast", "japan", "korea", "asia", "asiapacific",
    "india", "france", "switzerland", "uk", "germany", "norway", "uae", "canada", "unitedstates",
    "unitedstateseuap", "brazil", "usnorth", "unknown",
}

REGIONS = {"aws": AWS_REGIONS, "gcp": GCP_REGIONS, "azure": AZURE_REGIONS}

# Data year of the CCF application constants where the source states it.
CCF_NERC_YEAR = 2020  # US_NERC_REGIONS_EMISSIONS_FACTORS: EPA eGRID2020


def parse_ccfc_t_per_kwh(raw, provider, region):
    """Parse a ccf-coefficients grid factor (metric t/kWh). Repairs the two documented Azure rows."""
    text = raw.strip()
    if re.match(r"^0\.\d+$", text):
        return float(text), None
    if provider == "azure" and re.match(r"^000\d+$", text):
        fixed = "0." + text
        return float(fixed), "repaired: source value '%s' lacks the leading '0.' (read as %s t/kWh it would be 10^6 too high); read as %s" % (text, text, fixed)
    die("grid-emissions-factors-%s.csv: unparseable value %r for %s" % (provider, raw, region))


def build_cloud(shared):
    # CCF application constants (transcribed).
    app = {}
    path = os.path.join(shared, "ccf", "cloud-carbon-footprint", "transcribed", "ccf_grid_emission_factors.csv")
    for r in read_dicts(path):
        prov = r["provider"]
        if prov not in REGIONS:
            continue
        if prov == "gcp" and r["variant"] != "grid":
            continue  # cfe_adjusted is Google's market-based CFE adjustment, not a grid average
        region = r["region"].strip().lower()
        if prov == "gcp" and region in GCP_NOT_REGIONS:
            continue
        if prov == "azure" and (region in AZURE_NOT_REGIONS or region.endswith("stage") or region.endswith("euap")):
            continue
        if prov == "aws" and region == "unknown":
            continue
        if region not in REGIONS[prov]:
            die("ccf_grid_emission_factors.csv: %s region %r has no metadata in this script" % (prov, region))
        app[(prov, region)] = r

    # ccf-coefficients grid files.
    ccfc = {}
    ccfc_notes = {}
    for prov in ("aws", "azure", "gcp"):
        path = os.path.join(shared, "ccf", "ccf-coefficients", "data", "grid-emissions-factors-%s.csv" % prov)
        rows = read_csv_rows(path)
        header = rows[0]
        for r in rows[1:]:
            if not any(c.strip() for c in r):
                continue
            rec = dict(zip(header, r))
            extra = r[len(header):]
            name = rec["Region"].strip()
            region = name.lower().replace(" ", "") if prov == "azure" else name
            if region not in REGIONS[prov]:
                die("grid-emissions-factors-%s.csv: region %r has no metadata in this script" % (prov, name))
            t, note = parse_ccfc_t_per_kwh(rec["CO2e (metric ton/kWh)"], prov, name)
            if extra and any(x.strip() for x in extra):
                die("grid-emissions-factors-%s.csv: unexpected extra fields %r" % (prov, extra))
            if extra:
                note = (note + "; " if note else "") + "row has an extra empty trailing field (ignored)"
            ccfc[(prov, region)] = (t * T_PER_KWH_TO_G_PER_KWH, rec.get("Source", "").strip())
            if note:
                ccfc_notes[(prov, region)] = note

    # mlco2 impact.csv (alternative values).
    ml = {}
    for r in read_dicts(os.path.join(shared, "mlco2-impact", "impact.csv")):
        if r["provider"] in REGIONS and r["region"].strip():
            ml[(r["provider"], r["region"].strip().lower())] = float(r["impact"])

    # codecarbon cloud/impact.csv (GCP only; Google region-carbon page).
    cc = {}
    for r in read_dicts(os.path.join(shared, "codecarbon", "cloud", "impact.csv")):
        region = r["region"].strip()
        if region == "me-cenrtal1":
            region = "me-central1"  # documented upstream typo
        if r["provider"] != "gcp":
            die("codecarbon cloud/impact.csv: unexpected provider %r" % r["provider"])
        if region not in GCP_REGIONS:
            die("codecarbon cloud/impact.csv: region %r has no metadata" % region)
        cc[("gcp", region)] = float(r["impact"])

    # PUE: CCF fleet averages and GCP per-region trailing-twelve-month values.
    pue_fleet = {}
    pue_region = {}
    for r in read_dicts(os.path.join(shared, "ccf", "cloud-carbon-footprint", "transcribed", "ccf_pue.csv")):
        if r["provider"] not in REGIONS:
            continue
        if r["kind"] == "PUE_AVG":
            pue_fleet[r["provider"]] = (float(r["pue"]), r["source_note"])
        elif r["kind"] == "PUE_TRAILING_TWELVE_MONTH":
            if r["region"] not in REGIONS[r["provider"]]:
                die("ccf_pue.csv: region %r has no metadata" % r["region"])
            pue_region[(r["provider"], r["region"])] = (float(r["pue"]), r["source_note"])

    out = []
    for prov, regions in REGIONS.items():
        for region, (name, country, zone) in regions.items():
            key = (prov, region)
            if key in app:
                r = app[key]
                g = float(r["grid_tco2e_per_kwh"]) * T_PER_KWH_TO_G_PER_KWH
                nerc = r["us_nerc_region"].strip()
                src, dataset, licence = "A-CCF", CCF + ": ccf_grid_emission_factors.csv", LIC["A-CCF"]
                scope = "direct"
                if nerc:
                    year = CCF_NERC_YEAR
                    note = "EPA eGRID2020 NERC region %s average (US_NERC_REGIONS_EMISSIONS_FACTORS)" % nerc
                elif prov == "gcp":
                    year = None
                    scope = "unstated"
                    note = "Google-published grid factor (variant 'grid', not CFE-adjusted); data year not stated"
                else:
                    year = None
                    note = "CCF constant (mostly carbonfootprint.com / EEA factors); data year not stated"
                note += "; %s" % r["source_note"].split(":")[0]
            elif key in ccfc:
                g, upstream = ccfc[key]
                src, dataset, licence = "A-CCFC", CCFC + ": data/grid-emissions-factors-%s.csv" % prov, LIC["A-CCFC"]
                year, scope = None, "direct"
                note = "not in the CCF application constants; ccf-coefficients value (upstream: %s)" % upstream
                if key in ccfc_notes:
                    note += "; " + ccfc_notes[key]
            elif key in cc:
                g = cc[key]
                src, dataset, licence = "A-CC", CC + ": cloud/impact.csv", LIC["A-CC"]
                year, scope = None, "unstated"
                note = "not in CCF data; Google region-carbon page value as shipped by codecarbon (file last changed 2024-07)"
            else:
                die("region %s:%s has metadata but no intensity in any source" % key)
            if key in pue_region:
                pue, pnote = pue_region[key]
                pue_kind = "trailing-12-month"
                pnote = "CCF per-region trailing-twelve-month PUE; " + pnote
            else:
                pue, pnote = pue_fleet[prov]
                pue_kind = "fleet-average"
                pnote = "CCF %s fleet average PUE; %s" % (prov, pnote)
            alt_ccfc = ccfc.get(key, (None, ""))[0] if src != "A-CCFC" else None
            alt_note = ccfc_notes.get(key, "") if src != "A-CCFC" else ""
            out.append(dict(
                id="%s:%s" % (prov, region), provider=prov, region=region, name=name, country=country, zone=zone,
                area=AREA[country], g_per_kwh=g, source=src, dataset=dataset, year=year, licence=licence,
                kind="average", scope=scope, note=note,
                pue=pue, pue_source="A-CCF", pue_dataset=CCF + ": ccf_pue.csv", pue_year=None,
                pue_licence=LIC["A-CCF"], pue_kind=pue_kind, pue_note=pnote,
                alt_ccfc_g_per_kwh=alt_ccfc, alt_ccfc_note=alt_note,
                alt_mlco2_g_per_kwh=ml.get(key), alt_codecarbon_g_per_kwh=cc.get(key) if src != "A-CC" else None))
    for r in out:
        if not (r["g_per_kwh"] >= 0 and r["g_per_kwh"] < 2000):
            die("cloud %s: implausible intensity %r" % (r["id"], r["g_per_kwh"]))
        if not (1.0 <= r["pue"] < 3.0):
            die("cloud %s: implausible PUE %r" % (r["id"], r["pue"]))
    out.sort(key=lambda r: r["id"])
    return out, pue_fleet, pue_region


# ----------------------------------------------------------------------------------------------
# PUE table


def build_pue(shared, pue_fleet, pue_region):
    rows = []
    ga = read_dicts(os.path.join(shared, "green-algorithms", "defaults_PUE.csv"), skip_first_row=True)
    ga_map = {r["provider"]: r for r in ga}
    unk = ga_map["Unknown"]
    rows.append(dict(
        role="default", provider="unknown", region="*", pue=float(unk["PUE"]), source="A-GA",
        dataset=GA + ": defaults_PUE.csv", year=2024, licence=LIC["A-GA"], kind="industry-average", scope="facility",
        note="used for on-premise / unknown data centres; Uptime Institute Global Data Center Survey 2024 (%s)" % unk["source"].split(" ", 1)[-1]))
    for prov in ("aws", "gcp", "azure"):
        pue, note = pue_fleet[prov]
        rows.append(dict(
            role="provider", provider=prov, region="*", pue=pue, source="A-CCF", dataset=CCF + ": ccf_pue.csv",
            year=None, licence=LIC["A-CCF"], kind="fleet-average", scope="facility",
            note="used for %s regions without a per-region value; %s" % (prov, note)))
    for (prov, region), (pue, note) in sorted(pue_region.items()):
        rows.append(dict(
            role="region", provider=prov, region=region, pue=pue, source="A-CCF", dataset=CCF + ": ccf_pue.csv",
            year=None, licence=LIC["A-CCF"], kind="trailing-12-month", scope="facility", note=note))
    # Alternatives, shown for comparison but not used.
    for r in ga:
        if r["provider"] == "Unknown":
            continue
        rows.append(dict(
            role="alternative", provider=r["provider"].lower(), region="*", pue=float(r["PUE"]), source="A-GA",
            dataset=GA + ": defaults_PUE.csv", year=2023, licence=LIC["A-GA"], kind="fleet-average", scope="facility",
            note="Green Algorithms provider default (not used by wattprint; CCF values are used); %s" % r["source"]))
    onprem = None
    for r in read_dicts(os.path.join(shared, "ccf", "cloud-carbon-footprint", "transcribed", "ccf_pue.csv")):
        if r["provider"] == "on-premise":
            onprem = float(r["pue"])
    if onprem is None:
        die("ccf_pue.csv: no on-premise PUE")
    rows.append(dict(
        role="alternative", provider="on-premise", region="*", pue=onprem, source="A-CCF",
        dataset=CCF + ": ccf_pue.csv", year=None, licence=LIC["A-CCF"], kind="industry-average", scope="facility",
        note="CCF on-premise PUE_AVG (not used; the Green Algorithms 1.56 default is used)"))
    return rows


# ----------------------------------------------------------------------------------------------
# 4: GPUs


def read_mlco2_gpus(shared):
    path = os.path.join(shared, "mlco2-impact", "gpus.csv")
    rows = read_csv_rows(path)
    header = [h.strip() for h in rows[0]]
    out = {}
    for r in rows[1:]:
        if not any(c.strip() for c in r):
            continue
        note = ""
        if len(r) == len(header) - 1:
            # The A10G row lacks one field: its memory (24) sits under GFLOPS16/W and the URL under memory.
            if r[0] != "A10G":
                die("mlco2 gpus.csv: unexpected short row %r" % r)
            r = r[:6] + [""] + r[6:]
            note = "mlco2 row repaired: 8 fields instead of 9, memory read from the GFLOPS16/W column"
        elif len(r) != len(header):
            die("mlco2 gpus.csv: row has %d fields: %r" % (len(r), r))
        d = dict(zip(header, r))
        d["_note"] = note
        out[d["name"].strip()] = d
    return out


def num(text):
    t = (text or "").strip()
    if t == "" or t.lower() in ("nan", "unk"):
        return None
    return float(t)


# name, aliases, kind, tdp source (key, upstream row name), memory (GB list or "ml"), CCF processor for min/max,
# extra note, cross-checks [(key, row, expected W)]
GPU_ROWS = [
    ("NVIDIA H100 SXM", ["H100 SXM5", "H100 SXM5 80GB", "H100 80GB HBM3"], "gpu", ("A-ML", "H100 SXM"), "ml", None, "", []),
    ("NVIDIA H100 NVL", ["H100 NVL 94GB"], "gpu", ("A-ML", "H100 NVL"), "ml", None, "", []),
    ("NVIDIA H100 PCIe", ["H100 PCIe 80GB"], "gpu", ("WP-DS", 350.0), [80], None,
     "NVIDIA H100 Tensor Core GPU datasheet: H100 PCIe max thermal design power 350 W (not in the shared datasets)", []),
    ("NVIDIA A100 SXM4", ["A100 SXM4 40GB", "A100 SXM4 80GB", "A100-SXM4-40GB", "A100-SXM4-80GB", "A100 SXM"], "gpu",
     ("A-ML", "A100 SXM4 80 GB"), [40, 80], "Nvidia Tesla A100",
     "TDP from mlco2 'A100 SXM4 80 GB'; the 40GB SXM4 part has the same 400 W (NVIDIA A100 datasheet); Green Algorithms has no A100 SXM row", []),
    ("NVIDIA A100 PCIe 40GB", ["A100-PCIE-40GB", "A100 40GB PCIe"], "gpu", ("A-GA", "NVIDIA A100 40GB PCIe"), [40],
     "Nvidia Tesla A100", "mlco2 'A100 PCIe 40/80GB' also gives 250 W", [("A-ML", "A100 PCIe 40/80GB", 250.0)]),
    ("NVIDIA A100 PCIe 80GB", ["A100-PCIE-80GB", "A100 80GB PCIe"], "gpu", ("A-GA", "NVIDIA A100 80GB PCIe"), [80],
     "Nvidia Tesla A100", "mlco2 'A100 PCIe 40/80GB' gives 250 W for both memory sizes; NVIDIA's A100 80GB PCIe datasheet gives 300 W (used)", []),
    ("NVIDIA A10G", [], "gpu", ("A-ML", "A10G"), "ml", "Nvidia A10G", "", []),
    ("NVIDIA L4", [], "gpu", ("A-ML", "L4"), "ml", None, "", []),
    ("NVIDIA L40S", [], "gpu", ("A-ML", "L40S"), "ml", None, "", []),
    ("NVIDIA T4", ["Tesla T4"], "gpu", ("A-GA", "NVIDIA Tesla T4"), [16], "Nvidia T4", "memory from mlco2 'T4'",
     [("A-ML", "T4", 70.0)]),
    ("NVIDIA V100 PCIe", ["Tesla V100-PCIE-16GB", "V100 PCIe 16GB", "V100-PCIE-16GB"], "gpu",
     ("A-ML", "Tesla V100-PCIE-16GB"), [16], "Nvidia Tesla V100", "", []),
    ("NVIDIA V100 SXM2", ["Tesla V100-SXM2-16GB", "Tesla V100-SXM2-32GB", "V100-SXM2-16GB", "V100-SXM2-32GB"], "gpu",
     ("A-ML", "Tesla V100-SXM2-32GB"), [16, 32], "Nvidia Tesla V100",
     "Green Algorithms 'NVIDIA Tesla V100' (no form factor) also gives 300 W; mlco2 'Tesla V100-SXM2-16GB' (after the swap repair) too",
     [("A-GA", "NVIDIA Tesla V100", 300.0), ("A-ML", "Tesla V100-SXM2-16GB", 300.0)]),
    ("NVIDIA V100S PCIe", ["Tesla V100S", "V100S"], "gpu", ("A-GA", "NVIDIA Tesla V100S"), [], "Nvidia Tesla V100", "", []),
    ("NVIDIA P100", ["Tesla P100", "Tesla P100 PCIe", "Tesla P100-PCIE-16GB"], "gpu", ("A-GA", "NVIDIA Tesla P100"), [16],
     "Nvidia Tesla P100", "memory from mlco2 'Tesla P100'", [("A-ML", "Tesla P100", 250.0), ("A-GA", "NVIDIA Tesla P100 PCIe", 250.0)]),
    ("NVIDIA P40", ["Tesla P40"], "gpu", ("A-ML", "Tesla P40"), "ml", "Nvidia Tesla P40", "", []),
    ("NVIDIA P4", ["Tesla P4"], "gpu", ("A-GA", "NVIDIA Tesla P4"), [], "Nvidia Tesla P4", "", []),
    ("NVIDIA K80", ["Tesla K80"], "gpu", ("A-GA", "NVIDIA Tesla K80"), [12], "Nvidia Tesla K80",
     "300 W is per K80 board, which carries two GPUs (NVML lists each GPU separately); memory per GPU from mlco2",
     [("A-ML", "Tesla K80", 300.0)]),
    ("NVIDIA K40c", ["Tesla K40c"], "gpu", ("A-ML", "Tesla K40c"), "ml", None, "", []),
    ("NVIDIA M40 24GB", ["Tesla M40 24GB", "Tesla M40"], "gpu", ("A-ML", "Tesla M40 24GB"), [24], None,
     "mlco2 memory column says 12 GB, contradicting the model name; 24 GB from the name", []),
    ("NVIDIA RTX 4090", ["GeForce RTX 4090"], "gpu", ("A-ML", "RTX 4090"), "ml", None, "", []),
    ("NVIDIA RTX 3090", ["GeForce RTX 3090"], "gpu", ("A-ML", "RTX 3090"), "ml", None, "", []),
    ("NVIDIA RTX 3080 Ti", ["GeForce RTX 3080 Ti"], "gpu", ("A-ML", "RTX 3080 TI"), "ml", None, "", []),
    ("NVIDIA RTX 3080", ["GeForce RTX 3080"], "gpu", ("A-ML", "RTX 3080"), "ml", None, "", []),
    ("NVIDIA RTX A6000", [], "gpu", ("A-ML", "RTX A6000"), "ml", None, "", []),
    ("NVIDIA RTX A5000", [], "gpu", ("A-ML", "RTX A5000"), "ml", None, "", []),
    ("NVIDIA Quadro RTX 8000", ["RTX 8000"], "gpu", ("A-ML", "RTX 8000"), "ml", None, "", []),
    ("NVIDIA Titan RTX", [], "gpu", ("A-ML", "Titan RTX"), "ml", None, "", []),
    ("NVIDIA RTX 2080 Ti", ["GeForce RTX 2080 Ti"], "gpu", ("A-GA", "NVIDIA RTX 2080 Ti"), [11], None,
     "memory from mlco2", [("A-ML", "RTX 2080 Ti", 250.0)]),
    ("NVIDIA RTX 2080", ["GeForce RTX 2080"], "gpu", ("A-GA", "NVIDIA RTX 2080"), [8], None, "memory from mlco2",
     [("A-ML", "RTX 2080", 215.0)]),
    ("NVIDIA GTX 1080 Ti", ["GeForce GTX 1080 Ti"], "gpu", ("A-GA", "NVIDIA GTX 1080 Ti"), [11], None, "memory from mlco2",
     [("A-ML", "GTX 1080 Ti", 250.0)]),
    ("NVIDIA GTX 1080", ["GeForce GTX 1080"], "gpu", ("A-GA", "NVIDIA GTX 1080"), [8], None, "memory from mlco2",
     [("A-ML", "GTX 1080", 180.0)]),
    ("NVIDIA GTX 1660 OC (Gigabyte)", ["GIGABYTE GTX 1660 OC"], "gpu", ("A-ML", "GIGABYTE GTX 1660 OC"), "ml", None, "", []),
    ("NVIDIA GTX TITAN X", ["GeForce GTX TITAN X"], "gpu", ("A-GA", "NVIDIA GTX TITAN X"), [12], None, "memory from mlco2",
     [("A-ML", "GTX TITAN X", 250.0)]),
    ("NVIDIA TITAN X Pascal", [], "gpu", ("A-GA", "NVIDIA TITAN X Pascal"), [12], None, "memory from mlco2",
     [("A-ML", "TITAN X Pascal", 250.0)]),
    ("NVIDIA Titan Xp", [], "gpu", ("A-ML", "Titan Xp"), "ml", None, "", []),
    ("NVIDIA Titan V", [], "gpu", ("A-GA", "NVIDIA Titan V"), [12], None, "memory from mlco2", [("A-ML", "Titan V", 250.0)]),
    ("NVIDIA Quadro K6000", [], "gpu", ("A-ML", "Quadro K6000"), "ml", None, "", []),
    ("NVIDIA Quadro P6000", [], "gpu", ("A-ML", "Quadro P6000"), "ml", None, "", []),
    ("NVIDIA Jetson AGX Xavier", ["AGX Xavier"], "gpu", ("A-GA", "NVIDIA Jetson AGX Xavier"), [], None, "",
     [("A-ML", "AGX Xavier", 30.0)]),
    ("AMD Radeon RX 480", ["AMD RX480", "RX480"], "gpu", ("A-GA", "AMD RX480"), [8], None, "memory from mlco2",
     [("A-ML", "AMD RX480", 150.0)]),
    # AMD and Intel data-centre accelerators: board power from the vendors' datasheets (the shared
    # datasets have none of them). No idle figure is published for them: left empty (not counted).
    ("AMD Instinct MI100", ["Instinct MI100"], "gpu",
     ("WP-DS", (300.0, "AMD Instinct MI100 accelerator datasheet (2020)")), [32], None,
     "AMD datasheet: 300 W typical board power (TBP), 32 GB HBM2; no idle figure published", []),
    ("AMD Instinct MI210", ["Instinct MI210"], "gpu",
     ("WP-DS", (300.0, "AMD Instinct MI210 accelerator datasheet (2022)")), [64], None,
     "AMD datasheet: 300 W TBP (PCIe), 64 GB HBM2e; no idle figure published", []),
    ("AMD Instinct MI250X", ["Instinct MI250X"], "gpu",
     ("WP-DS", (500.0, "AMD Instinct MI250X accelerator datasheet (2021)")), [128], None,
     "AMD datasheet: 500 W TBP (560 W peak, liquid cooled) for the OAM module of two dies; 128 GB HBM2e; no idle figure published", []),
    ("AMD Instinct MI250", ["Instinct MI250"], "gpu",
     ("WP-DS", (500.0, "AMD Instinct MI250 accelerator datasheet (2021)")), [128], None,
     "AMD datasheet: 500 W TBP (560 W peak) for the OAM module of two dies; no idle figure published", []),
    ("AMD Instinct MI300X", ["Instinct MI300X"], "gpu",
     ("WP-DS", (750.0, "AMD Instinct MI300X accelerator datasheet (2023)")), [192], None,
     "AMD datasheet: 750 W TBP (OAM), 192 GB HBM3; no idle figure published", []),
    ("Intel Data Center GPU Max 1550", ["Intel(R) Data Center GPU Max 1550", "GPU Max 1550"], "gpu",
     ("WP-DS", (600.0, "Intel Data Center GPU Max 1550 product specification (ark.intel.com, 2023)")), [128], None,
     "Intel specification: 600 W TBP (OAM), 128 GB HBM2e; no idle figure published", []),
    ("Google TPU v2", ["TPUv2"], "tpu", ("A-GA", "TPU v2"), [], None,
     "Green Algorithms TDP 280 W; mlco2 'TPUv2 Chip' gives 221 W measured average (Patterson et al. 2021)", []),
    ("Google TPU v3", ["TPUv3"], "tpu", ("A-GA", "TPU v3"), [], None,
     "Green Algorithms gives 220 W; mlco2 'TPUv3 Chip' gives 283 W measured average (Patterson et al. 2021), above this figure: sources disagree", []),
    ("Google TPU v4", ["TPUv4"], "tpu", ("A-GA", "TPU v4"), [], None, "", []),
]

# mlco2 rows for measured average power (not TDP).
GPU_AVG = {"Google TPU v2": "TPUv2 Chip", "Google TPU v3": "TPUv3 Chip"}

# mlco2 V100 rows whose TDPs are swapped relative to NVIDIA's figures (PCIe 250 W, SXM2 300 W).
V100_SWAP = {"Tesla V100-PCIE-16GB": (300.0, 250.0), "Tesla V100-SXM2-16GB": (250.0, 300.0)}

# Rows of the upstream tables deliberately not shipped, with the reason (documented in docs/factors.md).
GPU_DROPPED = {
    ("A-ML", "GTX 750"): "implausible values (TDP 250 W and TFLOPS32 1111 for a GTX 750)",
    ("A-GA", "Any"): "fallback row, exposed separately as gpu_fallback()",
}


def build_gpus(shared):
    ml = read_mlco2_gpus(shared)
    for name, (bad, good) in V100_SWAP.items():
        if num(ml[name]["tdp_watts"]) != bad:
            die("mlco2 gpus.csv: %s TDP is no longer %s W; re-check the documented swap" % (name, bad))
        ml[name]["tdp_watts"] = str(good)
        ml[name]["_note"] = "mlco2 TDP %s W swapped with the SXM2/PCIe sibling; NVIDIA V100 figures are PCIe 250 W, SXM2 300 W (used: %s W)" % (fmt(bad), fmt(good))
    ga = {r["model"].strip(): r for r in read_dicts(os.path.join(shared, "green-algorithms", "TDP_gpu.csv"), skip_first_row=True)}
    ccf = {}
    for r in read_dicts(os.path.join(shared, "ccf", "cloud-carbon-footprint", "transcribed", "ccf_processor_watts.csv")):
        if r["kind"] != "gpu/accelerator":
            continue
        val = (float(r["min_watts"]), float(r["max_watts"]))
        prev = ccf.get(r["processor"])
        if prev is not None and prev != val:
            die("ccf_processor_watts.csv: %s differs between providers" % r["processor"])
        ccf[r["processor"]] = val

    used = set()
    out = []
    for name, aliases, kind, (tkey, tref), memory, ccf_name, extra, checks in GPU_ROWS:
        notes = []
        if tkey == "A-ML":
            row = ml[tref]
            used.add(("A-ML", tref))
            tdp = num(row["tdp_watts"])
            dataset = ML + ": data/gpus.csv (%s)" % tref
            if row["_note"]:
                notes.append(row["_note"])
            if memory == "ml":
                m = num(row["memory"])
                memory = [int(m)] if m is not None else []
        elif tkey == "A-GA":
            row = ga[tref]
            used.add(("A-GA", tref))
            tdp = num(row["TDP"]) or num(row["TDP_per_core"])
            dataset = GA + ": TDP_gpu.csv (%s)" % tref
        elif isinstance(tref, tuple):
            tdp, dataset = tref
        else:
            tdp = tref
            dataset = "NVIDIA product datasheet"
        if memory == "ml":
            die("gpu %s: memory 'ml' needs an mlco2 source" % name)
        for ckey, cref, expect in checks:
            got = num(ml[cref]["tdp_watts"]) if ckey == "A-ML" else (num(ga[cref]["TDP"]))
            used.add((ckey, cref))
            if ckey == "A-ML" and ml[cref]["_note"]:
                notes.append("%s: %s" % (cref, ml[cref]["_note"]))
            if got != expect:
                die("gpu %s: cross-check %s %s gives %r, expected %r" % (name, ckey, cref, got, expect))
        if extra:
            notes.append(extra)
        idle = maxw = None
        if ccf_name:
            idle, maxw = ccf[ccf_name]
        avg = avg_ds = None
        if name in GPU_AVG:
            ref = GPU_AVG[name]
            used.add(("A-ML", ref))
            avg = num(ml[ref]["tdp_watts"])
        if tdp is None or tdp <= 0:
            die("gpu %s: no TDP" % name)
        out.append(dict(
            name=name, aliases="|".join(aliases), kind=kind, tdp_w=tdp, idle_w=idle, max_w=maxw, avg_w=avg,
            memory_gb="|".join(str(m) for m in memory), source=tkey, dataset=dataset, year=None,
            licence=LIC[tkey], power_kind="tdp",
            idle_source="A-CCF" if ccf_name else "",
            idle_dataset=(CCF + ": ccf_processor_watts.csv (%s min/max watts, Teads-derived)" % ccf_name) if ccf_name else "",
            avg_source="A-ML" if avg is not None else "",
            avg_dataset=(ML + ": data/gpus.csv (%s, 'average consumption - not TDP')" % GPU_AVG[name]) if avg is not None else "",
            note="; ".join(notes)))

    # Every accelerator row upstream is either shipped or deliberately dropped.
    for n, r in ml.items():
        if r["type"] in ("gpu", "tpu") and ("A-ML", n) not in used and ("A-ML", n) not in GPU_DROPPED:
            die("mlco2 gpus.csv: accelerator %r is neither mapped nor dropped" % n)
    for n in ga:
        if ("A-GA", n) not in used and ("A-GA", n) not in GPU_DROPPED:
            die("Green Algorithms TDP_gpu.csv: %r is neither mapped nor dropped" % n)
    any_row = ga["Any"]
    fallback = float(any_row["TDP_per_core"])
    return out, fallback, ccf


# ----------------------------------------------------------------------------------------------
# 5: embodied


def build_embodied(shared):
    ccfc = os.path.join(shared, "ccf", "ccf-coefficients")
    inst = {}
    for r in read_dicts(os.path.join(ccfc, "data", "aws-instances.csv")):
        inst[r["Instance type"]] = r
    emb = read_dicts(os.path.join(ccfc, "output", "coefficients-aws-embodied.csv"))

    def dec(s):
        return float(s.replace(",", "."))

    bases, gpu, mem, ssd, hdd = set(), set(), set(), set(), set()
    n_gpu_rows = 0
    for e in emb:
        r = inst.get(e["type"])
        if r is None:
            die("coefficients-aws-embodied.csv: %s not in aws-instances.csv" % e["type"])
        adds = [float(e[k]) for k in ("additional_memory", "additional_storage", "additional_cpus", "additional_gpus")]
        bases.add(round(float(e["total"]) - sum(adds), 6))
        ag = float(e["additional_gpus"])
        if ag > 0:
            n_gpu_rows += 1
            gpu.add(round(ag / float(r["Platform GPU Quantity"]), 6))
        am = float(e["additional_memory"])
        if am > 0:
            mem.add(round(am / (dec(r["Platform Memory (in GB)"]) - 16.0), 3))
        ast = float(e["additional_storage"])
        drives = int(r["Platform Storage Drive Quantity"] or 0)
        if ast > 0 and r["Storage Type"] == "SSD":
            ssd.add(round(ast / drives, 6))
        if ast > 0 and r["Storage Type"] == "HDD":
            hdd.add(round(ast / drives, 6))
    for label, s in (("base", bases), ("gpu", gpu), ("memory", mem), ("ssd", ssd), ("hdd", hdd)):
        if len(s) != 1:
            die("embodied: %s coefficient is not constant across instances: %r" % (label, sorted(s)))
    base, per_gpu, per_gb, per_ssd, per_hdd = bases.pop(), gpu.pop(), mem.pop(), ssd.pop(), hdd.pop()
    dram_exact = 533.0 / 384.0
    if abs(per_gb - dram_exact) > 0.001:
        die("embodied: DRAM coefficient %r is not 533/384" % per_gb)

    life = set()
    for r in read_dicts(os.path.join(shared, "ccf", "cloud-carbon-footprint", "transcribed", "ccf_other_constants.csv")):
        if r["constant"] == "SERVER_EXPECTED_LIFESPAN":
            if r["unit"] != "hours":
                die("SERVER_EXPECTED_LIFESPAN unit %r" % r["unit"])
            life.add(float(r["value"]))
    if len(life) != 1:
        die("SERVER_EXPECTED_LIFESPAN differs between providers: %r" % life)
    lifetime = life.pop()

    ds = CCFC + ": output/coefficients-aws-embodied.csv joined with data/aws-instances.csv"
    rows = [
        dict(component="server_base", value=base, unit="kgCO2e per server",
             note="rack server with 1 CPU socket, 16 GB DRAM, no disk (Dell R740 LCA via Teads); total - sum(additional_*) = %s for all %d AWS instance rows" % (fmt(base), len(emb))),
        dict(component="gpu", value=per_gpu, unit="kgCO2e per GPU",
             note="additional_gpus / Platform GPU Quantity = %s for all %d GPU instance rows (p2: 2400/16, p3/p4d/g4dn: 1200/8, g3/g4ad: 600/4)" % (fmt(per_gpu), n_gpu_rows)),
        dict(component="dram_gb", value=dram_exact, unit="kgCO2e per GB DRAM above 16 GB",
             note="additional_memory / (Platform Memory - 16 GB) = 533/384 (Dell R740 LCA: 533 kg for 384 GB)"),
        dict(component="dram_baseline_gb", value=16.0, unit="GB DRAM included in server_base",
             note="ccfcoef constants: DRAM above 16 GB is counted"),
        dict(component="ssd", value=per_ssd, unit="kgCO2e per SSD drive",
             note="additional_storage / Platform Storage Drive Quantity for SSD platforms"),
        dict(component="hdd", value=per_hdd, unit="kgCO2e per HDD drive",
             note="additional_storage / Platform Storage Drive Quantity for HDD platforms"),
        dict(component="cpu_socket", value=100.0, unit="kgCO2e per additional CPU socket",
             note="ccfcoef constants (additional_cpus is 100 per socket above the first)"),
    ]
    out = []
    for r in rows:
        r.update(source="A-CCFC", dataset=ds, year=2021, licence=LIC["A-CCFC"], kind="lca", scope="manufacturing")
        out.append(r)
    out.append(dict(component="lifetime_hours", value=lifetime, unit="hours", source="A-CCF",
                    dataset=CCF + ": ccf_other_constants.csv (SERVER_EXPECTED_LIFESPAN)", year=None,
                    licence=LIC["A-CCF"], kind="lifetime", scope="manufacturing",
                    note="4 years; same value for aws, gcp, azure and alibaba"))
    # Verify the CCF p4d.24xlarge total is reproduced (methodology section 3.3).
    p4d = [e for e in emb if e["type"] == "p4d.24xlarge"][0]
    r = inst["p4d.24xlarge"]
    recon = base + (dec(r["Platform Memory (in GB)"]) - 16) * dram_exact + 8 * per_ssd + 100 + 8 * per_gpu
    if abs(recon - float(p4d["total"])) > 0.01:
        die("embodied: p4d.24xlarge reconstruction %r != %r" % (recon, p4d["total"]))
    return out


# ----------------------------------------------------------------------------------------------
# writers

HEADER_COMMENT = ("# Generated by scripts/build-factors.py from the shared reference datasets; do not edit by hand.\n"
                  "# Sources, licences and attribution: docs/factors.md and `wattprint factors --sources`.\n")


def write_csv(path, columns, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(HEADER_COMMENT)
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            out = []
            for c in columns:
                v = r.get(c)
                if isinstance(v, float):
                    out.append(fmt(v))
                elif v is None:
                    out.append("")
                else:
                    out.append(str(v))
            w.writerow(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", required=True, help="path to the shared data folder (holds README.md)")
    ap.add_argument("--out", required=True, help="output folder (crates/core/data/factors)")
    a = ap.parse_args()
    shared = a.shared
    if not os.path.isfile(os.path.join(shared, "README.md")):
        die("%s does not look like the shared data folder (no README.md)" % shared)
    os.makedirs(a.out, exist_ok=True)

    prov_cols = ["source", "dataset", "year", "licence", "kind", "scope", "note"]
    intensity = build_intensity(shared)
    for r in intensity:
        r["licence"] = LIC[r["source"]]
    write_csv(os.path.join(a.out, "intensity.csv"),
              ["code", "name", "level", "country", "g_per_kwh"] + prov_cols, intensity)

    cloud, pue_fleet, pue_region = build_cloud(shared)
    write_csv(os.path.join(a.out, "cloud_regions.csv"),
              ["id", "provider", "region", "name", "country", "zone", "area", "g_per_kwh"] + prov_cols +
              ["pue", "pue_source", "pue_dataset", "pue_year", "pue_licence", "pue_kind", "pue_note",
               "alt_ccfc_g_per_kwh", "alt_ccfc_note", "alt_mlco2_g_per_kwh", "alt_codecarbon_g_per_kwh"], cloud)

    pue = build_pue(shared, pue_fleet, pue_region)
    write_csv(os.path.join(a.out, "pue.csv"), ["role", "provider", "region", "pue"] + prov_cols, pue)

    gpus, fallback, _ = build_gpus(shared)
    write_csv(os.path.join(a.out, "gpus.csv"),
              ["name", "aliases", "kind", "tdp_w", "idle_w", "max_w", "avg_w", "memory_gb", "source", "dataset",
               "year", "licence", "power_kind", "idle_source", "idle_dataset", "avg_source", "avg_dataset", "note"],
              gpus + [dict(name="Unknown GPU", aliases="", kind="fallback", tdp_w=fallback, memory_gb="",
                           source="A-GA", dataset=GA + ": TDP_gpu.csv (Any)", licence=LIC["A-GA"], power_kind="tdp",
                           note="Green Algorithms fallback for an unlisted GPU")])

    embodied = build_embodied(shared)
    write_csv(os.path.join(a.out, "embodied.csv"), ["component", "value", "unit"] + prov_cols, embodied)

    lic_dir = os.path.join(a.out, "licenses")
    os.makedirs(lic_dir, exist_ok=True)
    for src, dst in (("codecarbon/LICENSE", "codecarbon-LICENSE"),
                     ("green-algorithms/LICENSE", "green-algorithms-LICENSE"),
                     ("mlco2-impact/LICENSE", "mlco2-impact-LICENSE"),
                     ("ccf/ccf-coefficients/LICENSE", "ccf-coefficients-LICENSE"),
                     ("ccf/cloud-carbon-footprint/LICENSE", "cloud-carbon-footprint-LICENSE"),
                     ("ccf/cloud-carbon-footprint/NOTICE", "cloud-carbon-footprint-NOTICE")):
        shutil.copyfile(os.path.join(shared, src), os.path.join(lic_dir, dst))

    print("intensity rows: %d, cloud regions: %d, pue rows: %d, gpus: %d, embodied rows: %d"
          % (len(intensity), len(cloud), len(pue), len(gpus) + 1, len(embodied)))


if __name__ == "__main__":
    main()
