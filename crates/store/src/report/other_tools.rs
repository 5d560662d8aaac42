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
    o.push_str("<table><thead><tr>");
    for h in render::HEADER {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    o.push_str("</tr></thead><tbody>");
    let base = &results[0];
    for res in &results {
        o.push_str("<tr>");
        for c in render::row(base, res) {
            let _ = write!(o, "<td>{}</td>", esc(&c));
        }
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table></section>\n");
}
