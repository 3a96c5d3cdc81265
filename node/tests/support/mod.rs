//! Starts real `ticketd` processes on loopback for the integration tests.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123";
pub const SECRET: &str = "test-cluster-secret-0123";
pub const SEED: &str = "0101010101010101010101010101010101010101010101010101010101010101";

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// RFC 3339 (whole seconds) of `ms`.
pub fn rfc3339(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64).unwrap();
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// A user token signed with the cluster's key, as the dev route would
/// make it, without a round trip per user.
pub fn signed_token(user: &str) -> String {
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        sub: &'a str,
        roles: Vec<&'a str>,
        exp: u64,
        iat: u64,
    }
    let now = now_ms() / 1000;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &Claims { sub: user, roles: vec![], exp: now + 3600, iat: now },
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// The keys of the HTTP payment provider in the tests.
pub const PAYMENTS_API_KEY: &str = "test-payments-api-key-0123456789abcdef";
pub const PAYMENTS_WEBHOOK_SECRET: &str = "test-payments-webhook-secret-0123456789";

/// A `[gateway]` line choosing the HTTP payment provider at `base_url`
/// with the test keys, plus `extra` keys of `[gateway.payments]`
/// (`", call_timeout_ms = 500"`).
pub fn http_payments(base_url: &str, extra: &str) -> String {
    format!(
        "payments = {{ provider = \"http\", base_url = \"{base_url}\", api_key = \"{PAYMENTS_API_KEY}\", \
         webhook_secret = \"{PAYMENTS_WEBHOOK_SECRET}\"{extra} }}\n"
    )
}

/// The `ticketd` the nodes run: this build's, or the one `TEST_TICKETD_BIN`
/// names (to show that a test catches what an earlier build got wrong).
pub fn ticketd() -> PathBuf {
    std::env::var_os("TEST_TICKETD_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ticketd")), PathBuf::from)
}

/// A `ticketd payments-sandbox` process (the local payment provider).
pub struct PaymentsSandbox {
    /// Its base URL.
    pub url: String,
    pub log: PathBuf,
    child: Child,
}

impl PaymentsSandbox {
    /// Starts one on `listen`, notifying `webhook_url`; `tok_timeout` is
    /// captured after `slow_ms`.
    pub fn start(listen: &str, webhook_url: Option<&str>, slow_ms: u64, log: &Path) -> PaymentsSandbox {
        use std::io::BufRead;
        let err = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ticketd"));
        cmd.args(["payments-sandbox", "--listen", listen, "--slow-ms", &slow_ms.to_string()])
            .env("TICKETD_PAYMENTS_API_KEY", PAYMENTS_API_KEY)
            .env("TICKETD_PAYMENTS_WEBHOOK_SECRET", PAYMENTS_WEBHOOK_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err);
        if let Some(url) = webhook_url {
            cmd.args(["--webhook-url", url]);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("payments sandbox said {line:?}"));
        PaymentsSandbox { url: format!("http://{addr}"), log: log.to_path_buf(), child }
    }

