//! Requests a hostile or careless caller can send, against a real
//! three-node cluster of `ticketd` processes: each was once able to take a
//! region down, bloat every replica or jam the payment saga (the security
//! review's F1-F5, F8, F12, F13). Every test checks that the request is
//! refused or answered, and that the cluster keeps serving afterwards.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::{call, cluster, cluster_gateways, Cluster, SECRET};

const DAY_MS: u64 = 24 * 3600 * 1000;

struct Api {
    c: Cluster,
    base: String,
    admin: String,
}

impl Api {
    async fn start(c: Cluster) -> Api {
        let base = c.gateway(1);
        c.wait_ready(&base, Duration::from_secs(60)).await;
        let admin = c.token(&base, "root", &["admin"]).await;
        Api { c, base, admin }
    }

    async fn user(&self, name: &str) -> String {
        self.c.token(&self.base, name, &[]).await
    }

    async fn req(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        call(&self.c.client, method, &format!("{}{path}", self.base), token, body, None).await
    }

    async fn req_key(&self, method: Method, path: &str, token: &str, body: Option<Value>, key: &str) -> (u16, Value) {
        call(&self.c.client, method, &format!("{}{path}", self.base), Some(token), body, Some(key)).await
    }

    /// A venue of `rows` rows of `seats` seats (`Floor-A-1`...) in `region`.
    async fn venue(&self, region: &str, rows: usize, seats: u32) -> String {
        let rows: Vec<Value> = (0..rows).map(|r| json!({"label": row_label(r), "seats": seats})).collect();
        let body = json!({"name": "Hall", "city": "Pune", "region": region,
            "sections": [{"name": "Floor", "category": "regular", "rows": rows}]});
        let (s, v) = self.req(Method::POST, "/v1/admin/venues", Some(&self.admin), Some(body)).await;
        assert_eq!(s, 201, "{v}");
        v["venue_id"].as_str().unwrap().to_string()
    }

    async fn try_event(&self, venue: &str, extra: Value) -> (u16, Value) {
        let now = support::now_ms();
        let mut body = json!({"venue_id": venue, "title": "Night Show", "kind": "concert",
            "starts_at": support::rfc3339(now + 30 * DAY_MS), "genre": "jazz", "language": "en", "currency": "INR",
            "prices": {"regular": 1000}, "sale_opens_at": support::rfc3339(now - DAY_MS)});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.req(Method::POST, "/v1/admin/events", Some(&self.admin), Some(body)).await
    }

    async fn event(&self, venue: &str, extra: Value) -> String {
        let (s, v) = self.try_event(venue, extra).await;
        assert_eq!(s, 201, "{v}");
        v["event_id"].as_str().unwrap().to_string()
    }

    async fn hold(&self, token: &str, event: &str, seats: &[&str]) -> (u16, Value) {
        self.req(Method::POST, &format!("/v1/events/{event}/holds"), Some(token), Some(json!({"seat_ids": seats})))
            .await
    }

    /// Every region answers `/readyz`, and a hold in `event` succeeds.
    async fn still_serving(&self, event: &str, seat: &str) {
        let (s, v) = self.req(Method::GET, "/readyz", None, None).await;
        assert_eq!(s, 200, "{v}\n{}", self.c.logs());
        let user = self.user(&format!("probe-{seat}")).await;
        let (s, v) = self.hold(&user, event, &[seat]).await;
        assert_eq!(s, 201, "a hold after the hostile request: {v}\n{}", self.c.logs());
        let logs = self.c.logs();
        assert!(!logs.contains("panicked"), "a node panicked:\n{logs}");
    }
}

fn row_label(r: usize) -> String {
    ((b'A' + r as u8) as char).to_string()
}

fn group_and_number(id: &str) -> (u64, u64) {
    let mut parts = id.rsplitn(3, '-');
    let n = parts.next().unwrap().parse().unwrap();
    let g = parts.next().unwrap().parse().unwrap();
    (g, n)
}

