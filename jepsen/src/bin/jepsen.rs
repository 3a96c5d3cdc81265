//! `jepsen`: runs the fault-injection suite against a fresh `ticketd`
//! cluster (or an existing one) and writes a report per run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use jepsen::cluster::NetMode;
use jepsen::nemesis::Mix;
use jepsen::runner::{self, RunOptions};

#[derive(Debug, Parser)]
#[command(name = "jepsen", about = "Fault-injection runs against a ticketd cluster")]
struct Cli {
    /// Seconds of workload per run.
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    /// Runs (seeds `seed`, `seed + 1`, ...).
    #[arg(long, default_value_t = 1)]
    runs: u64,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Nodes to start.
    #[arg(long, default_value_t = 5)]
    nodes: u64,
    /// Faults: none, partition, process, clock, membership, all (self-test mixes:
    /// kill-all, isolate, clock-big).
    #[arg(long, default_value = "all")]
    mix: String,
    /// DEBUG: plant a bug in every node (stale-read, ack-before-sync,
    /// skip-hold-conflict, wall-clock-expiry); the run must then fail.
    #[arg(long)]
    plant: Option<String>,
    /// The ticketd binary (default: next to this one).
    #[arg(long)]
    ticketd: Option<PathBuf>,
    /// Where reports go (one directory per run).
    #[arg(long, default_value = "jepsen-runs")]
    out: PathBuf,
    /// Gateways of an existing cluster in dev mode, comma separated
    /// (`http://127.0.0.1:8080,...`): no processes, no faults.
    #[arg(long, value_delimiter = ',')]
    existing: Option<Vec<String>>,
    /// Concurrent workload threads.
    #[arg(long, default_value_t = 10)]
    threads: u64,
    /// How partitions are made: `namespaces` (a network namespace per node,
    /// iptables; needs root) or `proxy` (shared loopback, a fault proxy on
    /// every link). Default: namespaces as root, else the proxy.
    #[arg(long)]
    net: Option<String>,
    /// Seconds the linearizability search may take (a timeout fails the run).
    #[arg(long, default_value_t = 120)]
    check_secs_max: u64,
    /// Check the history in this report directory again and exit.
    #[arg(long, value_name = "DIR")]
    recheck: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(dir) = &cli.recheck {
        return match runner::recheck(dir, cli.check_secs_max) {
            Ok(v) => {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                if v.valid {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("jepsen: {e}");
                ExitCode::from(2)
            }
        };
    }
    let Some(mix) = Mix::parse(&cli.mix) else {
        eprintln!("jepsen: unknown mix {:?}", cli.mix);
        return ExitCode::from(2);
    };
    let ticketd = cli.ticketd.clone().unwrap_or_else(|| {
        std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join("ticketd"))).unwrap_or_default()
    });
    let net = match cli.net.as_deref().map(NetMode::parse) {
        None => NetMode::default_for_user(),
        Some(Some(n)) => n,
        Some(None) => {
            eprintln!("jepsen: --net is namespaces or proxy");
            return ExitCode::from(2);
        }
    };
    let mut failed = 0;
    for run in 0..cli.runs {
        let seed = cli.seed + run;
        let mut opts = RunOptions::new(ticketd.clone(), cli.out.join(format!("{}-seed{seed}", cli.mix)));
        opts.time_limit_secs = cli.time_limit;
        opts.seed = seed;
        opts.nodes = cli.nodes;
        opts.mix = mix;
        opts.plant = cli.plant.clone();
        opts.existing = cli.existing.clone();
        opts.threads = cli.threads;
        opts.net = net;
        opts.check_secs_max = cli.check_secs_max;
        match runner::run(&opts) {
            Ok(out) => {
                let failed_checkers = out.verdict.failed();
                println!(
                    "run {seed}: {} ({} calls; failed: {failed_checkers:?}) report in {}",
                    if out.verdict.valid { "valid" } else { "INVALID" },
                    out.calls,
                    out.dir.display()
                );
                if !out.verdict.valid {
                    failed += 1;
                }
            }
            Err(e) => {
                eprintln!("run {seed}: could not run: {e}");
                failed += 1;
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
