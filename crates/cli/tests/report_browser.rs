#![allow(clippy::unwrap_used)]
//! The HTML report in a real headless Chromium (Debian's `chromium`, installed by `.ci/run`),
//! driven over the Chrome DevTools Protocol: it must load from a `file://` URL with no console
//! error and no network request, render its charts, fit an A4 page when printed, and give a
//! screenshot. A control page with a remote image and a console error proves the harness sees
//! both.

mod report_support;

use report_support::{save, FakeHost, Spec};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wattprint_core::record::RunStatus;

/// A4 printable width at 96 px/in with the report's 14 mm margins: (210 − 28) mm.
const A4_PRINT_WIDTH_PX: f64 = 182.0 / 25.4 * 96.0;

#[path = "../../server/tests/cdp/mod.rs"]
mod cdp;
use cdp::{base64_decode, png_size, Browser};

/// Load `url`; the requests other than `url` itself and the errors the page caused.
fn load(b: &mut Browser, s: &str, url: &str) -> (Vec<String>, Vec<String>) {
    b.events.clear();
    b.navigate(s, url);
    b.drain(Duration::from_millis(500));
    let requests = b.requests(s).into_iter().filter(|u| u != url).collect();
    (requests, b.errors(s))
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.canonicalize().unwrap().display())
}

/// A real `wattprint run` on the fake machine; the HTML report of it, written to a file.
fn run_report(h: &FakeHost) -> PathBuf {
    let driver = report_support::Driver::start(h, |t| 50.0 + 30.0 * (t * 3.0).sin().abs(), |_| 6.0);
    let out = h
        .cmd()
        .args([
            "run",
            "--quiet",
            "--interval",
            "50ms",
            "--location",
            "aws:eu-west-3",
            "--tag",
            "x=<script>console.error('injected')</script>",
            "--",
            "sleep",
            "1.2",
        ])
        .output()
        .unwrap();
    drop(driver);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = wattprint::store::Store::open(&h.db()).unwrap();
    let id = st
        .list_runs(&wattprint::store::RunFilter::default())
        .unwrap()[0]
        .id
        .clone();
    let path = h.dir.path().join("run-report.html");
    h.ok(&["report", &id, "--output", path.to_str().unwrap()]);
    path
}

fn project_report(h: &FakeHost) -> PathBuf {
    let statuses = [
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Completed,
        RunStatus::Killed,
        RunStatus::Completed,
        RunStatus::Completed,
    ];
    let specs: Vec<Spec> = statuses
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let mut s = Spec::new(
                &format!("e{i}000000-0000-4000-8000-000000000000"),
                "sweep",
                *st,
                &format!("2026-06-0{}T08:00:00Z", i + 1),
            );
            s.duration_s = 900.0 + 300.0 * i as f64;
            s
        })
        .collect();
    save(&h.db(), &specs);
    let path = h.dir.path().join("project-report.html");
    h.ok(&[
        "report",
        "--project",
        "sweep",
        "--output",
        path.to_str().unwrap(),
    ]);
    path
}

#[test]
fn html_reports_load_in_headless_chromium_without_errors_or_requests() {
    let h = FakeHost::new();
    let run_html = run_report(&h);
    let project_html = project_report(&h);
    let control = h.dir.path().join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><html><head><title>control</title></head><body><img src=\"http://127.0.0.1:9/x.png\"><script>console.error('control error')</script></body></html>",
    )
    .unwrap();

    let mut b = Browser::launch();
    let s = b.new_page(900, 1200);

    // The harness notices a request and a console error.
    let (req, err) = load(&mut b, &s, &file_url(&control));
    assert!(
        req.iter().any(|u| u.starts_with("http://127.0.0.1:9/")),
        "control request not seen: {req:?}"
    );
    assert!(
        err.iter().any(|e| e.contains("control error")),
        "control console error not seen: {err:?}"
    );

    for (path, charts) in [(&run_html, 3), (&project_html, 2)] {
        let url = file_url(path);
        let (req, err) = load(&mut b, &s, &url);
        assert!(
            req.is_empty(),
            "{}: network requests {req:?}",
            path.display()
        );
        assert!(err.is_empty(), "{}: console errors {err:?}", path.display());
        assert_eq!(b.eval(&s, "document.scripts.length"), json!(0));
        assert!(b
            .eval(&s, "document.title")
            .as_str()
            .unwrap()
            .starts_with("wattprint · "));
        // every chart is laid out at a readable size with drawn content
        let sizes = b.eval(
            &s,
            "Array.from(document.querySelectorAll('svg.chart')).map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height, e.querySelectorAll('path,rect').length]; })",
        );
        let sizes = sizes.as_array().unwrap();
        assert_eq!(sizes.len(), charts, "{}: {sizes:?}", path.display());
        for sz in sizes {
            assert!(sz[0].as_f64().unwrap() > 600.0, "chart width {sz}");
            assert!(sz[1].as_f64().unwrap() > 100.0, "chart height {sz}");
            assert!(sz[2].as_u64().unwrap() > 0, "chart has no marks {sz}");
        }
        let png = b.screenshot(&s, true);
        let (w, hgt) = png_size(&png);
        assert!((800..=900).contains(&w), "page width {w}");
        assert!(
            hgt > 1200,
            "the whole page, taller than the viewport: {hgt}"
        );
        assert!(
            png.len() > 40_000,
            "a blank page compresses far smaller: {} bytes",
            png.len()
        );
        let shot = h.dir.path().join(format!(
            "{}.png",
            path.file_stem().unwrap().to_string_lossy()
        ));
        std::fs::write(&shot, &png).unwrap();
        eprintln!(
            "screenshot: {} ({} bytes, {w}×{hgt})",
            shot.display(),
            png.len()
        );

        // Printed on A4: nothing wider than the printable width, and a PDF comes out.
        b.call(
            Some(&s),
            "Emulation.setEmulatedMedia",
            json!({"media": "print"}),
        );
        b.call(
            Some(&s),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": A4_PRINT_WIDTH_PX.floor() as u32, "height": 1100, "deviceScaleFactor": 1, "mobile": false}),
        );
        let sw = b
            .eval(&s, "document.documentElement.scrollWidth")
            .as_f64()
            .unwrap();
        assert!(
            sw <= A4_PRINT_WIDTH_PX.ceil(),
            "print layout {sw}px wider than A4"
        );
        let pdf = b.call(
            Some(&s),
            "Page.printToPDF",
            json!({"preferCSSPageSize": true, "printBackground": true}),
        );
        let pdf = base64_decode(pdf["data"].as_str().unwrap());
        assert!(pdf.starts_with(b"%PDF-"), "printToPDF gave no PDF");
        b.call(Some(&s), "Emulation.setEmulatedMedia", json!({"media": ""}));
        b.call(
            Some(&s),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 900, "height": 1200, "deviceScaleFactor": 1, "mobile": false}),
        );
    }
}
