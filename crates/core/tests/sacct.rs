#![allow(clippy::unwrap_used)]
//! The sacct -P reader: each format Slurm writes, bounds, malformed lines, and that it ends and
//! never panics on any input.

use proptest::prelude::*;
use wattprint_core::sacct::{
    parse_duration, parse_job_id, parse_memory, parse_tres, Item, Job, MemoryPer, Outcome, Reader,
    SlurmDuration, Step,
};

fn read(text: &str) -> (Vec<Job>, Vec<(usize, String)>) {
    let mut jobs = Vec::new();
    let mut bad = Vec::new();
    for i in Reader::new(text.as_bytes()) {
        match i.unwrap() {
            Item::Job(j) => jobs.push(*j),
            Item::Malformed(m) => bad.push((m.line, m.reason)),
        }
    }
    (jobs, bad)
}

#[test]
fn durations_as_slurm_writes_them() {
    let s = |x: &str| parse_duration(x).unwrap().seconds().unwrap();
    assert_eq!(s("00:00:00"), 0.0);
    assert_eq!(s("03:00:30"), 10_830.0);
    assert_eq!(s("30:00"), 1800.0);
    assert!((s("00:05.250") - 5.25).abs() < 1e-9);
    assert_eq!(s("4-00:16:00"), 4.0 * 86_400.0 + 960.0);
    assert_eq!(s("1-02"), 86_400.0 + 7200.0);
    assert_eq!(s("1-02:03"), 86_400.0 + 7200.0 + 180.0);
    assert_eq!(s("45"), 45.0);
    assert_eq!(
        parse_duration("UNLIMITED").unwrap(),
        SlurmDuration::Unlimited
    );
    assert_eq!(parse_duration("INVALID").unwrap(), SlurmDuration::Invalid);
    assert!(parse_duration("366-00:00:00").is_ok());
    assert!(parse_duration("366-00:00:01")
        .unwrap_err()
        .contains("366 days"));
    for bad in [
        "",
        "1:2:3:4",
        "00:61",
        "1-25:00:00",
        "abc",
        "-1",
        "1.5.5",
        "99999999999999:00",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn memory_strings_per_job_core_node() {
    let m = parse_memory("500M", b'M').unwrap();
    assert_eq!((m.bytes, m.per), (500.0 * 1048576.0, MemoryPer::Job));
    assert!((m.ga_gb - 0.5).abs() < 1e-12);
    let m = parse_memory("6760Mc", b'M').unwrap();
    assert_eq!(m.per, MemoryPer::Core);
    assert!((m.ga_gb - 6.76).abs() < 1e-12);
    let m = parse_memory("250Gn", b'M').unwrap();
    assert_eq!(
        (m.bytes, m.per, m.ga_gb),
        (250.0 * 1073741824.0, MemoryPer::Node, 250.0)
    );
    assert_eq!(
        parse_memory("2T", b'M').unwrap().bytes,
        2.0 * 1024f64.powi(4)
    );
    assert_eq!(parse_memory("1234K", b'K').unwrap().bytes, 1234.0 * 1024.0);
    // Without a suffix: the field's unit (ReqMem M, MaxRSS K).
    assert_eq!(
        parse_memory("4000", b'M').unwrap().bytes,
        4000.0 * 1048576.0
    );
    assert_eq!(parse_memory("4000c", b'M').unwrap().per, MemoryPer::Core);
    assert_eq!(parse_memory("0", b'K').unwrap().bytes, 0.0);
    for bad in ["", "M", "12X", "-5M", "1e3M", "9999999P", "c", "n"] {
        assert!(parse_memory(bad, b'M').is_err(), "{bad}");
    }
}

#[test]
fn alloc_tres_counts_and_gpus() {
    let t = parse_tres("cpu=4,mem=16G,node=1,billing=4,gres/gpu=2,gres/gpu:a100=2").unwrap();
    assert_eq!((t.cpus, t.nodes, t.gpus), (Some(4), Some(1), Some(2)));
    assert_eq!(t.memory_bytes, Some(16.0 * 1073741824.0));
    assert_eq!(t.gpu_types, vec!["a100".to_string()]);
    // Typed counts only: their sum.
    let t = parse_tres("cpu=8,gres/gpu:a100=2,gres/gpu:v100=1").unwrap();
    assert_eq!(t.gpus, Some(3));
    assert_eq!(parse_tres("").unwrap().gpus, None);
    assert!(parse_tres("cpu=99999999999").is_err());
    assert!(parse_tres("gres/gpu=2000000").is_err());
    assert!(parse_tres("cpu").is_err());
}

#[test]
fn job_ids_steps_arrays_het() {
    let j = parse_job_id("123").unwrap();
    assert_eq!((j.job.as_str(), j.base, j.step), ("123", 123, None));
    assert_eq!(parse_job_id("123.batch").unwrap().step, Some(Step::Batch));
    assert_eq!(parse_job_id("123.extern").unwrap().step, Some(Step::Extern));
    assert_eq!(parse_job_id("123.0").unwrap().step, Some(Step::Numbered(0)));
    let a = parse_job_id("123_4.0").unwrap();
    assert_eq!(
        (a.job.as_str(), a.array_task, a.step),
        ("123_4", Some(4), Some(Step::Numbered(0)))
    );
    let r = parse_job_id("123_[1-9%2]").unwrap();
    assert!(r.array_range && r.array_task.is_none() && r.step.is_none());
    let h = parse_job_id("123+1.batch").unwrap();
    assert_eq!(
        (h.job.as_str(), h.het_component, h.step),
        ("123+1", Some(1), Some(Step::Batch))
    );
    for bad in ["", "abc", "123_", "123_[x]", "123+", "12.3.4/", "123_[1-9"] {
        assert!(parse_job_id(bad).is_err(), "{bad}");
    }
}

#[test]
fn states_as_outcomes() {
    assert_eq!(Outcome::from_state("COMPLETED"), Outcome::Completed);
    assert_eq!(Outcome::from_state("CANCELLED by 1002"), Outcome::Cancelled);
    assert_eq!(Outcome::from_state("OUT_OF_MEMORY"), Outcome::OutOfMemory);
    assert_eq!(Outcome::from_state("TIMEOUT"), Outcome::Timeout);
    assert_eq!(Outcome::from_state("NODE_FAIL"), Outcome::Ended);
    assert_eq!(Outcome::from_state("PENDING"), Outcome::Unfinished);
    assert!(Outcome::from_state("FAILED").is_waste());
    assert!(!Outcome::from_state("RUNNING").is_waste());
}

const HEAD: &str = "JobID|JobIDRaw|User|State|Elapsed|NNodes|NCPUS|TotalCPU|CPUTime|ReqMem|MaxRSS|AllocTRES|ConsumedEnergyRaw\n";

#[test]
fn steps_fold_into_their_job() {
    let text = format!(
        "{HEAD}\
77|77|u|COMPLETED|01:00:00|2|8|02:00:00|08:00:00|2Gn||cpu=8,node=2,gres/gpu=2|\n\
77.batch|77.batch||COMPLETED|01:00:00|1|4|01:00:00|04:00:00||1G|cpu=4|3600000\n\
77.extern|77.extern||COMPLETED|01:00:00|2|8|00:00:00|08:00:00||0|cpu=8|\n\
77.0|77.0||COMPLETED|00:30:00|2|8|01:00:00|04:00:00||3G|cpu=8|7200000\n\
77.3|77.3||COMPLETED|00:30:00|2|8|00:00:00|04:00:00||512M|cpu=8|\n"
    );
    let (jobs, bad) = read(&text);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(jobs.len(), 1);
    let j = &jobs[0];
    assert_eq!((j.ncpus, j.nodes, j.gpus), (8, 2, 2));
    assert_eq!(j.req_mem_bytes, Some(4.0 * 1073741824.0)); // 2G per node × 2
    assert_eq!(j.max_rss_bytes, Some(3.0 * 1073741824.0)); // the largest step
    assert_eq!(j.cpu_used_s, 7200.0);
    assert!(!j.cpu_from_cputime);
    assert_eq!(j.consumed_energy_j, Some(7_200_000.0));
    assert!(j.has_batch);
    assert_eq!(
        j.keys().unwrap(),
        vec!["slurm:77", "slurm:77.0", "slurm:77.3"]
    );
}

#[test]
fn total_cpu_zero_falls_back_to_cputime_and_per_core_memory() {
    let text = format!("{HEAD}5|5|u|FAILED|02:00:00|1|4|00:00:00|08:00:00|1000Mc|||\n");
    let (jobs, _) = read(&text);
    let j = &jobs[0];
    assert!(j.cpu_from_cputime);
    assert_eq!(j.cpu_used_s, 8.0 * 3600.0);
    assert_eq!(j.req_mem_bytes, Some(4000.0 * 1048576.0));
    assert_eq!(j.req_mem_ga_gb, Some(4.0));
    assert_eq!(j.outcome, Outcome::Failed);
}

#[test]
fn array_and_het_jobs_keys() {
    let text = format!(
        "{HEAD}10_3|13|u|COMPLETED|00:01:00|1|1|00:30|01:00|1G|||\n\
10_3.batch|13.batch||COMPLETED|00:01:00|1|1|00:30|01:00||10M||\n\
20+1|21|u|COMPLETED|00:01:00|1|1|00:30|01:00|1G|||\n"
    );
    let (jobs, bad) = read(&text);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(jobs[0].job, "10_3");
    assert_eq!(jobs[0].keys().unwrap(), vec!["slurm:13"]);
    assert_eq!(jobs[1].keys().unwrap(), vec!["slurm:21"]);
    // Without JobIDRaw an array task's SLURM_JOB_ID is unknown: no key.
    let h = "JobID|Elapsed|NCPUS|State\n10_3|00:01:00|1|COMPLETED\n";
    assert_eq!(read(h).0[0].keys(), None);
}

#[test]
fn malformed_lines_are_reported_with_their_number_and_skipped() {
    let text = format!(
        "{HEAD}1|1|u|COMPLETED|00:01:00|1|1|00:30|01:00|1G|||\n\
broken|line\n\
2|2|u|COMPLETED|00:01:00|1|99999999999|00:30|01:00|1G|||\n\
3|3|u|COMPLETED|00:01:00|1|1|00:30|01:00|1Q|||\n\
9.batch|9.batch||COMPLETED|00:01:00|1|1|00:30|01:00||1G||\n\
4|4|u|COMPLETED|00:01:00|1|1|00:30|01:00|1G|||99999999999999999\n\
5|5|u|COMPLETED|00:01:00|1|1|00:30|01:00|1G|||\n"
    );
    let (jobs, bad) = read(&text);
    assert_eq!(
        jobs.iter().map(|j| j.job.as_str()).collect::<Vec<_>>(),
        ["1", "5"]
    );
    assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [3, 4, 5, 6, 7]);
    assert!(bad[0].1.contains("fields"), "{}", bad[0].1);
    assert!(bad[1].1.contains("NCPUS"), "{}", bad[1].1);
}

#[test]
fn a_missing_header_column_is_said_once() {
    let (jobs, bad) = read("JobID|User\n1|u\n2|u\n");
    assert!(jobs.is_empty());
    assert_eq!(bad.len(), 1);
    assert!(bad[0].1.contains("Elapsed"), "{}", bad[0].1);
    let (_, bad) = read("");
    assert!(bad[0].1.contains("no input"));
}

#[test]
fn a_huge_line_is_cut_and_reported() {
    let long = "x".repeat(200_000);
    let text = format!("{HEAD}{long}\n1|1|u|COMPLETED|00:01:00|1|1|00:30|01:00|1G|||\n");
    let (jobs, bad) = read(&text);
    assert_eq!(jobs.len(), 1);
    assert_eq!(bad[0].0, 2);
    assert!(bad[0].1.contains("longer than"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn reader_ends_and_never_panics(body in proptest::collection::vec(
        prop_oneof![
            Just("1|1|u|COMPLETED|00:01:00|1|1|00:30|01:00|1G|||".to_string()),
            Just("1.batch|1.batch||COMPLETED|00:01:00|1|1|00:30|01:00||1G||".to_string()),
            "[0-9a-zA-Z_.+\\[\\]|:=,-]{0,80}",
            any::<String>(),
        ], 0..20)) {
        let text = format!("{HEAD}{}", body.join("\n"));
        let mut n = 0;
        for i in Reader::new(text.as_bytes()) {
            let _ = i.unwrap();
            n += 1;
            prop_assert!(n <= body.len() + 2);
        }
    }

    #[test]
    fn field_parsers_never_panic(s in any::<String>(), t in "[0-9:.\\-]{0,20}", m in "[0-9.]{0,12}[KMGTPcn]{0,2}") {
        let _ = parse_duration(&s);
        if let Ok(SlurmDuration::Seconds(x)) = parse_duration(&t) {
            prop_assert!((0.0..=366.0 * 86_400.0).contains(&x));
        }
        let _ = parse_memory(&s, b'M');
        if let Ok(x) = parse_memory(&m, b'M') {
            prop_assert!(x.bytes.is_finite() && x.bytes >= 0.0);
        }
        let _ = parse_tres(&s);
        let _ = parse_job_id(&s);
        let _ = Outcome::from_state(&s);
    }
}
