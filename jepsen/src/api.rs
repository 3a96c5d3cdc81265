//! The gateway calls the workload makes, behind one small trait so the
//! transport is a one-file change. The workload goes through the SDK
//! (`client::Client`), with an explicit idempotency key per request and at
//! most one retry inside a call (so a call's interval stays short); setup
//! calls that are not recorded (tokens, catalog, readiness, the cluster
//! view) use plain HTTP.
//!
//! Every reply is classified the way the history needs it: `Ok` (it
//! happened), `Fail` (a definite refusal: a 4xx), `Info` (unknown: no
//! gateway answered, a 5xx, an unreadable answer, a 202 pending payment).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::history::{BookingRec, Counts, SeatStatus};

/// How a call ended.
#[derive(Clone, Debug)]
pub(crate) enum Reply<T> {
    Ok(T),
    Fail(String),
    Info(String),
}

/// A seat map and the log index it was read at.
#[derive(Clone, Debug)]
pub(crate) struct SeatMap {
    pub(crate) seats: BTreeMap<String, SeatStatus>,
    pub(crate) as_of_index: Option<u64>,
}

/// An acknowledged hold.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    pub(crate) hold: String,
    pub(crate) expires_at_ms: Option<u64>,
}

/// An acknowledged booking.
#[derive(Clone, Debug)]
pub(crate) struct Booked {
    pub(crate) booking: String,
    pub(crate) seats: Vec<String>,
}

/// A write's reply and the Raft log index it was applied at, when the
/// gateway said (its `x-raft-index` header; refusals the log decided have
/// one too).
pub(crate) type Indexed<T> = (Reply<T>, Option<u64>);

/// What the workload needs of a gateway.
pub(crate) trait Gateway: Send + Sync {
    fn hold(
        &self,
        token: &str,
        event: &str,
        seats: &[String],
        key: &str,
    ) -> impl std::future::Future<Output = Indexed<Held>> + Send;
    fn release(&self, token: &str, hold: &str, key: &str) -> impl std::future::Future<Output = Indexed<()>> + Send;
    fn confirm(&self, token: &str, hold: &str, key: &str) -> impl std::future::Future<Output = Indexed<Booked>> + Send;
    fn cancel(&self, token: &str, booking: &str, key: &str) -> impl std::future::Future<Output = Indexed<()>> + Send;
    fn seat_map(&self, event: &str) -> impl std::future::Future<Output = Reply<SeatMap>> + Send;
    fn counts(&self, event: &str) -> impl std::future::Future<Output = Reply<BTreeMap<String, Counts>>> + Send;
    fn bookings(&self, token: &str) -> impl std::future::Future<Output = Reply<Vec<BookingRec>>> + Send;
    fn join_queue(&self, token: &str, event: &str) -> impl std::future::Future<Output = Reply<Joined>> + Send;
    fn queue_status(
        &self,
        token: &str,
        event: &str,
        queue_token: &str,
    ) -> impl std::future::Future<Output = Reply<Standing>> + Send;
    fn hold_admitted(
        &self,
        token: &str,
        event: &str,
        seats: &[String],
        key: &str,
        access_token: &str,
    ) -> impl std::future::Future<Output = Indexed<Held>> + Send;
}

/// A place in a waiting room.
#[derive(Clone, Debug)]
pub(crate) struct Joined {
    pub(crate) position: Option<u64>,
    pub(crate) queue_token: String,
}

/// Where a user stands in a waiting room.
#[derive(Clone, Debug)]
pub(crate) enum Standing {
    Waiting { position: Option<u64> },
    Admitted { access_token: String },
    Expired { position: Option<u64> },
}

/// One gateway over HTTP.
#[derive(Clone)]
pub(crate) struct Http {
    base: String,
    client: reqwest::Client,
}

/// Errors of the setup calls (tokens, catalog), which are not recorded.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The gateway refused or failed.
    #[error("{what}: {detail}")]
    Refused {
        /// The call.
        what: String,
        /// Status and body, or the transport error.
        detail: String,
    },
}

fn code_of(body: &Json) -> String {
    body["error"]["code"].as_str().unwrap_or("unknown").to_string()
}

/// Parses `2026-12-01T18:35:20Z` (whole seconds, UTC, as the gateway writes).
pub(crate) fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

