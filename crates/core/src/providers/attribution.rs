//! Who publishes each provider's data, under which licence or terms, and what may be done with
//! it: the text wattprint shows wherever a live value is used (`when`, the run summary, `show`,
//! the reports and the run record).
//!
//! * GB Carbon Intensity API (NESO): CC BY 4.0, which requires attribution
//!   (carbonintensity.org.uk terms; "License: CC BY 4.0", no resale or replacement service).
//! * Electricity Maps: API data is proprietary; the API terms do not allow redistributing it
//!   (only the yearly/hourly CSVs of the data portal are ODbL).
//! * WattTime: the signal is named (`co2_moer`, marginal operating emissions rate), data under
//!   the WattTime API terms of service.

use serde::{Deserialize, Serialize};

/// What a user of a provider's data must show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    /// Stable provider name (`uk`, `electricitymaps`, `watttime`).
    pub provider: String,
    /// The publisher and service, for people.
    pub publisher: String,
    /// Licence or terms of the data.
    pub licence: String,
    /// Where the licence or terms are.
    pub url: String,
    /// The signal the values are (what they measure).
    pub signal: String,
    /// Whether the terms restrict redistributing the data (a report embedding it says so).
    pub restricted: bool,
}

impl Attribution {
    /// One line: `Carbon intensity: <publisher> — <signal>; <licence> (<url>)`.
    pub fn line(&self) -> String {
        format!(
            "{} — {}; {} ({})",
            self.publisher, self.signal, self.licence, self.url
        )
    }

    /// The sentence a report embedding this data carries when its terms restrict it.
    pub fn restriction_notice(&self) -> Option<String> {
        self.restricted.then(|| {
            format!(
                "This report embeds data from {} whose terms restrict redistribution: keep it for your own use, do not publish or share it further.",
                self.publisher
            )
        })
    }
}

/// The attribution of provider `name`; `None` for a name wattprint does not know.
pub fn attribution(name: &str) -> Option<Attribution> {
    let a = |publisher: &str, licence: &str, url: &str, signal: &str, restricted: bool| {
        Some(Attribution {
            provider: name.to_string(),
            publisher: publisher.into(),
            licence: licence.into(),
            url: url.into(),
            signal: signal.into(),
            restricted,
        })
    };
    match name {
        "uk" => a(
            "Carbon Intensity API, National Energy System Operator (NESO), carbonintensity.org.uk",
            "CC BY 4.0",
            "https://github.com/carbon-intensity/terms",
            "average intensity, direct emissions",
            false,
        ),
        "electricitymaps" => a(
            "Electricity Maps, electricitymaps.com",
            "proprietary, Electricity Maps API terms: redistribution of the data is not permitted",
            "https://www.electricitymaps.com/terms",
            "average intensity (life-cycle unless direct was asked for)",
            true,
        ),
        "watttime" => a(
            "WattTime, watttime.org",
            "WattTime API terms of service",
            "https://watttime.org/terms-of-service/",
            "co2_moer, marginal operating emissions rate (MOER)",
            false,
        ),
        _ => None,
    }
}