    /// A signed request to the provider's API, as a gateway would send it.
    pub async fn call(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
        let ts = node::gateway::payments_http::unix_secs();
        let sig = node::gateway::payments_http::request_signature(PAYMENTS_API_KEY, ts, method.as_str(), path, &bytes);
        let r = client
            .request(method, format!("{}{path}", self.url))
            .header(node::gateway::payments_http::TIMESTAMP_HEADER, ts.to_string())
            .header(node::gateway::payments_http::SIGNATURE_HEADER, sig)
            .header("content-type", "application/json")
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for PaymentsSandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

    /// SIGTERM and wait; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return true };
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = c.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        c.kill().unwrap();
        c.wait().unwrap();
        false
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
    pub http: String,
    pub client: reqwest::Client,
}

/// Writes the configs of a `n`-node cluster (node 1 bootstraps; every node
/// runs a gateway) and starts it.
pub fn cluster(n: u64, demo: bool) -> Cluster {
    cluster_with(n, demo, "")
}

/// [`cluster`] with extra `[gateway]` keys for node 1.
pub fn cluster_with(n: u64, demo: bool, node1_gateway: &str) -> Cluster {
    cluster_gateways(n, demo, node1_gateway, "")
}

/// [`cluster`] with extra `[gateway]` keys for node 1 and for every node.
pub fn cluster_gateways(n: u64, demo: bool, node1_gateway: &str, every_gateway: &str) -> Cluster {
    cluster_configured(n, demo, |id| {
        if id == 1 {
            format!("{node1_gateway}{every_gateway}")
        } else {
            every_gateway.to_string()
        }
    })
}

/// [`cluster`] with extra `[gateway]` keys per node id.
pub fn cluster_configured(n: u64, demo: bool, gateway_extra: impl Fn(u64) -> String) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let grpc: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let http: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let peers: Vec<String> = (0..n).map(|i| format!("{} = \"127.0.0.1:{}\"", i + 1, grpc[i as usize])).collect();
    let mut nodes = Vec::new();
    for i in 0..n {
        let id = i + 1;
        let data = dir.path().join(format!("node{id}"));
        let mut text = format!(
            "[node]\nid = {id}\ndata_dir = {data:?}\n\n[cluster]\nsecret = \"{SECRET}\"\npeers = {{ {} }}\n\
             regions = {{ ap-south = 1, eu-west = 2, us-east = 3 }}\n\n[storage]\ngrpc_listen = \"127.0.0.1:{}\"\n\
             heartbeat_ms = 50\nelection_timeout_ms = 300\n",
            peers.join(", "),
            grpc[i as usize]
        );
        if id == 1 {
            text.push_str(&format!("bootstrap = true\ndemo_data = {demo}\nspread_leaders = true\n"));
        }
        text.push_str(&format!(
            "\n[gateway]\nhttp_listen = \"127.0.0.1:{}\"\njwt_secret = \"{JWT_SECRET}\"\nticket_key_seed = \"{SEED}\"\n\
             dev_mode = true\nuser_requests_per_sec = 1000\nuser_burst_max = 1000\n",
            http[i as usize]
        ));
        // Payment timings the extra keys do not set themselves.
        let extra = gateway_extra(id);
        for (key, value) in [("payment_timeout_ms", "200"), ("payment_grace_ms", "1000")] {
            if !extra.lines().any(|l| l.trim_start().starts_with(key)) {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        text.push_str(&extra);
        let config = dir.path().join(format!("node{id}.toml"));
        std::fs::write(&config, text).unwrap();
        let mut node = Node { id, config, log: dir.path().join(format!("node{id}.log")), child: None };
        node.start();
        nodes.push(node);
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
    Cluster { http: format!("http://127.0.0.1:{}", http[0]), dir, nodes, client }
}

impl Cluster {
    /// The gateway URL of node `id`.
    pub fn gateway(&self, id: u64) -> String {
        let text = std::fs::read_to_string(&self.nodes[(id - 1) as usize].config).unwrap();
        let line = text.lines().find(|l| l.starts_with("http_listen")).unwrap();
        format!("http://{}", line.split('"').nth(1).unwrap())
    }

    /// The gRPC address of node `id`.
    pub fn grpc(&self, id: u64) -> String {
        let text = std::fs::read_to_string(&self.nodes[(id - 1) as usize].config).unwrap();
        let line = text.lines().find(|l| l.starts_with("grpc_listen")).unwrap();
        line.split('"').nth(1).unwrap().to_string()
    }

    /// Adds node `id` (storage role only, not bootstrapping) and starts it.
    pub fn add_storage_node(&mut self, id: u64) {
        let grpc = free_port();
        let mut peers: Vec<String> = (1..id).map(|n| format!("{n} = \"{}\"", self.grpc(n))).collect();
        peers.push(format!("{id} = \"127.0.0.1:{grpc}\""));
        let data = self.dir.path().join(format!("node{id}"));
        let text = format!(
            "[node]\nid = {id}\ndata_dir = {data:?}\n\n[cluster]\nsecret = \"{SECRET}\"\npeers = {{ {} }}\n\
             regions = {{ ap-south = 1, eu-west = 2, us-east = 3 }}\n\n[storage]\ngrpc_listen = \"127.0.0.1:{grpc}\"\n\
             heartbeat_ms = 50\nelection_timeout_ms = 300\n",
            peers.join(", ")
        );
        let config = self.dir.path().join(format!("node{id}.toml"));
        std::fs::write(&config, text).unwrap();
        let mut node = Node { id, config, log: self.dir.path().join(format!("node{id}.log")), child: None };
        node.start();
        self.nodes.push(node);
    }

    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- node {} ---\n{}", n.id, std::fs::read_to_string(&n.log).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub async fn wait_ready(&self, base: &str, timeout: Duration) {
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
}

/// A request and its status and JSON body.
pub async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
    key: Option<&str>,
) -> (u16, Value) {
    let mut req = client.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    assert!(r.headers().contains_key("x-request-id"), "no x-request-id on {url}");
    let text = r.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, body)
}

pub fn dir_of(p: &Path) -> PathBuf {
    p.to_path_buf()
}