/// F1: a resume index near `u64::MAX` used to overflow inside the seat
/// feed's lock on every replica the gateway tried, and the next apply of
/// the group panicked on the poisoned lock: the region was gone until a
/// restart. The gateway now refuses an index the log has not reached, and
/// the replicas answer any index without panicking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_index_from_the_future_is_refused_and_harms_no_replica() {
    let api = Api::start(cluster(3, false)).await;
    let venue = api.venue("eu-west", 1, 10).await;
    let event = api.event(&venue, json!({})).await;
    for last in ["18446744073709551615", "18446744073709551614", "9223372036854775808"] {
        let r = api
            .c
            .client
            .get(format!("{}/v1/events/{event}/seats/stream", api.base))
            .header("Last-Event-ID", last)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "Last-Event-ID {last}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_request");
        assert!(body["error"]["details"]["as_of_index"].is_u64(), "{body}");
    }
    // The replicas themselves, asked directly (as a gateway of another
    // build might): every one answers and keeps applying.
    let (group, n) = group_and_number(&event);
    for id in 1..=3 {
        let client =
            raft::ClusterClient::new(vec![api.c.grpc(id)], SECRET, Duration::from_secs(2), Duration::from_secs(5));
        for after in [u64::MAX, u64::MAX - 1] {
            let watch = client.watch_seats(group, statemachine::EventId(n), after).await;
            assert!(watch.is_ok(), "node {id} answers a watch after {after}");
        }
        let events = client.watch_events(group, u64::MAX).await;
        assert!(events.is_ok(), "node {id} answers an event watch after u64::MAX");
    }
    api.still_serving(&event, "Floor-A-1").await;
}

/// F2: a price near `u64::MAX` was accepted, and the first two-seat hold
/// overflowed the total inside apply on every replica, again at every
/// replay. Prices have a bound now, and totals are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prices_are_bounded_and_a_total_never_overflows_in_apply() {
    let api = Api::start(cluster(3, false)).await;
    let venue = api.venue("us-east", 1, 10).await;
    for price in [u64::MAX, 1u64 << 63, 10u64.pow(13)] {
        let (s, v) = api.try_event(&venue, json!({"prices": {"regular": price}})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_event")), "price {price}: {v}");
    }
    // The largest price allowed, for the most seats a hold may take.
    let (s, v) =
        api.try_event(&venue, json!({"prices": {"regular": 1_000_000_000_000u64}, "max_seats_per_hold": 10})).await;
    assert_eq!(s, 201, "{v}");
    let event = v["event_id"].as_str().unwrap().to_string();
    let user = api.user("big-spender").await;
    let seats: Vec<String> = (1..=10).map(|i| format!("Floor-A-{i}")).collect();
    let seats: Vec<&str> = seats.iter().map(String::as_str).collect();
    let (s, v) = api.hold(&user, &event, &seats).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["total_price"], 10_000_000_000_000u64);
    let user = api.user("next").await;
    let (s, v) = api.hold(&user, &event, &["Floor-A-1"]).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("seats_unavailable")), "{v}");
    let other = api.event(&venue, json!({})).await;
    api.still_serving(&other, "Floor-A-2").await;
}

