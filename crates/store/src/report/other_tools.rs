//! The HTML report's "How other tools would count this" section: the run's hardware, duration
//! and location counted by each tool's profile ([`wattprint_core::profiles`]), next to the
//! measured figures, with why they differ.

use std::fmt::Write;
use wattprint_core::profiles::{evaluate_all, job_from_record, render};
use wattprint_core::record::RunRecord;

/// The section, or nothing when the profiles cannot be computed (the reason as a note).
pub fn section(o: &mut String, r: &RunRecord, esc: impl Fn(&str) -> String) {
    o.push_str("<section class=\"keep\"><h2>How other tools would count this</h2>\n");
    let job = job_from_record(r);
    let results = match evaluate_all(&job) {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(
                o,
                "<p class=\"muted\">Not computed: {}.</p></section>",
                esc(&e.to_string())
            );
            return;
        }
    };
    let _ = write!(
        o,
        "<p>The same hardware, duration and place ({}) as each tool models it, from its own datasets, with every processor counted as busy; the run itself measured {} CO2e. <code>wattprint compare {}</code> shows the factors.</p>",
        esc(&render::describe(&job)),
        esc(&render::mass(r.emissions_kg.operational)),
        esc(&r.id.chars().take(8).collect::<String>()),
    );
    // Four short columns and the reasons on a row of their own, so that the table fits a
    // printed A4 page.
    o.push_str("<table><thead><tr><th>tool</th><th>energy</th><th>emissions</th><th>embodied</th></tr></thead><tbody>");
    let base = &results[0];
    for res in &results {
        let c = render::row(base, res);
        let _ = write!(
            o,
            "<tr><td>{}</td><td>IT {} kWh, facility {} kWh (PUE {})</td><td>{} at {} g/kWh</td><td>{}</td></tr><tr><td></td><td colspan=\"3\" class=\"muted\">{}</td></tr>",
            esc(&c[0]),
            esc(&c[1]),
            esc(&c[2]),
            esc(&c[3]),
            esc(&c[5]),
            esc(&c[4]),
            esc(&c[6]),
            esc(&c[7]),
        );
    }
    o.push_str("</tbody></table></section>\n");
}

/// `report --factors PROFILE`: the run as that tool counts it next to wattprint's count of the
/// same job, as Markdown (a section) and as JSON (a value).
pub fn profile_markdown(r: &RunRecord, p: wattprint_core::profiles::Profile) -> String {
    use wattprint_core::profiles::{evaluate, Profile};
    let job = job_from_record(r);
    let (Ok(base), Ok(res)) = (evaluate(Profile::Wattprint, &job), evaluate(p, &job)) else {
        return String::new();
    };
    let tool = res.tool;
    format!(
        "## As {} would count it\n\n{} (processors counted as busy; the run measured {} CO2e).\n\n{}\n",
        tool,
        render::describe(&job),
        render::mass(r.emissions_kg.operational),
        render::markdown(&[base, res])
    )
}

/// The JSON of [`profile_markdown`]: the profile's result with `why`.
pub fn profile_json(
    r: &RunRecord,
    p: wattprint_core::profiles::Profile,
) -> Option<serde_json::Value> {
    use wattprint_core::profiles::{evaluate, why, Profile};
    let job = job_from_record(r);
    let base = evaluate(Profile::Wattprint, &job).ok()?;
    let res = evaluate(p, &job).ok()?;
    let mut v = serde_json::to_value(&res).ok()?;
    v["why"] = serde_json::json!(why(&base, &res));
    Some(v)
}
