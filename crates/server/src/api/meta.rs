//! Health, identity and the OpenAPI document.

use super::ApiError;
use crate::app::AppState;
use crate::auth::Auth;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

/// `GET /api/v1/health` (no token): the server and its database answer.
pub async fn health(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    match crate::db::migrations::current_version(st.store.db.as_ref()).await {
        Ok(v) => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "database": st.store.db.dialect().as_str(),
                "schema_version": v,
                "version": env!("CARGO_PKG_VERSION"),
            })),
        ),
        Err(e) => {
            eprintln!("wattprint serve: health check: {e:#}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": st.store.db.dialect().as_str()})),
            )
        }
    }
}

/// `GET /api/v1/me` answer.
#[derive(serde::Serialize)]
pub struct Me {
    pub token: crate::store::TokenRecord,
}

/// `GET /api/v1/me`: what the token is and may do.
pub async fn me(auth: Auth) -> Result<Json<Me>, ApiError> {
    Ok(Json(Me { token: auth.token }))
}

/// `GET /api/v1/openapi.json` (no token).
pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
