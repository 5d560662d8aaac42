#![allow(clippy::unwrap_used)]
//! The deployment files in deploy/ agree with the binary and with themselves: every flag they
//! pass exists, the DaemonSet mounts the host's /sys and /proc where it tells the agent to read
//! them, its metrics port is the one Prometheus is told to scrape, the token comes from a
//! Secret; the systemd unit is hardened and can write only its state directory.

mod common;

use std::path::PathBuf;
use yaml_rust2::YamlLoader;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn agent_help() -> String {
    let out = std::process::Command::new(common::bin())
        .args(["agent", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn check_flags(args: &[String], help: &str) {
    for a in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            help.contains(a.as_str()),
            "`wattprint agent` has no flag {a}"
        );
    }
}

#[test]
fn the_daemonset_mounts_what_it_reads_and_exposes_what_it_announces() {
    let text =
        std::fs::read_to_string(repo().join("deploy/kubernetes/wattprint-agent.yaml")).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let ds = &docs[0];
    assert_eq!(ds["kind"].as_str(), Some("DaemonSet"));
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"].as_bool(), Some(true));
    let c = &pod["containers"][0];
    let args: Vec<String> = c["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(args[0], "agent");
    check_flags(&args, &agent_help());
    let metrics = &args[args.iter().position(|a| a == "--metrics").unwrap() + 1];
    let port: i64 = metrics.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(c["ports"][0]["containerPort"].as_i64(), Some(port));
    let ann = &ds["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(
        ann["prometheus.io/port"].as_str(),
        Some(port.to_string().as_str())
    );
    assert_eq!(ann["prometheus.io/path"].as_str(), Some("/metrics"));
    // Env var → where it points; mounts → which host path.
    let env = |name: &str| {
        c["env"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|e| e["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no env {name}"))
            .clone()
    };
    let mount_of = |host: &str| -> (String, bool) {
        let vol = pod["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|v| v["hostPath"]["path"].as_str() == Some(host))
            .unwrap_or_else(|| panic!("no hostPath volume for {host}"));
        let m = c["volumeMounts"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|m| m["name"] == vol["name"])
            .unwrap();
        (
            m["mountPath"].as_str().unwrap().to_string(),
            m["readOnly"].as_bool() == Some(true),
        )
    };
    for (var, host) in [
        ("WATTPRINT_SYSFS_ROOT", "/sys"),
        ("WATTPRINT_PROCFS_ROOT", "/proc"),
    ] {
        let (path, ro) = mount_of(host);
        assert_eq!(env(var)["value"].as_str(), Some(path.as_str()), "{var}");
        assert!(ro, "{host} is mounted read-only");
    }
    let (spool, ro) = mount_of("/var/lib/wattprint-agent");
    assert_eq!(
        env("WATTPRINT_HOME")["value"].as_str(),
        Some(spool.as_str())
    );
    assert!(!ro, "the spool is writable");
    let tok = env("WATTPRINT_TOKEN");
    assert!(tok["valueFrom"]["secretKeyRef"]["name"].as_str().is_some());
    assert!(tok["value"].is_badvalue(), "the token never inline");
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["capabilities"]["drop"][0].as_str(), Some("ALL"));
}

#[test]
fn the_systemd_unit_is_hardened_and_runs_a_real_command() {
    let text = std::fs::read_to_string(repo().join("deploy/wattprint-agent.service")).unwrap();
    let get = |k: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_string)
            .collect()
    };
    let exec = get("ExecStart");
    assert_eq!(exec.len(), 1);
    let words: Vec<String> = exec[0].split_whitespace().map(str::to_string).collect();
    assert!(
        words[0].ends_with("/wattprint") && words[1] == "agent",
        "{words:?}"
    );
    check_flags(&words[2..], &agent_help());
    assert_eq!(get("EnvironmentFile"), ["/etc/wattprint/agent.env"]);
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectKernelModules", "yes"),
        ("KillSignal", "SIGTERM"),
        ("StateDirectory", "wattprint-agent"),
    ] {
        assert_eq!(get(k), [v], "{k}");
    }
    let home = get("Environment")
        .into_iter()
        .find_map(|e| e.strip_prefix("WATTPRINT_HOME=").map(str::to_string))
        .unwrap();
    assert_eq!(get("ReadWritePaths"), std::slice::from_ref(&home));
    assert_eq!(home, "/var/lib/wattprint-agent", "StateDirectory's path");
    assert!(get("CapabilityBoundingSet")[0].contains("CAP_DAC_READ_SEARCH"));
}
