#![allow(clippy::unwrap_used)]
//! The HTML report in a real headless Chromium (Debian's `chromium`, installed by `.ci/run`),
//! driven over the Chrome DevTools Protocol: it must load from a `file://` URL with no console
//! error and no network request, render its charts, fit an A4 page when printed, and give a
//! screenshot. A control page with a remote image and a console error proves the harness sees
//! both.

mod report_support;

use report_support::{save, FakeHost, Spec};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};
use wattprint_core::record::RunStatus;

const CHROMIUM: &str = "/usr/bin/chromium";

/// A4 printable width at 96 px/in with the report's 14 mm margins: (210 − 28) mm.
const A4_PRINT_WIDTH_PX: f64 = 182.0 / 25.4 * 96.0;

struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Events received while waiting for replies.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch() -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} not found: this test needs Debian's headless Chromium; install it with `apt-get install chromium` (.ci/run does)"
        );
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-dev-shm-usage",
                "--metrics-recording-only",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID" on stderr.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("ws://") {
                    let _ = tx.send(line[i..].trim().to_string());
                }
                // keep draining so Chromium never blocks on a full pipe
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("Chromium did not print its DevTools address within 60 s");
        let hostport = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let stream = TcpStream::connect(&hostport).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (ws, _) = tungstenite::client(url.as_str(), stream).unwrap();
        // short reads from now on, so that waits can poll
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Browser {
            child,
            ws,
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        }
    }

    /// One message, or None after the socket's read timeout.
    fn read(&mut self) -> Option<Value> {
        match self.ws.read() {
            Ok(Message::Text(t)) => Some(serde_json::from_str(t.as_str()).unwrap()),
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("DevTools connection failed: {e}"),
        }
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(v) = self.read() {
                if v["id"].as_u64() == Some(id) {
                    assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                    return v["result"].clone();
                }
                self.events.push(v);
            }
        }
        panic!("{method}: no reply within 60 s");
    }

    fn wait_event(&mut self, session: &str, method: &str) {
        let seen = |e: &Value| e["method"] == method && e["sessionId"] == session;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.events.iter().any(seen) {
                return;
            }
            if let Some(v) = self.read() {
                self.events.push(v);
            }
        }
        panic!("no {method} within 60 s");
    }

    /// Collect events for `d`.
    fn drain(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if let Some(v) = self.read() {
                self.events.push(v);
            }
        }
    }

    /// A new tab with the Page, Runtime, Log and Network domains on; its session id.
    fn new_page(&mut self, width: u32, height: u32) -> String {
        let t = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target = t["targetId"].as_str().unwrap().to_string();
        let a = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        let s = a["sessionId"].as_str().unwrap().to_string();
        for d in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            self.call(Some(&s), d, json!({}));
        }
        self.call(
            Some(&s),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        s
    }

    /// Load `url`; the requests other than `url` itself and the errors the page caused.
    fn load(&mut self, s: &str, url: &str) -> (Vec<String>, Vec<String>) {
        self.events.clear();
        let nav = self.call(Some(s), "Page.navigate", json!({"url": url}));
        assert!(nav.get("errorText").is_none(), "navigate: {nav}");
        self.wait_event(s, "Page.loadEventFired");
        self.drain(Duration::from_millis(800));
        let mut requests = Vec::new();
        let mut errors = Vec::new();
        for e in self.events.iter().filter(|e| e["sessionId"] == s) {
            let p = &e["params"];
            match e["method"].as_str().unwrap_or("") {
                "Network.requestWillBeSent" => {
                    let u = p["request"]["url"].as_str().unwrap_or("").to_string();
                    if u != url {
                        requests.push(u);
                    }
                }
                "Runtime.consoleAPICalled"
                    if matches!(p["type"].as_str(), Some("error") | Some("assert")) =>
                {
                    errors.push(format!("console.{}: {}", p["type"], p["args"]));
                }
                "Runtime.exceptionThrown" => {
                    errors.push(format!("exception: {}", p["exceptionDetails"]));
                }
                "Log.entryAdded" if p["entry"]["level"] == "error" => {
                    errors.push(format!("log: {}", p["entry"]["text"]));
                }
                _ => {}
            }
        }
        (requests, errors)
    }

    fn eval(&mut self, s: &str, expr: &str) -> Value {
        let r = self.call(
            Some(s),
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// A PNG of the whole page.
    fn screenshot(&mut self, s: &str) -> Vec<u8> {
        let m = self.call(Some(s), "Page.getLayoutMetrics", json!({}));
        let w = m["cssContentSize"]["width"].as_f64().unwrap();
        let h = m["cssContentSize"]["height"].as_f64().unwrap();
        let r = self.call(
            Some(s),
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}}),
        );
        base64_decode(r["data"].as_str().unwrap())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().filter(|&&c| c == b'=').count();
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= if c == b'=' { 0 } else { val(c) } << (18 - 6 * i);
        }
        let b = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&b[..3 - pad]);
    }
    out
}

/// Width and height from a PNG's IHDR.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 24, "PNG too short");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    (w, h)
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
    let (req, err) = b.load(&s, &file_url(&control));
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
        let (req, err) = b.load(&s, &url);
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
        let png = b.screenshot(&s);
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
