//! The gateway calls the workload makes, behind one small trait so the
//! transport is a one-file change: today plain HTTP (`reqwest`) with the
//! contract's routes, one attempt per call (the history must see each
//! attempt's outcome; retries are the workload's, with the same key).
//!
//! Every reply is classified the way the history needs it: `Ok` (2xx, it
//! happened), `Fail` (a definite refusal: a 4xx, or a connection that was
//! never made), `Info` (unknown: a timeout, a 5xx, a 202 pending payment).

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

/// What the workload needs of a gateway.
pub(crate) trait Gateway: Send + Sync {
    fn hold(
        &self,
        token: &str,
        event: &str,
        seats: &[String],
        key: &str,
    ) -> impl std::future::Future<Output = Reply<Held>> + Send;
    fn release(&self, token: &str, hold: &str, key: &str) -> impl std::future::Future<Output = Reply<()>> + Send;
    fn confirm(&self, token: &str, hold: &str, key: &str) -> impl std::future::Future<Output = Reply<Booked>> + Send;
    fn cancel(&self, token: &str, booking: &str, key: &str) -> impl std::future::Future<Output = Reply<()>> + Send;
    fn seat_map(&self, event: &str) -> impl std::future::Future<Output = Reply<SeatMap>> + Send;
    fn counts(&self, event: &str) -> impl std::future::Future<Output = Reply<BTreeMap<String, Counts>>> + Send;
    fn bookings(&self, token: &str) -> impl std::future::Future<Output = Reply<Vec<BookingRec>>> + Send;
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
        let req = self.post("/v1/admin/events", admin, &format!("event-{title}")).json(&body);
        match self.call(req).await {
            Reply::Ok(b) => b["event_id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| ApiError::Refused { what: "event".into(), detail: b.to_string() }),
            Reply::Fail(e) | Reply::Info(e) => Err(ApiError::Refused { what: format!("event {title}"), detail: e }),
        }
    }

    /// `GET /v1/admin/cluster`.
    pub(crate) async fn cluster(&self, admin: &str) -> Option<Json> {
        match self.call(self.client.get(format!("{}/v1/admin/cluster", self.base)).bearer_auth(admin)).await {
            Reply::Ok(b) => Some(b),
            _ => None,
        }
    }
}

impl Gateway for Http {
    async fn hold(&self, token: &str, event: &str, seats: &[String], key: &str) -> Reply<Held> {
        let req = self.post(&format!("/v1/events/{event}/holds"), token, key).json(&json!({"seat_ids": seats}));
        match self.call(req).await {
            Reply::Ok(b) => match b["hold_id"].as_str() {
                Some(h) => Reply::Ok(Held {
                    hold: h.to_string(),
                    expires_at_ms: b["expires_at"].as_str().and_then(parse_rfc3339_ms),
                }),
                None => Reply::Info(format!("a hold reply without hold_id: {b}")),
            },
            Reply::Fail(e) => Reply::Fail(e),
            Reply::Info(e) => Reply::Info(e),
        }
    }

    async fn release(&self, token: &str, hold: &str, key: &str) -> Reply<()> {
        let req = self
            .client
            .delete(format!("{}/v1/holds/{hold}", self.base))
            .bearer_auth(token)
            .header("Idempotency-Key", key);
        match self.call(req).await {
            Reply::Ok(_) => Reply::Ok(()),
            Reply::Fail(e) => Reply::Fail(e),
            Reply::Info(e) => Reply::Info(e),
        }
    }

    async fn confirm(&self, token: &str, hold: &str, key: &str) -> Reply<Booked> {
        let req =
            self.post("/v1/bookings", token, key).json(&json!({"hold_id": hold, "payment": {"token": "tok_visa"}}));
        match self.call(req).await {
            Reply::Ok(b) => match b["booking_id"].as_str() {
                Some(id) => Reply::Ok(Booked {
                    booking: id.to_string(),
                    seats: b["seat_ids"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                        .unwrap_or_default(),
                }),
                None => Reply::Info(format!("a booking reply without booking_id: {b}")),
            },
            Reply::Fail(e) => Reply::Fail(e),
            Reply::Info(e) => Reply::Info(e),
        }
    }

    async fn cancel(&self, token: &str, booking: &str, key: &str) -> Reply<()> {
        match self.call(self.post(&format!("/v1/bookings/{booking}/cancel"), token, key)).await {
            Reply::Ok(_) => Reply::Ok(()),
            Reply::Fail(e) => Reply::Fail(e),
            Reply::Info(e) => Reply::Info(e),
        }
    }

    async fn seat_map(&self, event: &str) -> Reply<SeatMap> {
        match self.call(self.client.get(format!("{}/v1/events/{event}/seats", self.base))).await {
            Reply::Ok(b) => {
                let mut seats = BTreeMap::new();
                for s in b["seats"].as_array().into_iter().flatten() {
                    let status = match s["status"].as_str() {
                        Some("available") => SeatStatus::Available,
                        Some("held") => SeatStatus::Held,
                        Some("booked") => SeatStatus::Booked,
                        Some("blocked") => SeatStatus::Blocked,
                        _ => return Reply::Info(format!("a seat with an unknown status: {s}")),
                    };
                    if let Some(id) = s["seat_id"].as_str() {
                        seats.insert(id.to_string(), status);
                    }
                }
                Reply::Ok(SeatMap { seats, as_of_index: b["as_of_index"].as_u64() })
            }
            Reply::Fail(e) => Reply::Fail(e),
            Reply::Info(e) => Reply::Info(e),
        }
    }

    async fn counts(&self, event: &str) -> Reply<BTreeMap<String, Counts>> {
        match self.call(self.client.get(format!("{}/v1/events/{event}", self.base))).await {
            Reply::Ok(b) => {
                let mut out = BTreeMap::new();
                for (cat, c) in b["availability"].as_object().into_iter().flatten() {
                    let n = |k: &str| c[k].as_u64().unwrap_or(u64::MAX);
                    out.insert(
                        cat.clone(),
                        Counts {
                            total: n("total"),
                            available: n("available"),
                            held: n("held"),
                            booked: n("booked"),
                            blocked: n("blocked"),
                        },
                    );
                }
                Reply::Ok(out)
            }
            Reply::Fail(e) => Reply::Fail(e),
            Reply::Info(e) => Reply::Info(e),
        }
    }

    async fn bookings(&self, token: &str) -> Reply<Vec<BookingRec>> {
        match self.call(self.client.get(format!("{}/v1/me/bookings", self.base)).bearer_auth(token)).await {
            Reply::Ok(b) => {
                let list = b["bookings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|x| BookingRec {
                        booking: x["booking_id"].as_str().unwrap_or_default().to_string(),
                        hold: x["hold_id"].as_str().unwrap_or_default().to_string(),
                        event: x["event_id"].as_str().unwrap_or_default().to_string(),
                        seats: x["seat_ids"]
                            .as_array()
                            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                            .unwrap_or_default(),
                        status: x["status"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect();
                Reply::Ok(list)
            }
            Reply::Fail(e) => Reply::Fail(e),
            Reply::Info(e) => Reply::Info(e),
        }
    }
}
