#![allow(clippy::unwrap_used)]
//! Property-based tests of the dashboard's charts: total over any input (empty, zero, huge,
//! negative, non-finite), always a complete SVG with only finite numbers, in bounded size and
//! time (the y-axis loop that never ended on an infinite total is gone).

use proptest::prelude::*;
use wattprint_server::dashboard::charts::{
    axis_num, hbars, line_chart, meter, month_bars, stacked_bars, HBar, Line, Segment,
};

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(0.0),
        Just(-0.0),
        Just(-1.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MAX),
        Just(1e308),
        Just(5e-324),
        (-12.0..12.0f64).prop_map(|x| 10f64.powf(x)),
    ]
}

fn assert_svg(s: &str) {
    assert!(s.starts_with("<svg") && s.ends_with("</svg>"), "{s}");
    assert!(!s.contains("NaN") && !s.contains("inf"), "{s}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn month_bars_are_total(
        series in prop::collection::vec(prop::collection::vec(value(), 0..14), 0..5),
        n in 0usize..13,
    ) {
        let months: Vec<String> = (0..n).map(|i| format!("2025-{:02}", i % 12 + 1)).collect();
        let series: Vec<(String, Vec<f64>)> = series
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("s{i}"), v))
            .collect();
        let out = month_bars("Emissions", &months, &series, "kg", 640.0);
        assert_svg(&out);
        prop_assert!(out.len() <= 30_000 + 400 * n * series.len().max(1), "{}", out.len());
    }

    #[test]
    fn hbars_and_meter_are_total(values in prop::collection::vec(value(), 0..10), used in value(), limit in value()) {
        let rows: Vec<HBar> = values
            .iter()
            .enumerate()
            .map(|(i, v)| HBar { label: format!("p{i}"), value: *v, text: "t".into(), red: i % 2 == 0 })
            .collect();
        let out = hbars("Top", &rows, 640.0);
        assert_svg(&out);
        prop_assert!(out.len() <= 1_000 + 700 * rows.len());
        let m = meter(used, limit);
        prop_assert!(m.starts_with("<svg") && m.ends_with("</svg>"));
        prop_assert!(!m.contains("NaN") && !m.contains("inf\""), "{m}");
        let a = axis_num(used);
        prop_assert!(!a.contains("NaN") && a.len() <= 400);
    }

    #[test]
    fn line_chart_is_total(
        lines in prop::collection::vec(prop::collection::vec((value(), value()), 0..30), 0..4),
    ) {
        let lines: Vec<Line> = lines
            .into_iter()
            .enumerate()
            .map(|(i, points)| Line { name: format!("gpu:{i}"), points })
            .collect();
        let points: usize = lines.iter().map(|l| l.points.len()).sum();
        let out = line_chart("Power", &lines, "W", 640.0);
        assert_svg(&out);
        prop_assert!(out.len() <= 40_000 + 60 * points, "{}", out.len());
    }

    #[test]
    fn breakdown_bars_are_total(rows in prop::collection::vec(prop::collection::vec(value(), 0..6), 0..4)) {
        let rows: Vec<(String, Vec<Segment>)> = rows
            .into_iter()
            .enumerate()
            .map(|(i, vs)| {
                (
                    format!("r{i}"),
                    vs.into_iter()
                        .map(|v| Segment { label: "cpu".into(), value: v, color: "#000", text: "x".into() })
                        .collect(),
                )
            })
            .collect();
        let out = stacked_bars("Breakdown", &rows, 640.0);
        assert_svg(&out);
    }
}
