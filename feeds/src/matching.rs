//! Matching a package version against one source's statement: does this source say `pkg@version` is
//! affected, and what does it say fixes it? Each source is judged on its own terms; combining verdicts is
//! the caller's business (and conflicts are reported, never resolved).

use crate::linkset::{package_key, purl_base};
use crate::version::{in_range, Scheme};
use crate::{Affected, Observation, RangeEvent, VexStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A parsed package URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purl {
    /// Type, lowercased (`deb`, `npm`, `pypi`...).
    pub ty: String,
    /// Namespace (`debian`, `@scope`, a Maven group), percent-decoded.
    pub namespace: Option<String>,
    /// Name, percent-decoded.
    pub name: String,
    /// Version, percent-decoded.
    pub version: Option<String>,
    /// Qualifiers (`distro`, `arch`, `upstream`...).
    pub qualifiers: BTreeMap<String, String>,
    /// `pkg:type/namespace/name` as written (type lowercased), for index lookups.
    pub base: String,
}

fn decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `pkg:type/namespace/name@version?qualifiers#subpath`.
pub fn parse_purl(s: &str) -> Result<Purl, String> {
    let rest = s
        .strip_prefix("pkg:")
        .ok_or_else(|| format!("'{s}' is not a purl (no 'pkg:' prefix)"))?;
    let rest = rest.split('#').next().unwrap_or(rest);
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let (ty, remainder) = path
        .split_once('/')
        .ok_or_else(|| format!("'{s}': purl has no name"))?;
    let (name_part, version) = match remainder.rfind('@') {
        Some(at) if at > 0 => (&remainder[..at], Some(decode(&remainder[at + 1..]))),
        _ => (remainder, None),
    };
    let mut segs: Vec<&str> = name_part.split('/').filter(|x| !x.is_empty()).collect();
    let name = segs
        .pop()
        .ok_or_else(|| format!("'{s}': purl has no name"))?;
    let namespace = (!segs.is_empty()).then(|| decode(&segs.join("/")));
    let mut qualifiers = BTreeMap::new();
    for q in query.unwrap_or("").split('&').filter(|q| !q.is_empty()) {
        if let Some((k, v)) = q.split_once('=') {
            qualifiers.insert(k.to_ascii_lowercase(), decode(v));
        }
    }
    Ok(Purl {
        ty: ty.to_ascii_lowercase(),
        namespace,
        name: decode(name),
        version,
        qualifiers,
        base: purl_base(s),
    })
}

/// The OSV ecosystem name of a purl type, for sources that name packages by ecosystem.
fn ecosystem_of(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "npm" => "npm",
        "pypi" => "pypi",
        "golang" => "go",
        "maven" => "maven",
        "cargo" => "crates.io",
        "nuget" => "nuget",
        "gem" => "rubygems",
        "composer" => "packagist",
        "deb" => "debian",
        "apk" => "alpine",
        "rpm" => "red hat",
        _ => return None,
    })
}

