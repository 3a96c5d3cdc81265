//! The booking flow under a leader kill: concurrent clients hold and
//! confirm through every gateway while the leader of the event's group is
//! killed with SIGKILL and later restarted. Clients retry each step with
//! the same idempotency key, on another gateway, until it has a definite
//! answer, as the SDK does. Afterwards every acknowledged booking must be
//! confirmed (no lost confirmation), each user must have exactly the
//! bookings acknowledged to them (no duplicate booking), no seat may be in
//! two bookings, and the seat map must count exactly the booked seats.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::{now_ms, rfc3339};

/// The gateways, as a client sees them.
#[derive(Clone)]
struct Net {
    client: reqwest::Client,
    gateways: Vec<String>,
}

impl Net {
    /// Sends one request with `key`, retrying on other gateways until the
    /// answer is definite (not a connection error, timeout or 5xx).
    async fn definite(
        &self,
        start: usize,
        method: Method,
        path: &str,
        token: &str,
        body: Value,
        key: &str,
    ) -> (u16, Value) {
        definite(&self.client, &self.gateways, (start, method, path), token, body, key).await
    }
}

async fn definite(
    client: &reqwest::Client,
    gateways: &[String],
    (start, method, path): (usize, Method, &str),
    token: &str,
    body: Value,
    key: &str,
) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attempt = start;
    loop {
        let base = &gateways[attempt % gateways.len()];
        attempt += 1;
        let sent = client
            .request(method.clone(), format!("{base}{path}"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await;
        if let Ok(r) = sent {
            let status = r.status().as_u16();
            if status < 500 {
                let v: Value = r.json().await.unwrap_or(Value::Null);
                return (status, v);
            }
        }
        assert!(Instant::now() < deadline, "{path} never got a definite answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bookings_survive_a_leader_kill_with_no_duplicate_and_no_loss() {
    let mut c = support::cluster(3, false);
    let gateways: Vec<String> = (1..=3).map(|id| c.gateway(id)).collect();
    for g in &gateways {
        c.wait_ready(g, Duration::from_secs(60)).await;
    }
    let admin = c.token(&gateways[0], "root", &["admin"]).await;
    let rows: Vec<Value> = (0..4).map(|r| json!({"label": format!("R{r}"), "seats": 50})).collect();
    let venue = json!({"name": "Arena", "city": "Pune", "region": "ap-south",
        "sections": [{"name": "Stand", "category": "regular", "rows": rows}]});
    let (s, v) = support::call(
        &c.client,
        Method::POST,
        &format!("{}/v1/admin/venues", gateways[0]),
        Some(&admin),
        Some(venue),
        None,
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let body = json!({"venue_id": v["venue_id"], "title": "Failover", "kind": "concert",
        "starts_at": rfc3339(now_ms() + 30 * 86_400_000), "genre": "pop", "language": "en", "currency": "INR",
        "prices": {"regular": 1000}, "sale_opens_at": rfc3339(now_ms() - 86_400_000)});
    let (s, e) = support::call(
        &c.client,
        Method::POST,
        &format!("{}/v1/admin/events", gateways[0]),
        Some(&admin),
        Some(body),
        None,
    )
    .await;
    assert_eq!(s, 201, "{e}");
    let event = e["event_id"].as_str().unwrap().to_string();

    // The leader of ap-south (group 1).
    let (_, cluster) =
        support::call(&c.client, Method::GET, &format!("{}/v1/admin/cluster", gateways[0]), Some(&admin), None, None)
            .await;
    let leader = cluster["groups"].as_array().unwrap().iter().find(|g| g["region"] == "ap-south").unwrap()["leader"]
        .as_u64()
        .expect("ap-south has a leader");

    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    const CLIENTS: usize = 12;
    for w in 0..CLIENTS {
        let net = Net { client: client.clone(), gateways: gateways.clone() };
        let (event, stop) = (event.clone(), stop.clone());
        let user = format!("buyer-{w}");
        let token = c.token(&gateways[0], &user, &[]).await;
        tasks.push(tokio::spawn(async move {
            // (booking id, seats) acknowledged to this user.
            let mut acked: Vec<(String, Vec<String>)> = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let key = format!("{user}-hold-{n}");
                let (s, hold) = net
                    .definite(
                        w,
                        Method::POST,
                        &format!("/v1/events/{event}/holds"),
                        &token,
                        json!({"best_available": {"count": 2, "category": "regular"}}),
                        &key,
                    )
                    .await;
                if s == 409 {
                    break; // sold out
                }
                assert_eq!(s, 201, "{hold}");
                let key = format!("{user}-pay-{n}");
                let (s, b) = net
                    .definite(
                        w + 1,
                        Method::POST,
                        "/v1/bookings",
                        &token,
                        json!({"hold_id": hold["hold_id"], "payment": {"token": "tok_visa"}}),
                        &key,
                    )
                    .await;
                assert_eq!(s, 201, "{b}");
                let seats: Vec<String> =
                    b["seat_ids"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
                acked.push((b["booking_id"].as_str().unwrap().to_string(), seats));
            }
            (user, token, acked)
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    c.nodes[(leader - 1) as usize].kill();
    tokio::time::sleep(Duration::from_secs(6)).await;
    c.nodes[(leader - 1) as usize].start();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    for g in &gateways {
        c.wait_ready(g, Duration::from_secs(60)).await;
    }

    let mut all_seats: BTreeMap<String, String> = BTreeMap::new();
    let mut total = 0;
    for (user, token, acked) in &results {
        total += acked.len();
        // No lost confirmation: each acknowledged booking is confirmed.
        for (id, seats) in acked {
            let (s, b) = support::call(
                &c.client,
                Method::GET,
                &format!("{}/v1/bookings/{id}", gateways[2]),
                Some(token),
                None,
                None,
            )
            .await;
            assert_eq!(s, 200, "{b}");
            assert_eq!(b["status"], "confirmed", "acknowledged booking {id} of {user} lost: {b}");
            let got: BTreeSet<String> =
                b["seat_ids"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
            assert_eq!(got, seats.iter().cloned().collect::<BTreeSet<_>>());
            for seat in seats {
                if let Some(other) = all_seats.insert(seat.clone(), id.clone()) {
                    panic!("seat {seat} sold twice: {other} and {id}");
                }
            }
        }
        // No duplicate: the user has exactly the bookings acknowledged.
        let (s, mine) =
            support::call(&c.client, Method::GET, &format!("{}/v1/me/bookings", gateways[1]), Some(token), None, None)
                .await;
        assert_eq!(s, 200, "{mine}");
        let ids: BTreeSet<String> = mine["bookings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["booking_id"].as_str().unwrap().to_string())
            .collect();
        let want: BTreeSet<String> = acked.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(ids, want, "{user}'s bookings are not the acknowledged ones");
    }
    assert!(total > CLIENTS, "too few bookings to mean anything: {total}");
    let (s, map) =
        support::call(&c.client, Method::GET, &format!("{}/v1/events/{event}/seats", gateways[0]), None, None, None)
            .await;
    assert_eq!(s, 200);
    let booked: BTreeSet<String> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "booked")
        .map(|s| s["seat_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(booked, all_seats.keys().cloned().collect::<BTreeSet<_>>(), "the seat map disagrees with the bookings");
    eprintln!("{total} bookings through a kill of node {leader}, the ap-south leader");
}
