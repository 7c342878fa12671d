//! Exact version ordering for the package ecosystems advisories speak about.
//!
//! A source states ranges in its own ecosystem's version scheme (DESIGN.md §4); deciding
//! whether an installed version falls in such a range needs that scheme's exact order, never
//! a generic "looks like semver" guess. Each [`Scheme`] is implemented from its specification,
//! one module per scheme:
//!
//! | scheme | ecosystems | specification |
//! |---|---|---|
//! | [`Scheme::Dpkg`] | Debian, Ubuntu | deb-version(7) |
//! | [`Scheme::Rpm`] | Red Hat, Rocky, Alma, SUSE | `rpmvercmp` with `~` and `^`, `epoch:version-release` |
//! | [`Scheme::Apk`] | Alpine, Wolfi, Chainguard | apk-tools version comparison |
//! | [`Scheme::Semver`] | npm, crates.io, Hex | SemVer 2.0.0 precedence |
//! | [`Scheme::Pep440`] | PyPI | PEP 440, with pre-PEP 440 "legacy" versions sorted first |
//! | [`Scheme::Maven`] | Maven | the POM reference's version order specification |
//! | [`Scheme::Go`] | Go modules | semver with `v`, `+incompatible`, pseudo-versions |
//! | [`Scheme::NuGet`] | NuGet | SemVer 2 with a fourth number, case-insensitive labels |
//! | [`Scheme::RubyGems`] | RubyGems | `Gem::Version` |
//! | [`Scheme::Packagist`] | Packagist | PHP `version_compare` after Composer's `v` stripping |
//!
//! Numbers are compared as digit strings, so versions with components beyond 64 bits (dates,
//! build stamps) order correctly instead of overflowing. Nothing here panics on input: a
//! version a scheme cannot read is refused with a [`VersionError`] naming the scheme, the
//! version and the reason.
//!
//! [`in_range`] evaluates OSV-style range events ([`crate::RangeEvent`]) the way the OSV
//! schema describes.

mod apk;
mod dpkg;
mod maven;
mod nuget;
mod packagist;
mod pep440;
mod rpm;
mod rubygems;
mod semver;

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::RangeEvent;

/// A version ordering scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scheme {
    /// Debian package versions, deb-version(7): `[epoch:]upstream[-revision]`.
    Dpkg,
    /// RPM package versions: `[epoch:]version[-release]` compared with `rpmvercmp`.
    Rpm,
    /// Alpine package versions as apk-tools compares them.
    Apk,
    /// SemVer 2.0.0 precedence (npm, crates.io); a leading `v` is tolerated.
    Semver,
    /// Python package versions, PEP 440.
    Pep440,
    /// Maven artifact versions.
    Maven,
    /// Go module versions (semver with a `v` prefix, `+incompatible`, pseudo-versions).
    Go,
    /// NuGet package versions.
    NuGet,
    /// RubyGems versions (`Gem::Version`).
    RubyGems,
    /// Composer/Packagist versions (PHP `version_compare`).
    Packagist,
}

impl Scheme {
    /// Every scheme, in declaration order.
    pub const ALL: [Scheme; 10] = [
        Scheme::Dpkg,
        Scheme::Rpm,
        Scheme::Apk,
        Scheme::Semver,
        Scheme::Pep440,
        Scheme::Maven,
        Scheme::Go,
        Scheme::NuGet,
        Scheme::RubyGems,
        Scheme::Packagist,
    ];