impl Http {
    /// A gateway at `base` (`http://10.77.0.11:8080`); each call gives up
    /// after `timeout`.
    pub(crate) fn new(base: String, timeout: Duration) -> Http {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(8)
            .build()
            .expect("a reqwest client with defaults");
        Http { base, client }
    }

    /// The base URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply<(u16, Json)> {
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = match r.text().await {
                    Ok(t) if t.is_empty() => Json::Null,
                    Ok(t) => serde_json::from_str(&t).unwrap_or(Json::String(t)),
                    Err(e) => return Reply::Info(format!("reading the body: {e}")),
                };
                Reply::Ok((status, body))
            }
            // Never connected: the request cannot have been applied.
            Err(e) if e.is_connect() => Reply::Fail("connect".into()),
            Err(e) if e.is_timeout() => Reply::Info("timeout".into()),
            Err(e) => Reply::Info(format!("transport: {e}")),
        }
    }

    /// Sends and classifies by status: 2xx (but 202) ok, 4xx fail, else info.
    async fn call(&self, req: reqwest::RequestBuilder) -> Reply<Json> {
        match self.send(req).await {
            Reply::Ok((202, _)) => Reply::Info("pending".into()),
            Reply::Ok((s, body)) if (200..300).contains(&s) => Reply::Ok(body),
            Reply::Ok((s, body)) if (400..500).contains(&s) => Reply::Fail(code_of(&body)),
            Reply::Ok((s, body)) => Reply::Info(format!("{s} {}", code_of(&body))),
            Reply::Fail(e) => Reply::Fail(e),
            Reply::Info(e) => Reply::Info(e),
        }
    }

    fn post(&self, path: &str, token: &str, key: &str) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.base)).bearer_auth(token).header("Idempotency-Key", key)
    }

    /// `GET /readyz` answered 200.
    pub(crate) async fn ready(&self) -> bool {
        matches!(self.send(self.client.get(format!("{}/readyz", self.base))).await, Reply::Ok((200, _)))
    }

    /// A dev-mode token for `user`.
    pub(crate) async fn token(&self, user: &str, roles: &[&str]) -> Result<String, ApiError> {
        let req =
            self.client.post(format!("{}/v1/dev/token", self.base)).json(&json!({"user_id": user, "roles": roles}));
        match self.call(req).await {
            Reply::Ok(body) => body["token"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| ApiError::Refused { what: "dev token".into(), detail: body.to_string() }),
            Reply::Fail(e) | Reply::Info(e) => Err(ApiError::Refused { what: "dev token".into(), detail: e }),
        }
    }

    /// Creates a venue of one section with `rows` rows of `seats` seats;
    /// returns its id.
    pub(crate) async fn create_venue(
        &self,
        admin: &str,
        name: &str,
        rows: u32,
        seats: u32,
    ) -> Result<String, ApiError> {
        let rows: Vec<Json> = (0..rows).map(|r| json!({"label": format!("R{}", r + 1), "seats": seats})).collect();
        let body = json!({"name": name, "city": "Testville", "region": "ap-south",
                          "sections": [{"name": "S", "category": "regular", "rows": rows}]});
        let req = self.post("/v1/admin/venues", admin, &format!("venue-{name}")).json(&body);
        match self.call(req).await {
            Reply::Ok(b) => b["venue_id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| ApiError::Refused { what: "venue".into(), detail: b.to_string() }),
            Reply::Fail(e) | Reply::Info(e) => Err(ApiError::Refused { what: format!("venue {name}"), detail: e }),
        }
    }

    /// Creates an on-sale event at `venue` with short holds; returns its id.
    pub(crate) async fn create_event(
        &self,
        admin: &str,
        venue: &str,
        title: &str,
        ttl_secs: u64,
    ) -> Result<String, ApiError> {
        let body = json!({"venue_id": venue, "title": title, "kind": "concert",
                          "starts_at": "2099-12-31T20:00:00Z", "genre": "test", "language": "en", "currency": "EUR",
                          "prices": {"regular": 1000}, "sale_opens_at": "2000-01-01T00:00:00Z",
                          "max_seats_per_hold": 10, "hold_ttl_secs": ttl_secs});
        self.create_event_with(admin, body, title).await
    }

    /// Creates an on-sale event with short holds and a waiting room that
    /// is always on (`admit_per_minute`, at most `active_max` shopping).
    pub(crate) async fn create_queued_event(
        &self,
        admin: &str,
        venue: &str,
        title: &str,
        ttl_secs: u64,
        admit_per_minute: u32,
        active_max: u32,
    ) -> Result<String, ApiError> {
        let body = json!({"venue_id": venue, "title": title, "kind": "concert",
                          "starts_at": "2099-12-31T20:00:00Z", "genre": "test", "language": "en", "currency": "EUR",
                          "prices": {"regular": 1000}, "sale_opens_at": "2000-01-01T00:00:00Z",
                          "max_seats_per_hold": 10, "hold_ttl_secs": ttl_secs,
                          "waiting_room": {"enabled": true, "admit_per_minute": admit_per_minute,
                                           "active_max": active_max}});
        self.create_event_with(admin, body, title).await
    }

    async fn create_event_with(&self, admin: &str, body: Json, title: &str) -> Result<String, ApiError> {
        let req = self.post("/v1/admin/events", admin, &format!("event-{title}")).json(&body);
        match self.call(req).await {
            Reply::Ok(b) => b["event_id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| ApiError::Refused { what: "event".into(), detail: b.to_string() }),
            Reply::Fail(e) | Reply::Info(e) => Err(ApiError::Refused { what: format!("event {title}"), detail: e }),
        }
    }

    /// A cluster operation of the admin API; whether it answered 2xx.
    pub(crate) async fn cluster_op(
        &self,
        admin: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Json>,
    ) -> bool {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        matches!(self.call(req).await, Reply::Ok(_))
    }

    /// `GET /v1/admin/cluster`.
    pub(crate) async fn cluster(&self, admin: &str) -> Option<Json> {
        match self.call(self.client.get(format!("{}/v1/admin/cluster", self.base)).bearer_auth(admin)).await {
            Reply::Ok(b) => Some(b),
            _ => None,
        }
    }
}

/// One gateway: the SDK for the workload, plain HTTP for setup.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) http: Http,
    sdk: client::Client,
}