/// F3: a rejection used to echo its input (a 65,000-byte category, unknown
/// seat ids), and every result was kept in the replicated exactly-once
/// table. Oversized names are refused at the gateway now, before anything
/// reaches the log, and answers never echo them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_names_are_refused_before_the_log_and_never_echoed() {
    let api = Api::start(cluster(3, false)).await;
    let venue = api.venue("ap-south", 1, 10).await;
    let event = api.event(&venue, json!({"max_seats_per_hold": 100})).await;
    let user = api.user("flooder").await;
    let big = "X".repeat(65_000);
    let many: Vec<String> = (0..150).map(|i| format!("Nowhere-{i}")).collect();
    let cases = [
        (
            format!("/v1/events/{event}/holds"),
            json!({"best_available": {"count": 1, "category": big}}),
            "invalid_category",
        ),
        (format!("/v1/events/{event}/holds"), json!({"seat_ids": [big]}), "invalid_seats"),
        (format!("/v1/events/{event}/holds"), json!({"seat_ids": many}), "too_many_seats"),
        (
            format!("/v1/events/{event}/holds"),
            json!({"best_available": {"count": 4_000_000_000u32, "category": "regular"}}),
            "too_many_seats",
        ),
        (format!("/v1/events/{event}/waitlist"), json!({"count": 1, "category": big}), "invalid_category"),
    ];
    for (path, body, code) in cases {
        let r = api.c.client.post(format!("{}{path}", api.base)).bearer_auth(&user).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        assert!(r.headers().get("x-raft-index").is_none(), "refused before the log: {path}");
        let text = r.text().await.unwrap();
        assert!(text.len() < 1_000, "the answer echoes its input ({} bytes)", text.len());
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], code, "{v}");
    }
    // Unknown seats within the bounds are answered by the log, still briefly.
    let unknown: Vec<String> = (0..100).map(|i| format!("Nowhere-{i}-{}", "y".repeat(150))).collect();
    let (s, v) = api
        .req(Method::POST, &format!("/v1/events/{event}/holds"), Some(&user), Some(json!({"seat_ids": unknown})))
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_seats")), "{v}");
    assert!(v.to_string().len() < 8_000, "a rejection keeps a bounded detail: {} bytes", v.to_string().len());
    api.still_serving(&event, "Floor-A-1").await;
}

/// F4, F13: the saga derived its steps' request ids from the key
/// (`{key}#begin`, `{key}#confirm`), so a key of 117 bytes passed the
/// charge and failed the confirm, and a key `K#confirm` used elsewhere
/// collided with the confirm of key `K`. Keys have one rule now (1 to 200
/// visible ASCII bytes, checked at the gateway), and every key that passes
/// it books.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_key_books_and_no_key_collides_with_a_payment_step() {
    let api = Api::start(cluster(3, false)).await;
    let venue = api.venue("ap-south", 1, 20).await;
    let event = api.event(&venue, json!({})).await;
    let user = api.user("mallory").await;
    let mut seat = 0;
    let mut book = |len: usize, fill: char| {
        seat += 1;
        (format!("Floor-A-{seat}"), fill.to_string().repeat(len))
    };
    for (len, fill) in [(1, 'k'), (116, 'a'), (117, 'b'), (118, 'c'), (124, 'd'), (125, 'e'), (200, 'f')] {
        let (seat, key) = book(len, fill);
        let (s, h) = api.hold(&user, &event, &[&seat]).await;
        assert_eq!(s, 201, "{h}");
        let hold = h["hold_id"].as_str().unwrap();
        let body = json!({"hold_id": hold, "payment": {"token": "tok_visa"}});
        let (s, b) = api.req_key(Method::POST, "/v1/bookings", &user, Some(body.clone()), &key).await;
        assert_eq!(s, 201, "a {len}-byte key books: {b}");
        let (s, again) = api.req_key(Method::POST, "/v1/bookings", &user, Some(body), &key).await;
        assert_eq!((s, &again), (201, &b), "a {len}-byte key's retry answers the first booking");
    }
    // A key that names another key's payment step is just a key.
    let (seat, _) = book(0, 'x');
    let (s, h) = api.hold(&user, &event, &[&seat]).await;
    assert_eq!(s, 201);
    let hold = h["hold_id"].as_str().unwrap().to_string();
    for step in ["Z1#begin", "Z1#confirm", "Z1#refund", "Z1#fail"] {
        let (s, v) = api.req_key(Method::DELETE, "/v1/holds/hld-1-999999999", &user, None, step).await;
        assert_eq!(s, 404, "{v}");
    }
    let body = json!({"hold_id": hold, "payment": {"token": "tok_visa"}});
    let (s, b) = api.req_key(Method::POST, "/v1/bookings", &user, Some(body), "Z1").await;
    assert_eq!(s, 201, "no collision with an earlier request's key: {b}");
    // Refused before anything happens: too long, empty-looking, control characters.
    let (seat, _) = book(0, 'x');
    let (s, h) = api.hold(&user, &event, &[&seat]).await;
    assert_eq!(s, 201);
    let body = json!({"hold_id": h["hold_id"], "payment": {"token": "tok_visa"}});
    for key in ["k".repeat(201), "a\tb".to_string()] {
        let (s, v) = api.req_key(Method::POST, "/v1/bookings", &user, Some(body.clone()), &key).await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_request")), "{key:?}: {v}");
    }
    let (s, v) =
        api.req(Method::GET, &format!("/v1/holds/{}", h["hold_id"].as_str().unwrap()), Some(&user), None).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("active")), "a refused key charged nothing: {v}");
}

