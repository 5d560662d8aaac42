//! Small hand-written SVG charts (no scripts, no external fonts): a line chart and a stacked
//! 100 % bar chart (drawn by `wattprint_core::svg`, shared with the dashboard). Output is inline
//! `<svg>` markup with a `viewBox`, so it scales to the page (and to A4 when printed).

use std::fmt::Write;

use wattprint_core::svg::{
    self, axis_ticks, chart_value, legend_layout, num, open_chart, ticks_between, BarsLayout,
    MAX_CHART_VALUE,
};
pub use wattprint_core::svg::{esc, nice_step, Segment};

/// Colours that stay distinct in print and for common colour-vision deficiencies.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#7f7f7f",
];

/// Chart width in SVG user units (CSS pixels at 100 %): fits an A4 page with margins.
pub const WIDTH: f64 = 720.0;

/// How the x axis reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum XScale {
    /// Seconds since the start of a run.
    Seconds,
    /// Unix seconds, labelled as UTC dates/times.
    Unix,
}

/// How the y axis reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum YUnit {
    Watts,
    /// Kilograms CO2e (labelled in mg, g or kg by size).
    KgCo2e,
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<(f64, f64)>,
    /// Dashed stroke.
    pub dashed: bool,
}

/// Scale and unit label for a y axis whose largest value is `max`.
fn y_scale(unit: YUnit, max: f64) -> (f64, &'static str) {
    match unit {
        YUnit::Watts if max >= 2000.0 => (1e-3, "kW"),
        YUnit::Watts => (1.0, "W"),
        YUnit::KgCo2e if max < 1e-3 => (1e6, "mg CO2e"),
        YUnit::KgCo2e if max < 1.0 => (1e3, "g CO2e"),
        YUnit::KgCo2e if max < 1000.0 => (1.0, "kg CO2e"),
        YUnit::KgCo2e => (1e-3, "t CO2e"),
    }
}

/// x ticks: positions (in data units) and labels.
fn x_ticks(scale: XScale, min: f64, max: f64) -> (Vec<(f64, String)>, String) {
    let range = (max - min).max(1e-9);
    match scale {
        XScale::Seconds => {
            let (div, unit, name) = if max <= 120.0 {
                (1.0, "s", "time since start (s)")
            } else if max <= 7200.0 {
                (60.0, "min", "time since start (min)")
            } else {
                (3600.0, "h", "time since start (h)")
            };
            let step = nice_step(range / div, 6) * div;
            let v = ticks_between(min, max, step)
                .into_iter()
                .map(|t| (t, format!("{} {unit}", num(t / div))))
                .collect();
            (v, name.to_string())
        }
        XScale::Unix => {
            const STEPS: [f64; 16] = [
                1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0,
                43200.0, 86400.0, 604800.0, 2592000.0,
            ];
            let want = range / 6.0;
            let step = STEPS
                .iter()
                .copied()
                .find(|s| *s >= want)
                .unwrap_or_else(|| (want / 2592000.0).ceil() * 2592000.0);
            let days = range > 2.0 * 86400.0;
            let v = ticks_between(min, max, step)
                .into_iter()
                .map(|t| (t, unix_label(t, days, step < 60.0)))
                .collect();
            (v, "end of run (UTC)".to_string())
        }
    }
}

