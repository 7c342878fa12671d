//! `Images::add("docker-archive:FILE")` over a file of arbitrary bytes (a `docker save` tar).
#![no_main]

use kit_builder::oci::Images;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stella_fuzz::with_file(data, |path| {
        let mut images = Images::default();
        let _ = images.add(&format!("docker-archive:{}", path.display()));
    });
});