/// F4: the reconciler read the first 100 intents needing action, in id
/// order, so intents it could not decide (here: charges made by a gateway
/// that died, which the others' sandboxes do not know) kept it from every
/// intent behind them. It pages through all of them now: a `tok_timeout`
/// booking behind 1,000 undecidable intents is still confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_undecidable_intents_do_not_stall_reconciliation() {
    let mut api = Api::start(cluster(3, false)).await;
    let doomed = api.c.gateway(2);
    api.c.wait_ready(&doomed, Duration::from_secs(60)).await;
    let venue = api.venue("ap-south", 11, 100).await;
    let event = api.event(&venue, json!({})).await;
    const STUCK: usize = 1_000;
    let tokens: Vec<String> = {
        let mut t = Vec::new();
        for i in 0..STUCK {
            t.push(api.c.token(&doomed, &format!("buyer{i}"), &[]).await);
        }
        t
    };
    let client = api.c.client.clone();
    let mut holds = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let (client, base, event) = (client.clone(), doomed.clone(), event.clone());
        tasks.spawn(async move {
            let seat = format!("Floor-{}-{}", row_label(i / 100), i % 100 + 1);
            let url = format!("{base}/v1/events/{event}/holds");
            let (s, h) = call(&client, Method::POST, &url, Some(&token), Some(json!({"seat_ids": [seat]})), None).await;
            assert_eq!(s, 201, "{h}");
            let hold = h["hold_id"].as_str().unwrap().to_string();
            let body = json!({"hold_id": hold, "payment": {"token": "tok_timeout"}});
            let (s, b) =
                call(&client, Method::POST, &format!("{base}/v1/bookings"), Some(&token), Some(body), None).await;
            assert_eq!((s, b["status"].as_str()), (202, Some("pending")), "{b}");
            hold
        });
        if tasks.len() >= 32 {
            holds.push(tasks.join_next().await.unwrap().unwrap());
        }
    }
    while let Some(h) = tasks.join_next().await {
        holds.push(h.unwrap());
    }
    // The gateway that made those charges dies before it reconciles them;
    // the other gateways' providers cannot tell what happened to them.
    api.c.nodes[1].child.as_mut().unwrap().kill().unwrap();
    let victim = api.user("victim").await;
    let (s, h) = api.hold(&victim, &event, &["Floor-K-1"]).await;
    assert_eq!(s, 201, "{h}");
    let victim_hold = h["hold_id"].as_str().unwrap().to_string();
    // Intent ids begin with the hold id: the victim's sorts behind many.
    let ahead = holds.iter().filter(|h| format!("{h}/") < format!("{victim_hold}/")).count();
    assert!(ahead >= 200, "only {ahead} stuck intents sort ahead of the victim's");
    let body = json!({"hold_id": victim_hold, "payment": {"token": "tok_timeout"}});
    let (s, b) = api.req(Method::POST, "/v1/bookings", Some(&victim), Some(body)).await;
    assert_eq!((s, b["status"].as_str()), (202, Some("pending")), "{b}");
    let booking = b["booking_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, v) = api.req(Method::GET, &format!("/v1/bookings/{booking}"), Some(&victim), None).await;
        if s == 200 && v["status"] == "confirmed" {
            break;
        }
        assert!(Instant::now() < deadline, "the victim's booking is still {v} behind {STUCK} stuck intents");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// F5: a seat stream whose client left kept its place while the event was
/// quiet, so enough quick connect-and-close cycles made every stream of the
/// gateway answer 503. A place is freed as soon as its client goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_whose_clients_left_give_their_places_back() {
    let api = Api::start(cluster_gateways(3, false, "streams_max = 3\n", "")).await;
    let venue = api.venue("ap-south", 1, 5).await;
    let event = api.event(&venue, json!({})).await;
    let addr = api.base.trim_start_matches("http://").to_string();
    let open_and_leave = |path: String| {
        let addr = addr.clone();
        move || {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut head = [0u8; 12];
            s.read_exact(&mut head).unwrap();
            String::from_utf8_lossy(&head).to_string()
        }
    };
    let seats = open_and_leave(format!("/v1/events/{event}/seats/stream"));
    for round in 0..12 {
        let head = tokio::task::spawn_blocking(seats.clone()).await.unwrap();
        if head.ends_with("503") {
            // A place is freed once its task sees the client gone: a moment.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let head = tokio::task::spawn_blocking(seats.clone()).await.unwrap();
            assert!(head.ends_with("200"), "round {round}: places of closed streams were kept ({head})");
        } else {
            assert!(head.ends_with("200"), "round {round}: {head}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.still_serving(&event, "Floor-A-1").await;
}

/// F8: a search word of any length built a typo automaton on the runtime
/// thread that Raft shares. Queries are bounded now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_refuses_huge_queries() {
    let api = Api::start(cluster(3, false)).await;
    let venue = api.venue("ap-south", 1, 5).await;
    let event = api.event(&venue, json!({})).await;
    let word: String = (0..20_000).map(|i| (b'a' + (i * 7 % 26) as u8) as char).collect();
    let (s, v) = api.req(Method::GET, &format!("/v1/events?q={word}"), None, None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_request")), "{v}");
    let (s, v) = api.req(Method::GET, "/v1/events?q=nigth", None, None).await;
    assert_eq!(s, 200, "{v}");
    api.still_serving(&event, "Floor-A-1").await;
}

/// F12: while the waiting room gates an event, joining its waitlist needs
/// the room's admission like a hold does: a waitlist offer is a hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waitlist_does_not_skip_the_waiting_room() {
    let api = Api::start(cluster(3, false)).await;
    let venue = api.venue("ap-south", 1, 2).await;
    let room = json!({"waiting_room": {"enabled": true, "admit_per_minute": 1, "active_max": 1}});
    let event = api.event(&venue, room).await;
    let sneaky = api.user("sneaky").await;
    let (s, v) = api.hold(&sneaky, &event, &["Floor-A-1"]).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("queue_required")), "{v}");
    let body = json!({"count": 3, "category": "regular"});
    let (s, v) = api.req(Method::POST, &format!("/v1/events/{event}/waitlist"), Some(&sneaky), Some(body)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("queue_required")), "{v}");
}

