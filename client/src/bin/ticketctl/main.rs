//! `ticketctl`: the operators' and scripts' command line of the gateway
//! API, built on the `client` SDK.
//!
//! Output is a human-readable table, or JSON with `--json`. Connection
//! settings come from flags, then `TICKETCTL_*` environment variables, then
//! a config file (`--config`, `TICKETCTL_CONFIG`, or
//! `~/.config/ticketctl/config.toml`).
//!
//! Exit codes:
//! - 0: done;
//! - 1: the gateway refused (an error answer of the contract, e.g. 409
//!   `seats_unavailable`, 403, 404);
//! - 2: bad usage, a bad input file or bad connection settings (nothing was
//!   sent);
//! - 3: the cluster could not be reached, or stayed unavailable (connection
//!   errors, timeouts or 503) for every retry.

mod catalog;
mod config;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use client::{BookingOutcome, Client, Error, HoldRequest, RetryPolicy};
use comfy_table::{presets, Table};
use serde::Serialize;
use serde_json::{json, Value};

const EXIT_API: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_UNREACHABLE: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "ticketctl",
    version,
    about = "Operate a ticketing cluster and script bookings through its gateway API",
    after_help = "Exit codes: 0 done; 1 the gateway refused (an API error); 2 bad usage, file or settings \
                  (nothing was sent); 3 the cluster was unreachable or stayed unavailable for every retry."
)]
struct Cli {
    /// Gateway base URL; repeat for several (tried in order). Env: TICKETCTL_URL (comma-separated).
    #[arg(long = "url", global = true)]
    urls: Vec<String>,
    /// Bearer token (a user JWT). Env: TICKETCTL_TOKEN.
    #[arg(long, global = true)]
    token: Option<String>,
    /// Config file (TOML: url or urls, token, timeout_secs, retries_max). Env: TICKETCTL_CONFIG.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Longest wait for one attempt, in seconds. Env: TICKETCTL_TIMEOUT_SECS.
    #[arg(long, global = true)]
    timeout_secs: Option<u64>,
    /// Retries after a failed attempt (503, timeouts, connection errors). Env: TICKETCTL_RETRIES_MAX.
    #[arg(long, global = true)]
    retries_max: Option<u32>,
    /// Idempotency key of the (one) mutating call, so that running the same
    /// command again cannot apply it twice.
    #[arg(long, global = true)]
    idempotency_key: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Nodes and region groups (admin).
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Venues and events (admin).
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Holds and bookings of the token's user.
    #[command(subcommand)]
    Bookings(BookingsCmd),
    /// Prints a user token from a gateway in dev mode.
    DevToken {
        /// The user id.
        user: String,
        /// A role (admin, scanner); repeat for several.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ClusterCmd {
    /// Every node and region group: leaders, terms, members, indexes.
    Status,
    /// Adds a storage node to every region group (learner, catch-up, voter).
    /// An id removed before is refused: a replacement node takes a new id.
    AddNode {
        /// The node's id.
        #[arg(long)]
        id: u64,
        /// Its gRPC address, host:port.
        #[arg(long)]
        addr: String,
    },
    /// Removes a node from every region group.
    RemoveNode {
        /// The node's id.
        id: u64,
    },
    /// Hands a region group's leadership to a node.
    Transfer {
        /// The region.
        region: String,
        /// The node to lead.
        #[arg(long)]
        to: u64,
    },
    /// Makes a region group's replicas snapshot now.
    Snapshot {
        /// The region.
        region: String,
        /// Only this node's replica (all members by default).
        #[arg(long)]
        node: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
enum CatalogCmd {
    /// Creates the venues and events of a TOML or JSON file.
    Apply {
        /// The file (`.json` is read as JSON, anything else as TOML).
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct Selection {
    /// Seat ids, comma-separated (Floor-A-1,Floor-A-2).
    #[arg(long, value_delimiter = ',')]
    seats: Vec<String>,
    /// The best N seats of --category.
    #[arg(long, requires = "category")]
    best: Option<u32>,
}

#[derive(Subcommand, Debug)]
enum BookingsCmd {
    /// Holds seats of an event.
    Hold {
        /// The event.
        event: String,
        #[command(flatten)]
        selection: Selection,
        /// Category of --best.
        #[arg(long)]
        category: Option<String>,
        /// --best seats side by side in one row.
        #[arg(long)]
        together: bool,
        /// --best accessible seats only.
        #[arg(long)]
        accessible: bool,
        /// Go through the event's waiting room if it is active, waiting at
        /// most this long for admission.
        #[arg(long)]
        queue_wait_secs: Option<u64>,
    },
    /// Pays for a hold and confirms it.
    Confirm {
        /// The hold.
        hold: String,
        /// Payment token (sandbox: tok_visa, tok_declined, ...).
        #[arg(long, default_value = "tok_visa")]
        payment: String,
    },
    /// Cancels a booking under its event's refund policy.
    Cancel {
        /// The booking.
        booking: String,
    },
    /// Shows a booking, or a hold (an id starting with `hld-`).
    Show {
        /// The booking or hold.
        id: String,
    },
    /// Lists the user's bookings.
    List,
    /// Releases a hold.
    Release {
        /// The hold.
        hold: String,
    },
}

/// A failure and the exit code it means.
struct Failure {
    code: u8,
    json: Value,
    text: String,
}

/// What to tell a script whose mutating call has an unknown outcome.
fn unknown_outcome(key: &Option<String>) -> String {
    match key {
        Some(k) => format!(
            "; the call may or may not have been applied: run it again with --idempotency-key {k} to apply it at most once"
        ),
        None => String::new(),
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        match &e {
            Error::Api(api) if api.status == 503 => Failure {
                code: EXIT_UNREACHABLE,
                json: json!({"error": api}),
                text: format!("the cluster stayed unavailable: {api}{}", unknown_outcome(&api.idempotency_key)),
            },
            Error::Api(api) => Failure { code: EXIT_API, json: json!({"error": api}), text: api.to_string() },
            Error::Unreachable { idempotency_key, .. } => Failure {
                code: EXIT_UNREACHABLE,
                json: json!({"error": {"code": "unreachable", "message": e.to_string(), "idempotency_key": idempotency_key}}),
                text: format!("{e}{}", unknown_outcome(idempotency_key)),
            },
            Error::Timeout { .. } => Failure {
                code: EXIT_UNREACHABLE,
                json: json!({"error": {"code": "timeout", "message": e.to_string()}}),
                text: e.to_string(),
            },
            Error::Config(_) => Failure {
                code: EXIT_USAGE,
                json: json!({"error": {"code": "usage", "message": e.to_string()}}),
                text: e.to_string(),
            },
            _ => Failure {
                code: EXIT_API,
                json: json!({"error": {"code": "unexpected_answer", "message": e.to_string()}}),
                text: e.to_string(),
            },
        }
    }
}

fn usage(message: String) -> Failure {
    Failure { code: EXIT_USAGE, json: json!({"error": {"code": "usage", "message": message}}), text: message }
}

/// What a command prints: JSON, and the same as tables.
struct Output {
    json: Value,
    tables: Vec<Table>,
}

fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("SDK types serialize")
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    t.set_header(header.iter().copied());
    t
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), ToString::to_string)
}

fn list(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

fn hold_table(h: &client::Hold) -> Table {
    let mut t = table(&["hold", "event", "status", "seats", "expires_at", "total"]);
    t.add_row(vec![
        h.hold_id.clone(),
        h.event_id.clone(),
        to_json(&h.status).as_str().unwrap_or("").to_string(),
        h.seat_ids.join(","),
        h.expires_at.clone(),
        format!("{} {}", h.total_price, h.currency),
    ]);
    t
}

fn bookings_table(bookings: &[client::Booking]) -> Table {
    let mut t = table(&["booking", "event", "status", "seats", "total", "tickets"]);
    for b in bookings {
        t.add_row(vec![
            b.booking_id.clone(),
            b.event_id.clone(),
            to_json(&b.status).as_str().unwrap_or("").to_string(),
            b.seat_ids.join(","),
            format!("{} {}", b.total_price, b.currency),
            b.tickets.iter().map(|t| t.ticket_id.as_str()).collect::<Vec<_>>().join(","),
        ]);
    }
    t
}

fn change_table(c: &client::ClusterChange) -> Table {
    let mut t = table(&["region", "group", "leader", "members", "retired", "snapshotted"]);
    for g in &c.groups {
        t.add_row(vec![
            g.region.clone(),
            g.group_id.to_string(),
            opt(&g.leader),
            list(&g.members),
            list(&g.retired),
            list(&g.snapshotted),
        ]);
    }
    t
}

async fn cluster(client: &Client, cmd: ClusterCmd) -> Result<Output, Failure> {
    let change = match cmd {
        ClusterCmd::Status => {
            let s = client.cluster_status().await?;
            let mut nodes = table(&["node", "addr", "reachable", "error"]);
            for n in &s.nodes {
                nodes.add_row(vec![opt(&n.node_id), n.addr.clone(), n.reachable.to_string(), opt(&n.error)]);
            }
            let mut groups = table(&[
                "region", "group", "leader", "term", "members", "learners", "retired", "commit", "applied", "snapshot",
            ]);
            for g in &s.groups {
                groups.add_row(vec![
                    g.region.clone(),
                    opt(&g.group_id),
                    opt(&g.leader),
                    opt(&g.term),
                    list(&g.members),
                    list(&g.learners),
                    list(&g.retired),
                    opt(&g.commit_index),
                    opt(&g.applied_index),
                    opt(&g.snapshot_index),
                ]);
            }
            return Ok(Output { json: to_json(&s), tables: vec![nodes, groups] });
        }
        ClusterCmd::AddNode { id, addr } => client.add_node(id, &addr).await?,
        ClusterCmd::RemoveNode { id } => client.remove_node(id).await?,
        ClusterCmd::Transfer { region, to } => client.transfer_leader(&region, to).await?,
        ClusterCmd::Snapshot { region, node } => client.trigger_snapshot(&region, node).await?,
    };
    Ok(Output { json: to_json(&change), tables: vec![change_table(&change)] })
}

async fn apply_catalog(client: &Client, file: PathBuf) -> Result<Output, Failure> {
    let catalog = catalog::load(&file).map_err(|e| usage(e.to_string()))?;
    let mut ids = std::collections::BTreeMap::new();
    let mut rows = Vec::new();
    for (i, (key, venue)) in catalog.venues.iter().enumerate() {
        let keyed = client.with_idempotency_key(format!("catalog:{}:venue:{i}", catalog.digest));
        let created = keyed.create_venue(venue).await?;
        if let Some(k) = key {
            ids.insert(k.clone(), created.venue_id.clone());
        }
        rows.push(json!({"kind": "venue", "name": venue.name, "id": created.venue_id}));
    }
    for (i, (venue_key, event)) in catalog.events.iter().enumerate() {
        let mut event = event.clone();
        if let Some(k) = venue_key {
            event.venue_id = ids[k].clone();
        }
        let keyed = client.with_idempotency_key(format!("catalog:{}:event:{i}", catalog.digest));
        let created = keyed.create_event(&event).await?;
        rows.push(json!({"kind": "event", "name": event.title, "id": created.event_id}));
    }
    let mut t = table(&["kind", "name", "id"]);
    for r in &rows {
        t.add_row(vec![
            r["kind"].as_str().unwrap_or(""),
            r["name"].as_str().unwrap_or(""),
            r["id"].as_str().unwrap_or(""),
        ]);
    }
    Ok(Output { json: json!({"created": rows}), tables: vec![t] })
}

async fn bookings(client: &Client, cmd: BookingsCmd) -> Result<Output, Failure> {
    match cmd {
        BookingsCmd::Hold { event, selection, category, together, accessible, queue_wait_secs } => {
            let request = match (selection.best, category) {
                (Some(count), Some(category)) => {
                    HoldRequest::BestAvailable(client::BestAvailable { count, category, together, accessible })
                }
                (None, _) => HoldRequest::SeatIds(selection.seats),
                (Some(_), None) => return Err(usage("--best needs --category".into())),
            };
            let hold = match queue_wait_secs {
                Some(secs) => client.hold_through_queue(&event, &request, Duration::from_secs(secs)).await?,
                None => client.hold(&event, &request).await?,
            };
            Ok(Output { json: to_json(&hold), tables: vec![hold_table(&hold)] })
        }
        BookingsCmd::Confirm { hold, payment } => match client.book(&hold, &payment).await? {
            BookingOutcome::Confirmed(b) => Ok(Output { json: to_json(&b), tables: vec![bookings_table(&[b])] }),
            BookingOutcome::Pending { booking_id } => {
                let mut t = table(&["booking", "status"]);
                t.add_row(vec![booking_id.as_str(), "pending"]);
                Ok(Output { json: json!({"booking_id": booking_id, "status": "pending"}), tables: vec![t] })
            }
        },
        BookingsCmd::Cancel { booking } => {
            let c = client.cancel_booking(&booking).await?;
            let mut t = table(&["booking", "status", "refund_percent", "refund_amount"]);
            t.add_row(vec![
                c.booking_id.clone(),
                "cancelled".into(),
                c.refund_percent.to_string(),
                c.refund_amount.to_string(),
            ]);
            Ok(Output { json: to_json(&c), tables: vec![t] })
        }
        BookingsCmd::Show { id } if id.starts_with("hld-") => {
            let h = client.get_hold(&id).await?;
            Ok(Output { json: to_json(&h), tables: vec![hold_table(&h)] })
        }
        BookingsCmd::Show { id } => {
            let b = client.booking(&id).await?;
            Ok(Output { json: to_json(&b), tables: vec![bookings_table(&[b])] })
        }
        BookingsCmd::List => {
            let list = client.my_bookings().await?;
            Ok(Output { json: json!({"bookings": list}), tables: vec![bookings_table(&list)] })
        }
        BookingsCmd::Release { hold } => {
            client.release_hold(&hold).await?;
            let mut t = table(&["hold", "status"]);
            t.add_row(vec![hold.as_str(), "released"]);
            Ok(Output { json: json!({"hold_id": hold, "status": "released"}), tables: vec![t] })
        }
    }
}

async fn run(cli: Cli) -> Result<Output, Failure> {
    let flags = config::Flags {
        urls: cli.urls,
        token: cli.token,
        config: cli.config,
        timeout_secs: cli.timeout_secs,
        retries_max: cli.retries_max,
    };
    let settings = config::resolve(flags, &|k| std::env::var(k).ok()).map_err(|e| usage(e.to_string()))?;
    let mut retry = RetryPolicy::default();
    if let Some(secs) = settings.timeout_secs {
        retry.attempt_timeout_ms = secs.saturating_mul(1_000);
    }
    if let Some(n) = settings.retries_max {
        retry.retries_max = n;
    }
    let mut builder = Client::builder().retry(retry);
    for url in &settings.urls {
        builder = builder.endpoint(url);
    }
    if let Some(token) = &settings.token {
        builder = builder.token(token);
    }
    let mut client = builder.build()?;
    if let Some(key) = cli.idempotency_key {
        client = client.with_idempotency_key(key);
    }
    match cli.command {
        Command::Cluster(cmd) => cluster(&client, cmd).await,
        Command::Catalog(CatalogCmd::Apply { file }) => apply_catalog(&client, file).await,
        Command::Bookings(cmd) => bookings(&client, cmd).await,
        Command::DevToken { user, roles } => {
            let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
            let token = client.dev_token(&user, &roles).await?;
            let mut t = table(&["user", "token"]);
            t.add_row(vec![user.as_str(), token.as_str()]);
            Ok(Output { json: json!({"user_id": user, "token": token}), tables: vec![t] })
        }
    }
}

fn main() -> ExitCode {
    // clap exits with 2 on bad usage, 0 on --help.
    let cli = Cli::parse();
    let json_out = cli.json;
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ticketctl: cannot start: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(out) => {
            if json_out {
                println!("{}", serde_json::to_string_pretty(&out.json).expect("JSON prints"));
            } else {
                for t in out.tables {
                    println!("{t}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(f) => {
            if json_out {
                println!("{}", serde_json::to_string_pretty(&f.json).expect("JSON prints"));
            }
            eprintln!("ticketctl: {}", f.text);
            ExitCode::from(f.code)
        }
    }
}
