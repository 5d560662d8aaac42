//! Hand-written inline SVG charts (no scripts, no fonts, no external anything), in the style of
//! the CLI's reports (`crates/cli/src/report/svg.rs`): stacked monthly bars, horizontal bars for
//! top emitters, a line chart for a run's power, 100 % stacked bars for a breakdown, and a budget
//! meter. Each returns `<svg>` markup with a `viewBox`, scaled to its box by the style sheet.
//! Every label is escaped.

use super::esc;
use std::fmt::Write;

use wattprint_core::svg::{
    self, axis_ticks, chart_value, legend, legend_lines, open_chart, ticks_upto, BarsLayout,
};
pub use wattprint_core::svg::{nice_step, num, Segment};

/// Colours that stay distinct in print and for common colour-vision deficiencies.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
];
/// Colour of waste (failed runs, budgets overrun).
pub const RED: &str = "#d62728";

/// `s` cut to `n` characters with an ellipsis.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut o: String = s.chars().take(n.saturating_sub(1)).collect();
        o.push('…');
        o
    }
}

fn open(o: &mut String, w: f64, h: f64, title: &str) {
    open_chart(o, w, h, title, 4.0, 16.0);
}

/// Y axis: grid lines and labels from 0 to a nice top above `max`; returns the top (finite and
/// positive, with at most [`svg::MAX_TICKS`] + 1 lines, whatever `max` is).
fn y_axis(
    o: &mut String,
    max: f64,
    l: f64,
    r: f64,
    t: f64,
    ph: f64,
    fmt: &dyn Fn(f64) -> String,
) -> f64 {
    let (top, ticks) = axis_ticks(max, 4);
    for v in ticks {
        let y = t + ph - v / top * ph;
        let _ = write!(
            o,
            r##"<line x1="{l}" x2="{r}" y1="{y}" y2="{y}" class="grid"/><text x="{tx}" y="{ty}" text-anchor="end" class="cl">{label}</text>"##,
            l = num(l),
            r = num(r),
            y = num(y),
            tx = num(l - 6.0),
            ty = num(y + 4.0),
            label = esc(&fmt(v)),
        );
    }
    top
}

/// Short axis label of a number (`0`, `2.5`, `1.2k`).
pub fn axis_num(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{}k", num((v / 1000.0 * 10.0).round() / 10.0))
    } else {
        num((v * 1000.0).round() / 1000.0)
    }
}