    /// Stable lowercase name, as used in error messages and accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Dpkg => "dpkg",
            Scheme::Rpm => "rpm",
            Scheme::Apk => "apk",
            Scheme::Semver => "semver",
            Scheme::Pep440 => "pep440",
            Scheme::Maven => "maven",
            Scheme::Go => "go",
            Scheme::NuGet => "nuget",
            Scheme::RubyGems => "rubygems",
            Scheme::Packagist => "packagist",
        }
    }

    /// The scheme of an OSV ecosystem name; a release suffix (`Debian:12`, `Alpine:v3.19`)
    /// is ignored. `None` for ecosystems whose order is not implemented (and for `GIT`).
    pub fn for_ecosystem(ecosystem: &str) -> Option<Scheme> {
        let base = ecosystem.split(':').next().unwrap_or(ecosystem).trim();
        Some(match base {
            "Debian" | "Ubuntu" => Scheme::Dpkg,
            "Red Hat" | "Rocky Linux" | "AlmaLinux" | "openSUSE" | "SUSE" | "Mageia"
            | "openEuler" => Scheme::Rpm,
            "Alpine" | "Wolfi" | "Chainguard" => Scheme::Apk,
            "npm" | "crates.io" | "Hex" => Scheme::Semver,
            "PyPI" => Scheme::Pep440,
            "Maven" => Scheme::Maven,
            "Go" => Scheme::Go,
            "NuGet" => Scheme::NuGet,
            "RubyGems" => Scheme::RubyGems,
            "Packagist" => Scheme::Packagist,
            _ => return None,
        })
    }

    /// The scheme of a purl type (`pkg:<type>/...`), compared case-insensitively.
    pub fn for_purl_type(purl_type: &str) -> Option<Scheme> {
        Some(match purl_type.to_ascii_lowercase().as_str() {
            "deb" => Scheme::Dpkg,
            "rpm" => Scheme::Rpm,
            "apk" => Scheme::Apk,
            "npm" | "cargo" | "hex" => Scheme::Semver,
            "pypi" => Scheme::Pep440,
            "maven" => Scheme::Maven,
            "golang" => Scheme::Go,
            "nuget" => Scheme::NuGet,
            "gem" => Scheme::RubyGems,
            "composer" => Scheme::Packagist,
            _ => return None,
        })
    }

    /// Parses `version` in this scheme.
    pub fn parse(self, version: &str) -> Result<Version, VersionError> {
        let invalid = |reason: String| VersionError::Invalid {
            scheme: self,
            version: version.to_owned(),
            reason,
        };
        let parsed = match self {
            Scheme::Dpkg => Parsed::Dpkg(dpkg::DpkgVersion::parse(version).map_err(invalid)?),
            Scheme::Rpm => Parsed::Rpm(rpm::RpmVersion::parse(version).map_err(invalid)?),
            Scheme::Apk => Parsed::Apk(apk::ApkVersion::parse(version).map_err(invalid)?),
            Scheme::Semver | Scheme::Go => {
                Parsed::Semver(semver::SemverVersion::parse(version).map_err(invalid)?)
            }
            Scheme::Pep440 => {
                Parsed::Pep440(pep440::Pep440Version::parse(version).map_err(invalid)?)
            }
            Scheme::Maven => Parsed::Maven(maven::MavenVersion::parse(version).map_err(invalid)?),
            Scheme::NuGet => Parsed::NuGet(nuget::NuGetVersion::parse(version).map_err(invalid)?),
            Scheme::RubyGems => {
                Parsed::RubyGems(rubygems::GemVersion::parse(version).map_err(invalid)?)
            }
            Scheme::Packagist => {
                Parsed::Packagist(packagist::PackagistVersion::parse(version).map_err(invalid)?)
            }
        };
        Ok(Version {
            scheme: self,
            original: version.to_owned(),
            parsed,
        })
    }

    /// Compares two versions in this scheme.
    pub fn compare(self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        Ok(self.parse(a)?.cmp(&self.parse(b)?))
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scheme {
    type Err = VersionError;

    /// Accepts the names returned by [`Scheme::name`], case-insensitively, plus `npm`
    /// and `cargo` for [`Scheme::Semver`] and `pypi` for [`Scheme::Pep440`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "npm" | "cargo" => return Ok(Scheme::Semver),
            "pypi" => return Ok(Scheme::Pep440),
            _ => {}
        }
        Scheme::ALL
            .into_iter()
            .find(|scheme| scheme.name() == lower)
            .ok_or_else(|| VersionError::UnknownScheme(s.to_owned()))
    }
}

/// Why a version or scheme was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VersionError {
    /// The string is not a version of the scheme.
    #[error("{scheme} version '{version}' is invalid: {reason}")]
    Invalid {
        /// The scheme the version was read in.
        scheme: Scheme,
        /// The version as given.
        version: String,
        /// What is wrong, in lowercase.
        reason: String,
    },
    /// The name is not a known scheme.
    #[error("unknown version scheme '{0}'")]
    UnknownScheme(String),
}

impl VersionError {
    /// Stable kebab-case code: `invalid-version` or `unknown-scheme`.
    pub fn code(&self) -> &'static str {
        match self {
            VersionError::Invalid { .. } => "invalid-version",
            VersionError::UnknownScheme(_) => "unknown-scheme",
        }
    }
}

/// A parsed version of one scheme.
///
/// Versions are totally ordered within a scheme, and equality is the scheme's equality
/// (`1.0` and `1.0.0` are equal in Maven). Versions of different schemes order by scheme
/// first; that order carries no meaning but keeps `Ord` total.
#[derive(Debug, Clone)]
pub struct Version {
    scheme: Scheme,
    original: String,
    parsed: Parsed,
}

#[derive(Debug, Clone)]
enum Parsed {
    Dpkg(dpkg::DpkgVersion),
    Rpm(rpm::RpmVersion),
    Apk(apk::ApkVersion),
    Semver(semver::SemverVersion),
    Pep440(pep440::Pep440Version),
    Maven(maven::MavenVersion),
    NuGet(nuget::NuGetVersion),
    RubyGems(rubygems::GemVersion),
    Packagist(packagist::PackagistVersion),
}

