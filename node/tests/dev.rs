//! `ticketd dev` as a newcomer runs it: the real binary starts three
//! storage processes and a gateway, becomes ready, serves the demo events,
//! stops on SIGTERM and keeps its data for the next start.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use support::free_port;

/// Starts `ticketd dev` and returns it with its output so far once it says
/// it is ready.
fn start(data: &std::path::Path, http: u16, grpc: u16) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .args(["dev", "--data-dir"])
        .arg(data)
        .args(["--http-listen", &format!("127.0.0.1:{http}"), "--grpc-port-base", &grpc.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let mut out = String::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
                if line.starts_with("Press Ctrl-C") {
                    // Keep draining in the background so the child never blocks.
                    std::thread::spawn(move || while rx.recv().is_ok() {});
                    return (child, out);
                }
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ticketd dev did not become ready ({e}):\n{out}");
            }
        }
    }
}

fn stop(mut child: Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "ticketd dev exited with {status}");
}

async fn events(http: u16) -> Vec<(String, String)> {
    let body: Value =
        reqwest::get(format!("http://127.0.0.1:{http}/v1/events?limit=100")).await.unwrap().json().await.unwrap();
    let mut list: Vec<(String, String)> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["event_id"].as_str().unwrap().to_string(), e["title"].as_str().unwrap().to_string()))
        .collect();
    list.sort();
    list
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_comes_up_serves_the_demo_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dev");
    let (http, grpc) = (free_port(), free_port());
    let (child, out) = start(&data, http, grpc);
    assert!(out.contains("new data, demo catalog loaded"), "{out}");
    assert!(out.contains("demo user  alice"), "{out}");
    let ready = reqwest::get(format!("http://127.0.0.1:{http}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let first = events(http).await;
    let expected: usize = node::demo::catalog(0).iter().map(|c| c.events().count()).sum();
    assert_eq!(first.len(), expected);
    for kind in ["movie", "concert", "sports", "theater"] {
        let body: Value =
            reqwest::get(format!("http://127.0.0.1:{http}/v1/events?kind={kind}")).await.unwrap().json().await.unwrap();
        assert!(body["total"].as_u64().unwrap() > 0, "no {kind} events");
    }
    // The printed token works: book two seats, which must survive a restart.
    let token = out.lines().skip_while(|l| !l.contains("demo user")).nth(1).unwrap().trim().to_string();
    let client = reqwest::Client::new();
    let stadium = first.iter().find(|(_, t)| t.starts_with("T20 Final")).expect("the stadium event").0.clone();
    let hold: Value = client
        .post(format!("http://127.0.0.1:{http}/v1/events/{stadium}/holds"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"best_available": {"count": 2, "category": "premium"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let booking = client
        .post(format!("http://127.0.0.1:{http}/v1/bookings"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"hold_id": hold["hold_id"], "payment": {"token": "tok_visa"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(booking.status(), 201);
    let booking: Value = booking.json().await.unwrap();
    // The files holding the cluster's secrets are the owner's alone.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: std::path::PathBuf| std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(data.clone()), 0o700, "the data directory");
        for file in ["secrets.toml", "node1.toml", "node2.toml", "node3.toml"] {
            assert_eq!(mode(data.join(file)), 0o600, "{file}");
        }
    }
    stop(child);

    let (child, out) = start(&data, http, grpc);
    assert!(out.contains("existing data kept"), "{out}");
    assert_eq!(events(http).await, first, "the same events, none loaded twice");
    let again = client
        .get(format!("http://127.0.0.1:{http}/v1/bookings/{}", booking["booking_id"].as_str().unwrap()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "confirmed");
    stop(child);
}

#[test]
fn dev_refuses_to_serve_its_token_route_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .args(["dev", "--data-dir"])
        .arg(dir.path().join("dev"))
        .args(["--http-listen", "0.0.0.0:18080"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback"), "{err}");
    assert!(!dir.path().join("dev").exists(), "nothing was started or written");
}

/// `ticketd run` takes dev mode (which mints admin tokens for anyone) only
/// from its configuration file, never from the environment.
#[test]
fn run_refuses_dev_mode_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "[node]\nid = 1\ndata_dir = {:?}\n\n[cluster]\nsecret = \"{}\"\npeers = {{ 1 = \"127.0.0.1:1\" }}\n\
             regions = {{ ap-south = 1 }}\n\n[gateway]\nhttp_listen = \"127.0.0.1:1\"\njwt_secret = \"{}\"\n\
             ticket_key_seed = \"{}\"\npayments = {{ provider = \"sandbox\" }}\n",
            dir.path().join("data"),
            support::SECRET,
            support::JWT_SECRET,
            support::SEED
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("TICKETD_GATEWAY__DEV_MODE", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gateway.dev_mode"), "{err}");
}
