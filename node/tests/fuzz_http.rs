//! Property test over the HTTP layer of a real cluster: arbitrary JSON
//! bodies (near-valid shapes with extreme integers, huge and odd strings,
//! wrong types, unknown fields) and headers sent to every route that takes
//! a body. Every answer is a 2xx or a typed 4xx, never a 5xx other than a
//! documented 503, and the cluster keeps serving afterwards: no node
//! panicked, every region is ready, a hold still succeeds.

mod support;

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{json, Map, Value};
use support::{cluster, Cluster};

/// Field names of the API's request bodies: arbitrary objects use them
/// (and a few unknown ones) so that bodies get past the shape checks.
const FIELDS: &[&str] = &[
    "seat_ids",
    "best_available",
    "count",
    "category",
    "together",
    "accessible",
    "hold_id",
    "payment",
    "token",
    "to_user",
    "qr_payload",
    "prices",
    "regular",
    "name",
    "city",
    "region",
    "sections",
    "rows",
    "label",
    "seats",
    "venue_id",
    "title",
    "kind",
    "starts_at",
    "genre",
    "language",
    "currency",
    "sale_opens_at",
    "max_seats_per_hold",
    "hold_ttl_secs",
    "refund_policy",
    "min_hours_before",
    "percent",
    "waiting_room",
    "enabled",
    "admit_per_minute",
    "active_max",
    "user_id",
    "roles",
    "node_id",
    "addr",
    "to",
    "blocked_seats",
    "accessible_seats",
    "unknown_field",
];

fn leaf(ids: Vec<String>) -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(vec![
            json!(0),
            json!(1),
            json!(-1),
            json!(2),
            json!(100),
            json!(101),
            json!(3600),
            json!(u32::MAX),
            json!(u32::MAX as u64 + 1),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(1u64 << 53),
            json!(1e300),
            json!(-0.5),
        ]),
        any::<i64>().prop_map(|n| json!(n)),
        prop::sample::select(ids).prop_map(Value::String),
        "[a-zA-Z0-9 _#/:-]{0,40}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
        (1usize..70_000, any::<char>()).prop_map(|(n, c)| Value::String(c.to_string().repeat(n.min(70_000 / 4)))),
        Just(Value::String("2026-12-31T20:00:00Z".into())),
        Just(Value::String("\u{0}\u{1b}\t\n".into())),
    ]
}

fn body(ids: Vec<String>) -> impl Strategy<Value = Value> {
    leaf(ids).prop_recursive(3, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())),
        ]
    })
}

fn header_value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        "[ -~]{0,40}".prop_map(Some),
        (0usize..300).prop_map(|n| Some("k".repeat(n))),
        Just(Some("18446744073709551615".into())),
        Just(Some("-1".into())),
    ]
}

struct Target {
    c: Cluster,
    base: String,
    user: String,
    admin: String,
    scanner: String,
    event: String,
    hold: String,
    booking: String,
    ticket: String,
}

async fn setup() -> Target {
    let c = cluster(1, false);
    let base = c.gateway(1);
    c.wait_ready(&base, Duration::from_secs(60)).await;
    let admin = c.token(&base, "root", &["admin"]).await;
    let scanner = c.token(&base, "gate", &["scanner"]).await;
    let user = c.token(&base, "fuzzer", &[]).await;
    let post = |path: &str, token: &str, body: Value| {
        let (client, url, token) = (c.client.clone(), format!("{base}{path}"), token.to_string());
        async move { support::call(&client, Method::POST, &url, Some(&token), Some(body), None).await }
    };
    let venue = json!({"name": "Hall", "city": "Pune", "region": "ap-south",
        "sections": [{"name": "Floor", "category": "regular", "rows": [{"label": "A", "seats": 50}]}]});
    let (s, v) = post("/v1/admin/venues", &admin, venue).await;
    assert_eq!(s, 201, "{v}");
    let now = support::now_ms();
    let event = json!({"venue_id": v["venue_id"], "title": "Fuzz", "kind": "concert",
        "starts_at": support::rfc3339(now + 30 * 86_400_000), "genre": "rock", "language": "en", "currency": "INR",
        "prices": {"regular": 1000}, "sale_opens_at": support::rfc3339(now - 3_600_000)});
    let (s, v) = post("/v1/admin/events", &admin, event).await;
    assert_eq!(s, 201, "{v}");
    let event = v["event_id"].as_str().unwrap().to_string();
    let (s, h) = post(&format!("/v1/events/{event}/holds"), &user, json!({"seat_ids": ["Floor-A-50"]})).await;
    assert_eq!(s, 201, "{h}");
    let hold = h["hold_id"].as_str().unwrap().to_string();
    let (s, b) = post("/v1/bookings", &user, json!({"hold_id": hold, "payment": {"token": "tok_visa"}})).await;
    assert_eq!(s, 201, "{b}");
    let booking = b["booking_id"].as_str().unwrap().to_string();
    let ticket = b["tickets"][0]["ticket_id"].as_str().unwrap().to_string();
    // A fresh hold the fuzzer may pay for, release or extend.
    let (_, h) = post(&format!("/v1/events/{event}/holds"), &admin, json!({"seat_ids": ["Floor-A-49"]})).await;
    let hold = h["hold_id"].as_str().map_or(hold, str::to_string);
    Target { c, base, user, admin, scanner, event, hold, booking, ticket }
}

