//! The debug hooks of `ticketd run` are refused outside tests: a planted
//! bug, a skewed clock or digests without `DEBUG_TICKETD_ALLOW` stop the
//! node at start-up with exit code 2.

use std::path::{Path, PathBuf};
use std::process::Command;

fn ticketd() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    let bin = exe.parent().and_then(|d| d.parent()).expect("target/release").join("ticketd");
    assert!(bin.is_file(), "no ticketd at {}: build it first (cargo build --release -p node)", bin.display());
    bin
}

fn config(dir: &Path) -> PathBuf {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let text = format!(
        "[node]\nid = 1\ndata_dir = {:?}\n\n[cluster]\nsecret = \"debug-hooks-secret-0123456789\"\n\
         peers = {{ 1 = \"127.0.0.1:{port}\" }}\nregions = {{ ap-south = 1 }}\n\n[storage]\ngrpc_listen = \"127.0.0.1:{port}\"\n",
        dir.join("data")
    );
    let path = dir.join("node.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir =
        std::env::temp_dir().join(format!("jepsen-debug-hooks-{}-{}", std::process::id(), args.len() + env.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(ticketd());
    cmd.args(["run", "--config"]).arg(config(&dir)).args(args);
    cmd.env_remove("DEBUG_TICKETD_ALLOW")
        .env_remove("DEBUG_TICKETD_CLOCK_OFFSET_FILE")
        .env_remove("DEBUG_TICKETD_DIGEST_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let err_path = dir.join("stderr");
    cmd.stdout(std::process::Stdio::null()).stderr(std::fs::File::create(&err_path).unwrap());
    let mut child = cmd.spawn().unwrap();
    // A node that accepted the hook would run on: give it 20 s, then fail.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    (status.and_then(|s| s.code()), err)
}

#[test]
fn a_planted_bug_without_the_test_variable_is_refused() {
    let (code, err) = run(&["--debug-plant", "stale-read"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("DEBUG_TICKETD_ALLOW"), "{err}");
}

#[test]
fn a_skewed_clock_without_the_test_variable_is_refused() {
    let (code, err) = run(&[], &[("DEBUG_TICKETD_CLOCK_OFFSET_FILE", "/tmp/offset")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("for tests only"), "{err}");
}

#[test]
fn an_unknown_plant_is_refused_even_in_tests() {
    let (code, err) =
        run(&["--debug-plant", "no-such-bug"], &[("DEBUG_TICKETD_ALLOW", "i-know-this-is-not-production")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown --debug-plant") && err.contains("skip-hold-conflict"), "{err}");
}
