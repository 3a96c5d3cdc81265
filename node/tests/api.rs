//! The HTTP API of the contract against a real three-node cluster of
//! `ticketd` processes: routes, status codes, bad input, races, payments.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::{call, cluster, Cluster};

const DAY_MS: u64 = 24 * 3600 * 1000;

fn rfc3339(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64).unwrap();
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

struct Api {
    c: Cluster,
    base: String,
    admin: String,
}

impl Api {
    async fn start() -> Api {
        let c = cluster(3, false);
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

    async fn req_key(&self, method: Method, path: &str, token: &str, body: Value, key: &str) -> (u16, Value) {
        call(&self.c.client, method, &format!("{}{path}", self.base), Some(token), Some(body), Some(key)).await
    }

    async fn venue(&self, spec: &[(&str, u32)], region: &str) -> String {
        let rows: Vec<Value> = spec.iter().map(|(l, n)| json!({"label": l, "seats": n})).collect();
        // A long first row gets a blocked and an accessible seat.
        let (blocked, accessible) =
            if spec[0].1 >= 10 { (vec!["Floor-A-10"], vec!["Floor-A-9"]) } else { (vec![], vec![]) };
        let body = json!({"name": "Hall", "city": "Pune", "region": region,
            "sections": [{"name": "Floor", "category": "regular", "rows": rows}],
            "blocked_seats": blocked, "accessible_seats": accessible});
        let (s, v) = self.req(Method::POST, "/v1/admin/venues", Some(&self.admin), Some(body)).await;
        assert_eq!(s, 201, "{v}");
        v["venue_id"].as_str().unwrap().to_string()
    }

    async fn event(&self, venue: &str, extra: Value) -> String {
        let mut body = json!({"venue_id": venue, "title": "Night Show", "kind": "concert",
            "starts_at": rfc3339(now_ms() + 30 * DAY_MS), "genre": "jazz", "language": "en", "currency": "INR",
            "prices": {"regular": 1000}, "sale_opens_at": rfc3339(now_ms() - DAY_MS)});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, v) = self.req(Method::POST, "/v1/admin/events", Some(&self.admin), Some(body)).await;
        assert_eq!(s, 201, "{v}");
        v["event_id"].as_str().unwrap().to_string()
    }

    async fn hold(&self, token: &str, event: &str, seats: &[&str]) -> (u16, Value) {
        self.req(Method::POST, &format!("/v1/events/{event}/holds"), Some(token), Some(json!({"seat_ids": seats})))
            .await
    }

    async fn pay(&self, token: &str, hold: &Value, card: &str) -> (u16, Value) {
        let body = json!({"hold_id": hold["hold_id"], "payment": {"token": card}});
        self.req(Method::POST, "/v1/bookings", Some(token), Some(body)).await
    }

