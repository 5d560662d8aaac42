//! The OpenAPI description of the agent and policy routes (`/policy`, `/nodes…`), merged into
//! the document of [`crate::openapi`].

use serde_json::{json, Value};

fn err(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ok(desc: &str, schema: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

/// Add the paths and schemas; `common` adds the answers every authenticated route shares.
pub fn extend(doc: &mut Value, common: impl Fn(Value) -> Value) {
    let q = |name: &str, desc: &str| json!({"name": name, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}});
    let paths = json!({
        "/policy": {
            "get": common(json!({
                "summary": "The run policy in force for the token's team, with the month's budgets",
                "description": "The effective policy is the stricter, field by field, of the organisation's default and the team's own (the lower limit; `stop` over `warn`). `wattprint run --server` applies it as institution limits. Any role.",
                "parameters": [
                    q("team", "Organisation-wide tokens: the team (else the organisation's default). Team tokens may only name their own team (else 404)."),
                    q("project", "A project of the team, to include its budget.")
                ],
                "responses": {
                    "200": ok("The policy.", "PolicyAnswer"),
                    "400": err("Invalid query string."),
                    "404": err("No such team visible to this token.")
                }
            })),
            "put": common(json!({
                "summary": "Replace the policy of the token's team (or, organisation token, of the organisation or a named team)",
                "description": "Fields left out are cleared; `{}` removes the policy at that level. Admin; not with project tokens.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PolicyBody"}}}},
                "responses": {
                    "200": ok("The policy now in force.", "PolicyAnswer"),
                    "400": err("Malformed JSON."),
                    "403": err("Not an admin, or a project token."),
                    "404": err("No such team visible to this token."),
                    "413": err("Body too large."),
                    "415": err("Not JSON."),
                    "422": err("Invalid field, named in the message.")
                }
            }))
        },
        "/nodes/{node}/energy": {
            "post": common(json!({
                "summary": "Report a node agent's cumulative energy per hour window and device",
                "description": "Idempotent: for each (node, agent instance, window, device) the server keeps the largest figures received, so retries and replays never double count. Member or admin, team or project token.",
                "parameters": [{"name": "node", "in": "path", "required": true, "description": "The node's name (1-200 characters).", "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NodeEnergyBody"}}}},
                "responses": {
                    "200": ok("Stored; `changed` counts the rows created or raised.", "NodeEnergyResult"),
                    "400": err("Malformed JSON."),
                    "403": err("Viewer or organisation-wide token."),
                    "413": err("Body too large."),
                    "415": err("Not JSON."),
                    "422": err("Invalid field, named in the message.")
                }
            }))
        },
        "/nodes": {
            "get": common(json!({
                "summary": "Energy and emissions per node and device, from the agents' reports, a page of nodes at a time (by team, then node)",
                "parameters": [
                    q("team", "Only this team's nodes."),
                    q("node", "Only this node."),
                    q("since", "Windows starting at or after: RFC 3339 or YYYY-MM-DD (UTC)."),
                    q("until", "Windows starting before: RFC 3339 or YYYY-MM-DD (UTC)."),
                    {"name": "limit", "in": "query", "required": false, "description": "Nodes per page.", "schema": {"type": "integer", "minimum": 1, "maximum": crate::api::nodes::MAX_NODES_PAGE, "default": 100}},
                    q("cursor", "The previous page's `next_cursor`, as it is (opaque).")
                ],
                "responses": {
                    "200": ok("Totals per node.", "NodeList"),
                    "400": err("Invalid query string.")
                }
            }))
        }
    });
    let schemas = json!({
        "Policy": {"type": "object", "properties": {
            "max_duration_s": {"type": ["number", "null"]},
            "budget_kwh_per_run": {"type": ["number", "null"]},
            "budget_kg_per_run": {"type": ["number", "null"]},
            "budget_action": {"type": ["string", "null"], "enum": ["stop", "warn", null]},
            "updated_at": {"type": "string"}}},
        "PolicyBody": {"type": "object", "additionalProperties": false, "properties": {
            "team": {"type": "string", "description": "Organisation-wide tokens only."},
            "max_duration": {"type": "string", "description": "e.g. \"72h\", \"90m\", \"1s\"."},
            "budget_kwh_per_run": {"type": "number", "exclusiveMinimum": 0},
            "budget_kg_per_run": {"type": "number", "exclusiveMinimum": 0},
            "budget_action": {"type": "string", "enum": ["stop", "warn"]}}},
        "PolicyAnswer": {"type": "object", "properties": {
            "org": {"type": "string"}, "team": {"type": ["string", "null"]}, "month": {"type": "string"},
            "policy": {"$ref": "#/components/schemas/Policy"},
            "org_policy": {"oneOf": [{"$ref": "#/components/schemas/Policy"}, {"type": "null"}]},
            "team_policy": {"oneOf": [{"$ref": "#/components/schemas/Policy"}, {"type": "null"}]},
            "budgets": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "team": {"type": "string"}, "project": {"type": ["string", "null"]},
                "month": {"type": "string"}, "kg_per_month": {"type": "number"}, "used_kg": {"type": ["number", "null"], "description": "Null for the team budget when the token is a project token (the team's use includes other projects' runs)."},
                "left_kg": {"type": ["number", "null"]}, "exhausted": {"type": "boolean"}}}}}},
        "NodeEnergyBody": {"type": "object", "required": ["agent", "windows"], "additionalProperties": false, "properties": {
            "agent": {"type": "string", "description": "Id of the agent instance (new at each start)."},
            "windows": {"type": "array", "items": {"type": "object", "required": ["start", "devices"], "properties": {
                "start": {"type": "string", "description": "Window start, RFC 3339."},
                "devices": {"type": "array", "items": {"type": "object", "required": ["device_id", "kind", "joules"], "properties": {
                    "device_id": {"type": "string"}, "kind": {"type": "string", "description": "cpu, gpu, ram; or `unattributed` (device id `unattributed`): the part of the devices' energy no run on the node was charged, kept out of the node's total."},
                    "joules": {"type": "number", "minimum": 0, "description": "Cumulative within the window."},
                    "emissions_g": {"type": "number", "minimum": 0}}}}}}}}},
        "NodeEnergyResult": {"type": "object", "properties": {"node": {"type": "string"}, "agent": {"type": "string"}, "entries": {"type": "integer"}, "changed": {"type": "integer"}}},
        "NodeList": {"type": "object", "properties": {
            "nodes": {"type": "array", "items": {"type": "object", "properties": {
                "team": {"type": "string"}, "node": {"type": "string"}, "joules": {"type": "number"}, "kwh": {"type": "number"},
                "emissions_kg": {"type": "number"}, "agents": {"type": "integer"}, "first_window": {"type": "string"},
                "last_window": {"type": "string"}, "last_update": {"type": "string"},
                "unattributed_joules": {"type": "number", "description": "Part of `joules` no run on the node was charged (host ledger); absent when the agent reported none."},
                "devices": {"type": "array", "items": {"type": "object", "properties": {
                    "device_id": {"type": "string"}, "kind": {"type": "string"}, "joules": {"type": "number"}, "emissions_g": {"type": "number"}}}}}}},
            "total": {"type": "object", "description": "Over every matching node, whichever page this is.", "properties": {"joules": {"type": "number"}, "kwh": {"type": "number"}, "emissions_kg": {"type": "number"}}},
            "next_cursor": {"type": ["string", "null"]}}}
    });
    if let (Some(Value::Object(p)), Value::Object(add)) = (doc.get_mut("paths"), paths) {
        p.extend(add);
    }
    if let (Some(Value::Object(s)), Value::Object(add)) = (
        doc.get_mut("components").and_then(|c| c.get_mut("schemas")),
        schemas,
    ) {
        s.extend(add);
    }
}
