//! Crash recovery of `stella import` (after sled's `test_crash_recovery.rs`): start an import of a kit with
//! many payloads as a child process, SIGKILL it at a deterministic pseudo-random point spread over the time
//! one full import takes, then check that opening the store (`stella fsck`) recovers it to the state before
//! the import or the state after it, never a mix, and that the kit then imports (or is refused as a replay)
//! normally.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;
use stella_tests::{bin, gen_key, kit, noise, osv, run_env, Run, EPOCH};

/// The appliance clock: one day after the kit was built.
const NOW: i64 = EPOCH + 86_400;
/// Payload files in the kit, and the size of each.
const FILES: usize = 200;
const FILE_SIZE: usize = 256 << 10;
/// Kill points spread over the whole import.
const RUNS: u64 = 24;
/// More kill points spread over its last phase: journal, publishing the blobs, the metadata commit.
const TAIL_RUNS: u64 = 8;

fn stella(d: &Path, data: &str, args: &[&str]) -> Run {
    let mut all = vec!["--data", data];
    all.extend_from_slice(args);
    run_env("stella", d, &all, &[("STELLA_NOW", &NOW.to_string())])
}

fn init(d: &Path, data: &str) {
    stella(
        d,
        data,
        &[
            "init",
            "--profile",
            "fips",
            "--kit-signer",
            "signer.pub.pem",
        ],
    )
    .ok();
}

