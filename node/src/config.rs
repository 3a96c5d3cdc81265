//! `ticketd run` configuration: a TOML file, then `TICKETD_`-prefixed
//! environment variables (`TICKETD_GATEWAY__HTTP_LISTEN` sets
//! `gateway.http_listen`), then command-line flags. Unknown keys and bad
//! values stop start-up with a message that names the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The whole configuration of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node.
    pub node: NodeSection,
    /// The cluster it belongs to.
    pub cluster: ClusterSection,
    /// The storage role: hosts replicas of region groups. Absent: no storage role.
    #[serde(default)]
    pub storage: Option<StorageSection>,
    /// The gateway role: serves the HTTP API. Absent: no gateway role.
    #[serde(default)]
    pub gateway: Option<GatewaySection>,
    /// Logging.
    #[serde(default)]
    pub log: LogSection,
}

/// `[node]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Node id, unique in the cluster and never reused.
    pub id: u64,
    /// Where the node keeps its data.
    pub data_dir: PathBuf,
}

/// `[cluster]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Secret every node and gateway of the cluster presents on gRPC calls.
    pub secret: String,
    /// Storage nodes: id → gRPC address.
    pub peers: BTreeMap<String, String>,
    /// Region groups: region name → group id.
    pub regions: BTreeMap<String, u64>,
}

/// `[storage]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// gRPC address this node listens on (Raft traffic and the Shard service).
    pub grpc_listen: SocketAddr,
    /// Regions whose groups this node hosts (default: every region).
    #[serde(default)]
    pub regions: Option<Vec<String>>,
    /// Initialize every region group with all peers as voters when it has
    /// never been initialized. Set on exactly one node of a new cluster.
    #[serde(default)]
    pub bootstrap: bool,
    /// Load the demo catalog (dev clusters). Needs `bootstrap`.
    #[serde(default)]
    pub demo_data: bool,
    /// Spread group leaders over the peers once the cluster is up (needs `bootstrap`).
    #[serde(default)]
    pub spread_leaders: bool,
    /// Raft heartbeat.
    #[serde(default = "defaults::heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// Election timeout, lower end (the upper end is twice this).
    #[serde(default = "defaults::election_timeout_ms")]
    pub election_timeout_ms: u64,
    /// How often the leader proposes an expiry sweep.
    #[serde(default = "defaults::sweep_interval_ms")]
    pub sweep_interval_ms: u64,
    /// Log entries between snapshots (also the most a restart replays on
    /// top of its snapshot).
    #[serde(default = "defaults::snapshot_logs_since_last")]
    pub snapshot_logs_since_last: u64,
    /// Commands that reach a group's leader together share one log entry,
    /// up to this many (1 to 1,024; 1 turns batching off).
    #[serde(default = "defaults::entry_commands_max")]
    pub entry_commands_max: usize,
    /// Log entries a group's leader has proposed and not yet applied at
    /// most; proposals arriving meanwhile wait and share the next entry.
    #[serde(default = "defaults::entries_inflight_max")]
    pub entries_inflight_max: usize,
}

