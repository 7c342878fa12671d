//! The scanner's package-database and artifact analysers (dpkg, apk, rpm SQLite/BerkeleyDB/NDB, npm,
//! Python, Cargo, Go build info, cargo-auditable, jars) over arbitrary bytes: the first byte picks the
//! path the walker would offer, so each analyser sees hostile input.
#![no_main]

use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 14] = [
    "/var/lib/dpkg/status",
    "/var/lib/dpkg/status.d/pkg",
    "/lib/apk/db/installed",
    "/var/lib/rpm/rpmdb.sqlite",
    "/var/lib/rpm/Packages",
    "/var/lib/rpm/Packages.db",
    "/app/package-lock.json",
    "/app/node_modules/x/package.json",
    "/usr/lib/python3/dist-packages/x-1.0.dist-info/METADATA",
    "/src/Cargo.lock",
    "/usr/bin/app",
    "/opt/app.jar",
    "/etc/os-release",
    "/var/lib/opkg/status",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else { return };
    let path = PATHS[pick as usize % PATHS.len()];
    let head = &bytes[..bytes.len().min(512)];
    if appliance::scan::analyzers::wants(path, head) {
        let _ = appliance::scan::analyzers::analyze(path, bytes, None);
    }
});
