//! The payment provider boundary on real processes: gateways with
//! `provider = "http"` against `ticketd payments-sandbox` (docs/payments.md),
//! its webhooks, and the start-up rules of `gateway.payments.provider`.

mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::{call, cluster_configured, http_payments, Cluster, PaymentsSandbox, PAYMENTS_WEBHOOK_SECRET};

const DAY_MS: u64 = 24 * 3600 * 1000;

async fn venue_and_event(c: &Cluster, base: &str, admin: &str, seats: u32) -> String {
    let body = json!({"name": "Hall", "city": "Pune", "region": "eu-west",
        "sections": [{"name": "Floor", "category": "regular", "rows": [{"label": "A", "seats": seats}]}]});
    let (s, v) = call(&c.client, Method::POST, &format!("{base}/v1/admin/venues"), Some(admin), Some(body), None).await;
    assert_eq!(s, 201, "{v}");
    let body = json!({"venue_id": v["venue_id"], "title": "Night Show", "kind": "concert",
        "starts_at": support::rfc3339(support::now_ms() + 30 * DAY_MS), "genre": "jazz", "language": "en",
        "currency": "INR", "prices": {"regular": 1000}, "sale_opens_at": support::rfc3339(support::now_ms() - DAY_MS)});
    let (s, v) = call(&c.client, Method::POST, &format!("{base}/v1/admin/events"), Some(admin), Some(body), None).await;
    assert_eq!(s, 201, "{v}");
    v["event_id"].as_str().unwrap().to_string()
}

async fn hold(c: &Cluster, base: &str, user: &str, event: &str, seat: &str) -> String {
    let url = format!("{base}/v1/events/{event}/holds");
    let (s, v) = call(&c.client, Method::POST, &url, Some(user), Some(json!({"seat_ids": [seat]})), None).await;
    assert_eq!(s, 201, "{v}");
    v["hold_id"].as_str().unwrap().to_string()
}

async fn pay(c: &Cluster, base: &str, user: &str, hold: &str, token: &str) -> (u16, Value) {
    let body = json!({"hold_id": hold, "payment": {"token": token}});
    call(&c.client, Method::POST, &format!("{base}/v1/bookings"), Some(user), Some(body), None).await
}

async fn booking_status(c: &Cluster, base: &str, user: &str, booking: &Value) -> String {
    let url = format!("{base}/v1/bookings/{}", booking.as_str().unwrap());
    let (s, b) = call(&c.client, Method::GET, &url, Some(user), None, None).await;
    assert_eq!(s, 200, "{b}");
    b["status"].as_str().unwrap().to_string()
}

