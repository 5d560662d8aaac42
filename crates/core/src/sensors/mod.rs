//! Sensor implementations, one file per source.

pub mod cpu_model;
pub mod nvml;
pub mod ram_model;
pub mod rapl;