fn unix_label(t: f64, date: bool, seconds: bool) -> String {
    let Ok(d) = time::OffsetDateTime::from_unix_timestamp(t.floor() as i64) else {
        return num(t);
    };
    if date {
        format!("{}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    } else if seconds {
        format!("{:02}:{:02}:{:02}", d.hour(), d.minute(), d.second())
    } else {
        format!("{:02}:{:02}", d.hour(), d.minute())
    }
}

/// An x value as the chart places it: within ±[`MAX_CHART_VALUE`], so ranges stay finite.
fn clamp_x(x: f64) -> f64 {
    x.clamp(-MAX_CHART_VALUE, MAX_CHART_VALUE)
}

/// A line chart with axes, grid, ticks and a legend. Total over its input: empty, zero, huge,
/// negative or non-finite points give a valid chart with at most [`svg::MAX_TICKS`] + 1 ticks
/// per axis.
pub fn line_chart(title: &str, lines: &[Line], xs: XScale, yu: YUnit, height: f64) -> String {
    let (l, r, t, b) = (70.0, 16.0, 30.0, 44.0);
    let legend_h = if lines.len() > 1 {
        let names: Vec<String> = lines.iter().map(|ln| format!("{}  ", ln.name)).collect();
        let n = legend_layout(&names, l, WIDTH - r)
            .iter()
            .map(|p| p.1)
            .max()
            .unwrap_or(0)
            + 1;
        4.0 + 18.0 * n as f64
    } else {
        0.0
    };
    let h = height + legend_h;
    let pw = WIDTH - l - r;
    let ph = height - t - b;
    let pts = lines.iter().flat_map(|ln| ln.points.iter());
    let (mut xmin, mut xmax, mut ymax) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for &(x, y) in pts {
        if x.is_finite() && y.is_finite() {
            let x = clamp_x(x);
            xmin = xmin.min(x);
            xmax = xmax.max(x);
            ymax = ymax.max(chart_value(y));
        }
    }
    let mut o = String::new();
    open_chart(&mut o, WIDTH, h, title, l, 18.0);
    if !xmin.is_finite() {
        let _ = write!(
            o,
            r##"<text x="{}" y="{}" text-anchor="middle" class="cl">no data</text></svg>"##,
            WIDTH / 2.0,
            num(t + ph / 2.0)
        );
        return o;
    }
    if xmax <= xmin {
        xmax = xmin + (xmin.abs() * 1e-9).max(1.0);
    }
    let (ys, yname) = y_scale(yu, ymax);
    let (ytop_scaled, yticks) = axis_ticks(ymax * ys, 5);
    let ytop = ytop_scaled / ys;
    let px = |x: f64| l + (clamp_x(x) - xmin) / (xmax - xmin) * pw;
    let py = |y: f64| t + ph - chart_value(y) / ytop * ph;
    // grid and y ticks
    for v in yticks {
        let y = py(v / ys);
        let _ = write!(
            o,
            r##"<line x1="{l}" x2="{x2}" y1="{y}" y2="{y}" class="grid"/><text x="{tx}" y="{ty}" text-anchor="end" class="cl">{label}</text>"##,
            x2 = num(l + pw),
            y = num(y),
            tx = num(l - 6.0),
            ty = num(y + 4.0),
            label = esc(&num(v)),
        );
    }
    let (xt, xname) = x_ticks(xs, xmin, xmax);
    for (x, label) in &xt {
        let xx = px(*x);
        let _ = write!(
            o,
            r##"<line x1="{xx}" x2="{xx}" y1="{y0}" y2="{y1}" class="axis"/><text x="{xx}" y="{ty}" text-anchor="middle" class="cl">{label}</text>"##,
            xx = num(xx),
            y0 = num(t + ph),
            y1 = num(t + ph + 4.0),
            ty = num(t + ph + 17.0),
            label = esc(label),
        );
    }
    let _ = write!(
        o,
        r##"<line x1="{l}" x2="{l}" y1="{t}" y2="{yb}" class="axis"/><line x1="{l}" x2="{xr}" y1="{yb}" y2="{yb}" class="axis"/>"##,
        yb = num(t + ph),
        xr = num(l + pw),
    );
    let _ = write!(
        o,
        r##"<text x="{x}" y="{y}" text-anchor="middle" class="cl">{}</text>"##,
        esc(&xname),
        x = num(l + pw / 2.0),
        y = num(t + ph + 34.0),
    );
    let _ = write!(
        o,
        r##"<text transform="translate(14 {y}) rotate(-90)" text-anchor="middle" class="cl">{}</text>"##,
        esc(yname),
        y = num(t + ph / 2.0),
    );
    for ln in lines {
        if ln.points.is_empty() {
            continue;
        }
        let mut d = String::with_capacity(ln.points.len() * 14);
        for (i, &(x, y)) in ln.points.iter().enumerate() {
            if !(x.is_finite() && y.is_finite()) {
                continue;
            }
            let _ = write!(
                d,
                "{}{},{}",
                if i == 0 { "M" } else { " L" },
                num((px(x) * 10.0).round() / 10.0),
                num((py(y) * 10.0).round() / 10.0)
            );
        }
        let _ = write!(
            o,
            r##"<path d="{d}" fill="none" stroke="{c}" stroke-width="1.6"{dash}><title>{name}</title></path>"##,
            c = ln.color,
            dash = if ln.dashed {
                r#" stroke-dasharray="5 3""#
            } else {
                ""
            },
            name = esc(&ln.name),
        );
    }
    if lines.len() > 1 {
        // 18 px of sample line instead of a 10 px swatch: widen each entry accordingly
        let names: Vec<String> = lines.iter().map(|ln| format!("{}  ", ln.name)).collect();
        let lay = legend_layout(&names, l, WIDTH - r);
        for (ln, &(x, line)) in lines.iter().zip(&lay) {
            let y = height + 6.0 + 18.0 * line as f64;
            let _ = write!(
                o,
                r##"<line x1="{x}" x2="{x2}" y1="{y}" y2="{y}" stroke="{c}" stroke-width="3"{dash}/><text x="{tx}" y="{ty}" class="cl">{name}</text>"##,
                x = num(x),
                x2 = num(x + 18.0),
                y = num(y),
                c = ln.color,
                dash = if ln.dashed {
                    r#" stroke-dasharray="5 3""#
                } else {
                    ""
                },
                tx = num(x + 23.0),
                ty = num(y + 4.0),
                name = esc(&ln.name),
            );
        }
    }
    o.push_str("</svg>");
    o
}

/// Geometry of the report's [`stacked_bars`].
const BARS: BarsLayout = BarsLayout {
    width: WIDTH,
    left: 110.0,
    right: 16.0,
    top: 30.0,
    row_pad: 10.0,
    pct_px: 12.0,
    title_x: 110.0,
    title_y: 18.0,
};

/// Horizontal 100 % bars, one per row, each with its own legend (wrapped to the width).
pub fn stacked_bars(title: &str, rows: &[(String, Vec<Segment>)]) -> String {
    svg::stacked_bars(title, rows, &BARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(100.0, 5), 20.0);
        assert_eq!(nice_step(7.0, 5), 2.0);
        assert_eq!(nice_step(0.012, 6), 0.002);
        assert_eq!(nice_step(0.0, 5), 1.0);
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<script>"a"&'b'</script>"#),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn line_chart_has_paths_ticks_and_escaped_names() {
        let svg = line_chart(
            "power <w>",
            &[
                Line {
                    name: "cpu<0>".into(),
                    color: PALETTE[0],
                    points: vec![(0.0, 10.0), (5.0, 40.0), (10.0, 20.0)],
                    dashed: false,
                },
                Line {
                    name: "ram".into(),
                    color: PALETTE[1],
                    points: vec![(0.0, 2.0), (10.0, 3.0)],
                    dashed: true,
                },
            ],
            XScale::Seconds,
            YUnit::Watts,
            240.0,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<path").count(), 2);
        assert!(svg.contains("cpu&lt;0&gt;") && !svg.contains("cpu<0>"));
        assert!(svg.contains("power &lt;w&gt;"));
        assert!(svg.contains(">10 s<"), "{svg}");
        assert!(svg.contains(">40<"), "{svg}");
    }

    #[test]
    fn empty_chart_says_no_data() {
        let svg = line_chart("x", &[], XScale::Unix, YUnit::KgCo2e, 200.0);
        assert!(svg.contains("no data"));
    }

    #[test]
    fn stacked_bar_widths_are_proportional() {
        let svg = stacked_bars(
            "b",
            &[(
                "energy".into(),
                vec![
                    Segment {
                        label: "a".into(),
                        value: 3.0,
                        color: PALETTE[0],
                        text: "3".into(),
                    },
                    Segment {
                        label: "b".into(),
                        value: 1.0,
                        color: PALETTE[1],
                        text: "1".into(),
                    },
                ],
            )],
        );
        let bw = WIDTH - 110.0 - 16.0;
        assert!(
            svg.contains(&format!(r#"width="{}""#, num(bw * 0.75))),
            "{svg}"
        );
        assert!(svg.contains(">75 %<") && svg.contains(">25 %<"));
    }
}
