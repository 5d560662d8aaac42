//! SVG primitives shared by the run/project reports (CLI) and the server dashboard: escaping,
//! number formatting, axis steps, text width estimates, the chart header, legends, and the one
//! chart both sides draw alike ([`stacked_bars`]). The other charts are drawn by each side.
//!
//! Output uses the CSS classes `ct` (title), `cl` (labels), `cin` (text inside a bar) and `axis`,
//! styled by the report's and the dashboard's style sheets.

use std::fmt::Write;

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

/// A number for SVG attributes and text: rounded to 6 decimals, never `-0`; a non-finite value
/// (which no chart should pass) is written as `0` so the document stays valid.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let r = if v.abs() < 1e15 {
        (v * 1e6).round() / 1e6
    } else {
        v
    };
    let s = format!("{r}");
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// Largest value a chart scales by: sums of a few million of them stay finite.
pub const MAX_CHART_VALUE: f64 = 1e300;
/// Most ticks an axis draws, whatever its input.
pub const MAX_TICKS: usize = 64;

/// A value as a chart may use it: finite and non-negative, at most [`MAX_CHART_VALUE`]; NaN
/// and negatives count as 0, +∞ as the maximum. Every chart passes its data through this, so a
/// page always renders whatever the store holds.
pub fn chart_value(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 {
        0.0
    } else {
        v.min(MAX_CHART_VALUE)
    }
}

/// Axis ticks `0, step, 2·step, …` up to the first multiple of a nice step at or above `max`
/// (at least one step): returns `(top, ticks)`. Total: any `max` (zero, negative, NaN, ∞, huge)
/// gives a finite top > 0 and 2 to [`MAX_TICKS`] + 1 ticks.
pub fn axis_ticks(max: f64, target: usize) -> (f64, Vec<f64>) {
    let max = chart_value(max);
    let step = nice_step(max, target.clamp(1, MAX_TICKS));
    let n = ((max / step).ceil()).clamp(1.0, MAX_TICKS as f64);
    let top = n * step;
    let ticks = (0..=n as usize).map(|i| i as f64 * step).collect();
    (top, ticks)
}

/// Axis ticks `0, step, …` not beyond `max` (plus rounding), at most [`MAX_TICKS`] + 1, for a
/// nice step splitting `max` in about `target` parts. Total like [`axis_ticks`].
pub fn ticks_upto(max: f64, target: usize) -> Vec<f64> {
    let max = chart_value(max);
    ticks_between(0.0, max, nice_step(max, target.clamp(1, MAX_TICKS)))
}

/// The multiples of `step` from `min` to `max` (plus rounding), increasing, at most
/// [`MAX_TICKS`] + 1 of them: total over any input (none when it makes no sense: non-finite
/// bounds, a step that is not positive, or one too small to move past `min` in a float).
pub fn ticks_between(min: f64, max: f64, step: f64) -> Vec<f64> {
    let mut v: Vec<f64> = Vec::new();
    if !(min.is_finite() && max.is_finite() && step.is_finite() && step > 0.0) {
        return v;
    }
    let start = (min / step).ceil() * step;
    for i in 0..=MAX_TICKS {
        let t = start + i as f64 * step;
        if !(t.is_finite() && t <= max + step * 1e-9) || v.last().is_some_and(|p| t <= *p) {
            break;
        }
        v.push(t);
    }
    v
}

