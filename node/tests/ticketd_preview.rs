//! Runs the real `ticketd preview` binary.

use std::path::Path;
use std::process::Command;

fn ticketd_preview(data_dir: &Path, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .arg("preview")
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .output()
        .expect("ticketd starts");
    let stdout = String::from_utf8(output.stdout).expect("output is UTF-8");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ticketd preview failed with {}:\n{stdout}\n{stderr}", output.status);
    stdout
}

fn assert_has(output: &str, needle: &str) {
    assert!(output.contains(needle), "missing {needle:?} in:\n{output}");
}

#[test]
fn preview_runs_the_demo_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let first = ticketd_preview(&data, &[]);
    assert_has(&first, "in-process preview");
    assert_has(&first, "`ticketd dev` runs the replicated cluster");
    assert_has(&first, "data: created new data in ");
    for region in ["ap-south", "eu-west", "us-east"] {
        assert_has(&first, &format!("catalog {region}: loaded ("));
        assert!(data.join(format!("{region}.snapshot")).is_file(), "no snapshot of {region}");
    }
    assert_has(&first, "Marine Lines Stadium, Mumbai: 50000 seats");
    assert_has(&first, "sold out, 0 on the waitlist");
    assert_has(&first, "carol was refused: seats_unavailable: ");
    assert_has(&first, "4. bob asks for the best 4 regular seats together");
    assert_has(&first, "in the same command dave was offered ");
    assert_has(&first, "event WaitlistOffered: ");
    assert_has(&first, "tickets ");

    let second = ticketd_preview(&data, &[]);
    assert_has(&second, "data: loaded existing data from ");
    assert_has(&second, "catalog ap-south: already present, nothing proposed");
    assert_has(&second, "in the same command dave was offered ");
}

#[test]
fn preview_output_is_reproducible_with_a_fixed_clock() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let now = ["--now", "2026-11-22T10:00:00Z"];
    let first = ticketd_preview(a.path(), &now);
    let second = ticketd_preview(b.path(), &now);
    let strip = |s: &str, dir: &Path| s.replace(&dir.display().to_string(), "DIR");
    assert_eq!(strip(&first, a.path()), strip(&second, b.path()));
    assert_has(&first, "ticketd preview: in-process preview at 2026-11-22T10:00:00Z");
    assert_has(&first, "concert  2026-11-27T14:30:00Z  Kabini Blues Band: Unplugged");
    for region in ["ap-south", "eu-west", "us-east"] {
        let snapshot = |dir: &Path| std::fs::read(dir.join(format!("{region}.snapshot"))).unwrap();
        assert_eq!(snapshot(a.path()), snapshot(b.path()), "{region}");
    }
}
