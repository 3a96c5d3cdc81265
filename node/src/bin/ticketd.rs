//! `ticketd`, the ticketing engine's node binary.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use node::dev::{self, DevOptions};
use statemachine::Millis;

#[derive(Debug, Parser)]
#[command(name = "ticketd", version, about = "The ticketing engine's node")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Runs the demo in this process: three region shards, the demo catalog
    /// and a scripted booking session. This preview has no replication and
    /// serves no HTTP yet.
    Dev(DevArgs),
}

#[derive(Debug, Args)]
struct DevArgs {
    /// Keep the shards' snapshots in DIR (created if missing) and restore
    /// them on the next start.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Run as if the clock read TIME (RFC 3339, e.g. 2026-11-22T10:00:00Z),
    /// for reproducible output.
    #[arg(long, value_name = "TIME", value_parser = dev::parse_time)]
    now: Option<Millis>,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Dev(args) => {
            let opts = DevOptions { data_dir: args.data_dir, now_ms: args.now };
            dev::run(&opts, &mut UntilClosed { out: io::stdout().lock(), closed: false })
        }
    }
}

/// Standard output that goes quiet once its reader has gone (`ticketd dev |
/// head`), so the run still finishes and keeps its data.
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