async fn wait_confirmed(c: &Cluster, base: &str, user: &str, booking: &Value, why: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while booking_status(c, base, user, booking).await != "confirmed" {
        assert!(Instant::now() < deadline, "{why}: never confirmed\n{}", c.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The provider's record of the charge for `hold` (intent ids start with the hold id).
async fn charge_of(c: &Cluster, provider: &PaymentsSandbox, hold: &str) -> Value {
    let (s, v) = provider.call(&c.client, Method::GET, "/v1/charges", None).await;
    assert_eq!(s, 200, "{v}");
    let prefix = format!("{hold}/");
    v["charges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ch| ch["idempotency_key"].as_str().unwrap().starts_with(&prefix))
        .unwrap_or_else(|| panic!("no charge for {hold}: {v}"))
        .clone()
}

/// Posts a notification to a gateway's webhook route, signed with `secret`.
async fn notify(c: &Cluster, base: &str, secret: &str, ts: u64, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let sig = node::gateway::payments_http::webhook_signature(secret, ts, &bytes);
    let r = c
        .client
        .post(format!("{base}/v1/payments/webhook"))
        .header(node::gateway::payments_http::TIMESTAMP_HEADER, ts.to_string())
        .header(node::gateway::payments_http::SIGNATURE_HEADER, sig)
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Gateway 1 pays through a provider that notifies it; gateway 2 through
/// one that notifies nobody, so only the test's own notifications reach
/// it. The reconciler waits two minutes, so within the test only webhooks
/// settle a payment whose outcome was unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_pay_through_an_http_provider_and_its_webhooks() {
    let (p1_port, p2_port) = (support::free_port(), support::free_port());
    let timing = "payment_grace_ms = 120000\n";
    let node1 = format!("{timing}{}", http_payments(&format!("http://127.0.0.1:{p1_port}"), ", call_timeout_ms = 500"));
    let others =
        format!("{timing}{}", http_payments(&format!("http://127.0.0.1:{p2_port}"), ", call_timeout_ms = 500"));
    let c = cluster_configured(3, false, |id| if id == 1 { node1.clone() } else { others.clone() });
    let (g1, g2) = (c.gateway(1), c.gateway(2));
    let hook = format!("{g1}/v1/payments/webhook");
    let p1 = PaymentsSandbox::start(
        &format!("127.0.0.1:{p1_port}"),
        Some(hook.as_str()),
        1_500,
        &c.dir.path().join("p1.log"),
    );
    let p2 = PaymentsSandbox::start(&format!("127.0.0.1:{p2_port}"), None, 6_000, &c.dir.path().join("p2.log"));
    c.wait_ready(&g1, Duration::from_secs(60)).await;
    c.wait_ready(&g2, Duration::from_secs(60)).await;
    let admin = c.token(&g1, "root", &["admin"]).await;
    let alice = c.token(&g1, "alice", &[]).await;
    let (bob, carol, dave) =
        (c.token(&g1, "bob", &[]).await, c.token(&g1, "carol", &[]).await, c.token(&g1, "dave", &[]).await);
    let event = venue_and_event(&c, &g1, &admin, 10).await;

    // Captured: 201, and the provider holds the money under the intent.
    let h = hold(&c, &g1, &alice, &event, "Floor-A-1").await;
    let (s, v) = pay(&c, &g1, &alice, &h, "tok_visa").await;
    assert_eq!((s, v["status"].as_str()), (201, Some("confirmed")), "{v}");
    let charge = charge_of(&c, &p1, &h).await;
    assert_eq!((charge["status"].as_str(), charge["amount"].as_u64()), (Some("captured"), Some(1000)), "{charge}");

    // Declined: 402 with the reason, and the hold stays active.
    let h = hold(&c, &g1, &bob, &event, "Floor-A-2").await;
    for (token, reason) in [("tok_declined", "card_declined"), ("tok_insufficient_funds", "insufficient_funds")] {
        let (s, v) = pay(&c, &g1, &bob, &h, token).await;
        assert_eq!((s, v["error"]["code"].as_str()), (402, Some("payment_declined")), "{v}");
        assert_eq!(v["error"]["details"]["reason"], reason, "{v}");
    }
    let (s, v) = call(&c.client, Method::GET, &format!("{g1}/v1/holds/{h}"), Some(&bob), None, None).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("active")), "{v}");

    // No answer in time: 202 pending, confirmed by the provider's webhook
    // once it captured (the reconciler would wait two minutes).
    let h = hold(&c, &g1, &carol, &event, "Floor-A-3").await;
    let (s, v) = pay(&c, &g1, &carol, &h, "tok_timeout").await;
    assert_eq!((s, v["status"].as_str()), (202, Some("pending")), "{v}");
    assert_eq!(booking_status(&c, &g1, &carol, &v["booking_id"]).await, "pending");
    wait_confirmed(&c, &g1, &carol, &v["booking_id"], "the provider's webhook").await;

    // Gateway 2's provider sends no webhooks: a tok_timeout stays pending.
    let h = hold(&c, &g2, &dave, &event, "Floor-A-4").await;
    let (s, v) = pay(&c, &g2, &dave, &h, "tok_timeout").await;
    assert_eq!((s, v["status"].as_str()), (202, Some("pending")), "{v}");
    let booking = v["booking_id"].clone();
    let key = charge_of(&c, &p2, &h).await["idempotency_key"].as_str().unwrap().to_string();
    let now = node::gateway::payments_http::unix_secs();
    let captured = json!({"id": "whk_test_1", "type": "charge.captured", "idempotency_key": key});
    // A bad signature, a stale one and a wrong key are refused and change nothing.
    let (s, v) = notify(&c, &g2, "not-the-webhook-secret-0123456789abcdef", now, &captured).await;
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("invalid_signature")), "{v}");
    let (s, v) = notify(&c, &g2, PAYMENTS_WEBHOOK_SECRET, now - 3_600, &captured).await;
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("invalid_signature")), "{v}");
    let r = c.client.post(format!("{g2}/v1/payments/webhook")).json(&captured).send().await.unwrap();
    assert_eq!(r.status(), 401, "unsigned");
    // A signed notification is only a hint: the provider still says
    // "pending", so nothing is confirmed (503: the provider retries).
    let (s, v) = notify(&c, &g2, PAYMENTS_WEBHOOK_SECRET, now, &captured).await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(booking_status(&c, &g2, &dave, &booking).await, "pending");
    // Once the provider captured, the same notification confirms the booking.
    let deadline = Instant::now() + Duration::from_secs(20);
    while charge_of(&c, &p2, &h).await["status"] != "captured" {
        assert!(Instant::now() < deadline, "the provider never captured");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(booking_status(&c, &g2, &dave, &booking).await, "pending", "nothing settles it but a webhook");
    let (s, v) = notify(&c, &g2, PAYMENTS_WEBHOOK_SECRET, node::gateway::payments_http::unix_secs(), &captured).await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(booking_status(&c, &g2, &dave, &booking).await, "confirmed");
    // A repeat is acknowledged and changes nothing.
    let (s, _) = notify(&c, &g2, PAYMENTS_WEBHOOK_SECRET, node::gateway::payments_http::unix_secs(), &captured).await;
    assert_eq!(s, 204);
    let logs = c.logs();
    assert!(!logs.contains("PAYMENTS ARE THE SANDBOX"), "no sandbox warning with a real provider");
}