impl Version {
    /// The scheme the version was parsed in.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The version exactly as given.
    pub fn as_str(&self) -> &str {
        &self.original
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.scheme.cmp(&other.scheme).then_with(|| {
            match (&self.parsed, &other.parsed) {
                (Parsed::Dpkg(a), Parsed::Dpkg(b)) => a.cmp(b),
                (Parsed::Rpm(a), Parsed::Rpm(b)) => a.cmp(b),
                (Parsed::Apk(a), Parsed::Apk(b)) => a.cmp(b),
                (Parsed::Semver(a), Parsed::Semver(b)) => a.cmp(b),
                (Parsed::Pep440(a), Parsed::Pep440(b)) => a.cmp(b),
                (Parsed::Maven(a), Parsed::Maven(b)) => a.cmp(b),
                (Parsed::NuGet(a), Parsed::NuGet(b)) => a.cmp(b),
                (Parsed::RubyGems(a), Parsed::RubyGems(b)) => a.cmp(b),
                (Parsed::Packagist(a), Parsed::Packagist(b)) => a.cmp(b),
                // Equal schemes always hold the same parsed form.
                _ => Ordering::Equal,
            }
        })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// The most events one range may have for [`in_range`].
pub const MAX_RANGE_EVENTS: usize = 4096;

/// Whether `version` falls in the range described by OSV-style `events`.
///
/// Evaluated as the OSV schema describes: events are sorted by version (`introduced: "0"`
/// first), then walked in order; `introduced` (and `IntroducedAfter`, exclusive) starts an
/// affected interval, `fixed` (and `Below`) ends it before the event's version and
/// `last_affected` ends it after. When `limit` events are present the version must also be
/// below one of them. At equal versions an interval start is applied before an end, so
/// `introduced: X, fixed: X` affects nothing.
///
/// Every event version is parsed in `scheme`; the first one that does not parse is returned
/// as the error.
pub fn in_range(
    scheme: Scheme,
    version: &str,
    events: &[RangeEvent],
) -> Result<bool, VersionError> {
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Kind {
        Introduced,
        IntroducedAfter,
        Fixed,
        LastAffected,
    }

    let v = scheme.parse(version)?;
    // The sort below is quadratic; no real range comes near this many events.
    if events.len() > MAX_RANGE_EVENTS {
        return Err(VersionError::Invalid {
            scheme,
            version: version.to_owned(),
            reason: format!(
                "range has {} events, more than {MAX_RANGE_EVENTS}",
                events.len()
            ),
        });
    }
    let mut bounds: Vec<(Option<Version>, Kind)> = Vec::with_capacity(events.len());
    let mut limits = Vec::new();
    for event in events {
        match event {
            RangeEvent::Introduced(s) if s == "0" => bounds.push((None, Kind::Introduced)),
            RangeEvent::Introduced(s) => bounds.push((Some(scheme.parse(s)?), Kind::Introduced)),
            RangeEvent::IntroducedAfter(s) => {
                bounds.push((Some(scheme.parse(s)?), Kind::IntroducedAfter));
            }
            RangeEvent::Fixed(s) | RangeEvent::Below(s) => {
                bounds.push((Some(scheme.parse(s)?), Kind::Fixed));
            }
            RangeEvent::LastAffected(s) => {
                bounds.push((Some(scheme.parse(s)?), Kind::LastAffected));
            }
            RangeEvent::Limit(s) => limits.push(scheme.parse(s)?),
        }
    }
    if !limits.is_empty() && !limits.iter().any(|limit| v < *limit) {
        return Ok(false);
    }
    // `None` (introduced "0") is below every version. Some schemes' orders are not transitive on odd
    // inputs (PHP's `#`, Maven qualifiers), and the standard sorts panic on such comparators, so this is a
    // stable insertion sort: it never panics and gives a deterministic order for any comparator.
    for i in 1..bounds.len() {
        let mut j = i;
        while j > 0 && {
            let (a, ka) = &bounds[j - 1];
            let (b, kb) = &bounds[j];
            a.cmp(b).then(ka.cmp(kb)) == Ordering::Greater
        } {
            bounds.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut affected = false;
    for (at, kind) in &bounds {
        match (at, kind) {
            (None, _) => affected = true,
            (Some(at), Kind::Introduced) if v >= *at => affected = true,
            (Some(at), Kind::IntroducedAfter) if v > *at => affected = true,
            (Some(at), Kind::Fixed) if v >= *at => affected = false,
            (Some(at), Kind::LastAffected) if v > *at => affected = false,
            _ => {}
        }
    }
    Ok(affected)
}

/// Compares two strings of ASCII digits by numeric value, ignoring leading zeros, without
/// any limit on their length.
pub(crate) fn cmp_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Refuses the inputs no scheme accepts: the empty string and strings with whitespace or
/// control characters.
fn check_text(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty version".to_owned());
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("contains {c:?}"));
    }
    Ok(())
}

/// Splits `s` at the first run of ASCII digits: `("123", "abc")` for `"123abc"`.
fn take_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_compare_by_value() {
        assert_eq!(cmp_digits("007", "7"), Ordering::Equal);
        assert_eq!(cmp_digits("", "0"), Ordering::Equal);
        assert_eq!(cmp_digits("10", "9"), Ordering::Greater);
        assert_eq!(
            cmp_digits(
                "999999999999999999999999999991",
                "999999999999999999999999999999"
            ),
            Ordering::Less
        );
    }

    #[test]
    fn names_round_trip() {
        for scheme in Scheme::ALL {
            assert_eq!(scheme.name().parse::<Scheme>(), Ok(scheme));
        }
        assert_eq!("cargo".parse::<Scheme>(), Ok(Scheme::Semver));
        assert!("cran".parse::<Scheme>().is_err());
    }
}