/// A "nice" tick step (1, 2, 2.5, 5 × 10^n) for `range` split in about `target` parts: always
/// finite and positive (1 for a range that is not finite and positive).
pub fn nice_step(range: f64, target: usize) -> f64 {
    if !(range.is_finite() && range > 0.0) {
        return 1.0;
    }
    let raw = range / target.max(1) as f64;
    if raw < 1e-300 {
        // 10^floor(log10) underflows to 0 for subnormal ranges.
        return 1e-300;
    }
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
    let step = s * mag;
    if step.is_finite() && step > 0.0 {
        step
    } else {
        raw
    }
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

/// How many lines the legend of `labels` takes (see [`legend_layout`]); 0 when there is none.
pub fn legend_lines(labels: &[String], x0: f64, x_max: f64) -> usize {
    legend_layout(labels, x0, x_max)
        .iter()
        .map(|p| p.1)
        .max()
        .map_or(0, |m| m + 1)
}

/// Open a chart: the `<svg>` element (`width` × `height`, scaled by its `viewBox`), its
/// accessible title, and the visible title with its baseline at (`title_x`, `title_y`).
/// The caller closes it with `</svg>`.
pub fn open_chart(
    o: &mut String,
    width: f64,
    height: f64,
    title: &str,
    title_x: f64,
    title_y: f64,
) {
    let _ = write!(
        o,
        r##"<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}"><title>{t}</title><text x="{tx}" y="{ty}" class="ct">{t}</text>"##,
        w = num(width),
        h = num(height),
        t = esc(title),
        tx = num(title_x),
        ty = num(title_y),
    );
}

/// A legend of colour swatches (10 × 10) and labels, laid out by [`legend_layout`] from `x0`
/// to `x_max`; line `n` has its top at `y0 + 18 n`.
pub fn legend(o: &mut String, labels: &[String], colors: &[&str], x0: f64, x_max: f64, y0: f64) {
    for ((label, c), (x, line)) in labels
        .iter()
        .zip(colors)
        .zip(legend_layout(labels, x0, x_max))
    {
        let y = y0 + 18.0 * line as f64;
        let _ = write!(
            o,
            r##"<rect x="{x}" y="{y}" width="10" height="10" fill="{c}"/><text x="{tx}" y="{ty}" class="cl">{l}</text>"##,
            x = num(x),
            y = num(y),
            tx = num(x + 14.0),
            ty = num(y + 9.0),
            l = esc(label),
        );
    }
}

/// One part of a stacked bar.
#[derive(Debug, Clone)]
pub struct Segment {
    pub label: String,
    pub value: f64,
    pub color: &'static str,
    /// The value as the legend prints it (`12.3 Wh`).
    pub text: String,
}

/// Geometry of [`stacked_bars`], in SVG user units (CSS pixels at 100 %).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BarsLayout {
    /// Width of the whole chart.
    pub width: f64,
    /// Left margin: row names end 8 units left of it; bars and legends start at it.
    pub left: f64,
    /// Right margin: bars end and legends wrap `right` units before `width`.
    pub right: f64,
    /// Height of the title band: where the first row starts.
    pub top: f64,
    /// Space after each row's legend.
    pub row_pad: f64,
    /// Font size (px) assumed for a percentage when deciding whether it fits in its segment.
    pub pct_px: f64,
    /// Left end of the visible title.
    pub title_x: f64,
    /// Baseline of the visible title.
    pub title_y: f64,
}

