//! How one GPU's energy is divided among the runs that hold it: the host ledger's GPU rule
//! (used by [`crate::host_ledger::split_interval`]; docs/methodology.md, "Sharing a machine").
//!
//! - A run that holds the card through **MIG instances** weighs its instances' share of the
//!   card (GPU-instance slices over the card's slices): NVML measures energy per card only, so
//!   slices are the split. (A card in MIG mode runs no process outside an instance.)
//! - Otherwise, when NVML gave **per-process utilisation** for the card and some holder's
//!   processes used it, each holder weighs the SM utilisation (%) of its processes over the
//!   interval: the card's dynamic energy follows use.
//! - Otherwise each holder weighs 1: the card is split evenly among its holders.
//!
//! The static part of a card (idle power × time) is split by holding, never by use.

/// One participant's relation to one GPU over an interval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Holder {
    /// It holds the GPU (given it, or one of its processes runs on it).
    pub holds: bool,
    /// SM utilisation (%) of its processes on the GPU, when NVML gave samples.
    pub util: Option<f64>,
    /// Its MIG instances' share of the card, when it holds the card through MIG.
    pub share: Option<f64>,
}

/// A MIG share or a utilisation read from outside, kept only when possible.
fn clean(x: Option<f64>, max: f64) -> Option<f64> {
    x.filter(|v| v.is_finite() && *v >= 0.0).map(|v| v.min(max))
}

/// Each participant's weight on the GPU (0 for those not holding it).
pub fn weights(holders: &[Holder]) -> Vec<f64> {
    let by_use = holders
        .iter()
        .any(|h| h.holds && clean(h.share, 1.0).is_none() && clean(h.util, 100.0) > Some(0.0));
    holders
        .iter()
        .map(|h| {
            if !h.holds {
                0.0
            } else if let Some(s) = clean(h.share, 1.0) {
                s
            } else if by_use {
                // A holder's processes may use up to 100 % of the card each; a run with several
                // processes sums them.
                clean(h.util, 100.0 * 1024.0).unwrap_or(0.0)
            } else {
                1.0
            }
        })
        .collect()
}

/// A process-scope participant's own fraction of the GPU's energy: its MIG share, else its
/// weight over the weights of every holder.
pub fn own_fraction(holders: &[Holder], i: usize) -> f64 {
    let Some(h) = holders.get(i) else { return 0.0 };
    if !h.holds {
        return 0.0;
    }
    if let Some(s) = clean(h.share, 1.0) {
        return s;
    }
    let w = weights(holders);
    let total: f64 = w.iter().sum();
    if total > 0.0 {
        (w[i] / total).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(holds: bool, util: Option<f64>, share: Option<f64>) -> Holder {
        Holder { holds, util, share }
    }

    #[test]
    fn mig_share_then_use_then_even() {
        // evenly without samples
        assert_eq!(
            weights(&[
                h(true, None, None),
                h(true, None, None),
                h(false, None, None)
            ]),
            vec![1.0, 1.0, 0.0]
        );
        // by utilisation when a holder used the card; an idle holder weighs 0
        assert_eq!(
            weights(&[
                h(true, Some(60.0), None),
                h(true, Some(20.0), None),
                h(true, None, None)
            ]),
            vec![60.0, 20.0, 0.0]
        );
        assert!(
            (own_fraction(&[h(true, Some(60.0), None), h(true, Some(20.0), None)], 0) - 0.75).abs()
                < 1e-12
        );
        // samples all at zero: evenly
        assert_eq!(
            weights(&[h(true, Some(0.0), None), h(true, Some(0.0), None)]),
            vec![1.0, 1.0]
        );
        // MIG: the share of the card, whatever the others
        assert_eq!(
            weights(&[
                h(true, None, Some(1.0 / 7.0)),
                h(true, None, Some(2.0 / 7.0))
            ]),
            vec![1.0 / 7.0, 2.0 / 7.0]
        );
        assert!((own_fraction(&[h(true, None, Some(2.0 / 7.0))], 0) - 2.0 / 7.0).abs() < 1e-12);
        // values from other participants' files are bounded
        assert_eq!(
            weights(&[h(true, None, Some(f64::NAN)), h(true, None, Some(5.0))]),
            vec![1.0, 1.0]
        );
        assert_eq!(own_fraction(&[h(true, Some(f64::INFINITY), None)], 0), 1.0);
        assert_eq!(own_fraction(&[h(false, Some(50.0), None)], 0), 0.0);
        assert_eq!(own_fraction(&[], 3), 0.0);
    }
}
