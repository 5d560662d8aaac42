//! SVG primitives shared by the run/project reports (CLI) and the server dashboard: escaping,
//! number formatting, axis steps, text width estimates and legend layout. The charts themselves
//! are drawn by each side.

/// Escape text for HTML and SVG (element content and quoted attributes).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A number for SVG attributes and text: rounded to 6 decimals, never `-0`.
pub fn num(v: f64) -> String {
    let r = (v * 1e6).round() / 1e6;
    let s = format!("{r}");
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// A "nice" tick step (1, 2, 2.5, 5 × 10^n) for `range` split in about `target` parts.
pub fn nice_step(range: f64, target: usize) -> f64 {
    if !(range.is_finite() && range > 0.0) {
        return 1.0;
    }
    let raw = range / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let n = raw / mag;
    let s = if n <= 1.0 {
        1.0
    } else if n <= 2.0 {
        2.0
    } else if n <= 2.5 {
        2.5
    } else if n <= 5.0 {
        5.0
    } else {
        10.0
    };
    s * mag
}

/// Rough text width for layout (12 px sans-serif).
pub fn text_w(s: &str, px: f64) -> f64 {
    s.chars().count() as f64 * px * 0.58
}

/// Legend entries laid out left to right from `x0`, wrapping before `x_max`: `(x, line)`.
pub fn legend_layout(labels: &[String], x0: f64, x_max: f64) -> Vec<(f64, usize)> {
    let mut out = Vec::with_capacity(labels.len());
    let (mut x, mut line) = (x0, 0usize);
    for l in labels {
        let w = 14.0 + text_w(l, 12.0);
        if x > x0 && x + w > x_max {
            x = x0;
            line += 1;
        }
        out.push((x, line));
        x += w + 16.0;
    }
    out
}
