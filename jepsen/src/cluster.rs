//! A real cluster of `ticketd run` processes, each with its own data
//! directory, config and log, and the faults that can be done to them:
//! kill -9 and restart, SIGSTOP/SIGCONT, clock offsets (the debug clock
//! file each node re-reads), and network partitions.
//!
//! As root, every node lives in its own network namespace on a bridge with
//! its own address, and a partition is `iptables` DROP rules inside the
//! namespaces: real dropped packets, also between a node's gateway and the
//! other nodes' gRPC. The suite's clients reach every gateway from the
//! host side of the bridge, which no partition cuts (as in Jepsen, where
//! the control node is never partitioned). Without root (or when asked)
//! the nodes share loopback and every link between two nodes passes the
//! fault proxy (`proxy.rs`), which stalls cut links the way dropped packets
//! stall TCP.
//!
//! A node's place in the cluster (its namespace or loopback ports, its
//! proxy links, its gateway address) is its slot; its Raft id is what the
//! cluster knows it by. They start equal. A node removed from the cluster
//! is replaced by a fresh node (new id, empty data directory) in the same
//! slot, because a removed id never rejoins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::checker::Digest;

/// Cluster secret, user-token key and ticket key of test clusters.
const SECRET: &str = "jepsen-cluster-secret-0123456789";
const JWT_SECRET: &str = "jepsen-jwt-secret-0123456789abcdef0123";
const SEED: &str = "0202020202020202020202020202020202020202020202020202020202020202";
/// The HTTP and gRPC ports inside a namespace.
const HTTP_PORT: u16 = 8080;
const GRPC_PORT: u16 = 7000;
/// Raft timings of test clusters: generous, for a loaded two-core machine.
pub const HEARTBEAT_MS: u64 = 100;
/// Lower end of the election timeout (the upper end is twice this).
pub const ELECTION_TIMEOUT_MS: u64 = 1_000;

/// Errors starting or driving a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A network-setup command failed.
    #[error("`{command}` failed: {stderr}")]
    Net {
        /// The command line.
        command: String,
        /// Its error output.
        stderr: String,
    },
    /// The ticketd binary is not there.
    #[error("no ticketd binary at {0} (build it: cargo build --release -p node)")]
    NoBinary(PathBuf),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// How to start a cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Nodes (each a storage node and a gateway; node 1 bootstraps).
    pub nodes: u64,
    /// The `ticketd` binary.
    pub ticketd: PathBuf,
    /// Where configs, data and logs go.
    pub dir: PathBuf,
    /// How partitions are made.
    pub net: NetMode,
    /// A planted bug every node runs with (`--debug-plant`).
    pub plant: Option<String>,
}

/// How the nodes are networked, and so how partitions are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetMode {
    /// A network namespace per node on a bridge; partitions are iptables
    /// DROP rules (needs root).
    Namespaces,
    /// Shared loopback; every link between nodes passes the fault proxy.
    Proxy,
}

impl NetMode {
    /// Namespaces when this process is root, the proxy otherwise.
    pub fn default_for_user() -> NetMode {
        if is_root() {
            NetMode::Namespaces
        } else {
            NetMode::Proxy
        }
    }

    /// Parses `namespaces` or `proxy`.
    pub fn parse(name: &str) -> Option<NetMode> {
        match name {
            "namespaces" | "netns" => Some(NetMode::Namespaces),
            "proxy" => Some(NetMode::Proxy),
            _ => None,
        }
    }
}

/// Whether this process may create network namespaces.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Where a node lives: what a replacement takes over from the node it
/// replaces.
#[derive(Clone)]
struct Place {
    /// 1-based; also the node's proxy links.
    slot: u64,
    ns: Option<String>,
    ip: String,
    /// gRPC `host:port`.
    grpc: String,
    /// Gateway `host:port`.
    http: String,
}

struct Node {
    id: u64,
    place: Place,
    config: PathBuf,
    log: PathBuf,
    clock: PathBuf,
    digests: PathBuf,
    child: Option<Child>,
    paused: bool,
}

/// The namespaces, bridge and host firewall rule of a namespaced cluster.
struct Net {
    bridge: String,
    namespaces: Vec<String>,
}

