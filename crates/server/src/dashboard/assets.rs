//! The dashboard's only asset: one inline style sheet (no scripts, no fonts, no images from
//! anywhere), and the Content-Security-Policy that allows exactly it (by its SHA-256, so not even
//! an injected `style` attribute would apply).

use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The style sheet, inlined in every page's `<style>` element.
pub const CSS: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1d1d1f; background: #f6f7f8; margin: 0; line-height: 1.45; font-size: 15px; }
header.top { background: #17324d; color: #fff; padding: 10px 24px; display: flex; align-items: center;
  gap: 18px; flex-wrap: wrap; }
header.top a { color: #fff; text-decoration: none; }
header.top .brand { font-weight: 700; font-size: 1.15em; letter-spacing: 0.02em; }
header.top nav { display: flex; gap: 14px; flex-wrap: wrap; flex: 1; }
header.top nav a { opacity: 0.85; }
header.top nav a.on, header.top nav a:hover { opacity: 1; text-decoration: underline; }
header.top .who { font-size: 0.85em; opacity: 0.9; }
header.top form { margin: 0; }
header.top button { background: transparent; color: #fff; border: 1px solid #9fb3c8; border-radius: 4px;
  padding: 2px 10px; cursor: pointer; font: inherit; font-size: 0.85em; }
main { max-width: 1180px; margin: 0 auto; padding: 18px 24px 48px; }
h1 { font-size: 1.55em; margin: 4px 0 2px; }
h2 { font-size: 1.12em; margin: 0 0 8px; }
p.sub { color: #555; margin: 0 0 14px; }
a { color: #0b5cad; }
section.box { background: #fff; border: 1px solid #dde1e5; border-radius: 8px; padding: 14px 16px;
  margin: 14px 0; overflow-x: auto; }
.grid2 { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 0 14px; }
.grid2 > section.box { margin: 14px 0 0; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 10px; margin: 12px 0; }
.kpi { background: #fff; border: 1px solid #dde1e5; border-radius: 8px; padding: 10px 12px; }
.kpi .v { font-size: 1.35em; font-weight: 650; font-variant-numeric: tabular-nums; }
.kpi .k { font-size: 0.8em; color: #555; }
.kpi.bad .v { color: #b3261e; }
table { border-collapse: collapse; width: 100%; font-size: 0.88em; margin: 4px 0; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #e8eaed; vertical-align: top;
  overflow-wrap: break-word; }
th { background: #f3f4f6; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.wasted td { background: #fdf0ef; }
.badge { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 0.85em; border: 1px solid #bbb;
  white-space: nowrap; }
.badge.completed { background: #e8f5e9; border-color: #81c784; }
.badge.failed, .badge.killed, .badge.stopped_by_budget, .badge.stopped_by_cap {
  background: #fdecea; border-color: #e57373; }
.badge.running { background: #fff8e1; border-color: #ffb74d; }
code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.9em;
  background: #f3f4f6; padding: 0 3px; border-radius: 3px; overflow-wrap: break-word; }
svg.meter { display: block; margin-top: 3px; }
.note { background: #fff8e1; border-left: 4px solid #ffb74d; padding: 6px 10px; margin: 8px 0; }
.err { background: #fdecea; border-left: 4px solid #d93025; padding: 8px 12px; margin: 10px 0; }
.muted { color: #666; font-size: 0.85em; }
.pager { margin-top: 8px; display: flex; gap: 14px; }
svg.chart { display: block; width: 100%; height: auto; margin: 4px 0; }
svg .ct { font: 600 13px system-ui, sans-serif; fill: #1d1d1f; }
svg .cl { font: 12px system-ui, sans-serif; fill: #333; }
svg .cin { font: 600 11px system-ui, sans-serif; fill: #fff; }
svg .grid { stroke: #e6e6e6; stroke-width: 1; }
svg .axis { stroke: #888; stroke-width: 1; }
form.login { background: #fff; border: 1px solid #dde1e5; border-radius: 8px; padding: 22px; max-width: 560px;
  margin: 40px auto; }
form.login label { display: block; font-weight: 600; margin-bottom: 6px; }
form.login input[type=password] { width: 100%; padding: 8px; font: inherit; font-family: ui-monospace, monospace;
  border: 1px solid #bbb; border-radius: 4px; }
form.login button { margin-top: 12px; padding: 7px 18px; font: inherit; background: #17324d; color: #fff;
  border: 0; border-radius: 4px; cursor: pointer; }
footer { max-width: 1180px; margin: 0 auto; padding: 0 24px 24px; color: #666; font-size: 0.8em; }
"#;

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                o.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

/// `Content-Security-Policy` of every dashboard page: nothing may load (no script at all, no
/// request to any host, this one included, except form submissions to itself); the one inline
/// style sheet is allowed by its hash; images only as `data:` URLs (the favicon); no framing.
pub fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = base64(&Sha256::digest(CSS.as_bytes()));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; img-src data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        // RFC 4648 section 10.
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o, "{i:?}");
        }
    }

    #[test]
    fn csp_pins_the_style_sheet() {
        let c = csp();
        assert!(
            c.starts_with("default-src 'none'; style-src 'sha256-"),
            "{c}"
        );
        assert!(c.contains("img-src data:; form-action 'self'; frame-ancestors 'none'"));
        assert!(!c.contains("script-src") && !c.contains("unsafe"));
    }
}