/// `[gateway]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// HTTP address of the API.
    pub http_listen: SocketAddr,
    /// HS256 key of user tokens (at least 32 bytes).
    pub jwt_secret: String,
    /// Ed25519 seed of ticket QR signatures, 64 hex digits.
    pub ticket_key_seed: String,
    /// Dev mode: serves `POST /v1/dev/token`.
    #[serde(default)]
    pub dev_mode: bool,
    /// Largest request body.
    #[serde(default = "defaults::body_bytes_max")]
    pub body_bytes_max: usize,
    /// Requests per second per user (token bucket refill).
    #[serde(default = "defaults::user_requests_per_sec")]
    pub user_requests_per_sec: u32,
    /// Token bucket size per user.
    #[serde(default = "defaults::user_burst_max")]
    pub user_burst_max: u32,
    /// Waiting-room joins per second from one client address.
    #[serde(default = "defaults::join_addr_per_sec")]
    pub join_addr_per_sec: u32,
    /// Burst of waiting-room joins from one client address.
    #[serde(default = "defaults::join_addr_burst_max")]
    pub join_addr_burst_max: u32,
    /// Costly anonymous reads (seat maps, seat streams, the queue audit)
    /// per second from one client address.
    #[serde(default = "defaults::read_addr_per_sec")]
    pub read_addr_per_sec: u32,
    /// Burst of costly anonymous reads from one client address.
    #[serde(default = "defaults::read_addr_burst_max")]
    pub read_addr_burst_max: u32,
    /// Live streams (seat maps and waiting-room positions) served at once.
    #[serde(default = "defaults::streams_max")]
    pub streams_max: usize,
    /// How long a call to the cluster may keep retrying before 503.
    #[serde(default = "defaults::cluster_budget_ms")]
    pub cluster_budget_ms: u64,
    /// How long the sandbox payment provider takes to time out (`tok_timeout`).
    #[serde(default = "defaults::payment_timeout_ms")]
    pub payment_timeout_ms: u64,
    /// A pending payment younger than this is left to the request that
    /// started it; older ones are reconciled with the provider. Must exceed
    /// the provider's longest call.
    #[serde(default = "defaults::payment_grace_ms")]
    pub payment_grace_ms: u64,
    /// Webhook URLs that receive domain events.
    #[serde(default)]
    pub webhooks: Vec<String>,
    /// HMAC key of webhook signatures.
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// The payment provider (`[gateway.payments]`).
    #[serde(default)]
    pub payments: PaymentsSection,
}

impl GatewaySection {
    /// The provider in effect: the configured one, else the sandbox in dev
    /// mode. `None` (refused by validation) outside dev mode without one.
    pub fn payment_provider(&self) -> Option<ProviderKind> {
        self.payments.provider.or(self.dev_mode.then_some(ProviderKind::Sandbox))
    }

    /// Whether bookings are free although this is no dev gateway: the
    /// sandbox was chosen explicitly outside dev mode.
    pub fn free_bookings(&self) -> bool {
        !self.dev_mode && self.payments.provider == Some(ProviderKind::Sandbox)
    }
}

/// `[gateway.payments]`: who takes the money. Outside dev mode there is no
/// default: a gateway that could book seats for free by accident is worse
/// than one that does not start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsSection {
    /// `http` (a provider speaking docs/payments.md) or `sandbox` (the
    /// built-in test tokens; bookings are free). Default: `sandbox` in dev
    /// mode, none otherwise.
    #[serde(default)]
    pub provider: Option<ProviderKind>,
    /// http: the provider's API, `http://host:port[/prefix]` (`https://`
    /// needs a build with the `https` feature).
    #[serde(default)]
    pub base_url: Option<String>,
    /// http: the key every request to the provider is signed with
    /// (HMAC-SHA256), at least 32 characters.
    #[serde(default)]
    pub api_key: Option<String>,
    /// http: the key the provider signs its webhooks with, at least 32
    /// characters.
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// http: how long one call to the provider may take, 100 ms to 60 s.
    /// A call that takes longer has an unknown outcome and is reconciled.
    #[serde(default = "defaults::payments_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// http: largest response body read from the provider, 1 KiB to 1 MiB.
    #[serde(default = "defaults::payments_response_bytes_max")]
    pub response_bytes_max: usize,
    /// http: calls to the provider in flight at most, 1 to 10,000.
    #[serde(default = "defaults::payments_calls_inflight_max")]
    pub calls_inflight_max: usize,
    /// http: how far a webhook's timestamp may be from the gateway's
    /// clock, 1 s to 1 h. Older notifications are refused as replays.
    #[serde(default = "defaults::payments_webhook_tolerance_secs")]
    pub webhook_tolerance_secs: u64,
}

/// A payment provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// The built-in test tokens, in the gateway's memory: no money moves.
    Sandbox,
    /// A provider over HTTP (docs/payments.md).
    Http,
}

/// `[log]`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `text` or `json`.
    #[serde(default = "defaults::log_format")]
    pub format: LogFormat,
    /// A tracing filter (`info`, `ticketd=debug,raft=info`).
    #[serde(default = "defaults::log_level")]
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection { format: LogFormat::Text, level: defaults::log_level() }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

