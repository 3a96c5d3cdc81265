//! `ticketctl` as a script runs it: every command against a real cluster,
//! tables and `--json`, settings from flags, environment and a config file,
//! and the exit codes of its error paths (API error 1, bad usage or file 2,
//! unreachable cluster 3).

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{now_ms, rfc3339, DAY_MS};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }

    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
}

/// Runs ticketctl with `args`, the given environment and no inherited
/// `TICKETCTL_*` or config file.
fn ticketctl(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ticketctl"));
    cmd.args(args);
    for var in
        ["TICKETCTL_URL", "TICKETCTL_TOKEN", "TICKETCTL_CONFIG", "TICKETCTL_TIMEOUT_SECS", "TICKETCTL_RETRIES_MAX"]
    {
        cmd.env_remove(var);
    }
    // No config file of the machine's user is read.
    cmd.env("HOME", "/nonexistent-home").env_remove("XDG_CONFIG_HOME");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("ticketctl runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn catalog_toml() -> String {
    format!(
        r#"
[[venues]]
key = "hall"
name = "Script Hall"
city = "Pune"
region = "ap-south"
sections = [
  {{ name = "Floor", category = "premium", rows = [{{ label = "A", seats = 6 }}, {{ label = "B", seats = 6 }}] }},
  {{ name = "Balcony", category = "regular", rows = [{{ label = "C", seats = 4 }}] }},
]

[[events]]
venue = "hall"
title = "Script Night"
kind = "theater"
starts_at = "{}"
genre = "drama"
language = "en"
currency = "EUR"
prices = {{ premium = 9000, regular = 3000 }}
sale_opens_at = "{}"
"#,
        rfc3339(now_ms() + 30 * DAY_MS),
        rfc3339(now_ms() - DAY_MS)
    )
}

#[test]
fn error_paths_without_a_cluster() {
    // Unreachable: exit 3, also as JSON.
    let port = support::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let r = ticketctl(&["--url", &url, "--retries-max", "1", "--json", "cluster", "status"], &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(r.json()["error"]["code"], "unreachable");
    assert!(r.stderr.contains("no gateway answered"), "{}", r.stderr);
    let r = ticketctl(&["bookings", "list"], &[("TICKETCTL_URL", &url), ("TICKETCTL_RETRIES_MAX", "0")]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    // A mutating call that got no answer names its key, to re-run it safely.
    let r = ticketctl(&["--url", &url, "--retries-max", "0", "--json", "bookings", "release", "hld-1-1"], &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let key = r.json()["error"]["idempotency_key"].as_str().expect("the key is reported").to_string();
    assert!(r.stderr.contains(&format!("--idempotency-key {key}")), "{}", r.stderr);
    let r = ticketctl(
        &["--url", &url, "--retries-max", "0", "--idempotency-key", "mine", "--json", "bookings", "release", "hld-1-1"],
        &[],
    );
    assert_eq!(r.json()["error"]["idempotency_key"], "mine");

    // Bad usage: exit 2, nothing sent.
    assert_eq!(ticketctl(&["bookings", "hold", "evt-1-1"], &[]).code, 2, "a selection is required");
    assert_eq!(ticketctl(&["bookings", "hold", "evt-1-1", "--best", "2"], &[]).code, 2, "--best needs --category");
    assert_eq!(ticketctl(&["frobnicate"], &[]).code, 2);
    assert_eq!(ticketctl(&["--url", "not a url", "cluster", "status"], &[]).code, 2);
    let r = ticketctl(&["cluster", "status"], &[("TICKETCTL_TIMEOUT_SECS", "soon")]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("TICKETCTL_TIMEOUT_SECS"), "{}", r.stderr);
    let help = ticketctl(&["--help"], &[]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Exit codes"), "{}", help.stdout);

    // Bad files: exit 2 with the reason, before any call (the URL is dead).
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let r = ticketctl(&["--url", &url, "catalog", "apply", missing.to_str().unwrap()], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, catalog_toml().replace("city = ", "town = ")).unwrap();
    let r = ticketctl(&["--url", &url, "--json", "catalog", "apply", bad.to_str().unwrap()], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("unknown field `town`"), "{}", r.stdout);
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"venues\": [").unwrap();
    assert_eq!(ticketctl(&["--url", &url, "catalog", "apply", broken.to_str().unwrap()], &[]).code, 2);
    let config = dir.path().join("ticketctl.toml");
    std::fs::write(&config, "adress = \"typo\"\n").unwrap();
    let r = ticketctl(&["--config", config.to_str().unwrap(), "cluster", "status"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("adress"), "{}", r.stderr);
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_against_a_real_cluster() {
    let mut c = support::cluster(3);
    let g1 = c.gateway(1);
    let g2 = c.gateway(2);
    c.wait_ready(&g1).await;
    c.wait_ready(&g2).await;
    let dir = tempfile::tempdir().unwrap();

    // Tokens from the dev route, through ticketctl itself.
    let r = ticketctl(&["--url", &g1, "--json", "dev-token", "root", "--role", "admin"], &[]).ok();
    let admin = r.json()["token"].as_str().unwrap().to_string();
    let alice = ticketctl(&["--url", &g1, "--json", "dev-token", "alice"], &[]).ok().json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = c.token(&g1, "bob", &[]).await;

    // The admin's settings come from a config file with two gateways.
    let admin_config = write(dir.path(), "admin.toml", &format!("urls = [\"{g2}\", \"{g1}\"]\ntoken = \"{admin}\"\n"));
    let as_admin = |args: &[&str]| {
        let mut all = vec!["--config", admin_config.as_str()];
        all.extend_from_slice(args);
        ticketctl(&all, &[])
    };
    // Alice's from the environment.
    let alice_env = [("TICKETCTL_URL", g1.as_str()), ("TICKETCTL_TOKEN", alice.as_str())];

    // Catalog from TOML, applied twice: the same ids, no duplicates.
    let toml_file = write(dir.path(), "catalog.toml", &catalog_toml());
    let first = as_admin(&["--json", "catalog", "apply", &toml_file]).ok().json();
    let created = first["created"].as_array().unwrap();
    assert_eq!((created[0]["kind"].as_str(), created[1]["kind"].as_str()), (Some("venue"), Some("event")));
    let venue_id = created[0]["id"].as_str().unwrap().to_string();
    let event_id = created[1]["id"].as_str().unwrap().to_string();
    let again = as_admin(&["--json", "catalog", "apply", &toml_file]).ok().json();
    assert_eq!(again, first, "re-applying the same file creates nothing new");
    // From JSON, naming the venue by id; the human table names what was made.
    let json_file = write(
        dir.path(),
        "more.json",
        &serde_json::json!({"events": [{"venue_id": venue_id, "title": "Script Matinee", "kind": "theater",
            "starts_at": rfc3339(now_ms() + 20 * DAY_MS), "genre": "drama", "language": "en", "currency": "EUR",
            "prices": {"premium": 8000, "regular": 2500}, "sale_opens_at": rfc3339(now_ms() - DAY_MS)}]})
        .to_string(),
    );
    let r = as_admin(&["catalog", "apply", &json_file]).ok();
    assert!(r.stdout.contains("Script Matinee") && r.stdout.contains("evt-"), "{}", r.stdout);
    // The gateway refusing a file's entry is an API error: exit 1.
    let refused =
        write(dir.path(), "refused.toml", &catalog_toml().replace("region = \"ap-south\"", "region = \"mars\""));
    let r = as_admin(&["--json", "catalog", "apply", &refused]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.json()["error"]["code"], "invalid_region");
    // Not an admin: exit 1, forbidden.
    let r = ticketctl(&["--json", "catalog", "apply", &toml_file], &alice_env);
    assert_eq!((r.code, r.json()["error"]["code"].as_str()), (1, Some("forbidden")));

    // Bookings for scripts: hold, show, confirm, list, cancel.
    let r = ticketctl(
        &["--json", "bookings", "hold", &event_id, "--best", "3", "--category", "premium", "--together"],
        &alice_env,
    )
    .ok();
    let hold = r.json();
    let hold_id = hold["hold_id"].as_str().unwrap().to_string();
    let seats: Vec<String> =
        hold["seat_ids"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    assert_eq!(seats.len(), 3);
    let taken = seats.join(",");
    let r =
        ticketctl(&["--url", &g1, "--token", &bob, "--json", "bookings", "hold", &event_id, "--seats", &taken], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.json()["error"]["code"], "seats_unavailable");
    assert_eq!(r.json()["error"]["status"], 409);
    assert!(r.stderr.contains("seats_unavailable"), "{}", r.stderr);
    let r = ticketctl(&["bookings", "show", &hold_id], &alice_env).ok();
    assert!(r.stdout.contains(&hold_id) && r.stdout.contains("active"), "{}", r.stdout);
    let r = ticketctl(&["--json", "bookings", "confirm", &hold_id, "--payment", "tok_declined"], &alice_env);
    assert_eq!((r.code, r.json()["error"]["code"].as_str()), (1, Some("payment_declined")));
    let booking = ticketctl(&["--json", "bookings", "confirm", &hold_id], &alice_env).ok().json();
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["tickets"].as_array().unwrap().len(), 3);
    let booking_id = booking["booking_id"].as_str().unwrap().to_string();
    let shown = ticketctl(&["--json", "bookings", "show", &booking_id], &alice_env).ok().json();
    assert_eq!(shown["booking_id"], booking_id.as_str());
    let r = ticketctl(&["bookings", "list"], &alice_env).ok();
    assert!(r.stdout.contains(&booking_id) && r.stdout.contains("confirmed"), "{}", r.stdout);
    let r = ticketctl(&["--json", "bookings", "cancel", &booking_id], &alice_env).ok();
    assert_eq!(r.json()["refund_percent"], 100);
    let r = ticketctl(&["--json", "bookings", "cancel", &booking_id], &alice_env);
    assert_eq!((r.code, r.json()["error"]["code"].as_str()), (1, Some("already_cancelled")));
    // A keyed hold run twice is one hold; release it.
    let keyed =
        ["--idempotency-key", "script-run-7", "--json", "bookings", "hold", &event_id, "--seats", "Balcony-C-1"];
    let h1 = ticketctl(&keyed, &alice_env).ok().json();
    let h2 = ticketctl(&keyed, &alice_env).ok().json();
    assert_eq!(h1, h2);
    let h = h1["hold_id"].as_str().unwrap();
    ticketctl(&["bookings", "release", h], &alice_env).ok();
    let r = ticketctl(&["--json", "bookings", "show", h], &alice_env).ok();
    assert_eq!(r.json()["status"], "released");
    // No token: 401 is an API error.
    let r = ticketctl(&["--url", &g1, "--json", "bookings", "list"], &[]);
    assert_eq!((r.code, r.json()["error"]["code"].as_str()), (1, Some("unauthorized")));
    let r = ticketctl(&["--json", "bookings", "show", "bkg-1-999999"], &alice_env);
    assert_eq!((r.code, r.json()["error"]["code"].as_str()), (1, Some("booking_not_found")));

    // Cluster: status, add a node, transfer, snapshot, remove.
    let status = as_admin(&["--json", "cluster", "status"]).ok().json();
    assert_eq!(status["groups"].as_array().unwrap().len(), 3);
    let r = as_admin(&["cluster", "status"]).ok();
    assert!(r.stdout.contains("ap-south") && r.stdout.contains("us-east"), "{}", r.stdout);
    let r = ticketctl(&["cluster", "status"], &alice_env);
    assert_eq!(r.code, 1, "not an admin");
    let addr4 = c.add_storage_node(4);
    let added = as_admin(&["--json", "cluster", "add-node", "--id", "4", "--addr", &addr4]);
    let added = added.ok().json();
    for g in added["groups"].as_array().unwrap() {
        assert!(g["members"].as_array().unwrap().contains(&Value::from(4)), "{added}");
    }
    let moved = as_admin(&["--json", "cluster", "transfer", "eu-west", "--to", "4"]).ok().json();
    assert_eq!(moved["groups"][0]["leader"], 4, "{moved}");
    let snap = as_admin(&["--json", "cluster", "snapshot", "eu-west", "--node", "4"]).ok().json();
    assert_eq!(snap["groups"][0]["snapshotted"], serde_json::json!([4]));
    let r = as_admin(&["--json", "cluster", "transfer", "mars", "--to", "1"]);
    assert_eq!((r.code, r.json()["error"]["code"].as_str()), (1, Some("invalid_region")));
    let removed = as_admin(&["--json", "cluster", "remove-node", "4"]).ok().json();
    for g in removed["groups"].as_array().unwrap() {
        assert!(!g["members"].as_array().unwrap().contains(&Value::from(4)), "{removed}");
        assert_eq!(g["retired"], serde_json::json!([4]), "{removed}");
    }
    // A removed id never rejoins: the replacement needs a new one.
    let r = as_admin(&["--json", "cluster", "add-node", "--id", "4", "--addr", &addr4]);
    assert_eq!((r.code, r.json()["error"]["code"].as_str()), (1, Some("cluster_refused")), "{}", r.stdout);
    let status = as_admin(&["--json", "cluster", "status"]).ok().json();
    assert_eq!(status["groups"][0]["retired"], serde_json::json!([4]), "{status}");
    // The cluster still books after node 4 left with eu-west's leadership.
    let r = ticketctl(&["--json", "bookings", "hold", &event_id, "--seats", "Floor-B-6"], &alice_env);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, c.logs());
}