/// F9: seat maps (megabytes for a stadium, built under the group's state
/// lock), seat streams and the queue audit need no token, so no per-user
/// limit reached them. They are limited per client address now, and seat
/// maps are built a few at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costly_anonymous_reads_are_limited_per_address() {
    let api = Api::start(cluster_gateways(3, false, "read_addr_per_sec = 1\nread_addr_burst_max = 3\n", "")).await;
    let venue = api.venue("ap-south", 4, 500).await;
    let event = api.event(&venue, json!({})).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = api.c.client.get(format!("{}/v1/events/{event}/seats", api.base)).send().await.unwrap();
        let status = r.status().as_u16();
        if status == 429 {
            assert!(r.headers().contains_key("retry-after"));
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "rate_limited");
        }
        statuses.push(status);
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "the burst is served: {statuses:?}");
    assert!(statuses[3..].contains(&429), "an address over its rate is refused: {statuses:?}");
    let r = api.c.client.get(format!("{}/v1/events/{event}/seats/stream", api.base)).send().await.unwrap();
    assert_eq!(r.status(), 429, "streams count against the same address");
    let r = api.c.client.get(format!("{}/v1/events/{event}/queue/audit", api.base)).send().await.unwrap();
    assert_eq!(r.status(), 429, "and the queue audit");
    // Users with tokens are limited as users, not by this address's reads.
    api.still_serving(&event, "Floor-A-1").await;
}
