//! Webhooks against a real cluster: domain events reach a receiver in log
//! order, HMAC-signed, retried until it accepts, and a gateway restart
//! loses none.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{json, Value};
use support::{call, cluster_with};

const SECRET: &str = "hook-secret-0123456789";
const DAY_MS: u64 = 24 * 3600 * 1000;

fn rfc3339(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64).unwrap();
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[derive(Default)]
struct Receiver {
    /// (delivery id, signature, body) of accepted calls.
    accepted: Vec<(String, String, String)>,
    /// Calls refused so far.
    refused: u32,
}

async fn receiver() -> (String, Arc<Mutex<Receiver>>) {
    let state = Arc::new(Mutex::new(Receiver::default()));
    let shared = Arc::clone(&state);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let shared = Arc::clone(&shared);
            async move {
                let mut r = shared.lock().unwrap();
                // The first two calls fail: the gateway must retry.
                if r.refused < 2 {
                    r.refused += 1;
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let h = |k: &str| headers.get(k).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
                r.accepted.push((h("x-ticketing-delivery"), h("x-ticketing-signature"), body));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), state)
}

async fn wait_for(state: &Arc<Mutex<Receiver>>, kinds: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let bodies: Vec<Value> = {
            let r = state.lock().unwrap();
            let mut seen = std::collections::BTreeSet::new();
            r.accepted
                .iter()
                .filter(|(id, _, _)| seen.insert(id.clone()))
                .map(|(_, _, b)| serde_json::from_str(b).unwrap())
                .collect()
        };
        if bodies.len() >= kinds {
            return bodies;
        }
        assert!(Instant::now() < deadline, "only {} deliveries: {bodies:?}", bodies.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn book(c: &support::Cluster, base: &str, alice: &str, event: &str, seat: &str) -> Value {
    let (s, h) = call(
        &c.client,
        Method::POST,
        &format!("{base}/v1/events/{event}/holds"),
        Some(alice),
        Some(json!({"seat_ids": [seat]})),
        None,
    )
    .await;
    assert_eq!(s, 201, "{h}");
    let (s, b) = call(
        &c.client,
        Method::POST,
        &format!("{base}/v1/bookings"),
        Some(alice),
        Some(json!({"hold_id": h["hold_id"], "payment": {"token": "tok_visa"}})),
        None,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_events_reach_webhooks_signed_in_order_at_least_once() {
    let (url, state) = receiver().await;
    let mut c = cluster_with(3, false, &format!("webhooks = [\"{url}\"]\nwebhook_secret = \"{SECRET}\"\n"));
    let base = c.gateway(1);
    c.wait_ready(&base, Duration::from_secs(60)).await;
    let admin = c.token(&base, "root", &["admin"]).await;
    let alice = c.token(&base, "alice", &[]).await;
    let venue = json!({"name": "Hall", "city": "Pune", "region": "ap-south",
        "sections": [{"name": "Floor", "category": "regular", "rows": [{"label": "A", "seats": 6}]}]});
    let (_, v) =
        call(&c.client, Method::POST, &format!("{base}/v1/admin/venues"), Some(&admin), Some(venue), None).await;
    let event = json!({"venue_id": v["venue_id"], "title": "Hook Night", "kind": "concert",
        "starts_at": rfc3339(now_ms() + 30 * DAY_MS), "genre": "rock", "language": "en", "currency": "INR",
        "prices": {"regular": 100}, "sale_opens_at": rfc3339(now_ms() - DAY_MS)});
    let (_, e) =
        call(&c.client, Method::POST, &format!("{base}/v1/admin/events"), Some(&admin), Some(event), None).await;
    let event = e["event_id"].as_str().unwrap().to_string();

    let b1 = book(&c, &base, &alice, &event, "Floor-A-1").await;
    let (s, _) = call(
        &c.client,
        Method::POST,
        &format!("{base}/v1/bookings/{}/cancel", b1["booking_id"].as_str().unwrap()),
        Some(&alice),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let got = wait_for(&state, 2).await;
    assert_eq!(got[0]["type"], "booking.confirmed");
    assert_eq!(got[0]["data"]["booking_id"], b1["booking_id"]);
    assert_eq!(got[1]["type"], "booking.cancelled");
    assert!(got[0]["index"].as_u64() < got[1]["index"].as_u64());
    {
        let r = state.lock().unwrap();
        assert_eq!(r.refused, 2, "the receiver refused twice and was retried");
        for (_, sig, body) in &r.accepted {
            assert_eq!(sig, &node::gateway::notify::signature(SECRET, body.as_bytes()), "bad signature on {body}");
        }
    }

    // The gateway restarts: what happens meanwhile and after is delivered.
    assert!(c.nodes[0].stop(), "node 1 did not stop cleanly\n{}", c.logs());
    c.nodes[0].start();
    c.wait_ready(&base, Duration::from_secs(60)).await;
    let b2 = book(&c, &base, &alice, &event, "Floor-A-2").await;
    let got = wait_for(&state, 3).await;
    assert_eq!(got[2]["type"], "booking.confirmed");
    assert_eq!(got[2]["data"]["booking_id"], b2["booking_id"]);
}
