//! The live seat map over SSE against a real cluster: every change of a run
//! arrives in log order, and a client that reconnects with `Last-Event-ID`
//! gets what it missed without gaps.

mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::{call, cluster};

const DAY_MS: u64 = 24 * 3600 * 1000;

fn rfc3339(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64).unwrap();
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// One parsed SSE event: (id, data).
type SseEvent = (Option<String>, Value);

/// Reads SSE events from `url` until `until` says stop or the time is up.
async fn read_events(
    client: &reqwest::Client,
    url: &str,
    last_event_id: Option<&str>,
    until: impl Fn(&[SseEvent]) -> bool,
) -> Vec<SseEvent> {
    let mut req = client.get(url).header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let mut response = req.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !until(&events) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "stream stalled after {} events: {events:?}", events.len());
        let Ok(Ok(Some(chunk))) = tokio::time::timeout(left, response.chunk()).await else { panic!("stream ended") };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut id = None;
            let mut data = None;
            let mut kind = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str::<Value>(v.trim()).unwrap());
                } else if let Some(v) = line.strip_prefix("event:") {
                    kind = Some(v.trim().to_string());
                }
            }
            if let (Some("seat"), Some(data)) = (kind.as_deref(), data) {
                events.push((id, data));
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seat_stream_delivers_every_change_in_order_and_resumes() {
    let c = cluster(3, false);
    let base = c.gateway(1);
    c.wait_ready(&base, Duration::from_secs(60)).await;
    let admin = c.token(&base, "root", &["admin"]).await;
    let alice = c.token(&base, "alice", &[]).await;
    let venue = json!({"name": "Hall", "city": "Pune", "region": "ap-south",
        "sections": [{"name": "Floor", "category": "regular", "rows": [{"label": "A", "seats": 6}]}]});
    let (_, v) =
        call(&c.client, Method::POST, &format!("{base}/v1/admin/venues"), Some(&admin), Some(venue), None).await;
    let event = json!({"venue_id": v["venue_id"], "title": "Stream Night", "kind": "concert",
        "starts_at": rfc3339(now_ms() + 30 * DAY_MS), "genre": "rock", "language": "en", "currency": "INR",
        "prices": {"regular": 100}, "sale_opens_at": rfc3339(now_ms() - DAY_MS)});
    let (_, e) =
        call(&c.client, Method::POST, &format!("{base}/v1/admin/events"), Some(&admin), Some(event), None).await;
    let event = e["event_id"].as_str().unwrap().to_string();
    let url = format!("{base}/v1/events/{event}/seats/stream");

    // A fresh client first gets the whole map, all available.
    let first = read_events(&c.client, &url, None, |ev| ev.len() >= 6).await;
    assert_eq!(first.len(), 6);
    assert!(first.iter().all(|(_, d)| d["status"] == "available"));
    let start_id = first.last().unwrap().0.clone().expect("the last seat of the map carries the index");

    // Changes made while nobody watches: hold two seats, book them, release
    // another hold.
    let hold = |seats: Value| {
        let (c, base, alice, event) = (&c, &base, &alice, &event);
        async move {
            let (s, h) = call(
                &c.client,
                Method::POST,
                &format!("{base}/v1/events/{event}/holds"),
                Some(alice),
                Some(json!({"seat_ids": seats})),
                None,
            )
            .await;
            assert_eq!(s, 201, "{h}");
            h
        }
    };
    let h = hold(json!(["Floor-A-1", "Floor-A-2"])).await;
    let (s, _) = call(
        &c.client,
        Method::POST,
        &format!("{base}/v1/bookings"),
        Some(&alice),
        Some(json!({"hold_id": h["hold_id"], "payment": {"token": "tok_visa"}})),
        None,
    )
    .await;
    assert_eq!(s, 201);
    let h2 = hold(json!(["Floor-A-5"])).await;
    let (s, _) = call(
        &c.client,
        Method::DELETE,
        &format!("{base}/v1/holds/{}", h2["hold_id"].as_str().unwrap()),
        Some(&alice),
        None,
        None,
    )
    .await;
    assert_eq!(s, 204);

    // Resuming from the map's index replays exactly those changes, in order.
    let expected = [
        ("Floor-A-1", "held"),
        ("Floor-A-2", "held"),
        ("Floor-A-1", "booked"),
        ("Floor-A-2", "booked"),
        ("Floor-A-5", "held"),
        ("Floor-A-5", "available"),
    ];
    let resumed = read_events(&c.client, &url, Some(&start_id), |ev| ev.len() >= expected.len()).await;
    let got: Vec<(String, String)> = resumed
        .iter()
        .map(|(_, d)| (d["seat_id"].as_str().unwrap().to_string(), d["status"].as_str().unwrap().to_string()))
        .collect();
    let want: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(got, want);
    let indexes: Vec<u64> = resumed.iter().map(|(_, d)| d["index"].as_u64().unwrap()).collect();
    assert!(indexes.windows(2).all(|w| w[0] <= w[1]), "in log order: {indexes:?}");
    assert!(resumed[0].1["index"].as_u64().unwrap() > start_id.parse::<u64>().unwrap());
    // Only the last change of an entry carries its id.
    assert_eq!(resumed[0].0, None);
    assert_eq!(resumed[1].0.as_deref(), Some(resumed[1].1["index"].to_string().as_str()));

    // A live change reaches a watching client within a second.
    let last = resumed.last().unwrap().0.clone().unwrap();
    let watcher = {
        let (client, url) = (c.client.clone(), url.clone());
        tokio::spawn(async move { read_events(&client, &url, Some(&last), |ev| !ev.is_empty()).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let made = Instant::now();
    hold(json!(["Floor-A-6"])).await;
    let live = watcher.await.unwrap();
    assert!(made.elapsed() < Duration::from_secs(1), "took {:?}", made.elapsed());
    assert_eq!(live[0].1["seat_id"], "Floor-A-6");
    assert_eq!(live[0].1["status"], "held");
}