mod defaults {
    use super::LogFormat;
    pub(super) fn heartbeat_ms() -> u64 {
        100
    }
    pub(super) fn election_timeout_ms() -> u64 {
        500
    }
    pub(super) fn sweep_interval_ms() -> u64 {
        500
    }
    pub(super) fn snapshot_logs_since_last() -> u64 {
        raft::SNAPSHOT_LOGS_DEFAULT
    }
    pub(super) fn entry_commands_max() -> usize {
        raft::Batching::default().entry_commands_max
    }
    pub(super) fn entries_inflight_max() -> usize {
        raft::Batching::default().entries_inflight_max
    }
    pub(super) fn body_bytes_max() -> usize {
        64 * 1024
    }
    pub(super) fn user_requests_per_sec() -> u32 {
        20
    }
    pub(super) fn join_addr_per_sec() -> u32 {
        20
    }
    pub(super) fn read_addr_per_sec() -> u32 {
        50
    }
    pub(super) fn read_addr_burst_max() -> u32 {
        200
    }
    pub(super) fn join_addr_burst_max() -> u32 {
        100
    }
    pub(super) fn user_burst_max() -> u32 {
        40
    }
    pub(super) fn streams_max() -> usize {
        10_000
    }
    pub(super) fn cluster_budget_ms() -> u64 {
        5_000
    }
    pub(super) fn payment_timeout_ms() -> u64 {
        2_000
    }
    pub(super) fn payment_grace_ms() -> u64 {
        30_000
    }
    pub(super) fn payments_call_timeout_ms() -> u64 {
        5_000
    }
    pub(super) fn payments_response_bytes_max() -> usize {
        64 * 1024
    }
    pub(super) fn payments_calls_inflight_max() -> usize {
        256
    }
    pub(super) fn payments_webhook_tolerance_secs() -> u64 {
        300
    }
    pub(super) fn log_format() -> LogFormat {
        LogFormat::Text
    }
    pub(super) fn log_level() -> String {
        "info".into()
    }
}

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn bad(key: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("`{key}`: {why}"))
}

