//! Rust SDK of the ticketing gateway's HTTP API (`api-contract.md`).
//!
//! A [`Client`] is a typed async client for every route of the contract.
//! It is built for booking frontends that must never book twice:
//!
//! - every mutating call sends an `Idempotency-Key`, one fresh UUID per
//!   logical call, reused for each of its retries; the gateway answers a
//!   repeat with the first answer, through the replicated exactly-once
//!   table, whichever gateway receives it;
//! - calls are retried with exponential backoff (and `Retry-After`) on 503,
//!   429, 502, 504, timeouts and connection errors, rotating through the
//!   configured gateways; see [`RetryPolicy`];
//! - errors are a typed enum of the contract's codes ([`ErrorCode`]);
//! - the live seat map is a [`futures::Stream`] of [`SeatChange`]s that
//!   resumes with `Last-Event-ID` after a drop ([`Client::seat_stream`]);
//! - the waiting room is a helper that joins, waits for admission and holds
//!   with the access token ([`WaitingRoom`], [`Client::hold_through_queue`]).
//!
//! ```no_run
//! # async fn demo() -> client::Result<()> {
//! use client::{Client, HoldRequest};
//! let anonymous = Client::new("http://127.0.0.1:8080")?;
//! let alice = anonymous.with_token(anonymous.dev_token("alice", &[]).await?);
//! let hold = alice.hold("evt-1-5", &HoldRequest::best(4, "premium", true)).await?;
//! let booking = alice.book(&hold.hold_id, "tok_visa").await?;
//! # let _ = booking;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod error;
mod queue;
mod stream;
mod types;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

pub use error::{ApiError, Error, ErrorCode, Result};
pub use queue::{QueueUpdates, WaitingRoom};
pub use stream::{SeatChange, SeatStream};
pub use types::*;

/// When and how often a call is retried.
///
/// A call is retried on 429, 502, 503 and 504 answers, on timeouts and on
/// connection errors. Each retry waits an exponential backoff with jitter
/// (at least the answer's `Retry-After`), capped at `backoff_ms_max`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = try once).
    pub retries_max: u32,
    /// Wait before the first retry, in milliseconds; doubled per retry.
    pub backoff_ms_initial: u64,
    /// Longest wait between two attempts, in milliseconds.
    pub backoff_ms_max: u64,
    /// Longest wait for one attempt's answer, in milliseconds.
    pub attempt_timeout_ms: u64,
}

impl Default for RetryPolicy {
    /// Ten retries from 100 ms up to 2 s apart, 10 s per attempt: about
    /// 15 s of retrying, enough to ride out a leader election.
    fn default() -> Self {
        RetryPolicy { retries_max: 10, backoff_ms_initial: 100, backoff_ms_max: 2_000, attempt_timeout_ms: 10_000 }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based), with jitter, and at
    /// least `retry_after_secs` (capped like any wait).
    fn backoff(&self, retry: u32, retry_after_secs: Option<u64>) -> Duration {
        let exp = self.backoff_ms_initial.saturating_mul(1u64 << retry.min(20));
        let ceiling = exp.min(self.backoff_ms_max).max(1);
        // Jitter spreads clients that failed together (a leader change)
        // so they do not come back in lockstep.
        let jitter = (uuid::Uuid::new_v4().as_u128() as u64) % (ceiling / 2 + 1);
        let wait = ceiling / 2 + jitter;
        let floor = retry_after_secs.unwrap_or(0).saturating_mul(1_000).min(self.backoff_ms_max);
        Duration::from_millis(wait.max(floor))
    }
}

/// Builds a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    endpoints: Vec<String>,
    token: Option<String>,
    retry: RetryPolicy,
}