/// A running cluster. Dropping it kills every node and removes the network.
pub struct Cluster {
    opts: ClusterOptions,
    /// The current nodes, by slot.
    nodes: Vec<Node>,
    /// Nodes that were replaced (stopped): their logs and digests stay part
    /// of the run.
    replaced: Vec<Node>,
    /// The next id a replacement gets.
    next_id: u64,
    net: Option<Net>,
    proxy: Option<crate::proxy::FaultProxy>,
    crashes: Vec<String>,
}

fn sh(args: &[&str]) -> Result<(), ClusterError> {
    let out = Command::new(args[0]).args(&args[1..]).output().map_err(io(format!("running {}", args[0])))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ClusterError::Net { command: args.join(" "), stderr: String::from_utf8_lossy(&out.stderr).into() })
    }
}

static RUNS: AtomicU32 = AtomicU32::new(0);

impl Cluster {
    /// Writes the configs and starts every node.
    pub fn start(opts: ClusterOptions) -> Result<Cluster, ClusterError> {
        if !opts.ticketd.is_file() {
            return Err(ClusterError::NoBinary(opts.ticketd.clone()));
        }
        std::fs::create_dir_all(&opts.dir).map_err(io("creating the run directory"))?;
        let run = RUNS.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{:x}", ((std::process::id() << 4) ^ run) & 0xf_ffff);
        let mut subnet = (std::process::id().wrapping_add(run * 7) % 200) + 20;
        if opts.net == NetMode::Namespaces {
            // A bridge left behind by a run that was killed may hold a
            // subnet: take one no interface of this host uses.
            let used = Command::new("ip").args(["-o", "-4", "addr", "show"]).output().map_err(io("running ip"))?;
            let used = String::from_utf8_lossy(&used.stdout).into_owned();
            while used.contains(&format!(" 10.213.{subnet}.")) {
                subnet = (subnet + 1) % 220 + 20;
            }
        }
        let mut net = None;
        let mut addrs = Vec::new();
        if opts.net == NetMode::Namespaces {
            let bridge = format!("tjb{tag}");
            let mut n = Net { bridge: bridge.clone(), namespaces: Vec::new() };
            sh(&["ip", "link", "add", &bridge, "type", "bridge"])?;
            sh(&["ip", "addr", "add", &format!("10.213.{subnet}.1/24"), "dev", &bridge])?;
            sh(&["ip", "link", "set", &bridge, "up"])?;
            // Bridged frames pass the host's FORWARD chain when
            // br_netfilter is loaded (Docker hosts drop by default).
            let _ = sh(&["iptables", "-I", "FORWARD", "1", "-i", &bridge, "-o", &bridge, "-j", "ACCEPT"]);
            for i in 1..=opts.nodes {
                let ns = format!("tjn{tag}{i}");
                let veth = format!("tjv{tag}{i}");
                let ip = format!("10.213.{subnet}.{}", 10 + i);
                sh(&["ip", "netns", "add", &ns])?;
                n.namespaces.push(ns.clone());
                sh(&["ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
                sh(&["ip", "link", "set", &veth, "master", &bridge, "up"])?;
                sh(&["ip", "-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
                sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
                sh(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
                let (grpc, http) = (format!("{ip}:{GRPC_PORT}"), format!("{ip}:{HTTP_PORT}"));
                addrs.push(Place { slot: i, ns: Some(ns), ip, grpc, http });
            }
            net = Some(n);
        } else {
            for slot in 1..=opts.nodes {
                let grpc = free_port().map_err(io("finding a free port"))?;
                let http = free_port().map_err(io("finding a free port"))?;
                let (grpc, http) = (format!("127.0.0.1:{grpc}"), format!("127.0.0.1:{http}"));
                addrs.push(Place { slot, ns: None, ip: "127.0.0.1".into(), grpc, http });
            }
        }
        let proxy = match opts.net {
            NetMode::Proxy => {
                let grpc: BTreeMap<u64, String> = addrs.iter().map(|a| (a.slot, a.grpc.clone())).collect();
                Some(crate::proxy::FaultProxy::start(&grpc).map_err(io("starting the fault proxy"))?)
            }
            NetMode::Namespaces => None,
        };
        // Node ids start equal to the slots.
        let peers: Vec<(u64, String)> = addrs.iter().map(|a| (a.slot, a.grpc.clone())).collect();
        let mut nodes = Vec::new();
        for place in addrs {
            nodes.push(Node::write(&opts.dir, place.slot, &peers, place)?);
        }
        let next_id = opts.nodes + 1;
        let mut cluster = Cluster { opts, nodes, replaced: Vec::new(), next_id, net, proxy, crashes: Vec::new() };
        for id in 1..=cluster.opts.nodes {
            cluster.start_node(id)?;
        }
        Ok(cluster)
    }

    /// Replaces node `id` (removed from the cluster beforehand) with a fresh
    /// node in its slot: the old process is killed, the new one gets the next
    /// unused id and an empty data directory, and starts outside every
    /// group until the cluster adds it. Returns the new id.
    pub fn replace(&mut self, id: u64) -> Result<u64, ClusterError> {
        self.kill(id);
        let at = self.nodes.iter().position(|n| n.id == id).expect("a node of the cluster");
        let new_id = self.next_id;
        self.next_id += 1;
        let peers: Vec<(u64, String)> =
            self.nodes.iter().map(|n| (if n.id == id { new_id } else { n.id }, n.place.grpc.clone())).collect();
        let fresh = Node::write(&self.opts.dir, new_id, &peers, self.nodes[at].place.clone())?;
        let old = std::mem::replace(&mut self.nodes[at], fresh);
        self.replaced.push(old);
        self.start_node(new_id)?;
        Ok(new_id)
    }

    fn node(&mut self, id: u64) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).unwrap_or_else(|| panic!("no node {id} in the cluster"))
    }

    fn find(&self, id: u64) -> &Node {
        self.nodes.iter().find(|n| n.id == id).unwrap_or_else(|| panic!("no node {id} in the cluster"))
    }

    /// The slot of each current node, by id.
    fn slots(&self) -> BTreeMap<u64, u64> {
        self.nodes.iter().map(|n| (n.id, n.place.slot)).collect()
    }

    /// Node ids.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Every gateway's base URL, by node id order.
    pub fn gateways(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("http://{}", n.place.http)).collect()
    }

    /// The gRPC address of node `id` (what the cluster knows it by).
    pub fn grpc_addr(&self, id: u64) -> String {
        self.find(id).place.grpc.clone()
    }

    /// Whether partitions can be made (namespaces or the proxy).
    pub fn can_partition(&self) -> bool {
        self.net.is_some() || self.proxy.is_some()
    }

    /// How partitions are made.
    pub fn net_mode(&self) -> NetMode {
        self.opts.net
    }

    fn start_node(&mut self, id: u64) -> Result<(), ClusterError> {
        let ticketd = self.opts.ticketd.clone();
        let plant = self.opts.plant.clone();
        let slot = self.find(id).place.slot;
        let dial = self.proxy.as_ref().map(|p| p.dial_map(slot));
        let n = self.node(id);
        assert!(n.child.is_none(), "node {id} is running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&n.log).map_err(io("opening a log"))?;
        let err = log.try_clone().map_err(io("opening a log"))?;
        let mut cmd = match &n.place.ns {
            Some(ns) => {
                // `ip netns exec` execs in place: the child's pid is ticketd's.
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&ticketd);
                c
            }
            None => Command::new(&ticketd),
        };
        cmd.args(["run", "--config"]).arg(&n.config);
        if let Some(p) = &plant {
            cmd.args(["--debug-plant", p]);
        }
        if let Some(dial) = dial {
            cmd.env("DEBUG_TICKETD_DIAL_MAP", dial);
        }
        cmd.env("DEBUG_TICKETD_ALLOW", "i-know-this-is-not-production")
            .env("DEBUG_TICKETD_CLOCK_OFFSET_FILE", &n.clock)
            .env("DEBUG_TICKETD_DIGEST_DIR", &n.digests)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        n.child = Some(cmd.spawn().map_err(io(format!("starting node {id}")))?);
        n.paused = false;
        Ok(())
    }

    fn signal(&mut self, id: u64, sig: Signal) {
        if let Some(c) = &self.node(id).child {
            let _ = kill(Pid::from_raw(c.id() as i32), sig);
        }
    }

    /// kill -9.
    pub fn kill(&mut self, id: u64) {
        self.signal(id, Signal::SIGKILL);
        let n = self.node(id);
        if let Some(mut c) = n.child.take() {
            let _ = c.wait();
        }
        n.paused = false;
    }

    /// Starts a killed node again (no-op if it runs).
    pub fn restart(&mut self, id: u64) -> Result<(), ClusterError> {
        if self.node(id).child.is_none() {
            self.start_node(id)?;
        }
        Ok(())
    }

    /// SIGSTOP.
    pub fn pause(&mut self, id: u64) {
        self.signal(id, Signal::SIGSTOP);
        self.node(id).paused = true;
    }

    /// SIGCONT.
    pub fn resume(&mut self, id: u64) {
        self.signal(id, Signal::SIGCONT);
        self.node(id).paused = false;
    }

    /// Sets node `id`'s clock offset (the node picks it up within 50 ms).
    pub fn set_clock(&mut self, id: u64, offset_ms: i64) -> Result<(), ClusterError> {
        let path = self.node(id).clock.clone();
        let tmp = path.with_extension("clock.tmp");
        std::fs::write(&tmp, format!("{offset_ms}\n")).map_err(io("writing a clock file"))?;
        std::fs::rename(&tmp, &path).map_err(io("writing a clock file"))
    }

    /// Cuts the network: node `n` drops every packet from and to the nodes
    /// in `drops[n]`. Replaces any earlier partition.
    pub fn partition(&mut self, drops: &BTreeMap<u64, Vec<u64>>) -> Result<(), ClusterError> {
        self.heal_network()?;
        if let Some(proxy) = &self.proxy {
            // The proxy's links are between slots.
            let slots = self.slots();
            let slot = |id: &u64| slots.get(id).copied();
            let drops =
                drops.iter().filter_map(|(a, bs)| Some((slot(a)?, bs.iter().filter_map(slot).collect()))).collect();
            proxy.partition(&drops);
            return Ok(());
        }
        let ips: BTreeMap<u64, String> = self.nodes.iter().map(|n| (n.id, n.place.ip.clone())).collect();
        for n in &self.nodes {
            let Some(ns) = &n.place.ns else { continue };
            for other in drops.get(&n.id).into_iter().flatten() {
                let Some(ip) = ips.get(other) else { continue };
                sh(&["ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-s", ip, "-j", "DROP"])?;
                sh(&["ip", "netns", "exec", ns, "iptables", "-A", "OUTPUT", "-d", ip, "-j", "DROP"])?;
            }
        }
        Ok(())
    }

    /// Removes every partition.
    pub fn heal_network(&mut self) -> Result<(), ClusterError> {
        if let Some(proxy) = &self.proxy {
            proxy.heal();
        }
        for n in &self.nodes {
            if let Some(ns) = &n.place.ns {
                sh(&["ip", "netns", "exec", ns, "iptables", "-F"])?;
            }
        }
        Ok(())
    }

    /// Brings every node back: restarts killed ones, resumes paused ones,
    /// heals the network and zeroes the clocks.
    pub fn heal_all(&mut self) -> Result<(), ClusterError> {
        self.heal_network()?;
        for id in self.ids() {
            self.set_clock(id, 0)?;
            if self.node(id).paused {
                self.resume(id);
            }
            self.restart(id)?;
        }
        Ok(())
    }

    /// Notes nodes that exited without being told to (a crash or a panic).
    pub fn reap(&mut self) {
        for n in &mut self.nodes {
            if let Some(c) = &mut n.child {
                if let Ok(Some(status)) = c.try_wait() {
                    self.crashes.push(format!("node {} exited on its own: {status}", n.id));
                    n.child = None;
                }
            }
        }
    }

    /// Nodes that died on their own so far, and panics in the logs.
    pub fn crashes(&self) -> Vec<String> {
        let mut out = self.crashes.clone();
        for n in self.nodes.iter().chain(&self.replaced) {
            let text = std::fs::read_to_string(&n.log).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains("panicked at")) {
                out.push(format!("node {} panicked: {line}", n.id));
            }
        }
        out
    }

    /// Every digest the nodes recorded.
    pub fn digests(&self) -> Vec<Digest> {
        let mut out = Vec::new();
        for n in self.nodes.iter().chain(&self.replaced) {
            let text = std::fs::read_to_string(n.digests.join("digests.jsonl")).unwrap_or_default();
            out.extend(text.lines().filter_map(|l| serde_json::from_str::<Digest>(l).ok()));
        }
        out
    }

    /// Stops every node with SIGTERM (SIGKILL after 20 s).
    pub fn stop(&mut self) {
        for id in self.ids() {
            self.resume(id);
            self.signal(id, Signal::SIGTERM);
        }
        for n in &mut self.nodes {
            let Some(mut c) = n.child.take() else { continue };
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                    _ => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                }
            }
        }
    }

    /// The log file of every node, replaced ones included.
    pub fn logs(&self) -> Vec<(u64, PathBuf)> {
        let mut logs: Vec<(u64, PathBuf)> =
            self.nodes.iter().chain(&self.replaced).map(|n| (n.id, n.log.clone())).collect();
        logs.sort();
        logs
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.opts.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in self.ids() {
            self.resume(id);
            self.kill(id);
        }
        if let Some(net) = self.net.take() {
            for ns in &net.namespaces {
                let _ = sh(&["ip", "netns", "del", ns]);
            }
            let _ = sh(&["iptables", "-D", "FORWARD", "-i", &net.bridge, "-o", &net.bridge, "-j", "ACCEPT"]);
            let _ = sh(&["ip", "link", "del", &net.bridge]);
        }
    }
}

