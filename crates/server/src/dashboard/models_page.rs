//! `/dashboard/models[?page=N]`: the models visible to the token (runs given `--model`), each
//! with its total, final training, overhead ratio and preparation share
//! (`wattprint_core::model_footprint`'s rules, as `wattprint model NAME` states them).

use super::pages::document;
use super::{esc, fmt_kg, internal, DashState, Viewer};
use crate::store_models::{MAX_MODEL_RUNS, MODELS_PER_PAGE};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;
use wattprint_core::format::{percent, sig};
use wattprint_core::model_footprint::footprint;
use wattprint_core::record::RunRecord;

#[derive(Debug, serde::Deserialize)]
pub struct PageArg {
    page: Option<i64>,
}

pub async fn models(
    State(st): State<DashState>,
    v: Viewer,
    q: Result<Query<PageArg>, QueryRejection>,
) -> Response {
    let page = q
        .ok()
        .and_then(|q| q.0.page)
        .unwrap_or(1)
        .clamp(1, 1_000_000);
    let scope = v.scope();
    let rows = match st
        .app
        .store
        .models(&scope, MODELS_PER_PAGE + 1, (page - 1) * MODELS_PER_PAGE)
        .await
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let more = rows.len() as i64 > MODELS_PER_PAGE;
    let mut o = String::from(
        "<h1 id=\"page-title\">Models</h1><p class=\"sub\">Every run linked to a model \
         (<code>wattprint run --model NAME --stage …</code>): the final training is the run \
         marked final, else the latest completed training run; the overhead ratio is \
         everything else (inference aside) ÷ the final training</p>",
    );
    if rows.is_empty() {
        o.push_str("<p id=\"no-models\">No run names its model yet.</p>");
    } else {
        o.push_str("<table id=\"models\"><thead><tr><th>model</th><th>runs</th><th>emissions</th><th>final training</th><th>overhead ratio</th><th>preparation</th><th>failed runs</th></tr></thead><tbody>");
        for m in rows.iter().take(MODELS_PER_PAGE as usize) {
            let texts = match st
                .app
                .store
                .model_records(&scope, &m.model, MAX_MODEL_RUNS)
                .await
            {
                Ok(t) => t,
                Err(e) => return internal(e),
            };
            let recs: Vec<RunRecord> = texts
                .iter()
                .filter_map(|t| serde_json::from_str(t).ok())
                .collect();
            let f = footprint(&m.model, &recs);
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&m.model),
                m.runs,
                esc(&fmt_kg(f.total.emissions_kg)),
                esc(&f
                    .final_training
                    .as_ref()
                    .map(|r| fmt_kg(r.emissions_kg))
                    .unwrap_or_else(|| "none".into())),
                esc(&f
                    .overhead_ratio
                    .map(|x| format!("{}×", sig(x)))
                    .unwrap_or_else(|| "unknown".into())),
                esc(&f
                    .preparation_share
                    .map(percent)
                    .unwrap_or_else(|| "unknown".into())),
                f.failed.runs
            );
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("<p class=\"pager\">");
    if page > 1 {
        let _ = write!(
            o,
            "<a rel=\"prev\" href=\"?page={}\">previous</a> ",
            page - 1
        );
    }
    if more {
        let _ = write!(o, "<a rel=\"next\" href=\"?page={}\">next</a>", page + 1);
    }
    o.push_str("</p>");
    document("Models", Some(&v), "models", &o).into_response()
}
