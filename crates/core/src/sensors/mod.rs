//! Sensor implementations, one file per source.

pub mod amd_visible;
pub mod amdsmi;
pub mod amdsmi_process;
pub mod cpu_model;
pub mod gpu_track;
pub mod level_zero;
pub mod nvml;
pub mod ram_model;
pub mod rapl;
pub mod rocm_smi;
pub mod vendor_library;
