//! The waiting room against a real three-node cluster of `ticketd`
//! processes: FIFO across gateways through a gateway restart, the pre-queue
//! draw recomputed from its committed seed, admission that stops at the
//! sell-out, forged and foreign tokens, the position stream, load
//! activation, and 100,000 joins.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{call, cluster_gateways, now_ms, rfc3339, signed_token as token, Cluster};

const DAY_MS: u64 = 24 * 3600 * 1000;

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// Every gateway allows many joins per address: the tests all come from
/// one address.
const GATEWAY_EXTRA: &str = "join_addr_per_sec = 1000000\njoin_addr_burst_max = 1000000\n";

struct Room {
    c: Cluster,
    admin: String,
}

impl Room {
    async fn start() -> Room {
        let c = cluster_gateways(3, false, "", GATEWAY_EXTRA);
        for id in 1..=3 {
            c.wait_ready(&c.gateway(id), Duration::from_secs(60)).await;
        }
        let admin = c.token(&c.gateway(1), "root", &["admin"]).await;
        Room { c, admin }
    }

    async fn req(&self, gw: u64, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        call(&self.c.client, method, &format!("{}{path}", self.c.gateway(gw)), token, body, None).await
    }

    /// An event of `seats` seats whose sale opens at `opens_ms`, with a room.
    async fn event(&self, seats: u32, opens_ms: u64, room: Value, hold_ttl_secs: u32) -> String {
        let venue = json!({"name": "Hall", "city": "Pune", "region": "ap-south",
            "sections": [{"name": "Floor", "category": "regular", "rows": [{"label": "A", "seats": seats}]}]});
        let (s, v) = self.req(1, Method::POST, "/v1/admin/venues", Some(&self.admin), Some(venue)).await;
        assert_eq!(s, 201, "{v}");
        let body = json!({"venue_id": v["venue_id"], "title": "On-sale", "kind": "concert",
            "starts_at": rfc3339(now_ms() + 30 * DAY_MS), "genre": "pop", "language": "en", "currency": "INR",
            "prices": {"regular": 1000}, "sale_opens_at": rfc3339(opens_ms), "hold_ttl_secs": hold_ttl_secs,
            "waiting_room": room});
        let (s, v) = self.req(1, Method::POST, "/v1/admin/events", Some(&self.admin), Some(body)).await;
        assert_eq!(s, 201, "{v}");
        v["event_id"].as_str().unwrap().to_string()
    }

    async fn join(&self, gw: u64, event: &str, user: &str) -> Value {
        let (s, v) = self.req(gw, Method::POST, &format!("/v1/events/{event}/queue"), Some(&token(user)), None).await;
        assert_eq!(s, 201, "join of {user} at gateway {gw}: {v}");
        v
    }

