//! `ticketd`, the ticketing engine's node binary.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use node::config::{Config, LogFormat};
use node::dev::DevOptions;
use node::preview::{self, PreviewOptions};
use statemachine::Millis;

// See the workspace manifest: glibc's malloc cost the waiting room about a
// fifth of its joins per second (BENCHMARKS.md, Waiting room).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "ticketd", version, about = "The ticketing engine's node")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Runs a node (storage and/or gateway role) from a configuration file,
    /// `TICKETD_*` environment variables and flags.
    Run(RunArgs),
    /// Starts a complete local cluster: three storage nodes, three region
    /// groups replicated on all of them, a gateway on 127.0.0.1:8080, and
    /// the demo catalog. Data stays in the data directory between starts.
    Dev(DevArgs),
    /// Runs the demo in this process without replication or network: three
    /// region shards, the demo catalog and a scripted booking session.
    Preview(PreviewArgs),
    /// Runs a local payment provider that speaks docs/payments.md with the
    /// test tokens (no money moves), for `gateway.payments.provider = "http"`
    /// in tests and local set-ups. Prints `listening on ADDR` once bound.
    PaymentsSandbox(PaymentsSandboxArgs),
}

#[derive(Debug, Args)]
struct PaymentsSandboxArgs {
    /// Where to listen (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9300")]
    listen: SocketAddr,
    /// Where to send charge notifications (the gateway's
    /// `/v1/payments/webhook`); none: no notifications.
    #[arg(long, value_name = "URL")]
    webhook_url: Option<String>,
    /// How long `tok_timeout` takes to be captured, in ms.
    #[arg(long, value_name = "MS", default_value_t = 3_000)]
    slow_ms: u64,
    /// Charges kept at most.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    charges_max: usize,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Overrides `node.id`.
    #[arg(long)]
    node_id: Option<u64>,
    /// Overrides `node.data_dir`.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Overrides `storage.grpc_listen`.
    #[arg(long, value_name = "ADDR")]
    grpc_listen: Option<SocketAddr>,
    /// Overrides `gateway.http_listen`.
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<SocketAddr>,
    /// Overrides `log.format` (text or json).
    #[arg(long)]
    log_format: Option<String>,
    /// DEBUG ONLY, never in production: plants a known bug for the
    /// fault-injection suite (stale-read, ack-before-sync,
    /// skip-hold-conflict, wall-clock-expiry). Refused unless
    /// DEBUG_TICKETD_ALLOW=i-know-this-is-not-production is set.
    #[arg(long, value_name = "BUG", hide = true)]
    debug_plant: Vec<String>,
}

#[derive(Debug, Args)]
struct DevArgs {
    /// Where the nodes keep their data, configs and logs.
    #[arg(long, value_name = "DIR", default_value = ".dev-data")]
    data_dir: PathBuf,
    /// The gateway's HTTP address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    http_listen: SocketAddr,
    /// gRPC port of node 1 (nodes 2 and 3 use the next two).
    #[arg(long, value_name = "PORT", default_value_t = 7101)]
    grpc_port_base: u16,
}

#[derive(Debug, Args)]
struct PreviewArgs {
    /// Keep the shards' snapshots in DIR (created if missing) and restore
    /// them on the next start.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Run as if the clock read TIME (RFC 3339, e.g. 2026-11-22T10:00:00Z),
    /// for reproducible output.
    #[arg(long, value_name = "TIME", value_parser = preview::parse_time)]
    now: Option<Millis>,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Run(args) => run(args),
        Cmd::Dev(args) => {
            init_logs(LogFormat::Text, "warn");
            let opts = DevOptions {
                data_dir: args.data_dir,
                http_listen: args.http_listen,
                grpc_port_base: args.grpc_port_base,
                ..DevOptions::default()
            };
            let exe = std::env::current_exe().context("locating the ticketd binary")?;
            runtime()?.block_on(node::dev::run(opts, &exe))
        }
        Cmd::PaymentsSandbox(args) => payments_sandbox(args),
        Cmd::Preview(args) => {
            let opts = PreviewOptions { data_dir: args.data_dir, now_ms: args.now };
            preview::run(&opts, &mut UntilClosed { out: io::stdout().lock(), closed: false })
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut overrides = Vec::new();
    let mut set = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            overrides.push((key.to_string(), v));
        }
    };
    set("node.id", args.node_id.map(|v| v.to_string()));
    set("node.data_dir", args.data_dir.map(|v| v.display().to_string()));
    set("storage.grpc_listen", args.grpc_listen.map(|v| v.to_string()));
    set("gateway.http_listen", args.http_listen.map(|v| v.to_string()));
    set("log.format", args.log_format);
    let config = match Config::load(args.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ticketd: {e}");
            std::process::exit(2);
        }
    };
    init_logs(config.log.format, &config.log.level);
    node::run::abort_on_panic();
    if let Err(e) = node::debug::install(&args.debug_plant) {
        eprintln!("ticketd: {e}");
        std::process::exit(2);
    }
    runtime()?.block_on(async move {
        node::run::run(config, async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing the SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await
    })
}

/// The keys come from the environment, not the command line, which other
/// local users can read.
fn payments_sandbox(args: PaymentsSandboxArgs) -> anyhow::Result<()> {
    init_logs(LogFormat::Text, "info");
    let secret = |name: &str| -> String {
        match std::env::var(name) {
            Ok(v) if v.len() >= 32 => v,
            _ => {
                eprintln!("ticketd: {name} must hold a key of at least 32 characters");
                std::process::exit(2);
            }
        }
    };
    let opts = node::payments_sandbox::SandboxOptions {
        api_key: secret("TICKETD_PAYMENTS_API_KEY"),
        webhook_url: args.webhook_url,
        webhook_secret: secret("TICKETD_PAYMENTS_WEBHOOK_SECRET"),
        slow_ms: args.slow_ms,
        charges_max: args.charges_max,
    };
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding the payment sandbox to {}", args.listen))?;
        let mut out = io::stdout().lock();
        writeln!(out, "listening on {}", listener.local_addr()?)?;
        out.flush()?;
        drop(out);
        node::payments_sandbox::serve(opts, listener, async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing the SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await?;
        Ok::<(), anyhow::Error>(())
    })
}

fn init_logs(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Standard output that goes quiet once its reader has gone (`ticketd
/// preview | head`), so the run still finishes and keeps its data.
struct UntilClosed<W> {
    out: W,
    closed: bool,
}

impl<W: Write> Write for UntilClosed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.out.write(buf) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.out.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}
