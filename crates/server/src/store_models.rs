//! Models (the runs' `lineage.model`, a column since schema 4): the models visible in a scope,
//! paged, and one model's records. Written once; the statements run unchanged on SQLite and
//! PostgreSQL.

use crate::store::{Scope, Store};
use anyhow::Result;

/// Most runs of one model read to total it.
pub const MAX_MODEL_RUNS: i64 = 20_000;
/// Models per page of the dashboard's list.
pub const MODELS_PER_PAGE: i64 = 50;

/// A model and the runs stored for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub model: String,
    pub runs: i64,
    pub emissions_kg: f64,
}

impl Store {
    /// The models visible in `scope`, most emitting first, `limit` from `offset`.
    pub async fn models(&self, scope: &Scope, limit: i64, offset: i64) -> Result<Vec<ModelRow>> {
        let mut params = Vec::new();
        let filter = scope.sql("r", &mut params);
        params.push(limit.into());
        params.push(offset.into());
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT r.model, COUNT(*), COALESCE(SUM(r.emissions_kg), 0) FROM runs r \
                     WHERE r.model IS NOT NULL{filter} GROUP BY r.model \
                     ORDER BY COALESCE(SUM(r.emissions_kg), 0) DESC, r.model LIMIT ? OFFSET ?"
                ),
                params,
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ModelRow {
                    model: r.text(0)?,
                    runs: r.i64(1)?,
                    emissions_kg: r.f64(2)?,
                })
            })
            .collect()
    }

    /// Records (JSON text) of `model`'s runs visible in `scope`, oldest first, at most `limit`.
    pub async fn model_records(
        &self,
        scope: &Scope,
        model: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        let mut params = vec![model.into()];
        let filter = scope.sql("r", &mut params);
        params.push(limit.into());
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT r.record FROM runs r WHERE r.model = ?{filter} \
                     ORDER BY r.started_unix, r.pk LIMIT ?"
                ),
                params,
            )
            .await?;
        rows.iter().map(|r| r.text(0)).collect()
    }
}
