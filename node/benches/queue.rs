//! Waiting-room throughput through HTTP: joins per second and status checks
//! per second against a real three-node cluster on this machine, at rising
//! client concurrency. A load tool, not a criterion benchmark: each figure
//! is one timed run of many requests.
//!
//! `cargo bench -p node --bench queue` (optional: `QUEUE_BENCH_USERS`,
//! default 50,000 joins per concurrency level; `QUEUE_BENCH_NODE_THREADS`,
//! runtime threads per node, default 1).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::Method;
use serde_json::json;
use support::{now_ms, rfc3339, signed_token as token};

// The load generator allocates per request like the server does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The part of a join's answer the status checks need.
#[derive(serde::Deserialize)]
struct Joined {
    queue_token: String,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

/// Runs `n` requests from `concurrency` workers; returns (per second, p50 ms, p99 ms).
async fn drive<F, Fut>(n: usize, concurrency: usize, f: F) -> (f64, f64, f64)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (f, next) = (f.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return lat;
                }
                let t = Instant::now();
                f(i).await;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut lat = Vec::with_capacity(n);
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (n as f64 / secs, percentile(&lat, 0.5), percentile(&lat, 0.99))
}

fn main() {
    // Three nodes and the load generator share two cores: one runtime
    // thread per node (tokio reads `TOKIO_WORKER_THREADS`; the `ticketd`
    // processes inherit it) spares the machine the wake-ups and context
    // switches of six node threads fighting over two cores. The load
    // generator keeps two.
    let node_threads = std::env::var("QUEUE_BENCH_NODE_THREADS").unwrap_or_else(|_| "1".into());
    std::env::set_var("TOKIO_WORKER_THREADS", &node_threads);
    println!("each node runs {node_threads} runtime thread(s)");
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run());
}

async fn run() {
    let users: usize = std::env::var("QUEUE_BENCH_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    let extra = "join_addr_per_sec = 1000000\njoin_addr_burst_max = 1000000\n";
    let c = support::cluster_gateways(3, false, "", extra);
    let base = c.gateway(1);
    c.wait_ready(&base, Duration::from_secs(60)).await;
    let admin = c.token(&base, "root", &["admin"]).await;
    let venue = json!({"name": "Hall", "city": "Pune", "region": "ap-south",
        "sections": [{"name": "Floor", "category": "regular", "rows": [{"label": "A", "seats": 100}]}]});
    let (s, v) =
        support::call(&c.client, Method::POST, &format!("{base}/v1/admin/venues"), Some(&admin), Some(venue), None)
            .await;
    assert_eq!(s, 201, "{v}");
    let client = reqwest::Client::builder().pool_max_idle_per_host(1024).build().unwrap();
    println!("| clients | joins/s | join p50 ms | join p99 ms | status/s | status p50 ms | status p99 ms |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for concurrency in [16usize, 64, 256, 1024] {
        let body = json!({"venue_id": v["venue_id"], "title": "Bench", "kind": "concert",
            "starts_at": rfc3339(now_ms() + 30 * 86_400_000), "genre": "pop", "language": "en", "currency": "INR",
            "prices": {"regular": 1000}, "sale_opens_at": rfc3339(now_ms() - 86_400_000),
            "waiting_room": {"enabled": true, "admit_per_minute": 60, "active_max": 10}});
        let (s, e) =
            support::call(&c.client, Method::POST, &format!("{base}/v1/admin/events"), Some(&admin), Some(body), None)
                .await;
        assert_eq!(s, 201, "{e}");
        let event = e["event_id"].as_str().unwrap().to_string();
        // Tokens, headers and URLs are made before the clock starts: signing
        // and parsing are the load generator's cost, and it shares the two
        // cores with the cluster it measures.
        let tokens: Arc<Vec<HeaderValue>> = Arc::new(
            (0..users)
                .map(|i| HeaderValue::from_str(&format!("Bearer {}", token(&format!("b{concurrency}-{i}")))).unwrap())
                .collect(),
        );
        let join_url = reqwest::Url::parse(&format!("{base}/v1/events/{event}/queue")).unwrap();
        let status_url = reqwest::Url::parse(&format!("{base}/v1/events/{event}/queue/status")).unwrap();
        let queue_tokens: Arc<std::sync::Mutex<Vec<String>>> =
            Arc::new(std::sync::Mutex::new(vec![String::new(); users]));
        let (cl, url, tk, qt) = (client.clone(), join_url.clone(), tokens.clone(), queue_tokens.clone());
        let joins = drive(users, concurrency, move |i| {
            let (cl, url, tk, qt) = (cl.clone(), url.clone(), tk.clone(), qt.clone());
            async move {
                let r = cl.post(url).header(AUTHORIZATION, tk[i].clone()).send().await.unwrap();
                assert_eq!(r.status(), 201);
                let joined: Joined = r.json().await.unwrap();
                qt.lock().unwrap()[i] = joined.queue_token;
            }
        })
        .await;
        let (cl, url, tk, qt) = (client.clone(), status_url.clone(), tokens.clone(), queue_tokens.clone());
        let statuses = drive(users, concurrency, move |i| {
            let (cl, url, tk) = (cl.clone(), url.clone(), tk.clone());
            let q = qt.lock().unwrap()[i].clone();
            async move {
                let r =
                    cl.get(url).header(AUTHORIZATION, tk[i].clone()).header("x-queue-token", q).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let _ = r.bytes().await.unwrap();
            }
        })
        .await;
        println!(
            "| {concurrency} | {:.0} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} |",
            joins.0, joins.1, joins.2, statuses.0, statuses.1, statuses.2
        );
    }
}