/// `stella import big.kit` as a child process.
fn spawn_import(d: &Path, data: &str) -> std::process::Child {
    Command::new(bin("stella"))
        .args(["--data", data, "import", "big.kit"])
        .current_dir(d)
        .env("STELLA_NOW", NOW.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The imported kit ids.
fn kits(d: &Path, data: &str) -> Vec<String> {
    let r = stella(d, data, &["kits", "--json"]).ok();
    serde_json::from_str::<serde_json::Value>(&r.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The store's knowledge trees and blob listing.
fn dump(d: &Path, data: &str) -> serde_json::Value {
    serde_json::from_str(&stella(d, data, &["dump"]).ok().stdout).unwrap()
}

fn fsck_ok(d: &Path, data: &str, when: &str) -> Run {
    let r = stella(d, data, &["fsck"]);
    assert_eq!(
        r.code, 0,
        "fsck {when} failed\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    assert!(r.stdout.starts_with("fsck: ok"), "{}", r.stdout);
    stella(d, data, &["audit", "verify"]).ok();
    r
}

/// A deterministic fraction in [0, 1) for a seed (splitmix64).
fn unit(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[test]
fn killed_import_leaves_old_or_new_state() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    gen_key(d, "fips", None, "signer");
    fs::create_dir(d.join("payload")).unwrap();
    fs::write(d.join("GHSA-1.json"), osv("GHSA-1", "2023-01-01T00:00:00Z")).unwrap();
    let mut args: Vec<String> = [
        "build",
        "--channel",
        "stable",
        "--quiet",
        "--id",
        "crash-1",
        "--feeds",
        "GHSA-1.json",
    ]
    .map(String::from)
    .to_vec();
    for i in 0..FILES {
        let name = format!("payload/f{i:03}.bin");
        fs::write(d.join(&name), noise(FILE_SIZE, 1000 + i as u64)).unwrap();
        args.extend(["--file".into(), name]);
    }
    args.extend(["--key", "signer.key.pem", "--out", "big.kit"].map(String::from));
    kit(d, &args.iter().map(String::as_str).collect::<Vec<_>>()).ok();

    // Calibrate: one whole import, timed from spawn to exit like the killed ones, noting when its journal
    // appears (the publish phase begins).
    init(d, "calibrate");
    let journal = d.join("calibrate/journal");
    let start = Instant::now();
    let mut child = spawn_import(d, "calibrate");
    let mut publish = None;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if publish.is_none() && fs::read_dir(&journal).is_ok_and(|mut rd| rd.next().is_some()) {
            publish = Some(start.elapsed());
        }
        std::thread::sleep(std::time::Duration::from_micros(500));
    };
    let full = start.elapsed();
    assert!(status.success(), "calibration import failed");
    // If the journal came and went between two polls, the publish phase is within the last tenth.
    let publish = publish.unwrap_or(full.mul_f64(0.9)).min(full);
    eprintln!("crash test: calibration: import {full:?}, publish phase from {publish:?}");
    let complete = dump(d, "calibrate");
    let blobs = complete["blobs"].as_array().unwrap().len();
    assert_eq!(blobs, FILES + 1, "{complete:#}");
    assert_eq!(kits(d, "calibrate"), ["crash-1"]);
    fsck_ok(d, "calibrate", "after a whole import");

    let (mut imported, mut not_imported, mut finished_first, mut recovered) = (0, 0, 0, 0);
    for run in 0..RUNS + TAIL_RUNS {
        let data = format!("run-{run:02}");
        init(d, &data);
        let empty = dump(d, &data);
        // Spread the kill points over the import: run r dies somewhere in the r-th slice of its duration.
        // The tail runs wait for the journal to appear (the publish phase has begun), then die somewhere
        // in the r-th slice of that phase's calibrated length.
        let mut child = spawn_import(d, &data);
        let delay = if run < RUNS {
            let delay = full.mul_f64((run as f64 + unit(run)) / RUNS as f64);
            std::thread::sleep(delay);
            delay
        } else {
            let k = run - RUNS;
            let journal = d.join(&data).join("journal");
            let start = Instant::now();
            while child.try_wait().unwrap().is_none()
                && !fs::read_dir(&journal).is_ok_and(|mut rd| rd.next().is_some())
                && start.elapsed() < full * 20
            {
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
            let delay = (full - publish).mul_f64((k as f64 + unit(run)) / TAIL_RUNS as f64);
            std::thread::sleep(delay);
            start.elapsed()
        };
        let killed = child.kill().is_ok();
        let status = child.wait().unwrap();
        if status.success() {
            finished_first += 1;
        } else {
            assert!(killed && status.code().is_none(), "run {run}: {status:?}");
        }

        // Opening the store runs crash recovery; the store is whole.
        let f = fsck_ok(
            d,
            &data,
            &format!("after run {run} was killed at {delay:?}"),
        );
        if f.stderr.contains("recovered from 1 interrupted import(s)") {
            recovered += 1;
        }
        let after = dump(d, &data);
        let now = kits(d, &data);
        if now.is_empty() {
            not_imported += 1;
            assert_eq!(
                after, empty,
                "run {run}: not imported, yet the store changed"
            );
            let leftovers: Vec<_> = fs::read_dir(d.join(&data).join("staging"))
                .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            assert!(
                leftovers.is_empty(),
                "run {run}: staging holds {leftovers:?}"
            );
            stella(d, &data, &["import", "big.kit"]).ok();
        } else {
            imported += 1;
            assert_eq!(now, ["crash-1"], "run {run}");
            assert_eq!(
                after["blobs"], complete["blobs"],
                "run {run}: imported, but not every blob is there"
            );
            let r = stella(d, &data, &["import", "big.kit"]);
            assert_eq!(r.code, 5, "run {run}: {r:?}");
            assert!(r.stderr.contains("(replay)"), "{}", r.stderr);
        }
        fsck_ok(d, &data, &format!("after run {run} was re-imported"));
        assert_eq!(kits(d, &data), ["crash-1"]);
        assert_eq!(dump(d, &data)["blobs"], complete["blobs"]);
        fs::remove_dir_all(d.join(&data)).unwrap();
    }
    eprintln!(
        "crash test: {} runs ({TAIL_RUNS} of them in the publish phase) over a {full:?} \
         import of {FILES} x {} KiB: {imported} ended imported ({finished_first} finished before the kill), \
         {not_imported} not imported; {recovered} left a journal that recovery rolled back",
        RUNS + TAIL_RUNS,
        FILE_SIZE >> 10
    );
    assert_eq!(imported + not_imported, RUNS + TAIL_RUNS);
    assert!(
        not_imported >= RUNS / 4,
        "kill points should fall inside the import: {not_imported} of {} did",
        RUNS + TAIL_RUNS
    );
}