impl Config {
    /// Reads `file` (if given), then the environment, then `overrides`
    /// (flag values as `("gateway.http_listen", "127.0.0.1:8081")`), and
    /// checks the result.
    pub fn load(file: Option<&Path>, overrides: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!("config file {} does not exist", path.display())));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("TICKETD_").split("__"));
        for (key, value) in overrides {
            // Parsed like environment values: `8080` is a number, `true` a bool.
            let value: figment::value::Value = value.parse().unwrap_or_else(|_| value.as_str().into());
            figment = figment.merge(Serialized::global(key, value));
        }
        let config: Config = figment.extract().map_err(|e| {
            let errors: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            ConfigError(errors.join("; "))
        })?;
        config.validate()?;
        config.check_dev_mode(std::env::vars(), std::env::var(crate::debug::ALLOW_ENV).ok().as_deref())?;
        Ok(config)
    }

    /// Dev mode mints tokens with any roles for anyone who reaches the
    /// gateway, so it is never switched on by accident: only the
    /// configuration file turns it on (an environment variable or flag is
    /// refused), and a gateway on a non-loopback address needs the same
    /// explicit allowance as the debug hooks.
    fn check_dev_mode(
        &self,
        env: impl IntoIterator<Item = (String, String)>,
        allow: Option<&str>,
    ) -> Result<(), ConfigError> {
        let from_env = env.into_iter().any(|(k, _)| k.eq_ignore_ascii_case("TICKETD_GATEWAY__DEV_MODE"));
        if from_env {
            return Err(bad(
                "gateway.dev_mode",
                "can only be set in the configuration file (TICKETD_GATEWAY__DEV_MODE is refused)",
            ));
        }
        let Some(gateway) = self.gateway.as_ref().filter(|g| g.dev_mode) else { return Ok(()) };
        if !gateway.http_listen.ip().is_loopback() && allow != Some(crate::debug::ALLOW_VALUE) {
            return Err(bad(
                "gateway.dev_mode",
                format!(
                    "hands out admin tokens to anyone who reaches {}; off loopback it needs {}={}",
                    gateway.http_listen,
                    crate::debug::ALLOW_ENV,
                    crate::debug::ALLOW_VALUE
                ),
            ));
        }
        Ok(())
    }

    /// Parses a whole configuration from TOML text (tests, `ticketd dev`).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = Figment::from(Toml::string(text)).extract().map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The peers as id → address.
    pub fn peers(&self) -> BTreeMap<u64, String> {
        self.cluster.peers.iter().map(|(k, v)| (k.parse().expect("validated"), v.clone())).collect()
    }

    /// The regions this node's storage role hosts, with their group ids.
    pub fn hosted_regions(&self) -> Vec<(String, u64)> {
        let Some(storage) = &self.storage else { return Vec::new() };
        self.cluster
            .regions
            .iter()
            .filter(|(name, _)| storage.regions.as_ref().is_none_or(|r| r.contains(name)))
            .map(|(n, g)| (n.clone(), *g))
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.node.id == 0 {
            return Err(bad("node.id", "must be a positive integer"));
        }
        if self.node.data_dir.as_os_str().is_empty() {
            return Err(bad("node.data_dir", "must not be empty"));
        }
        if self.cluster.secret.len() < 16 {
            return Err(bad("cluster.secret", "must be at least 16 characters"));
        }
        if self.cluster.peers.is_empty() {
            return Err(bad("cluster.peers", "must name at least one storage node"));
        }
        for (id, addr) in &self.cluster.peers {
            let key = format!("cluster.peers.{id}");
            match id.parse::<u64>() {
                Ok(0) | Err(_) => return Err(bad(&key, "peer ids must be positive integers")),
                Ok(_) => {}
            }
            if addr.parse::<SocketAddr>().is_err() && !addr.contains(':') {
                return Err(bad(&key, format!("{addr:?} is not a host:port address")));
            }
        }
        if self.cluster.regions.is_empty() {
            return Err(bad("cluster.regions", "must name at least one region group"));
        }
        let mut groups = std::collections::BTreeSet::new();
        for (name, group) in &self.cluster.regions {
            let key = format!("cluster.regions.{name}");
            if *group == 0 || !groups.insert(*group) {
                return Err(bad(&key, "group ids must be positive and distinct"));
            }
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                return Err(bad(&key, "region names use a-z, 0-9 and -"));
            }
        }
        if self.storage.is_none() && self.gateway.is_none() {
            return Err(bad("storage", "a node needs the storage role, the gateway role, or both"));
        }
        if let Some(storage) = &self.storage {
            if !self.cluster.peers.contains_key(&self.node.id.to_string()) {
                return Err(bad("cluster.peers", format!("a storage node must list itself (id {})", self.node.id)));
            }
            if let Some(regions) = &storage.regions {
                for r in regions {
                    if !self.cluster.regions.contains_key(r) {
                        return Err(bad("storage.regions", format!("unknown region {r:?}")));
                    }
                }
            }
            if storage.demo_data && !storage.bootstrap {
                return Err(bad("storage.demo_data", "needs storage.bootstrap"));
            }
            if storage.heartbeat_ms == 0 || storage.election_timeout_ms <= storage.heartbeat_ms * 2 {
                return Err(bad("storage.election_timeout_ms", "must exceed twice storage.heartbeat_ms"));
            }
        }
        if let Some(gateway) = &self.gateway {
            if gateway.jwt_secret.len() < 32 {
                return Err(bad("gateway.jwt_secret", "must be at least 32 characters"));
            }
            if decode_seed(&gateway.ticket_key_seed).is_none() {
                return Err(bad("gateway.ticket_key_seed", "must be 64 hex digits"));
            }
            if gateway.body_bytes_max < 1024 || gateway.body_bytes_max > 16 * 1024 * 1024 {
                return Err(bad("gateway.body_bytes_max", "must be between 1 KiB and 16 MiB"));
            }
            if gateway.payment_grace_ms <= gateway.payment_timeout_ms {
                return Err(bad("gateway.payment_grace_ms", "must exceed gateway.payment_timeout_ms"));
            }
            if gateway.streams_max == 0 || gateway.streams_max > 1_000_000 {
                return Err(bad("gateway.streams_max", "must be between 1 and 1,000,000"));
            }
            if gateway.read_addr_per_sec == 0 || gateway.read_addr_burst_max == 0 {
                return Err(bad("gateway.read_addr_per_sec", "rate limits must be positive"));
            }
            if gateway.join_addr_per_sec == 0 || gateway.join_addr_burst_max == 0 {
                return Err(bad("gateway.join_addr_per_sec", "rate limits must be positive"));
            }
            if gateway.user_requests_per_sec == 0 || gateway.user_burst_max == 0 {
                return Err(bad("gateway.user_requests_per_sec", "rate limits must be positive"));
            }
            if !gateway.webhooks.is_empty() && gateway.webhook_secret.as_deref().is_none_or(str::is_empty) {
                return Err(bad("gateway.webhook_secret", "webhooks need a signing secret"));
            }
            validate_payments(gateway)?;
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(bad("log.level", format!("{:?} is not a log filter", self.log.level)));
        }
        Ok(())
    }
}

