//! The kit reader (`read_header`, then `verify` against a fixed policy) over a file of arbitrary
//! bytes. The first byte picks the mode: even, the rest is compressed with zstd first so that the tar
//! layer is reached; odd, the rest is the kit file as it is.
#![no_main]

use kit_builder::read::{self, KitInput, Limits, ReadOptions, VerifyOnly};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode % 2 == 0 {
        zstd::encode_all(rest, 1).expect("zstd compresses memory")
    } else {
        rest.to_vec()
    };
    stella_fuzz::with_file(&bytes, |path| {
        let input = KitInput::File(path.to_owned());
        let _ = read::read_header(&input, &[], None);
        let opts = ReadOptions {
            policy: stella_fuzz::trust_policy(),
            now: None,
            limits: Limits {
                max_manifest_bytes: 1 << 20,
                max_total_bytes: 16 << 20,
                max_payloads: 1000,
                ..Limits::default()
            },
            identities: &[],
        };
        let _ = read::verify(&input, &opts, &mut VerifyOnly);
    });
});