/// The keys a purl may be indexed under by sources: the purl base, and `ecosystem/name` forms (with the
/// Maven `group:artifact` and Go `module path` conventions), plus the Debian source package (`upstream`).
pub fn lookup_keys(p: &Purl) -> Vec<String> {
    let mut keys = vec![p.base.clone()];
    if let Some(eco) = ecosystem_of(&p.ty) {
        let name = match (p.ty.as_str(), &p.namespace) {
            ("maven", Some(ns)) => format!("{ns}:{}", p.name),
            ("golang" | "npm" | "composer", Some(ns)) => format!("{ns}/{}", p.name),
            _ => p.name.clone(),
        };
        keys.push(format!("{eco}/{name}"));
        if let Some(src) = p
            .qualifiers
            .get("upstream")
            .or_else(|| p.qualifiers.get("source"))
        {
            let src = src.split(['@', ' ']).next().unwrap_or(src);
            keys.push(format!("{eco}/{src}"));
            if let Some(ns) = &p.namespace {
                keys.push(format!("pkg:{}/{ns}/{src}", p.ty));
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// One source's verdict for a package version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum Verdict {
    /// The source says this version is affected.
    Affected {
        /// Fixed versions the source states for this package.
        fixed: Vec<String>,
        /// Why: the range or enumerated version that matched.
        because: String,
    },
    /// The source names the package but this version is outside its ranges, or a VEX statement says not
    /// affected or fixed.
    NotAffected {
        /// Why.
        because: String,
    },
    /// The source names the package but its ranges cannot be evaluated (GIT ranges, unparseable versions).
    Unknown {
        /// Why.
        because: String,
    },
}

/// The release a distro ecosystem names (`Debian:12` → `12`, `Alpine:v3.19` → `3.19`).
fn ecosystem_release(eco: &str) -> Option<String> {
    eco.split_once(':')
        .map(|(_, r)| r.trim().trim_start_matches('v').to_ascii_lowercase())
}

/// The release a purl's `distro` qualifier names (`debian-12` → `12`, `alpine-3.19` → `3.19`, `bookworm`).
fn purl_release(p: &Purl) -> Option<String> {
    let d = p.qualifiers.get("distro")?;
    let r = d.rsplit_once('-').map(|(_, r)| r).unwrap_or(d);
    let r = r.trim_start_matches('v').to_ascii_lowercase();
    Some(match r.as_str() {
        "bookworm" => "12".into(),
        "bullseye" => "11".into(),
        "buster" => "10".into(),
        "trixie" => "13".into(),
        _ => {
            // Alpine branches are named by major.minor; a full 3.19.1 release matches branch 3.19.
            let parts: Vec<&str> = r.split('.').collect();
            if parts.len() > 2 && p.ty == "apk" {
                format!("{}.{}", parts[0], parts[1])
            } else {
                r
            }
        }
    })
}

fn scheme_for(a: &Affected, range_scheme: &str, p: &Purl) -> Option<Scheme> {
    if range_scheme.eq_ignore_ascii_case("SEMVER") {
        return Some(Scheme::Semver);
    }
    a.package
        .ecosystem
        .as_deref()
        .and_then(Scheme::for_ecosystem)
        .or_else(|| {
            a.package
                .purl
                .as_deref()
                .and_then(|u| parse_purl(u).ok())
                .and_then(|u| Scheme::for_purl_type(&u.ty))
        })
        .or_else(|| Scheme::for_purl_type(&p.ty))
}

fn fixed_of(a: &Affected) -> Vec<String> {
    let mut f: Vec<String> = a.fixed.clone();
    for r in &a.ranges {
        for e in &r.events {
            if let RangeEvent::Fixed(v) = e {
                f.push(v.clone());
            }
        }
    }
    f.sort();
    f.dedup();
    f
}

/// Judges one observation for a purl with a version. `None` when the source does not name the package (or
/// names it for another distro release).
pub fn judge(o: &Observation, p: &Purl) -> Option<Verdict> {
    if o.withdrawn.is_some() {
        return None;
    }
    let version = p.version.as_deref()?;
    let keys = lookup_keys(p);
    // VEX statements about this product first: they are the most specific claims.
    for v in &o.vex {
        if !v.product.starts_with("pkg:") || !keys.contains(&purl_base(&v.product)) {
            continue;
        }
        if let Ok(vp) = parse_purl(&v.product) {
            if vp.version.as_deref().is_some_and(|pv| pv != version) {
                continue;
            }
        }
        return Some(match v.status {
            VexStatus::NotAffected | VexStatus::Fixed => Verdict::NotAffected {
                because: format!(
                    "vex {}{}",
                    v.stated_status,
                    v.justification
                        .as_ref()
                        .map(|j| format!(" ({j})"))
                        .unwrap_or_default()
                ),
            },
            VexStatus::Affected => Verdict::Affected {
                fixed: vec![],
                because: format!("vex {}", v.stated_status),
            },
            VexStatus::UnderInvestigation => Verdict::Unknown {
                because: format!("vex {}", v.stated_status),
            },
        });
    }
    let mut named = None;
    for a in &o.affected {
        let Some(k) = package_key(&a.package) else {
            continue;
        };
        if !keys.contains(&k) {
            continue;
        }
        // Distro-aware: an advisory for Debian 11 says nothing about a Debian 12 package.
        if let (Some(er), Some(pr)) = (
            a.package.ecosystem.as_deref().and_then(ecosystem_release),
            purl_release(p),
        ) {
            if er != pr {
                continue;
            }
        }
        if a.status
            .as_deref()
            .is_some_and(|s| matches!(s, "not-affected" | "not_affected" | "unaffected"))
        {
            named = Some(Verdict::NotAffected {
                because: format!("status {}", a.status.as_deref().unwrap_or_default()),
            });
            continue;
        }
        if a.versions.iter().any(|v| v == version) {
            return Some(Verdict::Affected {
                fixed: fixed_of(a),
                because: format!("version {version} is listed"),
            });
        }
        let mut evaluated = false;
        for r in &a.ranges {
            if r.scheme.eq_ignore_ascii_case("GIT") {
                continue;
            }
            let Some(scheme) = scheme_for(a, &r.scheme, p) else {
                named.get_or_insert(Verdict::Unknown {
                    because: format!("no version scheme for range type {}", r.scheme),
                });
                continue;
            };
            match in_range(scheme, version, &r.events) {
                Ok(true) => {
                    return Some(Verdict::Affected {
                        fixed: fixed_of(a),
                        because: format!("{} range {}", scheme.name(), render_events(&r.events)),
                    })
                }
                Ok(false) => evaluated = true,
                Err(e) => {
                    named.get_or_insert(Verdict::Unknown {
                        because: e.to_string(),
                    });
                }
            }
        }
        if evaluated || !a.versions.is_empty() {
            named = Some(Verdict::NotAffected {
                because: format!("{version} is outside the stated ranges"),
            });
        } else if a.ranges.is_empty() && a.versions.is_empty() {
            // Named without any version information: the source says the package is affected.
            if a.status.is_none() || a.status.as_deref() == Some("affected") {
                return Some(Verdict::Affected {
                    fixed: fixed_of(a),
                    because: "all versions (no range stated)".into(),
                });
            }
        }
    }
    named
}

fn render_events(events: &[RangeEvent]) -> String {
    events
        .iter()
        .map(|e| match e {
            RangeEvent::Introduced(v) => format!(">={v}"),
            RangeEvent::IntroducedAfter(v) => format!(">{v}"),
            RangeEvent::Fixed(v) => format!("<{v} (fixed)"),
            RangeEvent::LastAffected(v) => format!("<={v}"),
            RangeEvent::Below(v) => format!("<{v}"),
            RangeEvent::Limit(v) => format!("limit {v}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{PackageRef, VersionRange};

    fn obs(eco: &str, name: &str, purl: Option<&str>, events: Vec<RangeEvent>) -> Observation {
        Observation {
            source: "osv:TEST".into(),
            source_id: "TEST-1".into(),
            affected: vec![Affected {
                package: PackageRef {
                    purl: purl.map(str::to_owned),
                    ecosystem: Some(eco.into()),
                    name: Some(name.into()),
                    cpe: None,
                },
                ranges: vec![VersionRange {
                    scheme: "ECOSYSTEM".into(),
                    repo: None,
                    events,
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn purl_parsing() {
        let p = parse_purl(
            "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl",
        )
        .unwrap();
        assert_eq!(
            (p.ty.as_str(), p.namespace.as_deref(), p.name.as_str()),
            ("deb", Some("debian"), "libssl3")
        );
        assert_eq!(p.version.as_deref(), Some("3.0.11-1~deb12u2"));
        assert_eq!(p.qualifiers["upstream"], "openssl");
        assert!(lookup_keys(&p).contains(&"debian/openssl".to_owned()));
        let m = parse_purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1").unwrap();
        assert!(lookup_keys(&m).contains(&"maven/org.apache.logging.log4j:log4j-core".to_owned()));
        let s = parse_purl("pkg:npm/%40babel/core@7.0.0").unwrap();
        assert_eq!(s.namespace.as_deref(), Some("@babel"));
        assert!(parse_purl("npm/x@1").is_err());
    }

    #[test]
    fn debian_source_package_and_release() {
        let o = obs(
            "Debian:12",
            "openssl",
            None,
            vec![
                RangeEvent::Introduced("0".into()),
                RangeEvent::Fixed("3.0.11-1~deb12u2".into()),
            ],
        );
        let old =
            parse_purl("pkg:deb/debian/libssl3@3.0.9-1?distro=debian-12&upstream=openssl").unwrap();
        assert!(
            matches!(judge(&o, &old), Some(Verdict::Affected { .. })),
            "{:?}",
            judge(&o, &old)
        );
        let new =
            parse_purl("pkg:deb/debian/libssl3@3.0.11-1~deb12u2?distro=debian-12&upstream=openssl")
                .unwrap();
        assert!(matches!(judge(&o, &new), Some(Verdict::NotAffected { .. })));
        let other_release =
            parse_purl("pkg:deb/debian/libssl3@3.0.9-1?distro=debian-11&upstream=openssl").unwrap();
        assert_eq!(judge(&o, &other_release), None);
    }

    #[test]
    fn alpine_branch_and_semver() {
        let o = obs(
            "Alpine:v3.19",
            "musl",
            None,
            vec![
                RangeEvent::Introduced("0".into()),
                RangeEvent::Fixed("1.2.4_git20230717-r5".into()),
            ],
        );
        let p =
            parse_purl("pkg:apk/alpine/musl@1.2.4_git20230717-r4?distro=alpine-3.19.1").unwrap();
        assert!(matches!(judge(&o, &p), Some(Verdict::Affected { .. })));
        let n = obs(
            "npm",
            "lodash",
            Some("pkg:npm/lodash"),
            vec![
                RangeEvent::Introduced("0".into()),
                RangeEvent::Fixed("4.17.21".into()),
            ],
        );
        assert!(matches!(
            judge(&n, &parse_purl("pkg:npm/lodash@4.17.20").unwrap()),
            Some(Verdict::Affected { .. })
        ));
        assert!(matches!(
            judge(&n, &parse_purl("pkg:npm/lodash@4.17.21").unwrap()),
            Some(Verdict::NotAffected { .. })
        ));
    }
}
