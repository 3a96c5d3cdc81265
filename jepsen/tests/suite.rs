//! The short fault-injection suite against a real five-node `ticketd`
//! cluster (CI runs it on every change): three nemesis mixes of 60 s each
//! must be valid, and every planted bug must be caught.
//!
//! `JEPSEN_TIME_LIMIT` (seconds) overrides the 60 s of each mix; longer
//! and repeated runs are the `jepsen` binary's `--time-limit` and `--runs`.

use std::path::PathBuf;
use std::sync::Mutex;

use jepsen::cluster::NetMode;
use jepsen::nemesis::Mix;
use jepsen::runner::{self, RunOptions};

/// One cluster at a time: five nodes already fill a two-core machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `ticketd` next to this test's executable (`target/release/deps/..` →
/// `target/release/ticketd`), which `cargo test --workspace` builds.
fn ticketd() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    let release = exe.parent().and_then(|deps| deps.parent()).expect("target/release");
    let bin = release.join("ticketd");
    assert!(bin.is_file(), "no ticketd at {}: build it first (cargo build --release -p node)", bin.display());
    bin
}

fn time_limit(default_secs: u64) -> u64 {
    std::env::var("JEPSEN_TIME_LIMIT").ok().and_then(|v| v.parse().ok()).unwrap_or(default_secs)
}

fn opts(name: &str, mix: Mix, seed: u64, secs: u64) -> RunOptions {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("jepsen").join(format!("{name}-{}", std::process::id()));
    let mut o = RunOptions::new(ticketd(), out);
    o.mix = mix;
    o.seed = seed;
    o.time_limit_secs = secs;
    o.progress = false;
    o
}

fn run(o: &RunOptions) -> runner::RunOutcome {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    match runner::run(o) {
        Ok(out) => out,
        Err(e) => panic!("the run in {} could not complete: {e}", o.out.display()),
    }
}