impl Endpoint {
    /// The gateway at `base`; each attempt gives up after `timeout`.
    pub(crate) fn new(base: String, timeout: Duration) -> Endpoint {
        let retry = client::RetryPolicy {
            retries_max: 1,
            backoff_ms_initial: 100,
            backoff_ms_max: 500,
            attempt_timeout_ms: timeout.as_millis() as u64,
        };
        let sdk = client::Client::builder()
            .endpoint(base.clone())
            .retry(retry)
            .build()
            .expect("a gateway URL the runner made");
        Endpoint { http: Http::new(base, timeout), sdk }
    }

    fn user(&self, token: &str, key: &str) -> client::Client {
        self.sdk.with_token(token).with_idempotency_key(key)
    }

    /// A hold of explicit seats, with a waiting room's access token if given.
    async fn hold_as(
        &self,
        token: &str,
        event: &str,
        seats: &[String],
        key: &str,
        access: Option<&str>,
    ) -> Indexed<Held> {
        let sdk = self.user(token, key);
        let request = client::HoldRequest::seats(seats.iter().cloned());
        let answer = match access {
            Some(a) => sdk.hold_with_access(event, &request, a).await,
            None => sdk.hold(event, &request).await,
        };
        let reply = match answer {
            Ok(h) => Reply::Ok(Held { hold: h.hold_id, expires_at_ms: parse_rfc3339_ms(&h.expires_at) }),
            Err(e) => classify(e),
        };
        (reply, sdk.last_raft_index())
    }
}

/// How an SDK failure goes into the history.
fn classify<T>(e: client::Error) -> Reply<T> {
    match e {
        client::Error::Api(a) if (400..500).contains(&a.status) => Reply::Fail(a.code.as_str().to_string()),
        client::Error::Api(a) => Reply::Info(format!("{} {}", a.status, a.code.as_str())),
        other => Reply::Info(other.to_string()),
    }
}

fn status_of(s: client::SeatStatus) -> SeatStatus {
    match s {
        client::SeatStatus::Available => SeatStatus::Available,
        client::SeatStatus::Held => SeatStatus::Held,
        client::SeatStatus::Booked => SeatStatus::Booked,
        client::SeatStatus::Blocked => SeatStatus::Blocked,
    }
}

