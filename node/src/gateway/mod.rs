//! The gateway role: the HTTP API of `docs/api-contract.md`, routed to
//! the leaders of the region groups over gRPC.
//!
//! # Layout
//! - `http`: the error shape, JSON bodies, the caller, idempotency keys.
//! - `ids`: external ids, which name their region group.
//! - `views`: the contract's JSON for the state machine's views.
//! - `routes`: the handlers.
//! - `saga`: paying for a hold (charge, confirm, refund) and the loop that
//!   reconciles charges whose outcome was unknown.
//! - `catalog`: a cache of every event for browsing and search, refreshed
//!   from the groups every second.
//! - `auth`, `tickets`, `payments`, `search`: JWTs, signed QR tickets, the
//!   payment provider interface and its sandbox, the search index.
//! - `payments_http`, `payment_webhook`: the HTTP payment provider
//!   (docs/payments.md) and its signed charge notifications.
//! - `queue`: the waiting room (batched joins, queue and access tokens,
//!   status and its stream, the hold gate, the pre-queue audit).

mod admin;
pub mod auth;
mod catalog;
mod http;
mod ids;
pub mod notify;
mod payment_webhook;
pub mod payments;
pub mod payments_http;
mod queue;
mod routes;
mod saga;
pub mod search;
mod stream;
pub mod tickets;
mod views;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use raft::{ClusterClient, Consistency, Query};
use statemachine::{Applied, Command, Millis, Op};

pub use http::ApiError;
pub use payment_webhook::PaymentWebhooks;
pub use routes::openapi_pretty;

use crate::gateway::auth::Auth;
use crate::gateway::payments::PaymentProvider;
use crate::gateway::search::SearchIndex;
use crate::gateway::tickets::TicketSigner;

/// What a gateway needs to run.
pub struct GatewaySettings {
    /// The cluster.
    pub cluster: ClusterClient,
    /// Region name → group id.
    pub regions: BTreeMap<String, u64>,
    /// User-token key.
    pub auth: Auth,
    /// Ticket signing key.
    pub signer: TicketSigner,
    /// Payment provider.
    pub payments: Arc<dyn PaymentProvider>,
    /// Verifies the HTTP provider's notifications (`None`: the route is a 404).
    pub payment_webhooks: Option<PaymentWebhooks>,
    /// Serve the dev-token route.
    pub dev_mode: bool,
    /// Largest request body.
    pub body_bytes_max: usize,
    /// Per-user requests per second.
    pub user_requests_per_sec: u32,
    /// Per-user burst.
    pub user_burst_max: u32,
    /// Where `/metrics` comes from.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Age at which a pending payment is reconciled.
    pub payment_grace_ms: u64,
    /// Webhooks for domain events (the log sink is always on).
    pub webhooks: Option<notify::Webhooks>,
    /// Live streams served at once.
    pub streams_max: usize,
    /// Waiting-room joins per second from one address.
    pub join_addr_per_sec: u32,
    /// Burst of joins from one address.
    pub join_addr_burst_max: u32,
    /// Costly anonymous reads per second from one address.
    pub read_addr_per_sec: u32,
    /// Burst of costly anonymous reads from one address.
    pub read_addr_burst_max: u32,
}

tokio::task_local! {
    /// The highest log index a request's proposals were applied at, for
    /// its `x-raft-index` response header (0: it wrote nothing).
    pub(crate) static LOG_INDEX: std::cell::Cell<u64>;
}

/// A running gateway's shared state. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    cluster: ClusterClient,
    regions: BTreeMap<String, u64>,
    auth: Auth,
    signer: TicketSigner,
    payments: Arc<dyn PaymentProvider>,
    payment_webhooks: Option<PaymentWebhooks>,
    dev_mode: bool,
    body_bytes_max: usize,
    limiter: DefaultKeyedRateLimiter<String>,
    /// Costly anonymous reads by client address: they need no token, so a
    /// per-user limit does not reach them.
    read_limiter: DefaultKeyedRateLimiter<std::net::IpAddr>,
    catalog: catalog::Catalog,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    payment_grace_ms: u64,
    streams: Arc<tokio::sync::Semaphore>,
    webhooks: Option<notify::Webhooks>,
    rooms: queue::Rooms,
    reconcile: saga::Cursors,
    seat_maps: tokio::sync::Semaphore,
}

/// Seat maps one gateway builds at once. A map is read under the group's
/// state lock on the leader (a stadium's is megabytes), so a flood of them
/// would hold up every apply; past this many they wait their turn.
const SEAT_MAPS_INFLIGHT_MAX: usize = 4;
/// How long a seat map waits for its turn before the caller is told to retry.
const SEAT_MAP_WAIT: Duration = Duration::from_secs(2);

