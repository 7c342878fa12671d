//! `Scheme::parse` for every scheme: the first byte picks the scheme, the rest holds up to three
//! versions, one per line. Parsed versions must re-parse from their own text and order as a total
//! order (reflexive, antisymmetric, transitive): `sort` may panic on an inconsistent `Ord`.
#![no_main]

use feeds::version::{Scheme, Version};
use libfuzzer_sys::fuzz_target;
use std::cmp::Ordering;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let scheme = Scheme::ALL[usize::from(pick) % Scheme::ALL.len()];
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let parsed: Vec<Version> = text
        .splitn(3, '\n')
        .filter_map(|v| scheme.parse(v).ok())
        .collect();
    for v in &parsed {
        let again = scheme
            .parse(v.as_str())
            .expect("a parsed version re-parses from its text");
        assert_eq!(v.cmp(&again), Ordering::Equal, "{scheme} '{v}'");
    }
    for a in &parsed {
        for b in &parsed {
            assert_eq!(a.cmp(b), b.cmp(a).reverse(), "{scheme} '{a}' vs '{b}'");
        }
    }
    if let [a, b, c] = parsed.as_slice() {
        for (x, y, z) in [
            (a, b, c),
            (a, c, b),
            (b, a, c),
            (b, c, a),
            (c, a, b),
            (c, b, a),
        ] {
            if x <= y && y <= z {
                assert!(
                    x <= z,
                    "{scheme}: '{x}' <= '{y}' <= '{z}' but not '{x}' <= '{z}'"
                );
            }
        }
    }
});
