//! Health, identity and the OpenAPI document.

use super::ApiError;
use crate::app::AppState;
use crate::auth::Auth;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

/// `GET /api/v1/health` answer.
#[derive(serde::Serialize)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    pub database: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'static str>,
}

/// `GET /api/v1/health` (no token): the server and its database answer.
pub async fn health(State(st): State<AppState>) -> (StatusCode, Json<Health>) {
    let database = st.store.db.dialect().as_str();
    match crate::db::migrations::current_version(st.store.db.as_ref()).await {
        Ok(v) => (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                database,
                schema_version: Some(v),
                version: Some(env!("CARGO_PKG_VERSION")),
            }),
        ),
        Err(e) => {
            eprintln!("wattprint serve: health check: {e:#}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unavailable",
                    database,
                    schema_version: None,
                    version: None,
                }),
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