    async fn status(&self, gw: u64, event: &str, user: &str, queue_token: &str) -> (u16, Value) {
        let r = self
            .c
            .client
            .get(format!("{}/v1/events/{event}/queue/status", self.c.gateway(gw)))
            .bearer_auth(token(user))
            .header("x-queue-token", queue_token)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap())
    }

    /// Polls until `user` is admitted; returns the status.
    async fn admitted(&self, event: &str, user: &str, queue_token: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, v) = self.status(1, event, user, queue_token).await;
            assert_eq!(s, 200, "{v}");
            if v["admitted"] == json!(true) {
                return v;
            }
            assert!(Instant::now() < deadline, "{user} not admitted: {v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn hold(&self, event: &str, user: &str, seat: &str, access: Option<&str>) -> (u16, Value) {
        let mut r = self
            .c
            .client
            .post(format!("{}/v1/events/{event}/holds", self.c.gateway(1)))
            .bearer_auth(token(user))
            .json(&json!({"seat_ids": [seat]}));
        if let Some(a) = access {
            r = r.header("x-access-token", a);
        }
        let r = r.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joins_are_fifo_across_gateways_and_survive_a_gateway_restart() {
    let mut r = Room::start().await;
    let event =
        r.event(10, now_ms() - DAY_MS, json!({"enabled": true, "admit_per_minute": 1, "active_max": 1}), 600).await;
    let mut positions: Vec<(String, u64, String)> = Vec::new();
    for i in 0..48 {
        if i == 16 {
            r.c.nodes[1].kill();
        }
        if i == 32 {
            r.c.nodes[1].start();
            r.c.wait_ready(&r.c.gateway(2), Duration::from_secs(60)).await;
        }
        // Alternate gateways; while node 2 is down its turns go to node 3.
        let gw = match (i % 2, (16..32).contains(&i)) {
            (0, _) => 1,
            (_, false) => 2,
            (_, true) => 3,
        };
        let user = format!("fifo-{i}");
        let v = r.join(gw, &event, &user).await;
        let pos = v["position"].as_u64().unwrap_or_else(|| panic!("{v}"));
        positions.push((user, pos, v["queue_token"].as_str().unwrap().to_string()));
    }
    // Each join began after the previous one was acknowledged: positions
    // follow that order strictly, whichever gateway took the join.
    let order: Vec<u64> = positions.iter().map(|(_, p, _)| *p).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "not FIFO: {order:?}");
    assert_eq!(order.first(), Some(&1));
    // Nobody lost a place: joining again at the restarted gateway (and at
    // another) gives the same position, and old tokens still work there.
    for (user, pos, qt) in &positions {
        let again = r.join(2, &event, user).await;
        assert_eq!(again["position"].as_u64(), Some(*pos), "{user}");
        let again = r.join(3, &event, user).await;
        assert_eq!(again["position"].as_u64(), Some(*pos), "{user}");
        let (s, v) = r.status(2, &event, user, qt).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["position"].as_u64(), Some(*pos));
    }
    // The first user's turn came (one a minute, one at a time).
    let (user, _, qt) = &positions[0];
    let v = r.admitted(&event, user, qt).await;
    assert!(v["access_token"].is_string());
    let (_, v) = r.status(1, &event, &positions[5].0, &positions[5].2).await;
    assert_eq!(v["ahead"].as_u64(), Some(5 - 1), "{v}");
    assert!(v["estimated_wait_secs"].as_u64().unwrap() >= 60, "{v}");
}