/// Shortest provider key and webhook secret.
const PAYMENT_SECRET_CHARS_MIN: usize = 32;

fn validate_payments(gateway: &GatewaySection) -> Result<(), ConfigError> {
    let p = &gateway.payments;
    let http_only = [
        ("base_url", p.base_url.is_some()),
        ("api_key", p.api_key.is_some()),
        ("webhook_secret", p.webhook_secret.is_some()),
    ];
    match gateway.payment_provider() {
        None => Err(bad(
            "gateway.payments.provider",
            "must be set outside dev mode: \"http\" for a payment provider (docs/payments.md), or \"sandbox\" \
             to take bookings without payment",
        )),
        Some(ProviderKind::Sandbox) => match http_only.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(bad(&format!("gateway.payments.{key}"), "is only used with provider = \"http\"")),
            None => Ok(()),
        },
        Some(ProviderKind::Http) => {
            let key = "gateway.payments.base_url";
            let Some(url) = &p.base_url else { return Err(bad(key, "is needed with provider = \"http\"")) };
            let parsed = reqwest::Url::parse(url).map_err(|e| bad(key, format!("{url:?} is not a URL: {e}")))?;
            match parsed.scheme() {
                "http" => {}
                "https" if cfg!(feature = "https") => {}
                "https" => return Err(bad(key, "https needs a ticketd built with the `https` feature")),
                other => return Err(bad(key, format!("scheme {other:?} is not http or https"))),
            }
            if parsed.host_str().is_none() || parsed.query().is_some() || !parsed.username().is_empty() {
                return Err(bad(key, "must be scheme://host[:port][/prefix], without credentials or query"));
            }
            for (name, value) in [("api_key", &p.api_key), ("webhook_secret", &p.webhook_secret)] {
                if value.as_deref().is_none_or(|v| v.chars().count() < PAYMENT_SECRET_CHARS_MIN) {
                    return Err(bad(
                        &format!("gateway.payments.{name}"),
                        format!("must be at least {PAYMENT_SECRET_CHARS_MIN} characters"),
                    ));
                }
            }
            if !(100..=60_000).contains(&p.call_timeout_ms) {
                return Err(bad("gateway.payments.call_timeout_ms", "must be between 100 and 60,000"));
            }
            if gateway.payment_grace_ms <= p.call_timeout_ms {
                return Err(bad("gateway.payment_grace_ms", "must exceed gateway.payments.call_timeout_ms"));
            }
            if !(1024..=1024 * 1024).contains(&p.response_bytes_max) {
                return Err(bad("gateway.payments.response_bytes_max", "must be between 1 KiB and 1 MiB"));
            }
            if !(1..=10_000).contains(&p.calls_inflight_max) {
                return Err(bad("gateway.payments.calls_inflight_max", "must be between 1 and 10,000"));
            }
            if !(1..=3600).contains(&p.webhook_tolerance_secs) {
                return Err(bad("gateway.payments.webhook_tolerance_secs", "must be between 1 and 3,600"));
            }
            Ok(())
        }
    }
}

