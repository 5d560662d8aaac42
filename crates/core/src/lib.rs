//! wattprint core: units, sensors, sampling, factors, accounting and estimation.
//! No async runtime lives here.

pub mod accounting;
pub mod attribution;
pub mod cloud_metadata;
pub mod counter;
pub mod cpu_table;
pub mod cpuinfo;
pub mod discovery;
pub mod env;
pub mod estimate;
pub mod factors;
pub mod format;
pub mod host;
pub mod host_ledger;
pub mod io;
pub mod job;
pub mod limits;
pub mod lineage;
pub mod location;
pub mod model_footprint;
pub mod prediction;
pub mod procfs;
pub mod profiles;
pub mod providers;
pub mod record;
pub mod sampler;
pub mod segments;
pub mod sensor;
pub mod sensors;
pub mod storage;
pub mod svg;
pub mod units;
pub mod validate;
pub mod waste;
