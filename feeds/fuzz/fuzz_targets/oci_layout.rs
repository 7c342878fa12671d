//! `Images::add("oci-layout:DIR")` over a directory made of the regular files of an arbitrary tar
//! (`oci-layout`, `index.json`, `blobs/sha256/...`).
#![no_main]

use kit_builder::oci::Images;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stella_fuzz::with_tar_dir(data, |dir| {
        let mut images = Images::default();
        let _ = images.add(&format!("oci-layout:{}", dir.display()));
    });
});
