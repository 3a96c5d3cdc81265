//! A production-mode gateway (one storage node, dev mode off, a tight rate
//! limit): the dev-token route does not exist, and a user over the limit
//! gets 429 with Retry-After while other users go on.

mod support;

use std::time::Duration;

use support::{free_port, Cluster, Node, JWT_SECRET, SECRET, SEED};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_routes_are_off_and_users_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, http) = (free_port(), free_port());
    let text = format!(
        "[node]\nid = 1\ndata_dir = {:?}\n\n[cluster]\nsecret = \"{SECRET}\"\npeers = {{ 1 = \"127.0.0.1:{grpc}\" }}\n\
         regions = {{ ap-south = 1 }}\n\n[storage]\ngrpc_listen = \"127.0.0.1:{grpc}\"\nbootstrap = true\n\
         heartbeat_ms = 50\nelection_timeout_ms = 300\n\n[gateway]\nhttp_listen = \"127.0.0.1:{http}\"\n\
         jwt_secret = \"{JWT_SECRET}\"\nticket_key_seed = \"{SEED}\"\nuser_requests_per_sec = 1\nuser_burst_max = 3\n\
         payments = {{ provider = \"sandbox\" }}\n",
        dir.path().join("node1")
    );
    let config = dir.path().join("node1.toml");
    std::fs::write(&config, text).unwrap();
    let mut node = Node { id: 1, config, log: dir.path().join("node1.log"), child: None };
    node.start();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let c = Cluster { dir, nodes: vec![node], http: format!("http://127.0.0.1:{http}"), client };
    let base = c.http.clone();
    c.wait_ready(&base, Duration::from_secs(60)).await;

    let r =
        c.client.post(format!("{base}/v1/dev/token")).json(&serde_json::json!({"user_id": "x"})).send().await.unwrap();
    assert_eq!(r.status(), 404, "no dev tokens outside dev mode");

    let auth = node::gateway::auth::Auth::new(JWT_SECRET.as_bytes());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let greedy = auth.issue("greedy", &[], now, 600);
    let calm = auth.issue("calm", &[], now, 600);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = c.client.get(format!("{base}/v1/me/holds")).bearer_auth(&greedy).send().await.unwrap();
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
            statuses.push(429);
        } else {
            statuses.push(r.status().as_u16());
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "the burst is served: {statuses:?}");
    assert!(statuses[3..].contains(&429), "over the limit: {statuses:?}");
    let r = c.client.get(format!("{base}/v1/me/holds")).bearer_auth(&calm).send().await.unwrap();
    assert_eq!(r.status(), 200, "another user is not limited by the first");
}
