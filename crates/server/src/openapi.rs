//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`, written by hand next to the
//! handlers. A test checks that it lists exactly the routes of [`crate::app::ROUTES`].

use serde_json::{json, Value};

fn err(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ok(desc: &str, schema: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn filters() -> Vec<Value> {
    let q = |name: &str, desc: &str| json!({"name": name, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}});
    vec![
        q("team", "Only runs of this team (name)."),
        q("project", "Only runs of this project (name)."),
        json!({"name": "status", "in": "query", "required": false, "schema": {"type": "string", "enum": ["running", "completed", "failed", "killed", "stopped_by_budget", "stopped_by_cap"]}}),
        q("user", "Only runs attributed to this user."),
        q("host", "Only runs on this hostname."),
        q(
            "since",
            "Runs started at or after: RFC 3339 or YYYY-MM-DD (UTC).",
        ),
        q(
            "until",
            "Runs started before: RFC 3339 or YYYY-MM-DD (UTC).",
        ),
    ]
}

/// `limit` and `cursor` of a paged listing.
fn page_params(default: usize, max: usize) -> Vec<Value> {
    vec![
        json!({"name": "limit", "in": "query", "required": false, "description": "Items per page.", "schema": {"type": "integer", "minimum": 1, "maximum": max, "default": default}}),
        json!({"name": "cursor", "in": "query", "required": false, "description": "The previous page's `next_cursor`, as it is (opaque).", "schema": {"type": "string"}}),
    ]
}

fn id_param(desc: &str) -> Value {
    json!({"name": "id", "in": "path", "required": true, "description": desc, "schema": {"type": "string"}})
}

/// The document.
pub fn document() -> Value {
    let common = |mut v: Value| {
        if let Value::Object(m) = &mut v {
            if let Some(Value::Object(r)) = m.get_mut("responses") {
                r.insert(
                    "401".into(),
                    err("No token, unknown token or revoked token."),
                );
                r.insert(
                    "429".into(),
                    err("Rate limit of the token exceeded, or (listings, samples, totals) the token already has the most expensive requests in flight; see the Retry-After header."),
                );
            }
        }
        v
    };
    let mut run_list_params = filters();
    run_list_params.extend(page_params(100, crate::api::runs::MAX_RUNS_PAGE));
    run_list_params.push(json!({"name": "offset", "in": "query", "required": false, "deprecated": true, "description": "Skip this many runs (costs more the further it goes; use cursor).", "schema": {"type": "integer", "minimum": 0, "default": 0}}));
    let mut totals_params = filters();
    totals_params.extend(page_params(
        crate::api::totals::MAX_GROUPS_PAGE,
        crate::api::totals::MAX_GROUPS_PAGE,
    ));
    let mut sample_params = vec![id_param("Run id.")];
    sample_params.extend(page_params(
        crate::api::runs::SAMPLES_PAGE,
        crate::api::runs::MAX_SAMPLES_PAGE,
    ));
    let mut budget_params = vec![
        json!({"name": "month", "in": "query", "required": false, "description": "YYYY-MM (default: this month, UTC).", "schema": {"type": "string"}}),
    ];
    budget_params.extend(page_params(100, crate::api::budgets::MAX_BUDGETS_PAGE));
    totals_params.push(json!({"name": "group_by", "in": "query", "required": false, "schema": {"type": "string", "enum": ["org", "team", "project", "user", "month", "status", "host"], "default": "project"}}));
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "wattprint server API",
            "version": "1",
            "description": "Runs measured by wattprint (schema wattprint.run/1), their samples, totals and budgets. Every request except health and this document needs `Authorization: Bearer <token>`. Errors are {\"error\", \"detail\"}. See docs/server.md.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/runs": {
                "post": common(json!({
                    "summary": "Upload a run record (checkpoint or final), optionally with samples in `series`",
                    "description": "Idempotent upsert keyed by (team, run id). A record replaces the stored one only if it is further along: a final record (completed/failed/killed) beats a running checkpoint; among equals, a longer duration with no less energy, or more energy. Retries answer `duplicate`, late or backwards records `stale`; neither changes totals. Projects named by a run are created on first use (team tokens); a project token only uploads to its project. Role member or admin.",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestBody"}}}},
                    "responses": {
                        "201": ok("First upload of this run.", "IngestResult"),
                        "200": ok("Updated, duplicate or stale (see outcome).", "IngestResult"),
                        "400": err("Malformed JSON."),
                        "403": err("Viewer token, organisation-wide token, or project outside the token's project."),
                        "409": err("The run exists under another project of the team."),
                        "413": err("Body over the size limit."),
                        "415": err("Content-Type is not application/json."),
                        "422": err("Wrong types, missing fields, negative or non-finite numbers, figures beyond what a real job reaches, impossible times, a record that contradicts itself, over-long strings, NUL characters; the detail starts with the field's JSON path (docs/server.md, Validation).")
                    }
                })),
                "get": common(json!({
                    "summary": "List runs visible to the token, newest first, one page at a time",
                    "parameters": run_list_params,
                    "responses": {"200": ok("Runs.", "RunList"), "400": err("Bad filter.")}
                }))
            },
            "/runs/{id}": {
                "get": common(json!({
                    "summary": "One run with its record as received",
                    "parameters": [id_param("Run id.")],
                    "responses": {"200": ok("The run.", "Run"), "404": err("No such run visible to this token (the same answer whether it exists in another team or not at all).")}
                })),
                "delete": common(json!({
                    "summary": "Delete a run and its samples (team or project admin), audited",
                    "description": "Totals and budgets drop by the run's figures at once. The deletion is recorded with who (the token), when, the run's figures and its record; the answer is that audit entry. Organisation-wide tokens cannot delete (run ids are unique per team): use a team admin token or `wattprint admin run rm`.",
                    "parameters": [id_param("Run id."), {"name": "reason", "in": "query", "required": false, "description": "Why, for the audit trail (one line, at most 1 024 characters).", "schema": {"type": "string"}}],
                    "responses": {"200": ok("Deleted; the audit entry.", "Deletion"), "403": err("Not an admin token, or an organisation-wide token."), "404": err("No such run visible to this token."), "422": err("Invalid reason.")}
                }))
            },
            "/runs/{id}/samples": {
                "get": common(json!({
                    "summary": "Samples of a run, by device then time, one page at a time",
                    "parameters": sample_params,
                    "responses": {"200": ok("A page of samples.", "SamplePage"), "400": err("Bad limit or cursor."), "404": err("No such run visible to this token.")}
                })),
                "post": common(json!({
                    "summary": "Upload samples of a run (upsert by device and start time)",
                    "parameters": [id_param("Run id.")],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SampleList"}}}},
                    "responses": {"200": {"description": "Stored."}, "400": err("Malformed JSON."), "403": err("Viewer or organisation-wide token."), "404": err("No such run visible to this token."), "413": err("Body over the size limit."), "422": err("Invalid samples.")}
                }))
            },
            "/totals": {
                "get": common(json!({
                    "summary": "Energy and emissions of the visible runs, grouped",
                    "description": "Each run counts once, with its latest accepted record. Months are those of started_at, UTC.",
                    "parameters": totals_params,
                    "responses": {"200": ok("Totals.", "Totals"), "400": err("Bad group_by or filter.")}
                }))
            },
            "/budgets": {
                "get": common(json!({
                    "summary": "Budgets visible to the token, with the month's use",
                    "parameters": budget_params,
                    "responses": {"200": ok("A page of budgets.", "BudgetList")}
                })),
                "post": common(json!({
                    "summary": "Create or replace the monthly budget of a team or project (admin)",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BudgetBody"}}}},
                    "responses": {"201": ok("Created.", "Budget"), "200": ok("Replaced.", "Budget"), "403": err("Not an admin token, or another team or project."), "422": err("Invalid budget.")}
                }))
            },
            "/budgets/{id}": {
                "delete": common(json!({
                    "summary": "Delete a budget (admin)",
                    "parameters": [id_param("Budget id.")],
                    "responses": {"204": {"description": "Deleted."}, "403": err("Not an admin token."), "404": err("No such budget visible to this token.")}
                }))
            },
            "/tokens": {
                "get": common(json!({
                    "summary": "Tokens in the caller's scope, newest first, without secrets (admin)",
                    "parameters": page_params(100, crate::api::tokens::MAX_TOKENS_PAGE),
                    "responses": {"200": {"description": "A page of tokens.", "content": {"application/json": {"schema": {"type": "object", "properties": {"tokens": {"type": "array", "items": {"$ref": "#/components/schemas/Token"}}, "next_cursor": {"type": ["string", "null"]}}}}}}, "403": err("Not an admin token.")}
                })),
                "post": common(json!({
                    "summary": "Create a token in the caller's team or project; the secret is shown once (admin)",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {"name": {"type": "string"}, "project": {"type": "string"}, "role": {"type": "string", "enum": ["viewer", "member", "admin"], "default": "member"}}}}}},
                    "responses": {"201": ok("Created; `token` is the secret.", "CreatedToken"), "403": err("Not an admin token, or a higher role than the caller's."), "422": err("Invalid body.")}
                }))
            },
            "/tokens/{id}": {
                "delete": common(json!({
                    "summary": "Revoke a token in the caller's scope (admin)",
                    "parameters": [id_param("Token id.")],
                    "responses": {"204": {"description": "Revoked."}, "403": err("Not an admin token."), "404": err("No such token visible to this token.")}
                }))
            },
            "/me": {
                "get": common(json!({
                    "summary": "The calling token: scope and role",
                    "responses": {"200": {"description": "The token.", "content": {"application/json": {"schema": {"type": "object", "properties": {"token": {"$ref": "#/components/schemas/Token"}}}}}}}
                }))
            },
            "/health": {
                "get": {
                    "summary": "The server and its database answer (no token needed)",
                    "security": [],
                    "responses": {"200": {"description": "Up.", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string"}, "database": {"type": "string", "enum": ["sqlite", "postgres"]}, "schema_version": {"type": "integer"}, "version": {"type": "string"}}}}}}, "503": {"description": "The database does not answer."}}
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document (no token needed)",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1 document."}}
                }
            }
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "A wattprint API token (`wpt_` + 64 hex digits)."}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "detail"], "properties": {"error": {"type": "string", "description": "Short code: bad_request, invalid, unauthorized, forbidden, not_found, conflict, payload_too_large, unsupported_media_type, rate_limited, timeout, method_not_allowed, internal."}, "detail": {"type": "string", "description": "What is wrong and how to fix it."}}},
                "RunRecord": {
                    "type": "object",
                    "description": "A wattprint.run/1 record as `wattprint run` writes it (crates/core/src/record.rs). Unknown fields are kept verbatim. Energies, emissions, durations and powers must be finite, non-negative and within the bounds of docs/server.md (Validation), e.g. at most 1 GWh per run, 100 kW per device, PUE 1 to 3, 2 000 gCO2e/kWh; times between 2000 and now + 15 minutes; derived figures consistent within 1e-6 (it = dynamic + static = cpu + gpu + ram + other, facility = it x pue, emissions = energy x intensity, total = operational + embodied).",
                    "required": ["schema", "id", "project", "tags", "command", "started_at", "ended_at", "duration_s", "status", "exit_code", "host", "scope", "interval_s", "energy_kwh", "devices", "methods", "pue", "carbon_intensity", "location", "emissions_kg", "equivalents", "assumptions", "factors_version", "warnings", "samples", "skipped_ticks", "wattprint_version"],
                    "properties": {
                        "schema": {"const": "wattprint.run/1"},
                        "id": {"type": "string", "maxLength": 128},
                        "project": {"type": "string", "maxLength": 200},
                        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                        "command": {"type": "array", "items": {"type": "string"}},
                        "started_at": {"type": "string", "format": "date-time"},
                        "ended_at": {"type": ["string", "null"], "format": "date-time"},
                        "duration_s": {"type": "number", "minimum": 0},
                        "status": {"type": "string", "enum": ["running", "completed", "failed", "killed", "stopped_by_budget", "stopped_by_cap"]},
                        "energy_kwh": {"type": "object", "description": "cpu, gpu, ram, other, dynamic, static, it, infrastructure, facility, total (kWh, >= 0)."},
                        "emissions_kg": {"type": "object", "description": "dynamic, static, infrastructure, embodied, operational, total (kg CO2e, >= 0); embodied is null when it was not counted (the record's embodied_not_counted says why; total is then operational)."},
                        "host": {"type": "object"},
                        "devices": {"type": "array", "items": {"type": "object"}}
                    }
                },
                "IngestBody": {
                    "allOf": [{"$ref": "#/components/schemas/RunRecord"}],
                    "properties": {
                        "series": {"type": "array", "items": {"$ref": "#/components/schemas/Sample"}, "description": "Samples to store with the run (the record's own `samples` field is the sampler's read count)."},
                        "user": {"type": "string", "description": "Who ran it, for tokens not tied to a user (ignored otherwise: the token's user wins)."}
                    }
                },
                "IngestResult": {"type": "object", "properties": {"run_id": {"type": "string"}, "outcome": {"type": "string", "enum": ["created", "updated", "duplicate", "stale"]}, "status": {"type": "string"}, "samples": {"type": "integer"}}},
                "Sample": {"type": "object", "required": ["device_id", "t0", "t1", "energy_j"], "properties": {"device_id": {"type": "string"}, "t0": {"type": "number", "minimum": 0, "description": "Seconds since the run started."}, "t1": {"type": "number", "minimum": 0}, "energy_j": {"type": "number", "minimum": 0}}},
                "SampleList": {"type": "object", "required": ["samples"], "properties": {"samples": {"type": "array", "maxItems": crate::api::runs::MAX_SAMPLES, "items": {"$ref": "#/components/schemas/Sample"}}}},
                "SamplePage": {"type": "object", "properties": {"run_id": {"type": "string"}, "samples": {"type": "array", "items": {"$ref": "#/components/schemas/Sample"}}, "limit": {"type": "integer"}, "next_cursor": {"type": ["string", "null"], "description": "Pass it as `cursor` for the next page; null on the last."}}},
                "Deletion": {"type": "object", "description": "The audit entry of a deleted run.", "properties": {"id": {"type": "integer"}, "team": {"type": "string"}, "project": {"type": "string"}, "run_id": {"type": "string"}, "user": {"type": ["string", "null"]}, "status": {"type": "string"}, "started_at": {"type": "string"}, "duration_s": {"type": "number"}, "energy_kwh": {"type": "number"}, "facility_kwh": {"type": "number"}, "emissions_kg": {"type": "number"}, "samples": {"type": "integer"}, "deleted_at": {"type": "string"}, "deleted_by": {"type": "string", "description": "The token (id, prefix, name, user) or `wattprint admin` and the local user."}, "reason": {"type": ["string", "null"]}}},
                "RunSummary": {"type": "object", "properties": {
                    "run_id": {"type": "string"}, "org": {"type": "string"}, "team": {"type": "string"}, "project": {"type": "string"}, "user": {"type": ["string", "null"]},
                    "status": {"type": "string"}, "started_at": {"type": "string"}, "ended_at": {"type": ["string", "null"]}, "duration_s": {"type": "number"},
                    "energy_kwh": {"type": "number", "description": "IT energy (record energy_kwh.total)."}, "facility_kwh": {"type": "number"}, "emissions_kg": {"type": "number", "description": "record emissions_kg.total."},
                    "hostname": {"type": "string"}, "checkpoints": {"type": "integer"}, "received_at": {"type": "string"}, "updated_at": {"type": "string"}}},
                "Run": {"allOf": [{"$ref": "#/components/schemas/RunSummary"}], "properties": {"record": {"$ref": "#/components/schemas/RunRecord"}}},
                "RunList": {"type": "object", "properties": {"runs": {"type": "array", "items": {"$ref": "#/components/schemas/RunSummary"}}, "limit": {"type": "integer"}, "offset": {"type": "integer", "description": "Only with the offset parameter."}, "next_cursor": {"type": ["string", "null"], "description": "Pass it as `cursor` for the next page; null on the last (and with offset)."}}},
                "TotalsRow": {"type": "object", "properties": {"key": {"type": ["string", "null"]}, "team": {"type": "string", "description": "With group_by=project."}, "runs": {"type": "integer"}, "duration_s": {"type": "number"}, "energy_kwh": {"type": "number"}, "facility_kwh": {"type": "number"}, "emissions_kg": {"type": "number"}}},
                "Totals": {"type": "object", "properties": {"group_by": {"type": "string"}, "groups": {"type": "array", "items": {"$ref": "#/components/schemas/TotalsRow"}}, "total": {"$ref": "#/components/schemas/TotalsRow", "description": "Over every group, whichever page this is."}, "next_cursor": {"type": ["string", "null"]}}},
                "BudgetBody": {"type": "object", "required": ["kg_per_month"], "additionalProperties": false, "properties": {"team": {"type": "string", "description": "Required for organisation-wide tokens."}, "project": {"type": "string"}, "name": {"type": "string"}, "kg_per_month": {"type": "number", "minimum": 0}}},
                "Budget": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "team": {"type": "string"}, "project": {"type": ["string", "null"]}, "kg_per_month": {"type": "number"}, "month": {"type": "string"}, "used_kg": {"type": "number"}, "left_kg": {"type": "number"}, "created_at": {"type": "string"}, "updated_at": {"type": "string"}}},
                "BudgetList": {"type": "object", "properties": {"month": {"type": "string"}, "budgets": {"type": "array", "items": {"$ref": "#/components/schemas/Budget"}}, "next_cursor": {"type": ["string", "null"]}}},
                "Token": {"type": "object", "properties": {"id": {"type": "integer"}, "prefix": {"type": "string"}, "name": {"type": "string"}, "org": {"type": "string"}, "team": {"type": ["string", "null"]}, "project": {"type": ["string", "null"]}, "user": {"type": ["string", "null"]}, "role": {"type": "string", "enum": ["viewer", "member", "admin"]}, "created_at": {"type": "string"}, "last_used_at": {"type": ["string", "null"]}, "revoked_at": {"type": ["string", "null"]}}},
                "CreatedToken": {"allOf": [{"$ref": "#/components/schemas/Token"}], "properties": {"token": {"type": "string", "description": "The secret; shown only here."}}}
            }
        }
    });
    crate::openapi_agents::extend(&mut doc, common);
    crate::openapi_jobs::extend(&mut doc, common);
    doc
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn document_lists_exactly_the_routes() {
        let d = document();
        assert_eq!(d["openapi"], "3.1.0");
        let paths = d["paths"].as_object().unwrap();
        let mut listed = Vec::new();
        for (p, ops) in paths {
            for m in ops.as_object().unwrap().keys() {
                listed.push((m.clone(), p.clone()));
            }
        }
        let mut routes: Vec<(String, String)> = crate::app::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        listed.sort();
        routes.sort();
        assert_eq!(listed, routes);
        // Every $ref resolves.
        let text = d.to_string();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(
                d["components"]["schemas"].get(name).is_some(),
                "dangling $ref {name}"
            );
        }
    }
}