impl ClientBuilder {
    /// Adds a gateway base URL (`http://127.0.0.1:8080`). With several,
    /// a call that cannot reach one moves on to the next.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints.push(url.into().trim_end_matches('/').to_string());
        self
    }

    /// Sends this bearer token (a user JWT) with every call.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Replaces the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client> {
        if self.endpoints.is_empty() {
            return Err(Error::Config("no gateway endpoint given".into()));
        }
        for e in &self.endpoints {
            let url = reqwest::Url::parse(e).map_err(|err| Error::Config(format!("bad gateway URL {e:?}: {err}")))?;
            match url.scheme() {
                "http" => {}
                "https" if cfg!(feature = "https") => {}
                "https" => return Err(Error::Config(format!("gateway URL {e:?}: https needs the `https` feature"))),
                _ => return Err(Error::Config(format!("gateway URL {e:?} is not http(s)"))),
            }
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(self.retry.attempt_timeout_ms.min(2_000)))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner { http, endpoints: self.endpoints, current: AtomicUsize::new(0), retry: self.retry }),
            token: self.token.map(Arc::from),
            fixed_key: None,
            last_index: Arc::default(),
        })
    }
}

struct Inner {
    http: reqwest::Client,
    endpoints: Vec<String>,
    /// The endpoint calls go to first; moves on when one fails.
    current: AtomicUsize,
    retry: RetryPolicy,
}

/// A client of the gateway API. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    token: Option<Arc<str>>,
    fixed_key: Option<Arc<str>>,
    /// The `x-raft-index` of this handle's latest answer (0: none).
    last_index: Arc<AtomicU64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never prints the token.
        f.debug_struct("Client")
            .field("endpoints", &self.inner.endpoints)
            .field("authenticated", &self.token.is_some())
            .finish()
    }
}

/// One request as the retry loop sends it.
struct Call<'a> {
    method: Method,
    path: String,
    query: Option<&'a EventQuery>,
    body: Option<Value>,
    headers: Vec<(&'static str, String)>,
    mutating: bool,
    /// Health checks answer about this moment: no retries.
    once: bool,
}

impl<'a> Call<'a> {
    fn get(path: impl Into<String>) -> Call<'a> {
        Call {
            method: Method::GET,
            path: path.into(),
            query: None,
            body: None,
            headers: Vec::new(),
            mutating: false,
            once: false,
        }
    }

    fn mutate(method: Method, path: impl Into<String>, body: Option<Value>) -> Call<'a> {
        Call { method, path: path.into(), query: None, body, headers: Vec::new(), mutating: true, once: false }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Call<'a> {
        self.headers.push((name, value.into()));
        self
    }
}

/// An answer: status, headers and body.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    /// The idempotency key the request carried.
    key: Option<String>,
}

fn retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

/// Escapes an id for a URL path segment.
fn seg(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Value,
}

fn api_error(answer: &Answer) -> Error {
    let request_id = answer.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let (code, message, details) = match serde_json::from_slice::<ErrorEnvelope>(&answer.body) {
        Ok(e) => (ErrorCode::parse(&e.error.code), e.error.message, e.error.details),
        // Something between us and the gateway (a proxy) answered.
        Err(_) => (
            ErrorCode::Other(format!("http_{}", answer.status)),
            String::from_utf8_lossy(&answer.body).chars().take(500).collect(),
            Value::Null,
        ),
    };
    Error::Api(Box::new(ApiError {
        status: answer.status,
        code,
        message,
        details,
        request_id,
        retry_after_secs: retry_after(&answer.headers),
        idempotency_key: answer.key.clone(),
    }))
}

impl Client {
    /// A client of the gateway at `url` with the default retry policy and
    /// no token.
    pub fn new(url: impl Into<String>) -> Result<Client> {
        Client::builder().endpoint(url).build()
    }

    /// A builder, for several gateways, a token or another retry policy.
    pub fn builder() -> ClientBuilder {
        ClientBuilder { endpoints: Vec::new(), token: None, retry: RetryPolicy::default() }
    }

