//! The booking flow through the gateway: hold (best available) → confirm
//! (sandbox card), against a real three-node cluster on this machine.
//! Closed-loop runs at rising concurrency find the peak; an open-loop run
//! at half the peak rate gives the latency the targets are stated at.
//! A load tool, not a criterion benchmark.
//!
//! `cargo bench -p node --bench flow` (optional: `FLOW_BENCH_FLOWS`,
//! default 3,000 flows per run).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::{now_ms, rfc3339, signed_token as token};

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

#[derive(Default)]
struct Lat {
    hold: Vec<f64>,
    confirm: Vec<f64>,
}

struct Ctx {
    client: reqwest::Client,
    base: String,
    event: String,
    tokens: Vec<String>,
    lat: Mutex<Lat>,
}

/// One hold → confirm flow for user `i`.
async fn flow(ctx: &Ctx, i: usize) {
    let t = Instant::now();
    let r = ctx
        .client
        .post(format!("{}/v1/events/{}/holds", ctx.base, ctx.event))
        .bearer_auth(&ctx.tokens[i])
        .json(&json!({"best_available": {"count": 2, "category": "regular"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let hold: Value = r.json().await.unwrap();
    let held = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let r = ctx
        .client
        .post(format!("{}/v1/bookings", ctx.base))
        .bearer_auth(&ctx.tokens[i])
        .json(&json!({"hold_id": hold["hold_id"], "payment": {"token": "tok_visa"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let _ = r.bytes().await.unwrap();
    let confirmed = t.elapsed().as_secs_f64() * 1000.0;
    let mut lat = ctx.lat.lock().unwrap();
    lat.hold.push(held);
    lat.confirm.push(confirmed);
}

async fn setup(c: &support::Cluster, admin: &str, flows: usize, tag: &str) -> String {
    let base = c.gateway(1);
    // Two seats a flow, rows of 100.
    let rows: Vec<Value> =
        (0..(flows * 2).div_ceil(100)).map(|r| json!({"label": format!("R{r}"), "seats": 100})).collect();
    let venue = json!({"name": format!("Arena {tag}"), "city": "Pune", "region": "ap-south",
        "sections": [{"name": "Stand", "category": "regular", "rows": rows}]});
    let (s, v) =
        support::call(&c.client, Method::POST, &format!("{base}/v1/admin/venues"), Some(admin), Some(venue), None)
            .await;
    assert_eq!(s, 201, "{v}");
    let body = json!({"venue_id": v["venue_id"], "title": format!("Bench {tag}"), "kind": "concert",
        "starts_at": rfc3339(now_ms() + 30 * 86_400_000), "genre": "pop", "language": "en", "currency": "INR",
        "prices": {"regular": 1000}, "sale_opens_at": rfc3339(now_ms() - 86_400_000)});
    let (s, e) =
        support::call(&c.client, Method::POST, &format!("{base}/v1/admin/events"), Some(admin), Some(body), None).await;
    assert_eq!(s, 201, "{e}");
    e["event_id"].as_str().unwrap().to_string()
}

fn report(label: &str, flows: usize, secs: f64, lat: &mut Lat) -> f64 {
    lat.hold.sort_by(|a, b| a.partial_cmp(b).unwrap());
    lat.confirm.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rate = flows as f64 / secs;
    println!(
        "| {label} | {rate:.0} | {:.1} | {:.1} | {:.1} | {:.1} |",
        pct(&lat.hold, 0.5),
        pct(&lat.hold, 0.99),
        pct(&lat.confirm, 0.5),
        pct(&lat.confirm, 0.99)
    );
    rate
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let flows: usize = std::env::var("FLOW_BENCH_FLOWS").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000);
    let c = support::cluster(3, false);
    let base = c.gateway(1);
    c.wait_ready(&base, Duration::from_secs(60)).await;
    let admin = c.token(&base, "root", &["admin"]).await;
    let client = reqwest::Client::builder().pool_max_idle_per_host(1024).build().unwrap();
    println!("| run | flows/s | hold p50 ms | hold p99 ms | confirm p50 ms | confirm p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut peak: f64 = 0.0;
    for concurrency in [1usize, 16, 64, 256] {
        let n = if concurrency == 1 { flows / 10 } else { flows };
        let event = setup(&c, &admin, n, &format!("c{concurrency}")).await;
        let tokens = (0..n).map(|i| token(&format!("f{concurrency}-{i}"))).collect();
        let ctx = Arc::new(Ctx { client: client.clone(), base: base.clone(), event, tokens, lat: Mutex::default() });
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (ctx, next) = (ctx.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    flow(&ctx, i).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let rate = report(&format!("{concurrency} clients"), n, secs, &mut ctx.lat.lock().unwrap());
        peak = peak.max(rate);
    }
    // Open loop at half the peak: flows start on a schedule, whatever the
    // latency, so queueing shows in the percentiles.
    let rate = peak / 2.0;
    let event = setup(&c, &admin, flows, "half").await;
    let tokens = (0..flows).map(|i| token(&format!("half-{i}"))).collect();
    let ctx = Arc::new(Ctx { client: client.clone(), base: base.clone(), event, tokens, lat: Mutex::default() });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..flows {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move { flow(&ctx, i).await }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    report(&format!("open loop at {rate:.0}/s (half of peak)"), flows, secs, &mut ctx.lat.lock().unwrap());
}