    async fn seat_status(&self, event: &str, seat: &str) -> String {
        let (s, map) = self.req(Method::GET, &format!("/v1/events/{event}/seats"), None, None).await;
        assert_eq!(s, 200, "{map}");
        let seat = map["seats"].as_array().unwrap().iter().find(|x| x["seat_id"] == seat).unwrap();
        seat["status"].as_str().unwrap().to_string()
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_auth_and_browse_routes() {
    let api = Api::start().await;
    let alice = api.user("alice").await;

    // Operations.
    assert_eq!(api.req(Method::GET, "/healthz", None, None).await.0, 200);
    assert_eq!(api.req(Method::GET, "/readyz", None, None).await.0, 200);
    let (s, doc) = api.req(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert!(doc["paths"]["/v1/bookings"]["post"].is_object(), "{doc}");
    let (s, v) = api.req(Method::GET, "/nope", None, None).await;
    assert_eq!((s, code(&v)), (404, "not_found"));

    // Dev tokens and auth.
    let (s, v) = api.req(Method::POST, "/v1/dev/token", None, Some(json!({"user_id": "x", "roles": ["root"]}))).await;
    assert_eq!((s, code(&v)), (400, "invalid_request"));
    let (s, v) = api.req(Method::POST, "/v1/dev/token", None, Some(json!({"user_id": "x", "extra": 1}))).await;
    assert_eq!((s, code(&v)), (400, "invalid_request"), "unknown fields are refused");
    let (s, v) = api.req(Method::GET, "/v1/me/holds", None, None).await;
    assert_eq!((s, code(&v)), (401, "unauthorized"));
    let (s, _) = api.req(Method::GET, "/v1/me/holds", Some("garbage"), None).await;
    assert_eq!(s, 401);
    let (s, v) = api.req(Method::GET, "/v1/admin/cluster", Some(&alice), None).await;
    assert_eq!((s, code(&v)), (403, "forbidden"));

    // Venues.
    let venue_body = json!({"name": "V", "city": "Pune", "region": "ap-south", "sections": []});
    let (s, v) = api.req(Method::POST, "/v1/admin/venues", Some(&alice), Some(venue_body.clone())).await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = api.req(Method::POST, "/v1/admin/venues", Some(&api.admin), Some(venue_body)).await;
    assert_eq!((s, code(&v)), (400, "invalid_layout"));
    let dup = json!({"name": "V", "city": "Pune", "region": "ap-south",
        "sections": [{"name": "F", "category": "c", "rows": [{"label": "A", "seats": 2}, {"label": "A", "seats": 2}]}]});
    let (s, v) = api.req(Method::POST, "/v1/admin/venues", Some(&api.admin), Some(dup)).await;
    assert_eq!((s, code(&v)), (400, "invalid_layout"));
    let unknown_blocked = json!({"name": "V", "city": "Pune", "region": "ap-south", "blocked_seats": ["F-Z-9"],
        "sections": [{"name": "F", "category": "c", "rows": [{"label": "A", "seats": 2}]}]});
    let (s, v) = api.req(Method::POST, "/v1/admin/venues", Some(&api.admin), Some(unknown_blocked)).await;
    assert_eq!((s, code(&v)), (400, "invalid_layout"));
    let venue = api.venue(&[("A", 10), ("B", 10)], "eu-west").await;

    // Events.
    let base = json!({"venue_id": venue, "title": "Quartet", "kind": "concert", "starts_at": rfc3339(now_ms() + DAY_MS * 10),
        "genre": "jazz", "language": "en", "currency": "EUR", "prices": {"regular": 2500},
        "sale_opens_at": rfc3339(now_ms() - DAY_MS)});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (bad, expect) in [
        (with("kind", json!("opera")), "invalid_event"),
        (with("hold_ttl_secs", json!(0)), "invalid_event"),
        (with("hold_ttl_secs", json!(3601)), "invalid_event"),
        (with("max_seats_per_hold", json!(101)), "invalid_event"),
        (with("prices", json!({"vip": 1})), "invalid_event"),
        (with("starts_at", json!("tomorrow")), "invalid_request"),
    ] {
        let (s, v) = api.req(Method::POST, "/v1/admin/events", Some(&api.admin), Some(bad.clone())).await;
        assert_eq!((s, code(&v)), (400, expect), "{bad}: {v}");
    }
    let (s, v) =
        api.req(Method::POST, "/v1/admin/events", Some(&api.admin), Some(with("venue_id", json!("ven-2-999")))).await;
    assert_eq!((s, code(&v)), (404, "venue_not_found"));
    let (s, v) = api.req(Method::POST, "/v1/admin/events", Some(&api.admin), Some(base.clone())).await;
    assert_eq!(s, 201, "{v}");
    let event = v["event_id"].as_str().unwrap().to_string();

    // Details and availability.
    let (s, d) = api.req(Method::GET, &format!("/v1/events/{event}"), None, None).await;
    assert_eq!(s, 200, "{d}");
    let a = &d["availability"]["regular"];
    assert_eq!(a["total"], 20);
    assert_eq!(a["blocked"], 1);
    assert_eq!(a["available"], 19);
    assert_eq!(d["max_seats_per_hold"], 10);
    assert_eq!(d["hold_ttl_secs"], 600);
    assert_eq!(
        d["refund_policy"],
        json!([{"min_hours_before": 24, "percent": 100}, {"min_hours_before": 2, "percent": 50}])
    );
    for missing in ["/v1/events/evt-2-99999", "/v1/events/nonsense", "/v1/events/evt-77-1"] {
        let (s, v) = api.req(Method::GET, missing, None, None).await;
        assert_eq!((s, code(&v)), (404, "event_not_found"), "{missing}");
    }
    let (s, map) = api.req(Method::GET, &format!("/v1/events/{event}/seats"), None, None).await;
    assert_eq!(s, 200);
    assert_eq!(map["seats"].as_array().unwrap().len(), 20);
    assert!(map["as_of_index"].as_u64().unwrap() > 0);
    assert_eq!(api.seat_status(&event, "Floor-A-10").await, "blocked");
    let nine = map["seats"].as_array().unwrap().iter().find(|s| s["seat_id"] == "Floor-A-9").unwrap();
    assert_eq!(nine["accessible"], true);

    // Search: found within 2 s of its 201 (through this gateway at once), with a typo.
    let (s, list) = api.req(Method::GET, "/v1/events?q=quartett", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(list["events"][0]["event_id"], event.as_str(), "{list}");
    let (_, list) = api.req(Method::GET, "/v1/events?city=pune&kind=concert&genre=jazz", None, None).await;
    assert!(list["events"].as_array().unwrap().iter().any(|e| e["event_id"] == event.as_str()));
    let (_, list) = api.req(Method::GET, "/v1/events?kind=movie", None, None).await;
    assert!(list["events"].as_array().unwrap().iter().all(|e| e["kind"] == "movie"));
    for bad in [
        "/v1/events?limit=0",
        "/v1/events?limit=101",
        "/v1/events?cursor=x",
        "/v1/events?from=yesterday",
        "/v1/events?kind=opera",
        "/v1/events?bogus=1",
    ] {
        let (s, v) = api.req(Method::GET, bad, None, None).await;
        assert_eq!((s, code(&v)), (400, "invalid_request"), "{bad}");
    }
    // Another gateway finds it within 2 s (its catalog refreshes every second).
    let other = api.c.gateway(2);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (_, l) = call(&api.c.client, Method::GET, &format!("{other}/v1/events?q=quartet"), None, None, None).await;
        if l["events"].as_array().is_some_and(|e| !e.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "not searchable on gateway 2 within 2 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Cluster view and metrics.
    let (s, cl) = api.req(Method::GET, "/v1/admin/cluster", Some(&api.admin), None).await;
    assert_eq!(s, 200);
    assert_eq!(cl["groups"].as_array().unwrap().len(), 3);
    assert!(cl["groups"].as_array().unwrap().iter().all(|g| g["leader"].is_u64() && g["members"] == json!([1, 2, 3])));
    // Group metrics are published every second: poll a little.
    let deadline = Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let text = api.c.client.get(format!("{}/metrics", api.base)).send().await.unwrap().text().await.unwrap();
        if text.contains("raft_log_entries_per_sync") || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(metrics.contains("http_request_duration_seconds_bucket"), "latency is a histogram");
    for name in [
        "raft_term",
        "raft_leader",
        "raft_commit_index",
        "raft_applied_index",
        "raft_proposals_total",
        "raft_log_entries_per_sync",
        "shard_holds_active",
        "shard_domain_events_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }

    // A body over the limit.
    let big = json!({"user_id": "x".repeat(70_000)});
    let (s, v) = api.req(Method::POST, "/v1/dev/token", None, Some(big)).await;
    assert_eq!((s, code(&v)), (413, "payload_too_large"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_bookings_tickets_and_waitlist() {
    let api = Api::start().await;
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let scanner = api.c.token(&api.base, "gate-1", &["scanner"]).await;
    let venue = api.venue(&[("A", 10), ("B", 10)], "ap-south").await;
    let event = api.event(&venue, json!({"max_seats_per_hold": 4})).await;

    // Holds and their errors.
    let (s, h) = api.hold(&alice, &event, &["Floor-A-1", "Floor-A-2"]).await;
    assert_eq!(s, 201, "{h}");
    assert_eq!(h["total_price"], 2000);
    assert_eq!(h["currency"], "INR");
    assert_eq!(api.seat_status(&event, "Floor-A-1").await, "held");
    let (s, v) = api.hold(&bob, &event, &["Floor-A-2", "Floor-A-3", "Floor-A-10"]).await;
    assert_eq!((s, code(&v)), (409, "seats_unavailable"));
    assert_eq!(v["error"]["details"]["unavailable"], json!(["Floor-A-2", "Floor-A-10"]));
    assert_eq!(api.seat_status(&event, "Floor-A-3").await, "available", "all or nothing");
    let (s, v) = api.hold(&bob, &event, &["Floor-Z-1"]).await;
    assert_eq!((s, code(&v)), (400, "invalid_seats"));
    let (s, v) = api.hold(&bob, &event, &["Floor-B-1", "Floor-B-1"]).await;
    assert_eq!((s, code(&v)), (400, "invalid_seats"));
    let (s, v) = api.hold(&bob, &event, &[]).await;
    assert_eq!((s, code(&v)), (400, "invalid_seats"));
    let (s, v) = api.hold(&bob, &event, &["Floor-B-1", "Floor-B-2", "Floor-B-3", "Floor-B-4", "Floor-B-5"]).await;
    assert_eq!((s, code(&v)), (400, "too_many_seats"));
    let (s, v) = api.hold(&alice, &event, &["Floor-B-1"]).await;
    assert_eq!((s, code(&v)), (409, "hold_limit"));
    assert_eq!(v["error"]["details"]["hold_id"], h["hold_id"]);
    let (s, v) = api
        .req(
            Method::POST,
            &format!("/v1/events/{event}/holds"),
            Some(&bob),
            Some(json!({"best_available": {"count": 30, "category": "regular"}})),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "too_many_seats"), "{v}");
    let future = api.event(&venue, json!({"sale_opens_at": rfc3339(now_ms() + DAY_MS)})).await;
    let (s, v) = api.hold(&bob, &future, &["Floor-A-1"]).await;
    assert_eq!((s, code(&v)), (409, "not_on_sale"));

    // Idempotency: the same key answers the same, once.
    let body = json!({"seat_ids": ["Floor-B-1", "Floor-B-2"]});
    let first = api.req_key(Method::POST, &format!("/v1/events/{event}/holds"), &bob, body.clone(), "bob-h1").await;
    let again = api.req_key(Method::POST, &format!("/v1/events/{event}/holds"), &bob, body, "bob-h1").await;
    assert_eq!(first.0, 201);
    assert_eq!(first, again);

    // Reading holds.
    let hold_path = format!("/v1/holds/{}", h["hold_id"].as_str().unwrap());
    let (s, v) = api.req(Method::GET, &hold_path, Some(&alice), None).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("active")));
    assert_eq!(v["origin"], "user");
    assert_eq!(api.req(Method::GET, &hold_path, Some(&bob), None).await.0, 403);
    let (s, v) = api.req(Method::GET, "/v1/holds/hld-1-99999", Some(&bob), None).await;
    assert_eq!((s, code(&v)), (404, "hold_not_found"));
    let (_, mine) = api.req(Method::GET, "/v1/me/holds", Some(&alice), None).await;
    assert_eq!(mine["holds"].as_array().unwrap().len(), 1);

    // Releasing bob's hold frees the seats at once.
    let bob_hold = first.1["hold_id"].as_str().unwrap().to_string();
    assert_eq!(api.req(Method::DELETE, &format!("/v1/holds/{bob_hold}"), Some(&alice), None).await.0, 403);
    assert_eq!(api.req(Method::DELETE, &format!("/v1/holds/{bob_hold}"), Some(&bob), None).await.0, 204);
    assert_eq!(api.seat_status(&event, "Floor-B-1").await, "available");

    // Payment: declined keeps the hold, then another card books it.
    let (s, v) = api.pay(&alice, &h, "tok_declined").await;
    assert_eq!((s, code(&v)), (402, "payment_declined"));
    assert_eq!(v["error"]["details"]["reason"], "card_declined");
    let (s, v) = api.pay(&alice, &h, "tok_insufficient_funds").await;
    assert_eq!((s, v["error"]["details"]["reason"].as_str()), (402, Some("insufficient_funds")));
    assert_eq!(api.req(Method::GET, &hold_path, Some(&alice), None).await.1["status"], "active");
    let (s, v) = api.pay(&bob, &h, "tok_visa").await;
    assert_eq!(s, 403, "not the owner: {v}");
    let (s, booking) = api.pay(&alice, &h, "tok_visa").await;
    assert_eq!(s, 201, "{booking}");
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["seat_ids"], json!(["Floor-A-1", "Floor-A-2"]));
    assert_eq!(api.seat_status(&event, "Floor-A-1").await, "booked");
    let (s, v) = api.pay(&alice, &h, "tok_visa").await;
    assert_eq!((s, code(&v)), (409, "hold_confirmed"));
    let (s, v) = api.req(Method::DELETE, &hold_path, Some(&alice), None).await;
    assert_eq!((s, code(&v)), (409, "hold_confirmed"));
    let booking_path = format!("/v1/bookings/{}", booking["booking_id"].as_str().unwrap());
    let (s, v) = api.req(Method::GET, &booking_path, Some(&alice), None).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("confirmed")));
    assert_eq!(api.req(Method::GET, &booking_path, Some(&bob), None).await.0, 403);
    let (s, v) = api.req(Method::GET, "/v1/bookings/bkg-1-99999", Some(&bob), None).await;
    assert_eq!((s, code(&v)), (404, "booking_not_found"));
    let (_, mine) = api.req(Method::GET, "/v1/me/bookings", Some(&alice), None).await;
    assert_eq!(mine["bookings"].as_array().unwrap().len(), 1);

    // Tickets: signed, verifiable offline, transferable once, checked in once.
    let ticket = booking["tickets"][0]["ticket_id"].as_str().unwrap().to_string();
    let (s, t) = api.req(Method::GET, &format!("/v1/tickets/{ticket}"), Some(&alice), None).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!((t["status"].as_str(), t["version"].as_u64()), (Some("valid"), Some(1)));
    let (_, key) = api.req(Method::GET, "/v1/tickets/public-key", None, None).await;
    let old_payload = t["qr_payload"].as_str().unwrap().to_string();
    let claims = node::gateway::tickets::verify_with_key(key["public_key"].as_str().unwrap(), &old_payload).unwrap();
    assert_eq!(claims.ticket_id, ticket);
    let svg =
        api.c.client.get(format!("{}/v1/tickets/{ticket}/qr.svg", api.base)).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));
    assert_eq!(api.req(Method::GET, &format!("/v1/tickets/{ticket}"), Some(&bob), None).await.0, 403);
    let (s, moved) = api
        .req(Method::POST, &format!("/v1/tickets/{ticket}/transfer"), Some(&alice), Some(json!({"to_user": "bob"})))
        .await;
    assert_eq!(s, 200, "{moved}");
    assert_eq!(moved["version"], 2);
    let (s, v) = api.req(Method::POST, "/v1/checkin", Some(&scanner), Some(json!({"qr_payload": old_payload}))).await;
    assert_eq!((s, code(&v)), (400, "invalid_ticket"), "the old version no longer checks in");
    assert!(moved.get("qr_payload").is_none(), "the giver never holds a code for the new version: {moved}");
    let (s, v) = api.req(Method::GET, &format!("/v1/tickets/{ticket}"), Some(&alice), None).await;
    assert_eq!(s, 403, "the previous holder no longer reads the ticket: {v}");
    let (s, t) = api.req(Method::GET, &format!("/v1/tickets/{ticket}"), Some(&bob), None).await;
    assert_eq!((s, t["holder"].as_str(), t["version"].as_u64()), (200, Some("bob"), Some(2)), "{t}");
    let new_payload = t["qr_payload"].as_str().unwrap();
    let (s, v) = api.req(Method::POST, "/v1/checkin", Some(&bob), Some(json!({"qr_payload": new_payload}))).await;
    assert_eq!(s, 403, "only scanners check in: {v}");
    let (s, v) = api.req(Method::POST, "/v1/checkin", Some(&scanner), Some(json!({"qr_payload": new_payload}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ticket_id"], ticket.as_str());
    let (s, v) = api.req(Method::POST, "/v1/checkin", Some(&scanner), Some(json!({"qr_payload": new_payload}))).await;
    assert_eq!((s, code(&v)), (409, "already_checked_in"));
    assert!(v["error"]["details"]["checked_in_at"].is_string());
    let (s, v) =
        api.req(Method::POST, "/v1/checkin", Some(&scanner), Some(json!({"qr_payload": "forged.payload"}))).await;
    assert_eq!((s, code(&v)), (400, "invalid_ticket"));
    let (s, v) = api
        .req(Method::POST, &format!("/v1/tickets/{ticket}/transfer"), Some(&bob), Some(json!({"to_user": "carol"})))
        .await;
    assert_eq!((s, code(&v)), (409, "ticket_used"));

    // Cancellation: the whole refund a month ahead; the seats free at once.
    let (_, h2) = api.hold(&bob, &event, &["Floor-B-5"]).await;
    let (s, b2) = api.pay(&bob, &h2, "tok_visa").await;
    assert_eq!(s, 201);
    let cancel = format!("/v1/bookings/{}/cancel", b2["booking_id"].as_str().unwrap());
    assert_eq!(api.req(Method::POST, &cancel, Some(&alice), None).await.0, 403);
    let (s, v) = api.req(Method::POST, &cancel, Some(&bob), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["refund_percent"].as_u64(), v["refund_amount"].as_u64()), (Some(100), Some(1000)));
    assert_eq!(api.seat_status(&event, "Floor-B-5").await, "available");
    let (s, v) = api.req(Method::POST, &cancel, Some(&bob), None).await;
    assert_eq!((s, code(&v)), (409, "already_cancelled"));
    let soon = api.event(&venue, json!({"starts_at": rfc3339(now_ms() + 3_600_000)})).await;
    let (_, h3) = api.hold(&bob, &soon, &["Floor-A-1"]).await;
    let (_, b3) = api.pay(&bob, &h3, "tok_visa").await;
    let (s, v) = api
        .req(Method::POST, &format!("/v1/bookings/{}/cancel", b3["booking_id"].as_str().unwrap()), Some(&bob), None)
        .await;
    assert_eq!((s, code(&v)), (409, "cancellation_closed"));

    // Waitlist.
    let (s, v) = api
        .req(
            Method::POST,
            &format!("/v1/events/{event}/waitlist"),
            Some(&bob),
            Some(json!({"count": 1, "category": "regular"})),
        )
        .await;
    assert_eq!((s, code(&v)), (409, "not_sold_out"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_holds_answer_410_or_409_and_waitlists_get_offers() {
    let api = Api::start().await;
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let carol = api.user("carol").await;
    let venue = api.venue(&[("A", 3)], "us-east").await;
    let event = api.event(&venue, json!({"hold_ttl_secs": 1})).await;
    let (s, h) = api.hold(&alice, &event, &["Floor-A-1"]).await;
    assert_eq!(s, 201, "{h}");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(api.seat_status(&event, "Floor-A-1").await, "available", "an expired hold shows available");
    let (s, v) = api.pay(&alice, &h, "tok_visa").await;
    assert_eq!((s, code(&v)), (410, "hold_expired"));

    let (_, h) = api.hold(&alice, &event, &["Floor-A-2"]).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (s, _) = api.hold(&bob, &event, &["Floor-A-2"]).await;
    assert_eq!(s, 201);
    let (s, v) = api.pay(&alice, &h, "tok_visa").await;
    assert_eq!((s, code(&v)), (409, "seats_lost"));

    // Sold out: bob books A-2, carol holds and books them.
    let (_, bob_hold) = api.req(Method::GET, "/v1/me/holds", Some(&bob), None).await;
    let bob_hold = bob_hold["holds"][0].clone();
    let (s, _) = api.pay(&bob, &bob_hold, "tok_visa").await;
    assert_eq!(s, 201);
    let (_, ch) = api.hold(&carol, &event, &["Floor-A-1", "Floor-A-3"]).await;
    let (s, cb) = api.pay(&carol, &ch, "tok_visa").await;
    assert_eq!(s, 201);
    let (s, v) = api
        .req(
            Method::POST,
            &format!("/v1/events/{event}/holds"),
            Some(&alice),
            Some(json!({"best_available": {"count": 1, "category": "regular"}})),
        )
        .await;
    assert_eq!((s, code(&v)), (409, "sold_out"));
    let (s, w) = api
        .req(
            Method::POST,
            &format!("/v1/events/{event}/waitlist"),
            Some(&alice),
            Some(json!({"count": 1, "category": "regular"})),
        )
        .await;
    assert_eq!(s, 201, "{w}");
    assert_eq!(w["position"], 1);
    // Carol cancels: the offer to alice is visible as soon as the cancel is acknowledged.
    let (s, _) = api
        .req(Method::POST, &format!("/v1/bookings/{}/cancel", cb["booking_id"].as_str().unwrap()), Some(&carol), None)
        .await;
    assert_eq!(s, 200);
    let (_, mine) = api.req(Method::GET, "/v1/me/holds", Some(&alice), None).await;
    let offers: Vec<&Value> = mine["holds"].as_array().unwrap().iter().filter(|h| h["origin"] == "waitlist").collect();
    assert_eq!(offers.len(), 1, "{mine}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_clients_never_share_a_seat() {
    let api = Api::start().await;
    let venue = api.venue(&[("A", 10)], "ap-south").await;
    // A-10 is blocked: racers who ask for it get 409 like those who lose.
    let event = api.event(&venue, json!({})).await;
    let seats: Vec<String> = (1..=10).map(|n| format!("Floor-A-{n}")).collect();
    let mut tokens = Vec::new();
    for i in 0..200 {
        tokens.push(api.user(&format!("racer{i}")).await);
    }
    let mut tasks = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let client = api.c.client.clone();
        let url = format!("{}/v1/events/{event}/holds", api.base);
        // Each racer wants two neighbouring seats, so requests overlap.
        let want = vec![seats[i % 9].clone(), seats[i % 9 + 1].clone()];
        tasks.push(tokio::spawn(async move {
            let r = client.post(url).bearer_auth(token).json(&json!({"seat_ids": want})).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }));
    }
    let mut held: Vec<String> = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            201 => held.extend(body["seat_ids"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string())),
            409 => assert_eq!(code(&body), "seats_unavailable"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let unique: BTreeSet<&String> = held.iter().collect();
    assert_eq!(unique.len(), held.len(), "a seat was given to two clients: {held:?}");
    assert!(!held.is_empty());
    let (_, map) = api.req(Method::GET, &format!("/v1/events/{event}/seats"), None, None).await;
    let shown: BTreeSet<String> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "held")
        .map(|s| s["seat_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(shown, unique.into_iter().cloned().collect(), "the seat map shows exactly the granted holds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_that_timed_out_is_reconciled_into_a_booking() {
    let api = Api::start().await;
    let alice = api.user("alice").await;
    let venue = api.venue(&[("A", 5)], "eu-west").await;
    let event = api.event(&venue, json!({})).await;
    let (_, h) = api.hold(&alice, &event, &["Floor-A-1"]).await;
    let (s, v) = api.pay(&alice, &h, "tok_timeout").await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["status"], "pending");
    let path = format!("/v1/bookings/{}", v["booking_id"].as_str().unwrap());
    let (s, b) = api.req(Method::GET, &path, Some(&alice), None).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("pending")), "{b}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, b) = api.req(Method::GET, &path, Some(&alice), None).await;
        if b["status"] == "confirmed" {
            break;
        }
        assert!(Instant::now() < deadline, "never reconciled: {b}\n{}", api.c.logs());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(api.seat_status(&event, "Floor-A-1").await, "booked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_that_outlives_its_hold_is_refunded_automatically() {
    let api = Api::start().await;
    let dora = api.user("dora").await;
    let venue = api.venue(&[("A", 2)], "eu-west").await;
    let event = api.event(&venue, json!({"hold_ttl_secs": 1})).await;
    let (s, h) = api.hold(&dora, &event, &["Floor-A-1"]).await;
    assert_eq!(s, 201, "{h}");
    // The sandbox captures `tok_slow_visa` after 1.5 s: the payment starts
    // while the hold is live and the charge lands after it lapsed.
    let (s, v) = api.pay(&dora, &h, "tok_slow_visa").await;
    assert_eq!((s, code(&v)), (410, "hold_expired"), "{v}");
    assert_eq!(v["error"]["details"]["refund_amount"], json!(1000), "{v}");
    assert_eq!(v["error"]["details"]["refund_status"], json!("refunded"), "{v}");
    let (s, mine) = api.req(Method::GET, "/v1/me/bookings", Some(&dora), None).await;
    assert_eq!(s, 200);
    assert_eq!(mine["bookings"], json!([]), "a charge without a booking must not leave a booking either");
    assert_eq!(api.seat_status(&event, "Floor-A-1").await, "available");
}
