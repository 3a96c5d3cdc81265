//! The state machine must stay pure: no async runtime, no storage, no
//! network, no clock and no randomness. This test fails when the crate's
//! dependencies (direct or transitive, normal only) or its sources gain any.

use std::process::Command;

/// Crates that bring I/O, time, threads-as-runtime or randomness.
const FORBIDDEN_CRATES: &[&str] = &[
    "tokio",
    "async-std",
    "smol",
    "mio",
    "futures",
    "rocksdb",
    "librocksdb-sys",
    "tonic",
    "hyper",
    "axum",
    "reqwest",
    "rand",
    "rand_core",
    "getrandom",
    "fastrand",
    "uuid",
    "chrono",
    "time",
    "jiff",
    "openraft",
    "socket2",
];

/// Source fragments that read the clock, the OS, the network or entropy.
/// The crate's directory. Read at run time (cargo sets it for tests) so a
/// test binary reused from another checkout still checks this one.
fn crate_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

const FORBIDDEN_SOURCE: &[&str] = &[
    "std::time",
    "SystemTime",
    "Instant::now",
    "std::fs",
    "std::net",
    "std::thread",
    "std::env",
    "std::process",
    "RandomState",
    "HashMap",
    "HashSet",
];

#[test]
fn manifest_has_no_impure_dependencies() {
    let manifest = std::fs::read_to_string(crate_dir().join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] table")
        .split("\n[")
        .next()
        .expect("table body");
    for line in deps.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let name = line.split(['=', '.', ' ']).next().unwrap().trim();
        assert!(!FORBIDDEN_CRATES.contains(&name), "statemachine depends on {name}: it must stay pure");
    }
}

#[test]
fn dependency_tree_is_pure() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--offline", "-p", "statemachine", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(crate_dir())
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8(out.stdout).unwrap();
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains(&"statemachine") && crates.contains(&"postcard"), "unexpected tree:\n{tree}");
    for name in crates {
        assert!(!FORBIDDEN_CRATES.contains(&name), "statemachine pulls in {name} (normal dependency):\n{tree}");
    }
}

#[test]
fn sources_use_no_clock_io_or_entropy() {
    let src = crate_dir().join("src");
    let mut checked = 0;
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                // Tests may use whatever they like; the shipped code may not.
                if path.file_name().is_some_and(|n| n != "tests") {
                    stack.push(path);
                }
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for bad in FORBIDDEN_SOURCE {
                for (n, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap();
                    assert!(!code.contains(bad), "{}:{}: uses {bad}", path.display(), n + 1);
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "found only {checked} source files");
}
