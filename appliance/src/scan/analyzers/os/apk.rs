//! apk's installed database (`/lib/apk/db/installed`).
//!
//! One record per package, records separated by a blank line, each line a one-letter key, a colon and a
//! value: `P` name, `V` version, `A` architecture, `L` license, `o` origin (the aport the package was
//! built from), and many more (files, checksums) that do not matter here.

use super::{error, purl, AnalyzeError};
use crate::scan::package::{Ecosystem, Package};

const ANALYZER: &str = "apk";

#[derive(Default)]
struct Record<'a> {
    name: Option<&'a str>,
    version: Option<&'a str>,
    arch: Option<&'a str>,
    license: Option<&'a str>,
    origin: Option<&'a str>,
}

pub(super) fn analyze(path: &str, bytes: &[u8]) -> Result<Vec<Package>, AnalyzeError> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut rec = Record::default();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            finish(std::mem::take(&mut rec), path, &mut out);
            continue;
        }
        let mut chars = line.chars();
        let (Some(key), Some(':')) = (chars.next(), chars.next()) else {
            let shown: String = line.chars().take(40).collect();
            return Err(error(
                ANALYZER,
                path,
                format!("line {}: expected 'X:value', found '{shown}'", n + 1),
            ));
        };
        let value = chars.as_str().trim();
        match key {
            'P' => rec.name = Some(value),
            'V' => rec.version = Some(value),
            'A' => rec.arch = Some(value),
            'L' => rec.license = Some(value),
            'o' => rec.origin = Some(value),
            _ => {}
        }
    }
    finish(rec, path, &mut out);
    Ok(out)
}

fn finish(r: Record<'_>, path: &str, out: &mut Vec<Package>) {
    let (Some(name), Some(version)) = (r.name, r.version) else {
        return;
    };
    if name.is_empty() || version.is_empty() {
        return;
    }
    let origin = r.origin.filter(|o| !o.is_empty() && *o != name);
    let arch = r.arch.filter(|a| !a.is_empty());
    out.push(Package {
        ecosystem: Ecosystem::Apk,
        name: name.to_owned(),
        version: version.to_owned(),
        purl: purl(
            Ecosystem::Apk.purl_type(),
            "alpine",
            name,
            version,
            &[
                ("arch", arch.unwrap_or("")),
                ("upstream", origin.unwrap_or("")),
            ],
        ),
        source: origin.map(str::to_owned),
        license: r.license.filter(|l| !l.is_empty()).map(str::to_owned),
        arch: arch.map(str::to_owned),
        path: path.to_owned(),
        layer: String::new(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_becomes_upstream() {
        let db = b"P:musl-utils\nV:1.1.22-r3\nA:x86_64\nL:MIT BSD GPL2+\no:musl\n\nP:musl\nV:1.1.22-r3\no:musl\n";
        let p = analyze("/lib/apk/db/installed", db).unwrap_or_default();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0].purl,
            "pkg:apk/alpine/musl-utils@1.1.22-r3?arch=x86_64&upstream=musl"
        );
        assert_eq!(p[0].license.as_deref(), Some("MIT BSD GPL2+"));
        assert_eq!(p[1].purl, "pkg:apk/alpine/musl@1.1.22-r3");
        assert_eq!(p[1].source, None);
    }
}