/// Horizontal 100 % bars, one per row (`(name, segments)`), each with its own legend of
/// `label text` entries wrapped to the width. Negative and NaN values count as zero, huge ones as
/// [`MAX_CHART_VALUE`] ([`chart_value`]); a row whose total
/// is zero draws an empty frame saying "none". A segment shows its share (`75 %`) inside
/// when the text fits.
pub fn stacked_bars(title: &str, rows: &[(String, Vec<Segment>)], g: &BarsLayout) -> String {
    let (l, x_max) = (g.left, g.width - g.right);
    let bw = g.width - l - g.right;
    let labels: Vec<Vec<String>> = rows
        .iter()
        .map(|(_, segs)| {
            segs.iter()
                .map(|s| format!("{} {}", s.label, s.text))
                .collect()
        })
        .collect();
    let row_h =
        |i: usize| 30.0 + 18.0 * legend_lines(&labels[i], l, x_max).max(1) as f64 + g.row_pad;
    let h = g.top + (0..rows.len()).map(row_h).sum::<f64>();
    let mut o = String::new();
    open_chart(&mut o, g.width, h, title, g.title_x, g.title_y);
    let mut y = g.top;
    for (i, (name, segs)) in rows.iter().enumerate() {
        let total: f64 = segs.iter().map(|s| chart_value(s.value)).sum();
        let _ = write!(
            o,
            r##"<text x="{x}" y="{ty}" text-anchor="end" class="cl">{n}</text>"##,
            x = num(l - 8.0),
            ty = num(y + 15.0),
            n = esc(name),
        );
        if total <= 0.0 {
            let _ = write!(
                o,
                r##"<rect x="{l}" y="{y}" width="{bw}" height="22" fill="none" class="axis"/><text x="{tx}" y="{ty}" class="cl">none</text>"##,
                l = num(l),
                y = num(y),
                bw = num(bw),
                tx = num(l + 6.0),
                ty = num(y + 15.0),
            );
        } else {
            let mut x = l;
            for s in segs {
                let w = chart_value(s.value) / total * bw;
                if w <= 0.0 {
                    continue;
                }
                let _ = write!(
                    o,
                    r##"<rect x="{x}" y="{y}" width="{w}" height="22" fill="{c}"><title>{lab}: {text}</title></rect>"##,
                    x = num(x),
                    y = num(y),
                    w = num(w),
                    c = s.color,
                    lab = esc(&s.label),
                    text = esc(&s.text),
                );
                let p = format!("{:.0} %", chart_value(s.value) / total * 100.0);
                if w > text_w(&p, g.pct_px) + 8.0 {
                    let _ = write!(
                        o,
                        r##"<text x="{tx}" y="{ty}" text-anchor="middle" class="cin">{p}</text>"##,
                        tx = num(x + w / 2.0),
                        ty = num(y + 15.0),
                    );
                }
                x += w;
            }
        }
        let colors: Vec<&str> = segs.iter().map(|s| s.color).collect();
        legend(&mut o, &labels[i], &colors, l, x_max, y + 30.0);
        y += row_h(i);
    }
    o.push_str("</svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: BarsLayout = BarsLayout {
        width: 600.0,
        left: 100.0,
        right: 20.0,
        top: 30.0,
        row_pad: 10.0,
        pct_px: 12.0,
        title_x: 4.0,
        title_y: 16.0,
    };

    fn seg(label: &str, value: f64, text: &str) -> Segment {
        Segment {
            label: label.into(),
            value,
            color: "#123456",
            text: text.into(),
        }
    }

    /// `width="…"` of every filled segment rectangle (not legend swatches, not frames).
    fn seg_widths(svg: &str) -> Vec<f64> {
        svg.split("<rect ")
            .skip(1)
            .filter(|r| r.contains("height=\"22\"") && !r.contains("fill=\"none\""))
            .map(|r| {
                let w = r.split("width=\"").nth(1).expect("a width");
                let end = w.find('"').expect("a closing quote");
                w[..end].parse().expect("a number")
            })
            .collect()
    }

    #[test]
    fn stacked_bars_are_proportional_and_fill_the_bar() {
        let svg = stacked_bars(
            "b",
            &[(
                "energy".into(),
                vec![seg("a", 3.0, "3"), seg("b", 1.0, "1"), seg("c", -5.0, "-5")],
            )],
            &G,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        let bw = 600.0 - 100.0 - 20.0;
        let ws = seg_widths(&svg);
        assert_eq!(ws, vec![bw * 0.75, bw * 0.25], "{svg}");
        assert!((ws.iter().sum::<f64>() - bw).abs() < 1e-6);
        assert!(svg.contains(r#"<rect x="100" y="30" width="360""#), "{svg}");
        assert!(svg.contains(r#"<rect x="460" y="30" width="120""#), "{svg}");
        // Header and title where the layout puts them; one legend entry per segment.
        assert!(svg.contains(r#"viewBox="0 0 600 88""#), "{svg}");
        assert!(
            svg.contains(r#"<text x="4" y="16" class="ct">b</text>"#),
            "{svg}"
        );
        assert_eq!(svg.matches(r#"width="10" height="10""#).count(), 3);
        assert!(svg.contains(">a 3<") && svg.contains(">c -5<"), "{svg}");
    }

    #[test]
    fn zero_total_row_says_none() {
        let svg = stacked_bars(
            "b",
            &[(
                "idle".into(),
                vec![seg("a", 0.0, "0"), seg("b", -1.0, "-1")],
            )],
            &G,
        );
        assert!(
            svg.contains(r#"width="480" height="22" fill="none" class="axis"/>"#),
            "{svg}"
        );
        assert!(svg.contains(r#"class="cl">none</text>"#), "{svg}");
        assert!(seg_widths(&svg).is_empty() && !svg.contains("class=\"cin\""));
    }

    #[test]
    fn labels_are_escaped() {
        let svg = stacked_bars(
            "<t>",
            &[("r<1>".into(), vec![seg("a<b", 1.0, "1 & 2")])],
            &G,
        );
        assert!(!svg.contains("<t>") && !svg.contains("r<1>") && !svg.contains("a<b"));
        assert!(
            svg.contains("&lt;t&gt;") && svg.contains("r&lt;1&gt;"),
            "{svg}"
        );
        assert!(svg.contains("a&lt;b: 1 &amp; 2") && svg.contains("a&lt;b 1 &amp; 2"));
    }

    #[test]
    fn percentages_only_where_they_fit() {
        let svg = stacked_bars(
            "b",
            &[(
                "r".into(),
                vec![seg("big", 97.0, "97"), seg("small", 3.0, "3")],
            )],
            &G,
        );
        // 3 % of 480 is 14.4 units: too narrow for "3 %" at 12 px (+8).
        assert!(svg.contains(">97 %<"), "{svg}");
        assert!(!svg.contains(">3 %<"), "{svg}");
        let wide = BarsLayout {
            width: 2000.0,
            pct_px: 6.0,
            ..G
        };
        assert!(stacked_bars(
            "b",
            &[(
                "r".into(),
                vec![seg("big", 97.0, "97"), seg("small", 3.0, "3")]
            )],
            &wide
        )
        .contains(">3 %<"));
    }

    #[test]
    fn long_legends_wrap_and_grow_the_row() {
        let many: Vec<Segment> = (0..12)
            .map(|i| seg(&format!("a long legend label {i}"), 1.0, "1 kWh"))
            .collect();
        let one = stacked_bars("b", &[("r".into(), vec![seg("a", 1.0, "1")])], &G);
        let lots = stacked_bars("b", &[("r".into(), many.clone())], &G);
        let lines = legend_lines(
            &many
                .iter()
                .map(|s| format!("{} {}", s.label, s.text))
                .collect::<Vec<_>>(),
            100.0,
            580.0,
        );
        assert!(lines > 1);
        assert!(one.contains(r#"viewBox="0 0 600 88""#), "{one}");
        let h = 30.0 + 30.0 + 18.0 * lines as f64 + 10.0;
        assert!(
            lots.contains(&format!(r#"viewBox="0 0 600 {}""#, num(h))),
            "{lots}"
        );
    }
}
