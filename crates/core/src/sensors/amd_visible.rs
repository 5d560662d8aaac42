//! The AMD GPUs a job may use according to `ROCR_VISIBLE_DEVICES` and `HIP_VISIBLE_DEVICES`,
//! honoured as `CUDA_VISIBLE_DEVICES` is for NVIDIA GPUs (process scope charges the GPUs listed).
//!
//! ROCm applies `ROCR_VISIBLE_DEVICES` first (in the ROCm runtime), then `HIP_VISIBLE_DEVICES`
//! numbers the devices left (in HIP): `ROCR_VISIBLE_DEVICES=2,3 HIP_VISIBLE_DEVICES=1` is device
//! 3. An entry is an index (taken as the amdsmi / ROCm SMI index, which follows PCI order as
//! ROCm's enumeration does on the machines we know) or a UUID as the library reports it (with or
//! without a `GPU-` prefix; a prefix naming one GPU is enough). As with CUDA, an invalid entry
//! hides itself and every entry after it; the note says so. On a machine without NVIDIA GPUs,
//! `CUDA_VISIBLE_DEVICES` is taken as `HIP_VISIBLE_DEVICES` when the latter is unset: ROCm's HIP
//! documentation lists "HIP_VISIBLE_DEVICES or CUDA_VISIBLE_DEVICES" as the device indices
//! exposed to HIP applications.

/// Variable read by the ROCm runtime.
pub const ROCR_VAR: &str = "ROCR_VISIBLE_DEVICES";
/// Variable read by HIP.
pub const HIP_VAR: &str = "HIP_VISIBLE_DEVICES";

/// The result: the visible GPUs as library indices, in the order given, and notes on entries
/// ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmdVisible {
    pub indices: Vec<u32>,
    pub notes: Vec<String>,
}

/// Apply `rocr` then `hip` (either may be unset) to the machine's GPUs, given as `(library
/// index, UUID)`. `None` when neither variable is set (every GPU is visible, none is given).
pub fn visible(
    rocr: Option<&str>,
    hip: Option<&str>,
    gpus: &[(u32, String)],
) -> Option<AmdVisible> {
    if rocr.is_none() && hip.is_none() {
        return None;
    }
    let mut notes = Vec::new();
    let mut list: Vec<(u32, String)> = gpus.to_vec();
    if let Some(v) = rocr {
        let (ix, note) = parse(ROCR_VAR, v, &list);
        notes.extend(note);
        list = ix
            .into_iter()
            .filter_map(|k| gpus.iter().find(|(i, _)| *i == k).cloned())
            .collect();
    }
    if let Some(v) = hip {
        // HIP numbers the devices ROCr left, from 0.
        let renumbered: Vec<(u32, String)> = list
            .iter()
            .enumerate()
            .map(|(k, (_, u))| (k as u32, u.clone()))
            .collect();
        let (ix, note) = parse(HIP_VAR, v, &renumbered);
        notes.extend(note);
        list = ix
            .into_iter()
            .filter_map(|k| list.get(k as usize).cloned())
            .collect();
    }
    Some(AmdVisible {
        indices: list.into_iter().map(|(i, _)| i).collect(),
        notes,
    })
}

fn parse(var: &str, value: &str, gpus: &[(u32, String)]) -> (Vec<u32>, Option<String>) {
    let mut out: Vec<u32> = Vec::new();
    if value.trim().is_empty() {
        return (out, None);
    }
    for raw in value.split(',') {
        let entry = raw.trim();
        let found: Result<u32, String> = if entry.is_empty() {
            Err("empty entry".into())
        } else if entry.bytes().all(|b| b.is_ascii_digit()) {
            match entry.parse::<u32>() {
                Ok(i) if gpus.iter().any(|(g, _)| *g == i) => Ok(i),
                _ => Err(format!("no GPU with index {entry}")),
            }
        } else {
            let want = strip_gpu(entry).to_ascii_lowercase();
            let m: Vec<u32> = gpus
                .iter()
                .filter(|(_, u)| {
                    !u.is_empty() && strip_gpu(u).to_ascii_lowercase().starts_with(&want)
                })
                .map(|(i, _)| *i)
                .collect();
            match m.as_slice() {
                [i] => Ok(*i),
                [] => Err(format!("no GPU UUID matches {entry}")),
                _ => Err(format!("{entry} matches {} GPUs", m.len())),
            }
        };
        let why = match found {
            Ok(i) if out.contains(&i) => format!("GPU {i} appears twice"),
            Ok(i) => {
                out.push(i);
                continue;
            }
            Err(w) => w,
        };
        return (
            out,
            Some(format!(
                "{var} entry `{entry}` is invalid ({why}); it and every entry after it are \
                 ignored"
            )),
        );
    }
    (out, None)
}

fn strip_gpu(s: &str) -> &str {
    if s.len() >= 4 && s.is_char_boundary(4) && s[..4].eq_ignore_ascii_case("GPU-") {
        &s[4..]
    } else {
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn gpus() -> Vec<(u32, String)> {
        (0..4)
            .map(|i| (i, format!("GPU-{i}a0000000000000{i}")))
            .collect()
    }

    #[test]
    fn rocr_then_hip() {
        let g = gpus();
        assert_eq!(visible(None, None, &g), None);
        assert_eq!(visible(Some("2,3"), None, &g).unwrap().indices, vec![2, 3]);
        // HIP numbers what ROCr left
        assert_eq!(
            visible(Some("2,3"), Some("1"), &g).unwrap().indices,
            vec![3]
        );
        assert_eq!(visible(None, Some("0,2"), &g).unwrap().indices, vec![0, 2]);
        // UUIDs, with or without GPU-, and unique prefixes
        assert_eq!(
            visible(Some("GPU-1a00,3a"), None, &g).unwrap().indices,
            vec![1, 3]
        );
        // invalid entries stop the list, with a note naming the variable
        let v = visible(Some("1,9,0"), None, &g).unwrap();
        assert_eq!(v.indices, vec![1]);
        assert!(
            v.notes[0].contains("ROCR_VISIBLE_DEVICES entry `9`"),
            "{:?}",
            v.notes
        );
        let v = visible(Some("0,1"), Some("2"), &g).unwrap();
        assert_eq!(v.indices, Vec::<u32>::new());
        assert!(v.notes[0].contains("HIP_VISIBLE_DEVICES"), "{:?}", v.notes);
        // empty: none visible
        assert_eq!(
            visible(Some(""), None, &g).unwrap().indices,
            Vec::<u32>::new()
        );
        let v = visible(Some("0,0"), None, &g).unwrap();
        assert_eq!(v.indices, vec![0]);
        assert!(v.notes[0].contains("twice"));
    }
}