/// The draw recomputed from the published rule, independently of the
/// node's code: digests are xxh3-128 of the user id, the key is SHA-256 of
/// the seed followed by the digest in 16 little-endian bytes.
fn recompute_draw(seed: &[u8], users: &[String]) -> Vec<String> {
    let mut keyed: Vec<(Vec<u8>, String)> = users
        .iter()
        .map(|u| {
            let digest = xxhash_rust::xxh3::xxh3_128(u.as_bytes());
            let mut h = Sha256::new();
            h.update(seed);
            h.update(digest.to_le_bytes());
            (h.finalize()[..16].to_vec(), u.clone())
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, u)| u).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pre_queue_order_is_recomputed_from_the_committed_seed() {
    let r = Room::start().await;
    // Whole seconds: the API takes RFC 3339 seconds.
    let opens = (now_ms() / 1000 + 8) * 1000;
    let event = r.event(50, opens, json!({"enabled": true, "admit_per_minute": 6000, "active_max": 1000}), 600).await;
    let users: Vec<String> = (0..30).map(|i| format!("early-{i}")).collect();
    let mut tokens = BTreeMap::new();
    for (i, u) in users.iter().enumerate() {
        let v = r.join(1 + (i as u64 % 3), &event, u).await;
        assert_eq!(v["position"], Value::Null, "{v}");
        assert_eq!(v["pre_queue"], json!(true));
        tokens.insert(u.clone(), v["queue_token"].as_str().unwrap().to_string());
    }
    let (s, audit) = r.req(2, Method::GET, &format!("/v1/events/{event}/queue/audit"), None, None).await;
    assert_eq!(s, 200, "{audit}");
    assert_eq!(audit["seed"], Value::Null, "the seed is secret until the opening: {audit}");
    let (s, v) = r.status(1, &event, &users[0], &tokens[&users[0]]).await;
    assert_eq!((s, v["pre_queue"].clone()), (200, json!(true)), "{v}");

    // After the opening every early user has a drawn position.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got: BTreeMap<u64, String> = BTreeMap::new();
    while got.len() < users.len() {
        assert!(Instant::now() < deadline, "positions not drawn: {got:?}");
        got.clear();
        for u in &users {
            let (s, v) = r.status(3, &event, u, &tokens[u]).await;
            assert_eq!(s, 200, "{v}");
            if let Some(p) = v["position"].as_u64() {
                assert!(v["queue_token"].is_string() || v["admitted"] == json!(true), "no fresh token: {v}");
                got.insert(p, u.clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), (1..=30).collect::<Vec<_>>());
    let (s, audit) = r.req(2, Method::GET, &format!("/v1/events/{event}/queue/audit"), None, None).await;
    assert_eq!(s, 200, "{audit}");
    let seed = hex::decode(audit["seed"].as_str().expect("seed published after the opening")).unwrap();
    assert_eq!(audit["drawn"], json!(30));
    let expected = recompute_draw(&seed, &users);
    assert_eq!(got.values().cloned().collect::<Vec<_>>(), expected, "the draw is not the published rule");
    let digests: Vec<String> =
        expected.iter().map(|u| format!("{:032x}", xxhash_rust::xxh3::xxh3_128(u.as_bytes()))).collect();
    let listed: Vec<String> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["user_digest"].as_str().unwrap().to_string()).collect();
    assert_eq!(listed, digests);
    // Strict arrival order after the opening.
    let late = r.join(2, &event, "late").await;
    assert_eq!(late["position"], json!(31));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admission_stops_at_the_sell_out_and_tokens_cannot_be_forged_or_moved() {
    let r = Room::start().await;
    let room = json!({"enabled": true, "admit_per_minute": 600, "active_max": 10});
    let event = r.event(2, now_ms() - DAY_MS, room.clone(), 600).await;
    let other = r.event(2, now_ms() - DAY_MS, room, 600).await;
    let users = ["ana", "ben", "cat", "dan", "eve"];
    let mut qt = BTreeMap::new();
    for u in users {
        qt.insert(u, r.join(1, &event, u).await["queue_token"].as_str().unwrap().to_string());
    }

    // Forged, foreign and cross-event queue tokens.
    let mut forged = qt["ana"].clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (s, v) = r.status(1, &event, "ana", &forged).await;
    assert_eq!((s, code(&v)), (400, "invalid_queue_token"), "{v}");
    let (s, v) = r.status(1, &event, "ben", &qt["ana"]).await;
    assert_eq!((s, code(&v)), (400, "invalid_queue_token"), "{v}");
    let (s, v) = r.status(1, &other, "ana", &qt["ana"]).await;
    assert_eq!((s, code(&v)), (400, "invalid_queue_token"), "{v}");
    let (s, v) = r.status(1, &event, "ana", &token("ana")).await;
    assert_eq!((s, code(&v)), (400, "invalid_queue_token"), "a user token is no queue token: {v}");

    // The stream tells ana of her admission.
    let stream =
        r.c.client
            .get(format!("{}/v1/events/{event}/queue/stream?queue_token={}", r.c.gateway(2), qt["ana"]))
            .send()
            .await
            .unwrap();
    assert_eq!(stream.status(), 200);
    let mut stream = stream;
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !text.contains("\"admitted\":true") {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("stream ended before the admission: {other:?} {text}"),
        }
    }
    assert!(text.contains("event: status"), "{text}");

    // Two seats: two shoppers at most; the others wait.
    let ana = r.admitted(&event, "ana", &qt["ana"]).await;
    let ben = r.admitted(&event, "ben", &qt["ben"]).await;
    let ana_access = ana["access_token"].as_str().unwrap();
    let ben_access = ben["access_token"].as_str().unwrap();
    let (s, v) = r.hold(&event, "ana", "Floor-A-1", None).await;
    assert_eq!((s, code(&v)), (403, "queue_required"), "{v}");
    let (s, v) = r.hold(&event, "ana", "Floor-A-1", Some(ben_access)).await;
    assert_eq!((s, code(&v)), (403, "queue_required"), "someone else's access token: {v}");
    let (s, v) = r.hold(&event, "cat", "Floor-A-1", Some(ana_access)).await;
    assert_eq!((s, code(&v)), (403, "queue_required"), "{v}");
    let (s, v) = r.hold(&other, "ana", "Floor-A-1", Some(ana_access)).await;
    assert_eq!((s, code(&v)), (403, "queue_required"), "another event's access token: {v}");
    let mut holds = Vec::new();
    for (u, a, seat) in [("ana", ana_access, "Floor-A-1"), ("ben", ben_access, "Floor-A-2")] {
        let (s, v) = r.hold(&event, u, seat, Some(a)).await;
        assert_eq!(s, 201, "{v}");
        holds.push((u, v));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for u in ["cat", "dan", "eve"] {
        let (s, v) = r.status(1, &event, u, &qt[u]).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["admitted"], json!(false), "{u} admitted with no seat free: {v}");
    }
    for (u, hold) in &holds {
        let body = json!({"hold_id": hold["hold_id"], "payment": {"token": "tok_visa"}});
        let (s, v) = r.req(1, Method::POST, "/v1/bookings", Some(&token(u)), Some(body)).await;
        assert_eq!(s, 201, "{v}");
    }
    // Sold out: the waiting users are told, and joining is refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, v) = r.status(2, &event, "cat", &qt["cat"]).await;
        if s == 410 {
            assert_eq!(code(&v), "sold_out");
            break;
        }
        assert_eq!((s, v["admitted"].clone()), (200, json!(false)), "{v}");
        assert!(Instant::now() < deadline, "no sell-out reported: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for u in ["dan", "eve"] {
        let (s, v) = r.status(3, &event, u, &qt[u]).await;
        assert_eq!((s, code(&v)), (410, "sold_out"), "{v}");
    }
    let (s, v) = r.req(1, Method::POST, &format!("/v1/events/{event}/queue"), Some(&token("fay")), None).await;
    assert_eq!((s, code(&v)), (410, "sold_out"), "{v}");
    let metrics = r.c.client.get(format!("{}/metrics", r.c.gateway(1))).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("gateway_waiting_room_depth"), "no waiting-room depth metric");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_activated_room_starts_gating_under_load() {
    let r = Room::start().await;
    let room = json!({"enabled": true, "admit_per_minute": 60, "active_max": 10, "activate_above_per_sec": 3});
    let event = r.event(40, now_ms() - DAY_MS, room, 600).await;
    let (s, v) = r.hold(&event, "calm", "Floor-A-1", None).await;
    assert_eq!(s, 201, "an idle room lets holds through: {v}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seat = 2;
    loop {
        let (s, v) = r.hold(&event, &format!("rush-{seat}"), &format!("Floor-A-{seat}"), None).await;
        seat += 1;
        if s == 403 {
            assert_eq!(code(&v), "queue_required", "{v}");
            break;
        }
        assert_eq!(s, 201, "{v}");
        assert!(Instant::now() < deadline && seat <= 40, "the room never activated");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_thousand_users_join() {
    let r = Room::start().await;
    let event =
        r.event(10, now_ms() - DAY_MS, json!({"enabled": true, "admit_per_minute": 60, "active_max": 10}), 600).await;
    const USERS: usize = 100_000;
    const CONCURRENCY: usize = 128;
    let base = r.c.gateway(1);
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
    let started = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, base, event, next) = (client.clone(), base.clone(), event.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= USERS {
                    return got;
                }
                let user = format!("load-{i}");
                let resp =
                    client.post(format!("{base}/v1/events/{event}/queue")).bearer_auth(token(&user)).send().await;
                let resp = resp.unwrap_or_else(|e| panic!("join of {user}: {e}"));
                assert_eq!(resp.status(), 201, "join of {user}");
                let v: Value = resp.json().await.unwrap();
                got.push(v["position"].as_u64().unwrap());
            }
        }));
    }
    let mut positions = Vec::with_capacity(USERS);
    for t in tasks {
        positions.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("{USERS} joins in {secs:.1} s: {:.0} joins/s (not asserted)", USERS as f64 / secs);
    positions.sort_unstable();
    assert!(positions.iter().enumerate().all(|(i, p)| *p == i as u64 + 1), "positions are not 1..=N exactly once");
}
