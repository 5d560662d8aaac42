//! wattprint's central server: a versioned JSON API (`/api/v1`) for runs, samples, totals and
//! budgets, accounts and hashed API tokens, on SQLite or PostgreSQL with the same migrations.
//!
//! Entry points: [`app::serve`] (async) and [`app::run_blocking`] for `wattprint serve`;
//! [`admin`] for `wattprint admin …` (works on the database directly, for bootstrap).
//! See docs/server.md.

#![recursion_limit = "256"]

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod conn;
pub mod dashboard;
pub mod db;
pub mod derived;
pub mod group_commit;
pub mod limits;
pub mod openapi;
pub mod openapi_agents;
pub mod openapi_jobs;
pub mod retention;
pub mod store;
pub mod store_agents;
pub mod store_deletions;
pub mod store_jobs;
pub mod store_models;
pub mod store_pages;
pub mod store_rollups;
pub mod store_samples;
#[doc(hidden)]
pub mod testing;
pub mod token_cache;
pub mod totals_window;

pub use app::{router, serve, Config};

/// Now as RFC 3339 UTC with millisecond precision (fixed width, so text order is time order).
pub fn now_rfc3339() -> String {
    format_rfc3339(time::OffsetDateTime::now_utc())
}

/// RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