/// `ticketd run` on `config`: its exit code and standard error, or -1 if it
/// was still running after 30 s (it started).
fn run_with(config: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, config).unwrap();
    let err_path = dir.path().join("stderr");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .args(["run", "--config"])
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (code, std::fs::read_to_string(&err_path).unwrap())
}

fn single_node(dir: &std::path::Path, grpc: u16, http: u16, gateway_extra: &str) -> String {
    format!(
        "[node]\nid = 1\ndata_dir = {:?}\n\n[cluster]\nsecret = \"{}\"\npeers = {{ 1 = \"127.0.0.1:{grpc}\" }}\n\
         regions = {{ ap-south = 1 }}\n\n[storage]\ngrpc_listen = \"127.0.0.1:{grpc}\"\nbootstrap = true\n\
         heartbeat_ms = 50\nelection_timeout_ms = 300\n\n[gateway]\nhttp_listen = \"127.0.0.1:{http}\"\n\
         jwt_secret = \"{}\"\nticket_key_seed = \"{}\"\n{gateway_extra}",
        dir.join("node1"),
        support::SECRET,
        support::JWT_SECRET,
        support::SEED
    )
}

#[test]
fn without_dev_mode_ticketd_run_needs_a_payment_provider() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run_with(&single_node(dir.path(), support::free_port(), support::free_port(), ""));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("gateway.payments.provider"), "{err}");
    let (code, err) = run_with(&single_node(
        dir.path(),
        support::free_port(),
        support::free_port(),
        "payments = { provider = \"http\" }\n",
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("gateway.payments.base_url"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_sandbox_outside_dev_mode_starts_and_says_bookings_are_free() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, http) = (support::free_port(), support::free_port());
    let config = dir.path().join("node1.toml");
    std::fs::write(&config, single_node(dir.path(), grpc, http, "payments = { provider = \"sandbox\" }\n")).unwrap();
    let mut node = support::Node { id: 1, config, log: dir.path().join("node1.log"), child: None };
    node.start();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let c = Cluster { dir, nodes: vec![node], http: format!("http://127.0.0.1:{http}"), client };
    let base = c.http.clone();
    c.wait_ready(&base, Duration::from_secs(60)).await;
    let logs = c.logs();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("PAYMENTS ARE THE SANDBOX")).collect();
    assert_eq!(warnings.len(), 1, "one warning at start:\n{logs}");
    assert!(warnings[0].contains("WARN") && warnings[0].contains("Bookings are free"), "{}", warnings[0]);
    // The route of the HTTP provider's notifications does not exist here.
    let r = c.client.post(format!("{base}/v1/payments/webhook")).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 404);
}