fn wall_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Gateway {
    /// A gateway over `settings.cluster`.
    pub fn new(settings: GatewaySettings) -> Result<Gateway, ApiError> {
        let per_sec = NonZeroU32::new(settings.user_requests_per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.user_burst_max).unwrap_or(NonZeroU32::MIN);
        let search = SearchIndex::new().map_err(|e| ApiError::internal(format!("search index: {e}")))?;
        let mut groups: Vec<u64> = settings.regions.values().copied().collect();
        groups.sort_unstable();
        groups.dedup();
        let rooms = queue::Rooms::new(&groups, settings.join_addr_per_sec, settings.join_addr_burst_max);
        Ok(Gateway {
            inner: Arc::new(Inner {
                cluster: settings.cluster,
                regions: settings.regions,
                auth: settings.auth,
                signer: settings.signer,
                payments: settings.payments,
                payment_webhooks: settings.payment_webhooks,
                dev_mode: settings.dev_mode,
                body_bytes_max: settings.body_bytes_max,
                limiter: RateLimiter::keyed(Quota::per_second(per_sec).allow_burst(burst)),
                read_limiter: RateLimiter::keyed(
                    Quota::per_second(NonZeroU32::new(settings.read_addr_per_sec).unwrap_or(NonZeroU32::MIN))
                        .allow_burst(NonZeroU32::new(settings.read_addr_burst_max).unwrap_or(NonZeroU32::MIN)),
                ),
                catalog: catalog::Catalog::new(search),
                metrics: settings.metrics,
                payment_grace_ms: settings.payment_grace_ms,
                streams: Arc::new(tokio::sync::Semaphore::new(settings.streams_max)),
                webhooks: settings.webhooks,
                rooms,
                reconcile: saga::Cursors::default(),
                seat_maps: tokio::sync::Semaphore::new(SEAT_MAPS_INFLIGHT_MAX),
            }),
        })
    }

    pub(crate) fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    pub(crate) fn signer(&self) -> &TicketSigner {
        &self.inner.signer
    }

    pub(crate) fn payments(&self) -> &dyn PaymentProvider {
        &*self.inner.payments
    }

    pub(crate) fn payment_webhooks(&self) -> Option<&PaymentWebhooks> {
        self.inner.payment_webhooks.as_ref()
    }

    pub(crate) fn rooms(&self) -> &queue::Rooms {
        &self.inner.rooms
    }

    pub(crate) fn catalog(&self) -> &catalog::Catalog {
        &self.inner.catalog
    }

    pub(crate) fn cluster(&self) -> &ClusterClient {
        &self.inner.cluster
    }

    pub(crate) fn now_secs(&self) -> u64 {
        wall_ms() / 1000
    }

    pub(crate) fn now_ms(&self) -> Millis {
        wall_ms()
    }

    /// Region groups, in group order.
    pub(crate) fn groups(&self) -> Vec<u64> {
        let mut g: Vec<u64> = self.inner.regions.values().copied().collect();
        g.sort_unstable();
        g
    }

    pub(crate) fn regions(&self) -> &BTreeMap<String, u64> {
        &self.inner.regions
    }

    pub(crate) fn group_of_region(&self, region: &str) -> Result<u64, ApiError> {
        self.inner.regions.get(region).copied().ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_region", format!("unknown region {region:?}"))
                .details(serde_json::json!({"regions": self.inner.regions.keys().collect::<Vec<_>>()}))
        })
    }

    /// Checks an id's group exists; an id naming another group is a 404.
    pub(crate) fn known_group(&self, group: u64, not_found: ApiError) -> Result<u64, ApiError> {
        if self.inner.regions.values().any(|g| *g == group) {
            Ok(group)
        } else {
            Err(not_found)
        }
    }

    /// A costly anonymous read from `addr` (seat maps, seat streams, the
    /// queue audit), or 429 when that address is over its rate.
    pub(crate) fn check_read_rate(&self, addr: std::net::IpAddr) -> Result<(), ApiError> {
        match self.inner.read_limiter.check_key(&addr) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait =
                    not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
                metrics::counter!("gateway_rate_limited_total", "by" => "read_address").increment(1);
                Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many reads from this address")
                    .retry_after(wait.as_secs() + 1))
            }
        }
    }

    pub(crate) fn check_rate(&self, user: &str) -> Result<(), ApiError> {
        match self.inner.limiter.check_key(&user.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait =
                    not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
                metrics::counter!("gateway_rate_limited_total").increment(1);
                Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests")
                    .retry_after(wait.as_secs() + 1))
            }
        }
    }

    /// Proposes `op` for `client` under `request` and returns what applying
    /// it gave. A transport failure is a 503.
    pub(crate) async fn propose(&self, group: u64, client: &str, request: &str, op: Op) -> Result<Applied, ApiError> {
        let cmd = Command::new(client, request, op);
        let started = std::time::Instant::now();
        let result = self.inner.cluster.propose(group, &cmd).await;
        metrics::histogram!("gateway_proposal_seconds", "group" => group.to_string())
            .record(started.elapsed().as_secs_f64());
        let (applied, index) = result?;
        // The reply's `x-raft-index` (see `routes::observe`): the last
        // entry this request's writes were applied at.
        let _ = LOG_INDEX.try_with(|i| i.set(i.get().max(index)));
        Ok(applied)
    }

    /// A linearizable read.
    pub(crate) async fn read(&self, group: u64, query: Query) -> Result<raft::Answer, ApiError> {
        Ok(self.inner.cluster.read(group, &query, Consistency::Linearizable).await?.answer)
    }

    /// A linearizable read with the index it was made at.
    pub(crate) async fn read_indexed(&self, group: u64, query: Query) -> Result<raft::ReadReply, ApiError> {
        Ok(self.inner.cluster.read(group, &query, Consistency::Linearizable).await?)
    }

    /// The HTTP application.
    pub fn router(&self) -> axum::Router {
        routes::router(self.clone(), self.inner.body_bytes_max)
    }

    /// Starts the background loops: catalog refresh, payment
    /// reconciliation, limiter pruning. They stop when `stop` resolves.
    pub fn spawn_background(&self, stop: tokio::sync::watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let gw = self.clone();
        let mut s = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1_000));
            loop {
                tokio::select! {
                    _ = tick.tick() => gw.refresh_catalog().await,
                    _ = s.changed() => return,
                }
            }
        }));
        let gw = self.clone();
        let mut s = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(2_000));
            loop {
                tokio::select! {
                    _ = tick.tick() => saga::reconcile_once(&gw).await,
                    _ = s.changed() => return,
                }
            }
        }));
        tasks.extend(queue::spawn_batchers(self, stop.clone()));
        for group in self.groups() {
            let hooks = self.inner.webhooks.clone();
            tasks.push(tokio::spawn(notify::run_group(self.clone(), hooks, group, stop.clone())));
        }
        let gw = self.clone();
        let mut s = stop;
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        gw.inner.limiter.retain_recent();
                        gw.inner.limiter.shrink_to_fit();
                        gw.inner.read_limiter.retain_recent();
                        gw.inner.read_limiter.shrink_to_fit();
                        gw.inner.rooms.prune_limiter();
                    }
                    _ = s.changed() => return,
                }
            }
        }));
        tasks
    }

    /// Reloads every group's events into the browse cache and search index.
    pub async fn refresh_catalog(&self) {
        for group in self.groups() {
            if let Err(e) = catalog::refresh_group(self, group).await {
                tracing::debug!("catalog refresh of group {group}: {e:?}");
            }
        }
    }

    /// A place for one more live stream, or 503 when the gateway serves
    /// its `streams_max` already.
    pub(crate) fn stream_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.inner.streams).try_acquire_owned().map_err(|_| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_streams", "too many seat streams").retry_after(5)
        })
    }

    /// A turn to build a seat map, or 503 `busy` when none comes in time.
    pub(crate) async fn seat_map_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        match tokio::time::timeout(SEAT_MAP_WAIT, self.inner.seat_maps.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                metrics::counter!("gateway_seat_maps_refused_total").increment(1);
                Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "too many seat maps are being built")
                    .retry_after(1))
            }
        }
    }

    pub(crate) fn reconcile_cursors(&self) -> &saga::Cursors {
        &self.inner.reconcile
    }

    pub(crate) fn payment_grace_ms(&self) -> u64 {
        self.inner.payment_grace_ms
    }

    pub(crate) fn dev_mode(&self) -> bool {
        self.inner.dev_mode
    }

    pub(crate) fn metrics_text(&self) -> Option<String> {
        self.inner.metrics.as_ref().map(|h| h.render())
    }
}

/// Serves the gateway on `addr` until `stop` resolves, then drains.
pub async fn serve(
    gateway: Gateway,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let app = gateway.router().into_make_service_with_connect_info::<SocketAddr>();
    // Without TCP_NODELAY a response written in more than one segment waits
    // for the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).with_graceful_shutdown(stop).await
}
