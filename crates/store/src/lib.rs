//! What wattprint keeps and shows: the local run store (SQLite, migrations, queries), the
//! interchange formats (CodeCarbon `emissions.csv`, CSV, JSON Lines), the reports (HTML,
//! Markdown, model card, JSON) and the text summaries. Synchronous; used by the CLI and the
//! measured session.

pub mod clock;
pub mod codecarbon_extra;
pub mod digest;
pub mod embodied_text;
pub mod interchange;
pub mod liveness;
pub mod model_footprint;
pub mod model_text;
pub mod pipeline_text;
pub mod report;
pub mod segments_text;
pub mod slurm_estimates;
pub mod store;
pub mod summary;