/// Statuses a 5xx may have: the cluster or the gateway is (briefly) busy.
const SERVICE_CODES: &[&str] = &["unavailable", "busy", "limit_reached", "too_many_streams"];

#[test]
fn arbitrary_bodies_and_headers_get_typed_answers_and_harm_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let t = rt.block_on(setup());
    let ids = vec![
        t.event.clone(),
        t.hold.clone(),
        t.booking.clone(),
        t.ticket.clone(),
        "Floor-A-1".to_string(),
        "regular".to_string(),
        "ap-south".to_string(),
        "tok_visa".to_string(),
        "tok_timeout".to_string(),
        "evt-1-18446744073709551615".to_string(),
        "hld-9-1".to_string(),
    ];
    let routes: Vec<(Method, String, &str)> = vec![
        (Method::POST, format!("/v1/events/{}/holds", t.event), "user"),
        (Method::POST, "/v1/bookings".into(), "user"),
        (Method::POST, format!("/v1/events/{}/waitlist", t.event), "user"),
        (Method::POST, format!("/v1/events/{}/queue", t.event), "user"),
        (Method::POST, format!("/v1/tickets/{}/transfer", t.ticket), "user"),
        (Method::POST, format!("/v1/bookings/{}/cancel", t.booking), "user"),
        (Method::DELETE, format!("/v1/holds/{}", t.hold), "user"),
        (Method::POST, "/v1/checkin".into(), "scanner"),
        (Method::POST, "/v1/admin/venues".into(), "admin"),
        (Method::POST, "/v1/admin/events".into(), "admin"),
        (Method::POST, "/v1/dev/token".into(), "none"),
    ];
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let strategy = (0..routes.len(), body(ids.clone()), header_value(), header_value(), prop::sample::select(ids));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let result = runner.run(&strategy, |(route, body, key, last_event, id)| {
        let (method, path, who) = &routes[route];
        let token = match *who {
            "user" => Some(&t.user),
            "admin" => Some(&t.admin),
            "scanner" => Some(&t.scanner),
            _ => None,
        };
        rt.block_on(async {
            let mut req = client.request(method.clone(), format!("{}{path}", t.base)).json(&body);
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            if let Some(k) = key.as_deref().and_then(|k| reqwest::header::HeaderValue::from_str(k).ok()) {
                req = req.header("Idempotency-Key", k);
            }
            check(req, &format!("{method} {path} {body}")).await?;
            // The query-string and header inputs of the read routes.
            let q: String = url_escape(&id);
            check(client.get(format!("{}/v1/events?q={q}&limit=5", t.base)), "search").await?;
            check(client.get(format!("{}/v1/events/{q}", t.base)), "event").await?;
            if let Some(last) = last_event.as_deref().and_then(|v| reqwest::header::HeaderValue::from_str(v).ok()) {
                let stream = client
                    .get(format!("{}/v1/events/{}/seats/stream", t.base, t.event))
                    .header("Last-Event-ID", last)
                    .timeout(Duration::from_secs(5));
                check(stream, "seat stream").await?;
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}\n{}", t.c.logs());
    }
    let sent = SENT.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent >= cases as usize, "only {sent} requests were sent for {cases} cases");
    rt.block_on(async {
        let (s, v) = support::call(&client, Method::GET, &format!("{}/readyz", t.base), None, None, None).await;
        assert_eq!(s, 200, "{v}\n{}", t.c.logs());
        let probe = t.c.token(&t.base, "probe", &[]).await;
        let url = format!("{}/v1/events/{}/holds", t.base, t.event);
        let (s, v) =
            support::call(&client, Method::POST, &url, Some(&probe), Some(json!({"seat_ids": ["Floor-A-1"]})), None)
                .await;
        assert!(s == 201 || (s == 409 && v["error"]["code"] == "seats_unavailable"), "{s} {v}");
    });
    let logs = t.c.logs();
    assert!(!logs.contains("panicked"), "a node panicked:\n{logs}");
}

/// Requests answered, so that the test knows it tested something.
static SENT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn check(req: reqwest::RequestBuilder, what: &str) -> Result<(), TestCaseError> {
    SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let again = req.try_clone();
    let r = match req.send().await {
        Ok(r) => r,
        // A server that refused a body it did not read (413) closes the
        // connection, which the client may have pooled for this request:
        // once more, on a new connection.
        Err(first) => match again {
            Some(req) => {
                req.send().await.map_err(|e| TestCaseError::fail(format!("{what}: no answer: {first}; {e}")))?
            }
            None => return Err(TestCaseError::fail(format!("{what}: no answer: {first}"))),
        },
    };
    let status = r.status().as_u16();
    if r.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream")) {
        prop_assert_eq!(status, 200, "{}", what);
        return Ok(());
    }
    let text = r.text().await.unwrap_or_default();
    if status >= 500 {
        let code =
            serde_json::from_str::<Value>(&text).ok().and_then(|v| v["error"]["code"].as_str().map(str::to_string));
        prop_assert!(
            status == 503 && code.as_deref().is_some_and(|c| SERVICE_CODES.contains(&c)),
            "{}: {} {}",
            what,
            status,
            text
        );
    } else if status >= 400 {
        let v: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{what}: {e}: {text}")))?;
        prop_assert!(v["error"]["code"].is_string(), "{}: untyped {} {}", what, status, text);
    }
    Ok(())
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'-' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}