/// The 32-byte seed in 64 hex digits.
pub fn decode_seed(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[node]
id = 1
data_dir = "/tmp/n1"

[cluster]
secret = "0123456789abcdef-secret"
peers = { 1 = "127.0.0.1:7001", 2 = "127.0.0.1:7002" }
regions = { ap-south = 1, eu-west = 2 }

[storage]
grpc_listen = "127.0.0.1:7001"
bootstrap = true

[gateway]
http_listen = "127.0.0.1:8080"
jwt_secret = "0123456789abcdef0123456789abcdef"
ticket_key_seed = "0000000000000000000000000000000000000000000000000000000000000001"
payments = { provider = "sandbox" }
"#;

    #[test]
    fn a_good_file_parses_with_defaults() {
        let c = Config::from_toml(GOOD).unwrap();
        assert_eq!(c.node.id, 1);
        assert_eq!(c.peers()[&2], "127.0.0.1:7002");
        assert_eq!(c.hosted_regions(), vec![("ap-south".to_string(), 1), ("eu-west".to_string(), 2)]);
        let s = c.storage.unwrap();
        assert_eq!((s.heartbeat_ms, s.election_timeout_ms), (100, 500));
        assert_eq!(c.gateway.unwrap().body_bytes_max, 64 * 1024);
        assert_eq!(c.log.format, LogFormat::Text);
    }

    #[test]
    fn dev_mode_comes_only_from_the_file_and_stays_on_loopback_unless_allowed() {
        let dev = Config::from_toml(&format!("{GOOD}dev_mode = true\n")).unwrap();
        assert!(dev.check_dev_mode(Vec::new(), None).is_ok());
        let env = vec![("TICKETD_GATEWAY__DEV_MODE".to_string(), "true".to_string())];
        let plain = Config::from_toml(GOOD).unwrap();
        let err = plain.check_dev_mode(env.clone(), None).unwrap_err().to_string();
        assert!(err.contains("gateway.dev_mode") && err.contains("configuration file"), "{err}");
        let lower = vec![("ticketd_gateway__dev_mode".to_string(), "1".to_string())];
        assert!(plain.check_dev_mode(lower, None).is_err(), "figment reads keys case-insensitively");
        let open = Config::from_toml(
            &GOOD
                .replace("127.0.0.1:8080", "0.0.0.0:8080")
                .replace("ticket_key_seed", "dev_mode = true\nticket_key_seed"),
        )
        .unwrap();
        let err = open.check_dev_mode(Vec::new(), None).unwrap_err().to_string();
        assert!(err.contains("0.0.0.0:8080") && err.contains(crate::debug::ALLOW_ENV), "{err}");
        assert!(open.check_dev_mode(Vec::new(), Some(crate::debug::ALLOW_VALUE)).is_ok());
        let quiet = Config::from_toml(&GOOD.replace("127.0.0.1:8080", "0.0.0.0:8080")).unwrap();
        assert!(quiet.check_dev_mode(Vec::new(), None).is_ok(), "no dev mode, nothing to allow");
    }

    fn error_of(text: &str) -> String {
        Config::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_key() {
        assert!(error_of(&GOOD.replace("id = 1\n", "id = 0\n")).contains("node.id"));
        assert!(error_of(&GOOD.replace("id = 1\n", "id = \"x\"\n")).contains("id"));
        assert!(error_of(&GOOD.replace("jwt_secret = \"0123456789abcdef0123456789abcdef\"", "jwt_secret = \"short\""))
            .contains("gateway.jwt_secret"));
        assert!(error_of(&GOOD.replace("ticket_key_seed = \"00", "ticket_key_seed = \"zz")).contains("ticket_key_seed"));
        assert!(error_of(&GOOD.replace("bootstrap = true", "bootstrap = true\nwhat = 1")).contains("what"));
        assert!(error_of(&GOOD.replace("ap-south = 1, eu-west = 2", "ap-south = 1, eu-west = 1"))
            .contains("cluster.regions.eu-west"));
        assert!(error_of(&GOOD.replace("1 = \"127.0.0.1:7001\", ", "")).contains("cluster.peers"));
        assert!(error_of(&GOOD.replace("grpc_listen = \"127.0.0.1:7001\"", "grpc_listen = \"nowhere\""))
            .contains("grpc_listen"));
    }

    #[test]
    fn outside_dev_mode_a_payment_provider_must_be_chosen() {
        let none = GOOD.replace("payments = { provider = \"sandbox\" }\n", "");
        assert!(error_of(&none).contains("gateway.payments.provider"), "{}", error_of(&none));
        let dev = Config::from_toml(&format!("{none}dev_mode = true\n")).unwrap().gateway.unwrap();
        assert_eq!(dev.payment_provider(), Some(ProviderKind::Sandbox), "dev mode defaults to the sandbox");
        assert!(!dev.free_bookings());
        let explicit = Config::from_toml(GOOD).unwrap().gateway.unwrap();
        assert_eq!(explicit.payment_provider(), Some(ProviderKind::Sandbox));
        assert!(explicit.free_bookings(), "an explicit sandbox outside dev mode is allowed, and flagged");
        let sandbox_with_url =
            GOOD.replace("provider = \"sandbox\"", "provider = \"sandbox\", base_url = \"http://x:1\"");
        assert!(error_of(&sandbox_with_url).contains("gateway.payments.base_url"));
        assert!(error_of(&GOOD.replace("provider = \"sandbox\"", "provider = \"stripe\"")).contains("provider"));
    }

    #[test]
    fn an_http_provider_needs_its_url_and_keys_within_bounds() {
        let key = "k".repeat(32);
        let http = |extra: &str| {
            GOOD.replace(
                "payments = { provider = \"sandbox\" }",
                &format!("payments = {{ provider = \"http\", {extra} }}"),
            )
        };
        let full = format!("base_url = \"http://127.0.0.1:9300\", api_key = \"{key}\", webhook_secret = \"{key}\"");
        let g = Config::from_toml(&http(&full)).unwrap().gateway.unwrap();
        assert_eq!(g.payment_provider(), Some(ProviderKind::Http));
        assert!(!g.free_bookings());
        assert_eq!(g.payments.call_timeout_ms, 5_000);
        for (config, names) in [
            (http(&full.replace("base_url = \"http://127.0.0.1:9300\", ", "")), "gateway.payments.base_url"),
            (http(&full.replace("http://127.0.0.1:9300", "ftp://127.0.0.1")), "gateway.payments.base_url"),
            (http(&full.replace("http://127.0.0.1:9300", "http://u:p@pay.example")), "gateway.payments.base_url"),
            (http(&full.replace(&format!("api_key = \"{key}\""), "api_key = \"short\"")), "gateway.payments.api_key"),
            (http(&full.replace(&format!(", webhook_secret = \"{key}\""), "")), "gateway.payments.webhook_secret"),
            (http(&format!("{full}, call_timeout_ms = 50")), "gateway.payments.call_timeout_ms"),
            (http(&format!("{full}, call_timeout_ms = 40000")), "gateway.payment_grace_ms"),
            (http(&format!("{full}, response_bytes_max = 10")), "gateway.payments.response_bytes_max"),
            (http(&format!("{full}, calls_inflight_max = 0")), "gateway.payments.calls_inflight_max"),
            (http(&format!("{full}, webhook_tolerance_secs = 0")), "gateway.payments.webhook_tolerance_secs"),
            (http(&format!("{full}, what = 1")), "what"),
        ] {
            let e = error_of(&config);
            assert!(e.contains(names), "{names}: {e}");
        }
        let https = http(&full.replace("http://127.0.0.1:9300", "https://pay.example"));
        if cfg!(feature = "https") {
            Config::from_toml(&https).unwrap();
        } else {
            assert!(error_of(&https).contains("needs a ticketd built with the `https` feature"));
        }
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let e = Config::load(Some(Path::new("/nonexistent/ticketd.toml")), &[]).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ticketd.toml"), "{e}");
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, GOOD).unwrap();
        let overrides = vec![("gateway.http_listen".to_string(), "127.0.0.1:9999".to_string())];
        let c = Config::load(Some(&path), &overrides).unwrap();
        assert_eq!(c.gateway.unwrap().http_listen, "127.0.0.1:9999".parse().unwrap());
    }
}