    /// The same client acting as the user of `token` (shares connections).
    pub fn with_token(&self, token: impl Into<String>) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            token: Some(Arc::from(token.into())),
            fixed_key: self.fixed_key.clone(),
            last_index: Arc::default(),
        }
    }

    /// The same client, sending `key` as the `Idempotency-Key` of its
    /// mutating calls instead of a fresh one per call.
    ///
    /// For one logical call that must stay one across process restarts,
    /// e.g. a script that may be run again: the gateway answers a repeat
    /// with the first answer. Using it for two different calls gets 422
    /// `idempotency_key_reused` for the second.
    pub fn with_idempotency_key(&self, key: impl Into<String>) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            token: self.token.clone(),
            fixed_key: Some(Arc::from(key.into())),
            last_index: Arc::default(),
        }
    }

    /// The state index (Raft log index << 10 plus the command's place in
    /// its entry) the latest answer through this handle was applied
    /// at (its `x-raft-index` header), if it wrote anything: a refusal the
    /// log decided (`seats_unavailable`, `hold_expired`, ...) has one too,
    /// and an idempotent repeat names the entry that answered it.
    ///
    /// Each handle from [`Client::with_token`] or
    /// [`Client::with_idempotency_key`] has its own; for an exact value, make
    /// one call at a time through a handle (fault-injection histories order
    /// writes by it).
    pub fn last_raft_index(&self) -> Option<u64> {
        Some(self.last_index.load(Ordering::Relaxed)).filter(|i| *i > 0)
    }

    /// The gateways this client talks to.
    pub fn endpoints(&self) -> &[String] {
        &self.inner.endpoints
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    fn endpoint(&self) -> (usize, &str) {
        let i = self.inner.current.load(Ordering::Relaxed) % self.inner.endpoints.len();
        (i, &self.inner.endpoints[i])
    }

    /// Moves calls on to the next gateway after `failed` did not answer
    /// (unless another call already did).
    fn rotate(&self, failed: usize) {
        let next = (failed + 1) % self.inner.endpoints.len();
        let _ = self.inner.current.compare_exchange(failed, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    fn request(&self, base: &str, call: &Call<'_>, key: Option<&str>) -> Result<reqwest::RequestBuilder> {
        let mut req = self.inner.http.request(call.method.clone(), format!("{base}{}", call.path));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        for (name, value) in &call.headers {
            let value = HeaderValue::from_str(value).map_err(|_| Error::Config(format!("bad {name} header value")))?;
            req = req.header(*name, value);
        }
        if let Some(q) = call.query {
            req = req.query(q);
        }
        if let Some(body) = &call.body {
            req = req.json(body);
        }
        Ok(req)
    }

    /// Sends `call`, retrying as the policy says; every attempt carries the
    /// same idempotency key.
    async fn send(&self, call: Call<'_>) -> Result<Answer> {
        let policy = &self.inner.retry;
        let key = call.mutating.then(|| match &self.fixed_key {
            Some(k) => k.to_string(),
            None => uuid::Uuid::new_v4().to_string(),
        });
        let retries_max = if call.once { 0 } else { policy.retries_max };
        let mut attempt: u32 = 0;
        loop {
            let (index, base) = self.endpoint();
            let req = self.request(base, &call, key.as_deref())?;
            let outcome = async {
                let response = req.timeout(Duration::from_millis(policy.attempt_timeout_ms)).send().await?;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let index = headers.get("x-raft-index").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                self.last_index.store(index.unwrap_or(0), Ordering::Relaxed);
                let body = response.bytes().await?.to_vec();
                Ok::<Answer, reqwest::Error>(Answer { status, headers, body, key: key.clone() })
            }
            .await;
            let (failure, retry_after_secs) = match outcome {
                Ok(answer) if !retryable_status(answer.status) => return Ok(answer),
                Ok(answer) if attempt >= retries_max => return Ok(answer),
                Ok(answer) => {
                    // 429 is this user's rate, the same on every gateway;
                    // the others mean this gateway or its group is stuck.
                    if answer.status != 429 {
                        self.rotate(index);
                    }
                    (None, retry_after(&answer.headers))
                }
                Err(e) if e.is_builder() => return Err(Error::Config(e.to_string())),
                Err(e) => {
                    self.rotate(index);
                    (Some(e), None)
                }
            };
            if let Some(e) = &failure {
                if attempt >= retries_max {
                    return Err(Error::Unreachable {
                        attempts: attempt + 1,
                        last: format!("{base}: {e}"),
                        idempotency_key: key,
                    });
                }
            }
            tokio::time::sleep(policy.backoff(attempt, retry_after_secs)).await;
            attempt += 1;
        }
    }

    /// Sends `call` and reads a JSON body of type `T` from a 2xx answer.
    async fn json<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T> {
        let answer = self.send(call).await?;
        decode(&answer)
    }

    /// Sends `call` and expects an empty success (204).
    async fn empty(&self, call: Call<'_>) -> Result<()> {
        let answer = self.send(call).await?;
        if (200..300).contains(&answer.status) {
            Ok(())
        } else {
            Err(api_error(&answer))
        }
    }

    // ---- dev mode, operations ----

    /// A user token from the dev-mode route (`POST /v1/dev/token`; 404
    /// outside dev mode). `roles` may hold `admin` and `scanner`.
    pub async fn dev_token(&self, user_id: &str, roles: &[&str]) -> Result<String> {
        #[derive(Deserialize)]
        struct Token {
            token: String,
        }
        let body = json!({"user_id": user_id, "roles": roles});
        let t: Token = self.json(Call::mutate(Method::POST, "/v1/dev/token", Some(body))).await?;
        Ok(t.token)
    }

    /// Whether the gateway process is up (`GET /healthz`; one attempt, no retries).
    pub async fn healthz(&self) -> Result<()> {
        let mut call = Call::get("/healthz");
        call.once = true;
        self.empty(call).await
    }

    /// Whether the gateway reaches a leader for every region (`GET /readyz`;
    /// one attempt, no retries). A gateway that is not ready answers 503
    /// with the regions it cannot reach: that is an answer, not an error.
    pub async fn readyz(&self) -> Result<Readiness> {
        let mut call = Call::get("/readyz");
        call.once = true;
        let answer = self.send(call).await?;
        if answer.status == 200 || answer.status == 503 {
            serde_json::from_slice(&answer.body)
                .map_err(|e| Error::Decode { status: answer.status, reason: e.to_string() })
        } else {
            Err(api_error(&answer))
        }
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> Result<String> {
        text(&self.send(Call::get("/metrics")).await?)
    }

    /// The OpenAPI document of the gateway (`GET /openapi.json`).
    pub async fn openapi(&self) -> Result<Value> {
        self.json(Call::get("/openapi.json")).await
    }

    // ---- catalog (admin) ----

    /// Creates a venue (admin).
    pub async fn create_venue(&self, venue: &NewVenue) -> Result<VenueCreated> {
        self.json(Call::mutate(Method::POST, "/v1/admin/venues", Some(to_value(venue)?))).await
    }

    /// Creates an event (admin).
    pub async fn create_event(&self, event: &NewEvent) -> Result<EventCreated> {
        self.json(Call::mutate(Method::POST, "/v1/admin/events", Some(to_value(event)?))).await
    }

    // ---- cluster (admin) ----

    /// Nodes and region groups as the gateway sees them (admin).
    pub async fn cluster_status(&self) -> Result<ClusterStatus> {
        self.json(Call::get("/v1/admin/cluster")).await
    }

    /// Adds the storage node `node_id` at gRPC address `addr` to every
    /// region group: as a learner, then, once caught up, as a voter (admin).
    pub async fn add_node(&self, node_id: u64, addr: &str) -> Result<ClusterChange> {
        let body = json!({"node_id": node_id, "addr": addr});
        self.json(Call::mutate(Method::POST, "/v1/admin/cluster/nodes", Some(body))).await
    }

    /// Removes node `node_id` from every region group it is a member of (admin).
    pub async fn remove_node(&self, node_id: u64) -> Result<ClusterChange> {
        self.json(Call::mutate(Method::DELETE, format!("/v1/admin/cluster/nodes/{node_id}"), None)).await
    }

    /// Hands the leadership of `region`'s group to node `to` (admin).
    pub async fn transfer_leader(&self, region: &str, to: u64) -> Result<ClusterChange> {
        let path = format!("/v1/admin/cluster/groups/{}/transfer", seg(region));
        self.json(Call::mutate(Method::POST, path, Some(json!({"to": to})))).await
    }

    /// Makes the replicas of `region`'s group snapshot now: the one on
    /// `node`, or every member's (admin).
    pub async fn trigger_snapshot(&self, region: &str, node: Option<u64>) -> Result<ClusterChange> {
        let path = format!("/v1/admin/cluster/groups/{}/snapshot", seg(region));
        let body = match node {
            Some(n) => json!({"node_id": n}),
            None => json!({}),
        };
        self.json(Call::mutate(Method::POST, path, Some(body))).await
    }

    // ---- browse ----

    /// Searches and lists events (`GET /v1/events`).
    pub async fn list_events(&self, query: &EventQuery) -> Result<EventPage> {
        let mut call = Call::get("/v1/events");
        call.query = Some(query);
        self.json(call).await
    }

    /// An event's details with availability per category.
    pub async fn event(&self, event_id: &str) -> Result<EventDetails> {
        self.json(Call::get(format!("/v1/events/{}", seg(event_id)))).await
    }

    /// The linearizable seat map of an event.
    pub async fn seat_map(&self, event_id: &str) -> Result<SeatMap> {
        self.json(Call::get(format!("/v1/events/{}/seats", seg(event_id)))).await
    }

    // ---- holds ----

    /// Holds seats (`POST /v1/events/{id}/holds`), all or none.
    ///
    /// An event whose waiting room is active answers 403
    /// [`ErrorCode::QueueRequired`]: see [`Client::hold_through_queue`].
    pub async fn hold(&self, event_id: &str, request: &HoldRequest) -> Result<Hold> {
        self.hold_call(event_id, request, None).await
    }

    /// Holds seats with the access token of a waiting-room admission.
    pub async fn hold_with_access(&self, event_id: &str, request: &HoldRequest, access_token: &str) -> Result<Hold> {
        self.hold_call(event_id, request, Some(access_token)).await
    }

    async fn hold_call(&self, event_id: &str, request: &HoldRequest, access: Option<&str>) -> Result<Hold> {
        let mut call =
            Call::mutate(Method::POST, format!("/v1/events/{}/holds", seg(event_id)), Some(to_value(request)?));
        if let Some(token) = access {
            call = call.header("X-Access-Token", token);
        }
        self.json(call).await
    }

    /// The user's live holds, waitlist offers included.
    pub async fn my_holds(&self) -> Result<Vec<Hold>> {
        #[derive(Deserialize)]
        struct Holds {
            holds: Vec<Hold>,
        }
        Ok(self.json::<Holds>(Call::get("/v1/me/holds")).await?.holds)
    }

    /// A hold of the user's.
    pub async fn get_hold(&self, hold_id: &str) -> Result<Hold> {
        self.json(Call::get(format!("/v1/holds/{}", seg(hold_id)))).await
    }

    /// Releases a hold; its seats are available at once.
    pub async fn release_hold(&self, hold_id: &str) -> Result<()> {
        self.empty(Call::mutate(Method::DELETE, format!("/v1/holds/{}", seg(hold_id)), None)).await
    }

    // ---- bookings ----

    /// Pays for a hold and confirms it (`POST /v1/bookings`) with a payment
    /// token (sandbox: `tok_visa`, `tok_declined`, ...).
    ///
    /// Retrying is safe: every attempt carries the call's idempotency key,
    /// so the charge and the booking happen at most once.
    pub async fn book(&self, hold_id: &str, payment_token: &str) -> Result<BookingOutcome> {
        let body = json!({"hold_id": hold_id, "payment": {"token": payment_token}});
        let answer = self.send(Call::mutate(Method::POST, "/v1/bookings", Some(body))).await?;
        if answer.status == 202 {
            #[derive(Deserialize)]
            struct Pending {
                booking_id: String,
            }
            let p: Pending = decode(&answer)?;
            return Ok(BookingOutcome::Pending { booking_id: p.booking_id });
        }
        Ok(BookingOutcome::Confirmed(decode(&answer)?))
    }

    /// A booking of the user's.
    pub async fn booking(&self, booking_id: &str) -> Result<Booking> {
        self.json(Call::get(format!("/v1/bookings/{}", seg(booking_id)))).await
    }

    /// The user's bookings.
    pub async fn my_bookings(&self) -> Result<Vec<Booking>> {
        #[derive(Deserialize)]
        struct Bookings {
            bookings: Vec<Booking>,
        }
        Ok(self.json::<Bookings>(Call::get("/v1/me/bookings")).await?.bookings)
    }

    /// Cancels a booking under the event's refund policy.
    pub async fn cancel_booking(&self, booking_id: &str) -> Result<Cancellation> {
        self.json(Call::mutate(Method::POST, format!("/v1/bookings/{}/cancel", seg(booking_id)), None)).await
    }

    // ---- tickets ----

    /// A ticket with its signed QR payload.
    pub async fn ticket(&self, ticket_id: &str) -> Result<Ticket> {
        self.json(Call::get(format!("/v1/tickets/{}", seg(ticket_id)))).await
    }

    /// The ticket's QR code as SVG text.
    pub async fn ticket_qr_svg(&self, ticket_id: &str) -> Result<String> {
        text(&self.send(Call::get(format!("/v1/tickets/{}/qr.svg", seg(ticket_id)))).await?)
    }

    /// Gives a ticket to another user; the old payload no longer checks in.
    pub async fn transfer_ticket(&self, ticket_id: &str, to_user: &str) -> Result<TransferredTicket> {
        let path = format!("/v1/tickets/{}/transfer", seg(ticket_id));
        self.json(Call::mutate(Method::POST, path, Some(json!({"to_user": to_user})))).await
    }

    /// Checks a ticket in by its QR payload (role `scanner`).
    pub async fn check_in(&self, qr_payload: &str) -> Result<CheckIn> {
        self.json(Call::mutate(Method::POST, "/v1/checkin", Some(json!({"qr_payload": qr_payload})))).await
    }

    /// The key that verifies ticket payloads offline.
    pub async fn public_key(&self) -> Result<PublicKey> {
        self.json(Call::get("/v1/tickets/public-key")).await
    }

    // ---- waitlist ----

    /// Joins a sold-out event's waitlist for `count` seats of `category`.
    pub async fn join_waitlist(&self, event_id: &str, count: u32, category: &str) -> Result<WaitlistEntry> {
        let path = format!("/v1/events/{}/waitlist", seg(event_id));
        self.json(Call::mutate(Method::POST, path, Some(json!({"count": count, "category": category})))).await
    }

    /// Leaves a waitlist.
    pub async fn leave_waitlist(&self, waitlist_id: &str) -> Result<()> {
        self.empty(Call::mutate(Method::DELETE, format!("/v1/waitlist/{}", seg(waitlist_id)), None)).await
    }

    // ---- waiting room ----

    /// Joins an event's waiting room (`POST /v1/events/{id}/queue`).
    /// Joining again returns the same place.
    pub async fn join_queue(&self, event_id: &str) -> Result<QueueTicket> {
        self.json(Call::mutate(Method::POST, format!("/v1/events/{}/queue", seg(event_id)), None)).await
    }

    /// Where the holder of `queue_token` stands in an event's waiting room.
    /// 410 [`ErrorCode::SoldOut`] once the event sold out.
    pub async fn queue_status(&self, event_id: &str, queue_token: &str) -> Result<QueueStatus> {
        Ok(self.queue_status_raw(event_id, queue_token).await?.0)
    }

    /// The status and, when the gateway hands one out, the queue token to
    /// use from now on.
    async fn queue_status_raw(&self, event_id: &str, queue_token: &str) -> Result<(QueueStatus, Option<String>)> {
        let call = Call::get(format!("/v1/events/{}/queue/status", seg(event_id))).header("X-Queue-Token", queue_token);
        let answer = self.send(call).await?;
        let mut raw: types::RawQueueStatus = decode(&answer)?;
        let fresh = raw.queue_token.take();
        let status = raw.into_status().ok_or_else(|| Error::Decode {
            status: answer.status,
            reason: "admitted without an access_token".into(),
        })?;
        Ok((status, fresh))
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Config(format!("request body: {e}")))
}

fn decode<T: DeserializeOwned>(answer: &Answer) -> Result<T> {
    if !(200..300).contains(&answer.status) {
        return Err(api_error(answer));
    }
    serde_json::from_slice(&answer.body).map_err(|e| Error::Decode { status: answer.status, reason: e.to_string() })
}

fn text(answer: &Answer) -> Result<String> {
    if !(200..300).contains(&answer.status) {
        return Err(api_error(answer));
    }
    String::from_utf8(answer.body.clone()).map_err(|e| Error::Decode { status: answer.status, reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_and_honours_retry_after() {
        let p = RetryPolicy { retries_max: 5, backoff_ms_initial: 100, backoff_ms_max: 1_000, attempt_timeout_ms: 1 };
        for _ in 0..100 {
            let first = p.backoff(0, None).as_millis();
            assert!((50..=100).contains(&first), "{first}");
            let late = p.backoff(10, None).as_millis();
            assert!((500..=1_000).contains(&late), "{late}");
            assert_eq!(p.backoff(0, Some(60)).as_millis(), 1_000, "Retry-After is capped");
            assert!(p.backoff(0, Some(1)).as_millis() >= 1_000);
        }
    }

    #[test]
    fn gateway_urls_are_checked_when_the_client_is_built() {
        assert!(Client::new("http://127.0.0.1:8080").is_ok());
        assert!(matches!(Client::new("ftp://127.0.0.1"), Err(Error::Config(_))));
        assert!(matches!(Client::builder().build(), Err(Error::Config(_))));
        assert_eq!(Client::new("https://tickets.example").is_ok(), cfg!(feature = "https"));
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(seg("evt-1-5"), "evt-1-5");
        assert_eq!(seg("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn every_known_code_round_trips() {
        for code in [
            "already_cancelled",
            "already_checked_in",
            "already_waitlisted",
            "booking_not_found",
            "cancellation_closed",
            "cluster_refused",
            "event_not_found",
            "forbidden",
            "hold_confirmed",
            "hold_expired",
            "hold_limit",
            "hold_not_found",
            "hold_released",
            "idempotency_key_reused",
            "internal",
            "invalid_category",
            "invalid_event",
            "invalid_layout",
            "invalid_queue_token",
            "invalid_region",
            "invalid_request",
            "invalid_seats",
            "invalid_ticket",
            "limit_reached",
            "no_waiting_room",
            "not_found",
            "not_on_sale",
            "not_sold_out",
            "not_together",
            "overloaded",
            "payload_too_large",
            "payment_attempts_exceeded",
            "payment_declined",
            "payment_in_progress",
            "queue_full",
            "queue_required",
            "rate_limited",
            "seats_lost",
            "seats_unavailable",
            "sold_out",
            "ticket_cancelled",
            "ticket_not_found",
            "ticket_used",
            "too_many_seats",
            "too_many_streams",
            "unauthorized",
            "unavailable",
            "user_hold_limit",
            "venue_not_found",
            "waitlist_not_found",
        ] {
            let parsed = ErrorCode::parse(code);
            assert!(!matches!(parsed, ErrorCode::Other(_)), "{code}");
            assert_eq!(parsed.as_str(), code);
        }
        assert_eq!(ErrorCode::parse("brand_new"), ErrorCode::Other("brand_new".into()));
    }

    #[test]
    fn hold_requests_have_the_contract_shape() {
        let v = serde_json::to_value(HoldRequest::seats(["Floor-A-1"])).unwrap();
        assert_eq!(v, json!({"seat_ids": ["Floor-A-1"]}));
        let v = serde_json::to_value(HoldRequest::best(4, "premium", true)).unwrap();
        assert_eq!(
            v,
            json!({"best_available": {"count": 4, "category": "premium", "together": true, "accessible": false}})
        );
    }

    #[test]
    fn queue_status_bodies_become_states() {
        let raw: types::RawQueueStatus =
            serde_json::from_value(json!({"position": null, "ahead": null, "pre_queue": true, "admitted": false}))
                .unwrap();
        assert!(matches!(raw.into_status(), Some(QueueStatus::Waiting { position: None, pre_queue: true, .. })));
        let raw: types::RawQueueStatus = serde_json::from_value(
            json!({"admitted": true, "access_token": "t", "access_expires_at": "2026-12-31T20:00:00Z"}),
        )
        .unwrap();
        assert!(matches!(raw.into_status(), Some(QueueStatus::Admitted(a)) if a.access_token == "t"));
        let raw: types::RawQueueStatus =
            serde_json::from_value(json!({"admitted": false, "position": 3, "access_expired": true})).unwrap();
        assert_eq!(raw.into_status(), Some(QueueStatus::AccessExpired { position: Some(3) }));
    }
}