#[test]
fn the_correct_system_passes_three_nemesis_mixes() {
    let secs = time_limit(60);
    let mut failures = Vec::new();
    for (i, mix) in [Mix::Partition, Mix::Process, Mix::Clock].into_iter().enumerate() {
        let o = opts(&format!("{mix:?}").to_lowercase(), mix, 100 + i as u64, secs);
        let out = run(&o);
        eprintln!("{mix:?}: valid={} calls={} report {}", out.verdict.valid, out.calls, out.dir.display());
        assert!(out.calls > 100, "{mix:?}: only {} calls were made; see {}", out.calls, out.dir.display());
        if out.verdict.valid {
            // Reports of passing runs would pile up in the cached target dir.
            let _ = std::fs::remove_dir_all(&out.dir);
        } else {
            failures.push(format!("{mix:?} failed {:?}: see {}/verdict.json", out.verdict.failed(), out.dir.display()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Each planted bug, the mix that exposes it, and the checkers any of
/// which may catch it.
const PLANTS: [(&str, Mix, &[&str]); 4] = [
    ("stale-read", Mix::Isolate, &["linearizable"]),
    ("ack-before-sync", Mix::KillAll, &["no-lost-confirmations", "sold-once", "linearizable", "liveness"]),
    ("skip-hold-conflict", Mix::None, &["hold-expiry", "linearizable"]),
    ("wall-clock-expiry", Mix::ClockBig, &["convergence", "hold-expiry", "linearizable"]),
];

#[test]
fn every_planted_bug_is_caught() {
    let secs = time_limit(60).min(30);
    let mut missed = Vec::new();
    for (i, (plant, mix, catchers)) in PLANTS.into_iter().enumerate() {
        let mut o = opts(plant, mix, 200 + i as u64, secs);
        o.plant = Some(plant.to_string());
        let out = run(&o);
        let failed = out.verdict.failed();
        eprintln!("{plant}: failed checkers {failed:?}, report {}", out.dir.display());
        if failed.iter().any(|f| catchers.contains(f)) {
            let _ = std::fs::remove_dir_all(&out.dir);
        } else {
            missed.push(format!(
                "{plant} was not caught by {catchers:?} (failed: {failed:?}); see {}",
                out.dir.display()
            ));
        }
    }
    assert!(missed.is_empty(), "{missed:#?}");
}

/// Partitions made by the fault proxy (the mode of runs without root) are
/// real enough to matter: the correct system stays valid through every
/// partition shape, and a planted stale read behind an isolated leader is
/// caught. As root the other tests use network namespaces, so this is what
/// keeps the proxy honest.
#[test]
fn partitions_through_the_fault_proxy_are_real() {
    let secs = time_limit(60).min(30);
    let mut o = opts("proxy-partition", Mix::Partition, 300, secs);
    o.net = NetMode::Proxy;
    let out = run(&o);
    eprintln!("proxy partition: valid={} calls={} report {}", out.verdict.valid, out.calls, out.dir.display());
    assert!(out.verdict.valid, "failed {:?}: see {}/verdict.json", out.verdict.failed(), out.dir.display());
    assert!(out.calls > 100, "only {} calls were made; see {}", out.calls, out.dir.display());
    let _ = std::fs::remove_dir_all(&out.dir);

    let mut o = opts("proxy-stale-read", Mix::Isolate, 301, secs);
    o.net = NetMode::Proxy;
    o.plant = Some("stale-read".into());
    let out = run(&o);
    let failed = out.verdict.failed();
    eprintln!("proxy stale-read: failed checkers {failed:?}, report {}", out.dir.display());
    assert!(
        failed.contains(&"linearizable"),
        "the stale read was not caught (failed: {failed:?}); see {}",
        out.dir.display()
    );
    let _ = std::fs::remove_dir_all(&out.dir);
}

/// The membership nemesis removes a node and, since a removed id never
/// rejoins, replaces it with a fresh node (new id, empty data directory) in
/// the same place: the run stays valid and the new node replicates the log.
#[test]
fn removed_nodes_are_replaced_by_fresh_ones_under_load() {
    let secs = time_limit(60).min(30);
    let out = run(&opts("membership", Mix::Membership, 500, secs));
    eprintln!("membership: valid={} calls={} report {}", out.verdict.valid, out.calls, out.dir.display());
    assert!(out.verdict.valid, "failed {:?}: see {}/verdict.json", out.verdict.failed(), out.dir.display());
    assert!(out.calls > 100, "only {} calls were made; see {}", out.calls, out.dir.display());
    let history = std::fs::read_to_string(out.dir.join("history.jsonl")).unwrap();
    assert!(history.contains("membership-remove-add"), "no membership change was made; see {}", out.dir.display());
    // Node 6 is the first replacement: it must have applied entries.
    let digests = std::fs::read_to_string(out.dir.join("cluster/node6-digests/digests.jsonl")).unwrap_or_default();
    let applied = digests
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|d| d["node"] == 6)
        .filter_map(|d| d["index"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(applied > 10, "the replacement node 6 applied {applied} entries only; see {}", out.dir.display());
    let _ = std::fs::remove_dir_all(&out.dir);
}

/// `--existing`: the suite drives a cluster it did not start (here one
/// started by hand) through its gateways only: no processes, no faults,
/// every checker that needs no replica digests still decides.
#[test]
fn an_existing_cluster_is_checked_through_its_gateways() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("jepsen").join(format!("existing-{}", std::process::id()));
    let cluster = jepsen::cluster::Cluster::start(jepsen::cluster::ClusterOptions {
        nodes: 3,
        ticketd: ticketd(),
        dir: dir.join("cluster"),
        net: NetMode::Proxy,
        plant: None,
    })
    .expect("a cluster started by hand");
    let mut o = opts("existing", Mix::All, 400, time_limit(60).min(20));
    o.out = dir.join("run");
    o.existing = Some(cluster.gateways());
    let out = runner::run(&o).unwrap_or_else(|e| panic!("the run in {} could not complete: {e}", o.out.display()));
    drop(cluster);
    eprintln!("existing: valid={} calls={} report {}", out.verdict.valid, out.calls, out.dir.display());
    assert!(out.verdict.valid, "failed {:?}: see {}/verdict.json", out.verdict.failed(), out.dir.display());
    assert!(out.calls > 100, "only {} calls were made; see {}", out.calls, out.dir.display());
    let faults = std::fs::read_to_string(out.dir.join("history.jsonl")).unwrap();
    assert!(!faults.contains("\"f\":\"nemesis\""), "no faults are injected into an existing cluster");
    let _ = std::fs::remove_dir_all(&dir);
}