/// Vertical bars per month, stacked by series (`(name, value per month)`), with a legend.
pub fn month_bars(
    title: &str,
    months: &[String],
    series: &[(String, Vec<f64>)],
    unit: &str,
    width: f64,
) -> String {
    let (l, r, t, b) = (58.0, 10.0, 28.0, 40.0);
    let names: Vec<String> = series.iter().map(|s| s.0.clone()).collect();
    let colors: Vec<&str> = (0..series.len())
        .map(|i| PALETTE[i % PALETTE.len()])
        .collect();
    let lines = if series.len() > 1 {
        legend_lines(&names, l, width - r)
    } else {
        0
    };
    let plot_h = 170.0;
    let h = t + plot_h + b + 18.0 * lines as f64;
    let mut o = String::new();
    open(&mut o, width, h, title);
    let totals: Vec<f64> = (0..months.len())
        .map(|i| {
            series
                .iter()
                .map(|s| chart_value(s.1.get(i).copied().unwrap_or(0.0)))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().fold(0.0, f64::max);
    if months.is_empty() || max <= 0.0 {
        let _ = write!(
            o,
            r##"<text x="{x}" y="{y}" text-anchor="middle" class="cl">no runs yet</text></svg>"##,
            x = num(width / 2.0),
            y = num(t + plot_h / 2.0),
        );
        return o;
    }
    let top = y_axis(&mut o, max, l, width - r, t, plot_h, &axis_num);
    let _ = write!(
        o,
        r##"<text transform="translate(12 {y}) rotate(-90)" text-anchor="middle" class="cl">{u}</text>"##,
        y = num(t + plot_h / 2.0),
        u = esc(unit),
    );
    let pw = width - l - r;
    let slot = pw / months.len() as f64;
    let bw = (slot * 0.7).min(46.0);
    let every = ((months.len() as f64 * 44.0) / pw).ceil().max(1.0) as usize;
    for (i, m) in months.iter().enumerate() {
        let x = l + slot * i as f64 + (slot - bw) / 2.0;
        let mut y = t + plot_h;
        for (k, s) in series.iter().enumerate() {
            let v = chart_value(s.1.get(i).copied().unwrap_or(0.0));
            if v <= 0.0 {
                continue;
            }
            let hh = v / top * plot_h;
            y -= hh;
            let _ = write!(
                o,
                r##"<rect x="{x}" y="{y}" width="{bw}" height="{hh}" fill="{c}"><title>{m} · {n}: {v} {u}</title></rect>"##,
                x = num(x),
                y = num(y),
                bw = num(bw),
                hh = num(hh),
                c = colors[k],
                m = esc(m),
                n = esc(&s.0),
                v = esc(&super::fmt_num(v)),
                u = esc(unit),
            );
        }
        if i % every == 0 {
            let _ = write!(
                o,
                r##"<text x="{x}" y="{y}" text-anchor="middle" class="cl">{m}</text>"##,
                x = num(x + bw / 2.0),
                y = num(t + plot_h + 16.0),
                m = esc(m),
            );
        }
    }
    let _ = write!(
        o,
        r##"<line x1="{l}" x2="{r}" y1="{y}" y2="{y}" class="axis"/>"##,
        l = num(l),
        r = num(width - r),
        y = num(t + plot_h),
    );
    if series.len() > 1 {
        legend(&mut o, &names, &colors, l, width - r, t + plot_h + b - 6.0);
    }
    o.push_str("</svg>");
    o
}

/// One bar of [`hbars`]: label, value, the value as printed, and whether it is waste.
pub struct HBar {
    pub label: String,
    pub value: f64,
    pub text: String,
    pub red: bool,
}

/// Horizontal bars, largest first as given (top emitters).
pub fn hbars(title: &str, rows: &[HBar], width: f64) -> String {
    let (l, r, t) = (170.0, 96.0, 28.0);
    let row_h = 22.0;
    let h = t + row_h * rows.len().max(1) as f64 + 6.0;
    let mut o = String::new();
    open(&mut o, width, h, title);
    let max = rows
        .iter()
        .map(|b| chart_value(b.value))
        .fold(0.0, f64::max);
    if rows.is_empty() || max <= 0.0 {
        let _ = write!(
            o,
            r##"<text x="{x}" y="{y}" text-anchor="middle" class="cl">no runs yet</text></svg>"##,
            x = num(width / 2.0),
            y = num(t + 14.0),
        );
        return o;
    }
    let bw = width - l - r;
    for (i, b) in rows.iter().enumerate() {
        let y = t + row_h * i as f64;
        let w = (chart_value(b.value) / max * bw).max(1.0);
        let _ = write!(
            o,
            r##"<text x="{lx}" y="{ty}" text-anchor="end" class="cl">{label}<title>{full}</title></text><rect x="{l}" y="{y}" width="{w}" height="15" fill="{c}"><title>{full}: {text}</title></rect><text x="{vx}" y="{ty}" class="cl">{text}</text>"##,
            lx = num(l - 6.0),
            ty = num(y + 12.0),
            label = esc(&clip(&b.label, 26)),
            full = esc(&b.label),
            l = num(l),
            y = num(y),
            w = num(w),
            c = if b.red { RED } else { PALETTE[0] },
            text = esc(&b.text),
            vx = num(l + w + 6.0),
        );
    }
    o.push_str("</svg>");
    o
}

/// One line of [`line_chart`].
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A line chart against seconds since the start (labelled in s, min or h).
pub fn line_chart(title: &str, lines: &[Line], unit: &str, width: f64) -> String {
    let (l, r, t, b) = (64.0, 12.0, 28.0, 42.0);
    let names: Vec<String> = lines.iter().map(|x| x.name.clone()).collect();
    let colors: Vec<&str> = (0..lines.len())
        .map(|i| PALETTE[i % PALETTE.len()])
        .collect();
    let nl = if lines.len() > 1 {
        legend_lines(&names, l, width - r)
    } else {
        0
    };
    let ph = 190.0;
    let h = t + ph + b + 18.0 * nl as f64;
    let mut o = String::new();
    open(&mut o, width, h, title);
    let (mut xmax, mut ymax) = (0.0f64, 0.0f64);
    let mut any = false;
    for &(x, y) in lines.iter().flat_map(|ln| ln.points.iter()) {
        if x.is_finite() && y.is_finite() {
            any = true;
            xmax = xmax.max(chart_value(x));
            ymax = ymax.max(chart_value(y));
        }
    }
    if !any {
        let _ = write!(
            o,
            r##"<text x="{x}" y="{y}" text-anchor="middle" class="cl">no samples stored for this run</text></svg>"##,
            x = num(width / 2.0),
            y = num(t + ph / 2.0),
        );
        return o;
    }
    let xmax = if xmax > 0.0 { xmax } else { 1.0 };
    let ymax = if ymax > 0.0 { ymax } else { 1.0 };
    let pw = width - l - r;
    let top = y_axis(&mut o, ymax, l, width - r, t, ph, &axis_num);
    let (div, u, name) = if xmax <= 120.0 {
        (1.0, "s", "time since start (s)")
    } else if xmax <= 7200.0 {
        (60.0, "min", "time since start (min)")
    } else {
        (3600.0, "h", "time since start (h)")
    };
    for tick in ticks_upto(xmax / div, 6) {
        let x = tick * div;
        let xx = l + (x / xmax).min(1.0) * pw;
        let _ = write!(
            o,
            r##"<line x1="{xx}" x2="{xx}" y1="{y0}" y2="{y1}" class="axis"/><text x="{xx}" y="{ty}" text-anchor="middle" class="cl">{lab} {u}</text>"##,
            xx = num(xx),
            y0 = num(t + ph),
            y1 = num(t + ph + 4.0),
            ty = num(t + ph + 17.0),
            lab = num((tick * 1000.0).round() / 1000.0),
        );
    }
    let _ = write!(
        o,
        r##"<line x1="{l}" x2="{l}" y1="{t}" y2="{yb}" class="axis"/><line x1="{l}" x2="{xr}" y1="{yb}" y2="{yb}" class="axis"/><text x="{cx}" y="{ny}" text-anchor="middle" class="cl">{name}</text><text transform="translate(12 {my}) rotate(-90)" text-anchor="middle" class="cl">{unit}</text>"##,
        l = num(l),
        t = num(t),
        yb = num(t + ph),
        xr = num(l + pw),
        cx = num(l + pw / 2.0),
        ny = num(t + ph + 33.0),
        my = num(t + ph / 2.0),
        unit = esc(unit),
    );
    for (k, ln) in lines.iter().enumerate() {
        let mut d = String::with_capacity(ln.points.len() * 14);
        for &(x, y) in &ln.points {
            if !(x.is_finite() && y.is_finite()) {
                continue;
            }
            let _ = write!(
                d,
                "{}{},{}",
                if d.is_empty() { "M" } else { " L" },
                num(((l + chart_value(x) / xmax * pw) * 10.0).round() / 10.0),
                num(((t + ph - chart_value(y) / top * ph) * 10.0).round() / 10.0)
            );
        }
        if d.is_empty() {
            continue;
        }
        let _ = write!(
            o,
            r##"<path d="{d}" fill="none" stroke="{c}" stroke-width="1.6"><title>{n}</title></path>"##,
            c = colors[k],
            n = esc(&ln.name),
        );
    }
    if lines.len() > 1 {
        legend(&mut o, &names, &colors, l, width - r, t + ph + b - 4.0);
    }
    o.push_str("</svg>");
    o
}

/// Horizontal 100 % bars, one per row, each with its legend.
pub fn stacked_bars(title: &str, rows: &[(String, Vec<Segment>)], width: f64) -> String {
    let layout = BarsLayout {
        width,
        left: 96.0,
        right: 12.0,
        top: 28.0,
        row_pad: 8.0,
        pct_px: 11.0,
        title_x: 4.0,
        title_y: 16.0,
    };
    svg::stacked_bars(title, rows, &layout)
}

/// A budget meter: the share of `limit` used (red past 100 %).
pub fn meter(used: f64, limit: f64) -> String {
    let (w, h) = (110.0, 12.0);
    let (used, limit) = (chart_value(used), chart_value(limit));
    let frac = if limit > 0.0 {
        used / limit
    } else if used > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    let fill = (frac.clamp(0.0, 1.0) * w).max(0.0);
    let c = if frac > 1.0 {
        RED
    } else if frac > 0.8 {
        "#ff7f0e"
    } else {
        PALETTE[2]
    };
    let pct = if frac.is_finite() {
        format!("{:.0} % used", frac * 100.0)
    } else {
        "over budget".to_string()
    };
    format!(
        r##"<svg class="meter" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{pct}"><title>{pct}</title><rect x="0" y="0" width="{w}" height="{h}" fill="#eceff1"/><rect x="0" y="0" width="{f}" height="{h}" fill="{c}"/></svg>"##,
        w = num(w),
        h = num(h),
        f = num(fill),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_bars_stack_and_escape() {
        let svg = month_bars(
            "trend",
            &["2025-01".into(), "2025-02".into()],
            &[("<b>".into(), vec![1.0, 2.0]), ("c".into(), vec![3.0, 0.0])],
            "kg CO2e",
            600.0,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        // Three non-zero segments, two legend swatches, plus no bar for the zero.
        assert_eq!(svg.matches("<rect").count(), 3 + 2, "{svg}");
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"));
        let empty = month_bars("t", &[], &[], "kWh", 600.0);
        assert!(empty.contains("no runs yet"));
    }

    #[test]
    fn hbars_are_proportional() {
        let svg = hbars(
            "top",
            &[
                HBar {
                    label: "a".into(),
                    value: 4.0,
                    text: "4".into(),
                    red: false,
                },
                HBar {
                    label: "b".into(),
                    value: 1.0,
                    text: "1".into(),
                    red: true,
                },
            ],
            600.0,
        );
        let bw = 600.0 - 170.0 - 96.0;
        assert!(svg.contains(&format!(r#"width="{}""#, num(bw))), "{svg}");
        assert!(
            svg.contains(&format!(r#"width="{}""#, num(bw / 4.0))),
            "{svg}"
        );
        assert!(svg.contains(RED));
    }

    #[test]
    fn line_chart_draws_each_line() {
        let svg = line_chart(
            "power",
            &[
                Line {
                    name: "gpu:0".into(),
                    points: vec![(0.0, 100.0), (60.0, 250.0), (120.0, 240.0)],
                },
                Line {
                    name: "cpu".into(),
                    points: vec![(0.0, 20.0), (120.0, 30.0)],
                },
            ],
            "W",
            700.0,
        );
        assert_eq!(svg.matches("<path").count(), 2);
        assert!(svg.contains(">60 s<") || svg.contains(">50 s<"), "{svg}");
        assert!(line_chart("p", &[], "W", 700.0).contains("no samples"));
    }

    #[test]
    fn meter_turns_red_when_over() {
        assert!(meter(12.0, 10.0).contains(RED));
        assert!(meter(2.0, 10.0).contains("20 % used"));
        assert!(meter(1.0, 0.0).contains("over budget"));
    }
}
