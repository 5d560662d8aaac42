//! The OpenAPI description of `GET /jobs/{key}`, merged into the document of
//! [`crate::openapi`].

use serde_json::{json, Value};

fn err(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// Add the path and its schemas; `common` adds the answers every authenticated route shares.
pub fn extend(doc: &mut Value, common: impl Fn(Value) -> Value) {
    let path = common(json!({
        "summary": "One job across nodes: each node's part, the total (once per node), completeness",
        "description": "The runs of the job (record `job`) visible to the token, grouped by hostname. A node's energy is the sum of its runs' records: the node's leader carries the job's energy there and its ranks none, so each node counts once; a run uploaded twice counts once. `complete` when the expected number of nodes (the records' `job_nodes`) reported, none listed in `job_nodelist` is missing and no run is still running. Any role.",
        "parameters": [{"name": "key", "in": "path", "required": true, "description": "The job key (`--job`, or derived from the launcher: `slurm:JOB.STEP`, `torchrun:ID`).", "schema": {"type": "string", "maxLength": 128}}],
        "responses": {
            "200": {"description": "The job.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
            "400": err("Invalid job key."),
            "404": err("No run of this job visible to this token.")
        }
    }));
    if let Some(p) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        p.insert("/jobs/{key}".into(), json!({"get": path}));
    }
    let schema = json!({"type": "object", "properties": {
        "job": {"type": "string"},
        "nodes": {"type": "array", "items": {"type": "object", "properties": {
            "node": {"type": "string"}, "runs": {"type": "integer"}, "charged_runs": {"type": "integer"},
            "running": {"type": "integer"}, "energy_kwh": {"type": "number"}, "facility_kwh": {"type": "number"},
            "emissions_kg": {"type": "number"}, "duration_s": {"type": "number"},
            "run_ids": {"type": "array", "items": {"type": "string"}}}}},
        "total": {"type": "object", "properties": {"energy_kwh": {"type": "number"}, "facility_kwh": {"type": "number"}, "emissions_kg": {"type": "number"}, "runs": {"type": "integer"}}},
        "expected_nodes": {"type": ["integer", "null"]},
        "reported_nodes": {"type": "integer"},
        "missing_nodes": {"type": "array", "items": {"type": "string"}},
        "missing_count": {"type": ["integer", "null"]},
        "running": {"type": "integer"},
        "complete": {"type": "boolean"}}});
    if let Some(s) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        s.insert("Job".into(), schema);
    }
}
