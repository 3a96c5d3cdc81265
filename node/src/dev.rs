//! `ticketd dev`: a complete local cluster from one command. Three storage
//! nodes (child `ticketd run` processes with their own RocksDB under the
//! data directory, real gRPC between them) host the three region groups,
//! each replicated on all three; node 1 also runs the gateway on
//! 127.0.0.1:8080 in dev mode, loads the demo catalog and spreads the group
//! leaders. A second start reuses the data directory: same secrets, same
//! data, the catalog is recognised and not loaded again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::RngCore;

use crate::config::Config;
use crate::demo::{ADMIN, REGIONS, USERS};
use crate::gateway::auth::Auth;

/// Options of `ticketd dev`.
#[derive(Clone, Debug)]
pub struct DevOptions {
    /// Where the nodes keep their data, configs and logs.
    pub data_dir: PathBuf,
    /// The gateway's HTTP address.
    pub http_listen: SocketAddr,
    /// gRPC port of node 1; nodes 2 and 3 take the next ones.
    pub grpc_port_base: u16,
    /// How long to wait for the cluster to become ready.
    pub ready_timeout: Duration,
}

impl Default for DevOptions {
    fn default() -> Self {
        DevOptions {
            data_dir: PathBuf::from(".dev-data"),
            http_listen: "127.0.0.1:8080".parse().expect("a valid address"),
            grpc_port_base: 7101,
            ready_timeout: Duration::from_secs(120),
        }
    }
}

/// Nodes of the dev cluster.
const NODES: u64 = 3;
/// Lifetime of the printed demo tokens.
const DEMO_TOKEN_TTL_SECS: u64 = 7 * 24 * 3600;

/// The secrets of a dev cluster, made once and kept in the data directory.
#[derive(serde::Serialize, serde::Deserialize)]
struct Secrets {
    cluster_secret: String,
    jwt_secret: String,
    ticket_key_seed: String,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

fn secrets(dir: &Path) -> anyhow::Result<Secrets> {
    let path = dir.join("secrets.toml");
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        return toml::from_str(&text).with_context(|| format!("parsing {}", path.display()));
    }
    let s = Secrets { cluster_secret: random_hex(16), jwt_secret: random_hex(32), ticket_key_seed: random_hex(32) };
    write_private(&path, &toml::to_string(&s)?)?;
    Ok(s)
}

/// Writes a file only its owner can read: the secrets and the node configs
/// that carry them (JWT key, ticket signing seed, cluster secret) let anyone
/// who reads them mint admin tokens, forge tickets and speak to the nodes.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // A file from an earlier build may exist with wider permissions.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The configuration file of dev node `id`.
fn node_config(opts: &DevOptions, s: &Secrets, id: u64) -> String {
    let peers: Vec<String> =
        (1..=NODES).map(|n| format!("{n} = \"127.0.0.1:{}\"", opts.grpc_port_base + (n - 1) as u16)).collect();
    let regions: Vec<String> = REGIONS.iter().enumerate().map(|(i, r)| format!("{r} = {}", i + 1)).collect();
    let data_dir = opts.data_dir.join(format!("node{id}"));
    let mut text = format!(
        "# Written by `ticketd dev`.\n[node]\nid = {id}\ndata_dir = {data_dir:?}\n\n[cluster]\nsecret = {:?}\n\
         peers = {{ {} }}\nregions = {{ {} }}\n\n[storage]\ngrpc_listen = \"127.0.0.1:{}\"\n",
        s.cluster_secret,
        peers.join(", "),
        regions.join(", "),
        opts.grpc_port_base + (id - 1) as u16,
    );
    if id == 1 {
        text.push_str("bootstrap = true\ndemo_data = true\nspread_leaders = true\n");
        text.push_str(&format!(
            "\n[gateway]\nhttp_listen = \"{}\"\njwt_secret = {:?}\nticket_key_seed = {:?}\ndev_mode = true\n",
            opts.http_listen, s.jwt_secret, s.ticket_key_seed
        ));
    }
    text
}

struct Children(Vec<(u64, Child)>);

