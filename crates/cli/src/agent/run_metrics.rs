//! The agent's per-run metrics from the host ledger it reads the counters for:
//! `wattprint_run_energy_joules_total{run,job,scope}`, one series per run present on the node
//! (at most the ledger's participant limit; a finished run drops out at the next reading), and
//! `wattprint_unattributed_energy_joules_total`, the energy no run was charged.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use wattprint_core::host_ledger::HostLedger;

pub fn encode(
    enc: &mut DescriptorEncoder,
    ledger: Option<&HostLedger>,
) -> Result<(), std::fmt::Error> {
    let Some(l) = ledger else { return Ok(()) };
    let (runs, unattributed) = l.runs();
    let mut m = enc.encode_descriptor(
        "wattprint_run_energy_joules",
        "Energy the host ledger charged to each wattprint run present on the node, joules (a finished run's series ends)",
        None,
        MetricType::Counter,
    )?;
    for r in &runs {
        let labels = [
            ("run", r.run.as_str()),
            ("job", r.job.as_deref().unwrap_or("")),
            ("scope", r.scope.as_str()),
        ];
        ConstCounter::new(r.joules).encode(m.encode_family(&labels)?)?;
    }
    let m = enc.encode_descriptor(
        "wattprint_unattributed_energy_joules",
        "Energy of the node no run was charged since the ledger began (process-scope runs and idle time), joules",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(unattributed).encode(m)
}
