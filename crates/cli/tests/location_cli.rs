#![allow(clippy::unwrap_used)]
//! Opt-in cloud location detection against loopback stand-ins for the AWS, Google Cloud and
//! Azure metadata services (never the real 169.254.169.254).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;

/// `(method, path, headers) -> (status, body)`.
type Handler = fn(&str, &str, &[(String, String)]) -> (u16, String);

/// Serves `handler` on 127.0.0.1:0.
fn serve(handler: Handler) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            let mut it = line.split_whitespace();
            let (m, p) = (
                it.next().unwrap_or("").to_string(),
                it.next().unwrap_or("").to_string(),
            );
            let mut headers = Vec::new();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some((k, v)) = h.trim_end().split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let mut body = vec![0u8; len];
            let _ = std::io::Read::read_exact(&mut r, &mut body);
            let (code, text) = handler(&m, &p, &headers);
            let mut s = s;
            let _ = write!(
                s,
                "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    url
}

fn has(h: &[(String, String)], k: &str, v: &str) -> bool {
    h.iter().any(|(a, b)| a == k && b == v)
}

fn doctor_location(url: &str, location: &str) -> serde_json::Value {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wattprint"))
        .env("WATTPRINT_HOME", home.path())
        .env("WATTPRINT_CLOUD_METADATA_URL", url)
        .env("WATTPRINT_NVML_LIBRARY", home.path().join("none.so"))
        .env_remove("WATTPRINT_LOCATION")
        .args(["doctor", "--json", "--location", location])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn aws_imdsv2_region_is_detected_only_when_asked() {
    let url = serve(|m, p, h| match (m, p) {
        ("PUT", "/latest/api/token") if has(h, "x-aws-ec2-metadata-token-ttl-seconds", "60") => {
            (200, "TOKEN123".into())
        }
        ("GET", "/latest/meta-data/placement/region")
            if has(h, "x-aws-ec2-metadata-token", "TOKEN123") =>
        {
            (200, "eu-west-3".into())
        }
        _ => (404, String::new()),
    });
    let v = doctor_location(&url, "detect");
    assert_eq!(v["location"]["code"], "aws:eu-west-3");
    assert_eq!(v["location"]["known"], true);
    // without `detect`, nothing is asked and the location stays unknown
    let v = doctor_location(&url, "FR");
    assert_eq!(v["location"]["code"], "FR");
}

#[test]
fn gcp_zone_becomes_a_region_and_azure_location_is_read() {
    let url = serve(|m, p, h| match (m, p) {
        ("GET", "/computeMetadata/v1/instance/zone") if has(h, "metadata-flavor", "Google") => {
            (200, "projects/123456/zones/europe-west1-b".into())
        }
        _ => (404, String::new()),
    });
    assert_eq!(
        doctor_location(&url, "detect")["location"]["code"],
        "gcp:europe-west1"
    );
    let url = serve(|m, p, h| match m {
        "GET"
            if p.starts_with("/metadata/instance/compute/location")
                && has(h, "metadata", "true") =>
        {
            (200, "francecentral".into())
        }
        _ => (404, String::new()),
    });
    assert_eq!(
        doctor_location(&url, "detect")["location"]["code"],
        "azure:francecentral"
    );
}

#[test]
fn failed_detection_is_reported_and_the_location_stays_unknown() {
    let url = serve(|_, _, _| (404, String::new()));
    let v = doctor_location(&url, "detect");
    assert_eq!(v["location"]["known"], false);
    let w: Vec<String> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    assert!(
        w.iter().any(|x| x.contains("location detection failed")),
        "{w:?}"
    );
    assert!(w.iter().any(|x| x.contains("location unknown")), "{w:?}");
}