impl Children {
    fn stop(&mut self) {
        for (_, child) in &self.0 {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for (_, child) in &mut self.0 {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.0.clear();
    }

    fn exited(&mut self) -> Option<(u64, std::process::ExitStatus)> {
        self.0.iter_mut().find_map(|(id, c)| c.try_wait().ok().flatten().map(|s| (*id, s)))
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs the dev cluster until SIGINT or SIGTERM.
pub async fn run(opts: DevOptions, exe: &Path) -> anyhow::Result<()> {
    if !opts.http_listen.ip().is_loopback() {
        anyhow::bail!(
            "ticketd dev serves admin tokens to anyone who reaches it: --http-listen must be a loopback address, not {}",
            opts.http_listen
        );
    }
    // A directory made here is its owner's only (an existing one is the
    // user's choice and left as it is; the secrets in it are 0600 anyway).
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&opts.data_dir)
            .with_context(|| format!("creating {}", opts.data_dir.display()))?;
    }
    let opts = DevOptions { data_dir: std::fs::canonicalize(&opts.data_dir)?, ..opts };
    let fresh = !opts.data_dir.join("node1").exists();
    let secrets = secrets(&opts.data_dir)?;
    let mut children = Children(Vec::new());
    for id in 1..=NODES {
        let path = opts.data_dir.join(format!("node{id}.toml"));
        let text = node_config(&opts, &secrets, id);
        Config::from_toml(&text).with_context(|| format!("the generated config of node {id}"))?;
        write_private(&path, &text)?;
        let log = std::fs::File::create(opts.data_dir.join(format!("node{id}.log")))?;
        let child = Command::new(exe)
            .arg("run")
            .arg("--config")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node {id}"))?;
        children.0.push((id, child));
    }
    println!("ticketd dev: starting 3 storage nodes and a gateway, data in {}", opts.data_dir.display());

    let base = format!("http://{}", opts.http_listen);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(3)).build()?;
    let deadline = Instant::now() + opts.ready_timeout;
    loop {
        if let Some((id, status)) = children.exited() {
            bail!(
                "node {id} exited during start-up ({status}); see {}",
                opts.data_dir.join(format!("node{id}.log")).display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the cluster was not ready after {:?}; see the node logs in {}",
                opts.ready_timeout,
                opts.data_dir.display()
            );
        }
        if demo_ready(&http, &base).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let auth = Auth::new(secrets.jwt_secret.as_bytes());
    let now = crate::shard::wall_clock_ms() / 1000;
    let user_token = auth.issue(USERS[0], &[], now, DEMO_TOKEN_TTL_SECS);
    let admin_token = auth.issue(ADMIN, &["admin".to_string(), "scanner".to_string()], now, DEMO_TOKEN_TTL_SECS);
    println!(
        "\nticketd dev is ready ({}).\n\n  API        {base}/v1/events\n  health     {base}/readyz\n  metrics    {base}/metrics\n  cluster    {base}/v1/admin/cluster (admin)\n  node gRPC  127.0.0.1:{}-{}\n  logs       {}/node{{1,2,3}}.log\n\n  demo user  {} (token below; also {})\n  {user_token}\n\n  admin      {ADMIN} (roles admin, scanner)\n  {admin_token}\n\n  try:  curl -s '{base}/v1/events?q=musicl'      (search tolerates a typo)\n        curl -s -X POST {base}/v1/dev/token -H 'content-type: application/json' -d '{{\"user_id\":\"bob\"}}'\n\nPress Ctrl-C to stop; the data stays for the next start.",
        if fresh { "new data, demo catalog loaded" } else { "existing data kept" },
        opts.grpc_port_base,
        opts.grpc_port_base + NODES as u16 - 1,
        opts.data_dir.display(),
        USERS[0],
        USERS[1..].join(", "),
    );

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = poll.tick() => {
                if let Some((id, status)) = children.exited() {
                    eprintln!("node {id} exited ({status}); stopping the cluster");
                    children.stop();
                    bail!("node {id} exited unexpectedly");
                }
            }
        }
    }
    println!("stopping the cluster");
    tokio::task::spawn_blocking(move || children.stop()).await?;
    println!("stopped; data kept in {}", opts.data_dir.display());
    Ok(())
}

/// Ready: every region has a leader and the demo events are listed.
async fn demo_ready(http: &reqwest::Client, base: &str) -> bool {
    let Ok(r) = http.get(format!("{base}/readyz")).send().await else { return false };
    if !r.status().is_success() {
        return false;
    }
    let Ok(r) = http.get(format!("{base}/v1/events?limit=1")).send().await else { return false };
    let Ok(body) = r.json::<serde_json::Value>().await else { return false };
    let expected: usize = crate::demo::catalog(0).iter().map(|c| c.events().count()).sum();
    body["total"].as_u64().is_some_and(|n| n as usize >= expected)
}