impl Node {
    /// Writes the config of node `id` at `place` and the files it reads.
    fn write(dir: &Path, id: u64, peers: &[(u64, String)], place: Place) -> Result<Node, ClusterError> {
        let (grpc, http) = (&place.grpc, &place.http);
        let data = dir.join(format!("node{id}"));
        let peers: Vec<String> = peers.iter().map(|(id, addr)| format!("{id} = \"{addr}\"")).collect();
        // Snapshots far more often than the node's default, so that runs of
        // a minute build, send and install them under faults.
        let mut text = format!(
            "[node]\nid = {id}\ndata_dir = {data:?}\n\n[cluster]\nsecret = \"{SECRET}\"\npeers = {{ {} }}\n\
             regions = {{ ap-south = 1 }}\n\n[storage]\ngrpc_listen = \"{grpc}\"\nheartbeat_ms = {HEARTBEAT_MS}\n\
             election_timeout_ms = {ELECTION_TIMEOUT_MS}\nsweep_interval_ms = 200\n\
             snapshot_logs_since_last = 5000\n",
            peers.join(", ")
        );
        // Node 1 initializes the cluster; a replacement never does.
        if id == 1 {
            text.push_str("bootstrap = true\n");
        }
        text.push_str(&format!(
            "\n[gateway]\nhttp_listen = \"{http}\"\njwt_secret = \"{JWT_SECRET}\"\nticket_key_seed = \"{SEED}\"\n\
             dev_mode = true\nuser_requests_per_sec = 10000\nuser_burst_max = 10000\nread_addr_per_sec = 100000\n\
             read_addr_burst_max = 100000\npayment_grace_ms = 5000\n\
             cluster_budget_ms = 4000\n\n[log]\nlevel = \"info\"\n"
        ));
        let config = dir.join(format!("node{id}.toml"));
        std::fs::write(&config, text).map_err(io("writing a node config"))?;
        let clock = dir.join(format!("node{id}.clock"));
        std::fs::write(&clock, "0\n").map_err(io("writing a clock file"))?;
        Ok(Node {
            id,
            config,
            log: dir.join(format!("node{id}.log")),
            clock,
            digests: dir.join(format!("node{id}-digests")),
            place,
            child: None,
            paused: false,
        })
    }
}

/// Node ports come from below Linux's ephemeral range (32768 and up): a
/// port the kernel handed out for `bind(0)` and that was released again can
/// go to the fault proxy's listeners or to any outgoing connection before
/// the node binds it (seen: a node failing to bind its HTTP port).
const NODE_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// The next free port of [`NODE_PORTS`], never the same one twice in this
/// process; the walk starts at a place derived from the process id so that
/// runs in different processes rarely probe the same ports.
fn free_port() -> std::io::Result<u16> {
    static TAKEN: AtomicU32 = AtomicU32::new(0);
    let span = u32::from(NODE_PORTS.end - NODE_PORTS.start);
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let offset = (start + TAKEN.fetch_add(1, Ordering::Relaxed)) % span;
        let port = NODE_PORTS.start + offset as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "no free port below the ephemeral range"))
}
