//! Opt-in cloud location detection from the instance metadata service.
//!
//! Only when the user asks for it (`--location detect` or `WATTPRINT_LOCATION=detect`) does
//! wattprint contact the link-local metadata address (169.254.169.254) that AWS, Google Cloud and
//! Azure serve inside their instances; never otherwise. Each provider is asked in turn with a
//! short timeout:
//! - AWS (IMDSv2): `PUT /latest/api/token` (header `X-aws-ec2-metadata-token-ttl-seconds`), then
//!   `GET /latest/meta-data/placement/region` with `X-aws-ec2-metadata-token`;
//! - Google Cloud: `GET /computeMetadata/v1/instance/zone` with `Metadata-Flavor: Google`
//!   (`projects/N/zones/europe-west1-b` → region `europe-west1`);
//! - Azure: `GET /metadata/instance/compute/location?api-version=2021-02-01&format=text` with
//!   `Metadata: true`.
//!
//! The base URL can be changed with `WATTPRINT_CLOUD_METADATA_URL` (tests use a loopback server).

use std::time::Duration;

/// The link-local metadata endpoint of the big clouds.
pub const DEFAULT_URL: &str = "http://169.254.169.254";
/// Environment variable overriding [`DEFAULT_URL`].
pub const URL_ENV: &str = "WATTPRINT_CLOUD_METADATA_URL";

fn agent(timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build();
    ureq::Agent::new_with_config(config)
}

fn body(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Option<String> {
    let mut r = resp.ok()?;
    if r.status().as_u16() != 200 {
        return None;
    }
    let text = r
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .ok()?;
    let t = text.trim().to_string();
    // a region name is short, printable and has no spaces
    (!t.is_empty() && t.len() < 200 && !t.contains(char::is_whitespace)).then_some(t)
}

/// The cloud region of this instance as a wattprint location (`aws:us-east-1`,
/// `gcp:europe-west1`, `azure:francecentral`), or why it could not be found.
pub fn detect(base_url: Option<&str>, timeout: Duration) -> Result<String, String> {
    let base = base_url
        .map(str::to_string)
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    let base = base.trim_end_matches('/');
    let a = agent(timeout);
    // AWS IMDSv2
    let token = body(
        a.put(&format!("{base}/latest/api/token"))
            .header("X-aws-ec2-metadata-token-ttl-seconds", "60")
            .send_empty(),
    );
    if let Some(tok) = token {
        if let Some(region) = body(
            a.get(&format!("{base}/latest/meta-data/placement/region"))
                .header("X-aws-ec2-metadata-token", &tok)
                .call(),
        ) {
            return Ok(format!("aws:{region}"));
        }
    }
    // Google Cloud
    if let Some(zone) = body(
        a.get(&format!("{base}/computeMetadata/v1/instance/zone"))
            .header("Metadata-Flavor", "Google")
            .call(),
    ) {
        let z = zone.rsplit('/').next().unwrap_or(&zone);
        // europe-west1-b → europe-west1
        let region = match z.rsplit_once('-') {
            Some((r, suffix)) if suffix.len() == 1 => r,
            _ => z,
        };
        return Ok(format!("gcp:{region}"));
    }
    // Azure
    if let Some(loc) = body(
        a.get(&format!(
            "{base}/metadata/instance/compute/location?api-version=2021-02-01&format=text"
        ))
        .header("Metadata", "true")
        .call(),
    ) {
        return Ok(format!("azure:{}", loc.to_ascii_lowercase()));
    }
    Err(format!(
        "no cloud metadata service answered at {base} (not on AWS, Google Cloud or Azure, or the metadata service is blocked); give the location with --location instead"
    ))
}