fn booking_status(s: client::BookingStatus) -> String {
    match s {
        client::BookingStatus::Pending => "pending",
        client::BookingStatus::Confirmed => "confirmed",
        client::BookingStatus::Cancelled => "cancelled",
    }
    .to_string()
}

impl Gateway for Endpoint {
    async fn hold(&self, token: &str, event: &str, seats: &[String], key: &str) -> Indexed<Held> {
        self.hold_as(token, event, seats, key, None).await
    }

    async fn release(&self, token: &str, hold: &str, key: &str) -> Indexed<()> {
        let sdk = self.user(token, key);
        let reply = match sdk.release_hold(hold).await {
            Ok(()) => Reply::Ok(()),
            Err(e) => classify(e),
        };
        (reply, sdk.last_raft_index())
    }

    async fn confirm(&self, token: &str, hold: &str, key: &str) -> Indexed<Booked> {
        let sdk = self.user(token, key);
        let reply = match sdk.book(hold, "tok_visa").await {
            Ok(client::BookingOutcome::Confirmed(b)) => Reply::Ok(Booked { booking: b.booking_id, seats: b.seat_ids }),
            Ok(client::BookingOutcome::Pending { .. }) => Reply::Info("pending".into()),
            Err(e) => classify(e),
        };
        (reply, sdk.last_raft_index())
    }

    async fn cancel(&self, token: &str, booking: &str, key: &str) -> Indexed<()> {
        let sdk = self.user(token, key);
        let reply = match sdk.cancel_booking(booking).await {
            Ok(_) => Reply::Ok(()),
            Err(e) => classify(e),
        };
        (reply, sdk.last_raft_index())
    }

    async fn seat_map(&self, event: &str) -> Reply<SeatMap> {
        match self.sdk.seat_map(event).await {
            Ok(m) => Reply::Ok(SeatMap {
                seats: m.seats.into_iter().map(|s| (s.seat_id, status_of(s.status))).collect(),
                as_of_index: Some(m.as_of_index),
            }),
            Err(e) => classify(e),
        }
    }

    async fn counts(&self, event: &str) -> Reply<BTreeMap<String, Counts>> {
        match self.sdk.event(event).await {
            Ok(d) => Reply::Ok(
                d.availability
                    .into_iter()
                    .map(|(cat, a)| {
                        let c = Counts {
                            total: a.total,
                            available: a.available,
                            held: a.held,
                            booked: a.booked,
                            blocked: a.blocked,
                        };
                        (cat, c)
                    })
                    .collect(),
            ),
            Err(e) => classify(e),
        }
    }

    async fn bookings(&self, token: &str) -> Reply<Vec<BookingRec>> {
        match self.sdk.with_token(token).my_bookings().await {
            Ok(list) => Reply::Ok(
                list.into_iter()
                    .map(|b| BookingRec {
                        booking: b.booking_id,
                        hold: b.hold_id.unwrap_or_default(),
                        event: b.event_id,
                        seats: b.seat_ids,
                        status: booking_status(b.status),
                    })
                    .collect(),
            ),
            Err(e) => classify(e),
        }
    }

    async fn join_queue(&self, token: &str, event: &str) -> Reply<Joined> {
        match self.sdk.with_token(token).join_queue(event).await {
            Ok(t) => Reply::Ok(Joined { position: t.position, queue_token: t.queue_token }),
            Err(e) => classify(e),
        }
    }

    async fn queue_status(&self, token: &str, event: &str, queue_token: &str) -> Reply<Standing> {
        match self.sdk.with_token(token).queue_status(event, queue_token).await {
            Ok(client::QueueStatus::Waiting { position, .. }) => Reply::Ok(Standing::Waiting { position }),
            Ok(client::QueueStatus::Admitted(a)) => Reply::Ok(Standing::Admitted { access_token: a.access_token }),
            Ok(client::QueueStatus::AccessExpired { position }) => Reply::Ok(Standing::Expired { position }),
            Err(e) => classify(e),
        }
    }

    async fn hold_admitted(
        &self,
        token: &str,
        event: &str,
        seats: &[String],
        key: &str,
        access_token: &str,
    ) -> Indexed<Held> {
        self.hold_as(token, event, seats, key, Some(access_token)).await
    }
}
