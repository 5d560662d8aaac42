//! wattprint core: units, sensors, sampling, factors, accounting and estimation.
//! No async runtime lives here.

pub mod counter;
pub mod host;
pub mod sensor;
pub mod units;
