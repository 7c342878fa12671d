//! The docker-archive reader (`kit_builder::oci::read_docker_archive`, through `scan::image::open`), which follows the
//! symbolic and hard links of the archive when it resolves the names manifest.json gives, over a file of
//! arbitrary bytes: no panic, no escape from the archive, no endless link chase.
#![no_main]

use appliance::store::Store;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// A store in a temporary directory, opened once: opening a docker-archive does not use it.
fn store() -> &'static Store {
    static STORE: OnceLock<(tempfile::TempDir, Store)> = OnceLock::new();
    let (_, store) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(dir.path()).expect("store");
        (dir, store)
    });
    store
}

fuzz_target!(|data: &[u8]| {
    stella_fuzz::with_file(data, |path| {
        let _ =
            appliance::scan::image::open(&format!("docker-archive:{}", path.display()), store());
    });
});
