//! Starts real `ticketd` processes on loopback for the SDK and ticketctl
//! tests, as `node/tests/support` does. The `ticketd` binary is not a
//! dependency of this crate: it is found next to the test executable
//! (`cargo test --workspace` builds it).

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123";
pub const SECRET: &str = "test-cluster-secret-0123";
pub const SEED: &str = "0101010101010101010101010101010101010101010101010101010101010101";
pub const DAY_MS: u64 = 24 * 3600 * 1000;

/// `target/<profile>/ticketd`, beside the `deps` folder of this test.
pub fn ticketd() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("tests run from target/<profile>/deps");
    let bin = profile_dir.join("ticketd");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build --release -p node` (or run `cargo test --release --workspace`)",
        bin.display()
    );
    bin
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Node {
    pub id: u64,
    pub config: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
}

impl Node {
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node {} is running", self.id);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(ticketd())
            .args(["run", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
    pub client: reqwest::Client,
}

fn node_config(dir: &std::path::Path, id: u64, peers: &[String], grpc: u16) -> String {
    let data = dir.join(format!("node{id}"));
    format!(
        "[node]\nid = {id}\ndata_dir = {data:?}\n\n[cluster]\nsecret = \"{SECRET}\"\npeers = {{ {} }}\n\
         regions = {{ ap-south = 1, eu-west = 2, us-east = 3 }}\n\n[storage]\ngrpc_listen = \"127.0.0.1:{grpc}\"\n\
         heartbeat_ms = 50\nelection_timeout_ms = 300\n",
        peers.join(", ")
    )
}

/// Writes the configs of an `n`-node cluster (node 1 bootstraps and
/// spreads the leaders; every node runs a gateway in dev mode) and starts it.
pub fn cluster(n: u64) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let grpc: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let http: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let peers: Vec<String> = (0..n).map(|i| format!("{} = \"127.0.0.1:{}\"", i + 1, grpc[i as usize])).collect();
    let mut nodes = Vec::new();
    for i in 0..n {
        let id = i + 1;
        let mut text = node_config(dir.path(), id, &peers, grpc[i as usize]);
        if id == 1 {
            text.push_str("bootstrap = true\ndemo_data = false\nspread_leaders = true\n");
        }
        text.push_str(&format!(
            "\n[gateway]\nhttp_listen = \"127.0.0.1:{}\"\njwt_secret = \"{JWT_SECRET}\"\nticket_key_seed = \"{SEED}\"\n\
             dev_mode = true\nuser_requests_per_sec = 1000\nuser_burst_max = 1000\npayment_timeout_ms = 200\npayment_grace_ms = 1000\n",
            http[i as usize]
        ));
        let config = dir.path().join(format!("node{id}.toml"));
        std::fs::write(&config, text).unwrap();
        let mut node = Node { id, config, log: dir.path().join(format!("node{id}.log")), child: None };
        node.start();
        nodes.push(node);
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
    Cluster { dir, nodes, client }
}

impl Cluster {
    fn config_value(&self, id: u64, key: &str) -> String {
        let text = std::fs::read_to_string(&self.nodes[(id - 1) as usize].config).unwrap();
        let line = text.lines().find(|l| l.starts_with(key)).unwrap();
        line.split('"').nth(1).unwrap().to_string()
    }

    /// The gateway URL of node `id`.
    pub fn gateway(&self, id: u64) -> String {
        format!("http://{}", self.config_value(id, "http_listen"))
    }

    /// The gRPC address of node `id`.
    pub fn grpc(&self, id: u64) -> String {
        self.config_value(id, "grpc_listen")
    }

    /// Adds node `id` (storage role only) and starts it; it joins no group
    /// until an operator adds it.
    pub fn add_storage_node(&mut self, id: u64) -> String {
        let grpc = free_port();
        let mut peers: Vec<String> = (1..id).map(|n| format!("{n} = \"{}\"", self.grpc(n))).collect();
        peers.push(format!("{id} = \"127.0.0.1:{grpc}\""));
        let text = node_config(self.dir.path(), id, &peers, grpc);
        let config = self.dir.path().join(format!("node{id}.toml"));
        std::fs::write(&config, text).unwrap();
        let mut node = Node { id, config, log: self.dir.path().join(format!("node{id}.log")), child: None };
        node.start();
        self.nodes.push(node);
        format!("127.0.0.1:{grpc}")
    }

    pub fn node(&mut self, id: u64) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).unwrap()
    }

    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- node {} ---\n{}", n.id, std::fs::read_to_string(&n.log).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub async fn wait_ready(&self, base: &str) {
        let timeout = Duration::from_secs(90);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = self.client.get(format!("{base}/readyz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("{base} not ready after {timeout:?}\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A dev-mode token, fetched with plain HTTP (not through the SDK under test).
    pub async fn token(&self, base: &str, user: &str, roles: &[&str]) -> String {
        let r = self
            .client
            .post(format!("{base}/v1/dev/token"))
            .json(&json!({"user_id": user, "roles": roles}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
    }

    /// Plain HTTP GET with a token: the ground truth the SDK's answers are checked against.
    pub async fn get(&self, url: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// RFC 3339 in UTC, seconds precision, for event times in tests.
pub fn rfc3339(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64).unwrap();
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}
