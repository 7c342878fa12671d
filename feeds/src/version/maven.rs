//! Maven artifact versions, by the POM reference's "version order specification" (the rules
//! `ComparableVersion` implements).
//!
//! The version is lowercased and split into tokens at `.`, at `-` and where digits and
//! non-digits meet (a transition counts as a `-`); each token remembers its separator and an
//! empty token reads as `0`. `a`, `b` and `m` directly followed by a digit mean `alpha`,
//! `beta` and `milestone`; `cr` means `rc`; `ga`, `final` and `release` mean the empty
//! qualifier. Trailing "null" tokens (`0` and the empty qualifier) are trimmed from the end,
//! and again before each remaining `-` from the end to the start (`1.0.0-foo.0.0` is
//! `1-foo`).
//!
//! Token lists compare pairwise, a missing token counting as null (`0` against a number, the
//! empty qualifier against a qualifier). Qualifiers order as
//! `alpha < beta < milestone < rc < snapshot < "" < sp < (others, alphabetically)` and a
//! number beats a qualifier when the separators agree; when they differ,
//! `.qualifier < -qualifier < -number < .number`. (The POM reference calls `.qualifier` and
//! `-qualifier` equal, but `ComparableVersion`, which defines the order in practice, puts a
//! qualifier that opens a `-` sub-list above one that does not: `1.0.rc5 < 1.0rc1`.)

use std::cmp::Ordering;

use super::{check_text, cmp_digits};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    Dot,
    Hyphen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Number(String),
    Qualifier(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    sep: Sep,
    item: Item,
}

impl Token {
    fn is_null(&self) -> bool {
        match &self.item {
            Item::Number(n) => n == "0",
            Item::Qualifier(q) => q.is_empty(),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct MavenVersion {
    tokens: Vec<Token>,
}

fn item(text: &str, followed_by_digit: bool) -> Item {
    if text.is_empty() {
        return Item::Number("0".to_owned());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let trimmed = text.trim_start_matches('0');
        let n = if trimmed.is_empty() { "0" } else { trimmed };
        return Item::Number(n.to_owned());
    }
    let q = match text {
        "a" if followed_by_digit => "alpha",
        "b" if followed_by_digit => "beta",
        "m" if followed_by_digit => "milestone",
        "cr" => "rc",
        "ga" | "final" | "release" => "",
        other => other,
    };
    Item::Qualifier(q.to_owned())
}

impl MavenVersion {
    pub(super) fn parse(s: &str) -> Result<Self, String> {
        check_text(s)?;
        let lower = s.to_lowercase();
        let mut tokens = Vec::new();
        let mut sep = Sep::Dot;
        for raw in lower.split_inclusive(['.', '-']) {
            let (body, next_sep) = match raw.as_bytes().last() {
                Some(b'.') => (&raw[..raw.len() - 1], Sep::Dot),
                Some(b'-') => (&raw[..raw.len() - 1], Sep::Hyphen),
                _ => (raw, Sep::Dot),
            };
            // Split the body where digits and non-digits meet.
            let bytes = body.as_bytes();
            let mut start = 0;
            let mut token_sep = sep;
            for i in 1..=bytes.len() {
                let boundary =
                    i == bytes.len() || bytes[i].is_ascii_digit() != bytes[i - 1].is_ascii_digit();
                if boundary {
                    let followed_by_digit = i < bytes.len() && bytes[i].is_ascii_digit();
                    tokens.push(Token {
                        sep: token_sep,
                        item: item(&body[start..i], followed_by_digit),
                    });
                    start = i;
                    token_sep = Sep::Hyphen;
                }
            }
            if bytes.is_empty() {
                tokens.push(Token {
                    sep,
                    item: item("", false),
                });
            }
            sep = next_sep;
        }
        // A trailing separator leaves an empty (null) token, trimmed below.
        if lower.ends_with(['.', '-']) {
            tokens.push(Token {
                sep,
                item: item("", false),
            });
        }
        trim(&mut tokens);
        Ok(MavenVersion { tokens })
    }
}

/// Removes trailing null tokens, then again before each remaining hyphen, end to start.
/// The first token is never removed.
fn trim(tokens: &mut Vec<Token>) {
    let mut i = tokens.len();
    while i > 1 {
        let k = i - 1;
        if tokens[k].is_null() {
            tokens.remove(k);
            i -= 1;
            continue;
        }
        // Skip back to the hyphen that starts this run, and continue before it.
        let mut h = k;
        while h > 0 && tokens[h].sep != Sep::Hyphen {
            h -= 1;
        }
        i = h;
    }
}

fn qualifier_rank(q: &str) -> usize {
    const KNOWN: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
    KNOWN.iter().position(|k| *k == q).unwrap_or(KNOWN.len())
}

fn cmp_qualifiers(a: &str, b: &str) -> Ordering {
    qualifier_rank(a)
        .cmp(&qualifier_rank(b))
        .then_with(|| a.cmp(b))
}

fn cmp_tokens(a: &Token, b: &Token) -> Ordering {
    match (&a.item, &b.item) {
        _ if a.sep != b.sep => class(a).cmp(&class(b)),
        (Item::Qualifier(x), Item::Qualifier(y)) => cmp_qualifiers(x, y),
        (Item::Number(_), Item::Qualifier(_)) => Ordering::Greater,
        (Item::Qualifier(_), Item::Number(_)) => Ordering::Less,
        (Item::Number(x), Item::Number(y)) => cmp_digits(x, y),
    }
}

/// Rank of a token against one with the other separator:
/// `.qualifier < -qualifier < -number < .number`.
fn class(t: &Token) -> u8 {
    match (&t.item, t.sep) {
        (Item::Qualifier(_), Sep::Dot) => 0,
        (Item::Qualifier(_), Sep::Hyphen) => 1,
        (Item::Number(_), Sep::Hyphen) => 2,
        (Item::Number(_), Sep::Dot) => 3,
    }
}

/// Compares a token against a missing one (null).
fn cmp_null(a: &Token) -> Ordering {
    match &a.item {
        Item::Number(n) => cmp_digits(n, "0"),
        Item::Qualifier(q) => cmp_qualifiers(q, ""),
    }
}

impl Ord for MavenVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        for i in 0..self.tokens.len().max(other.tokens.len()) {
            let order = match (self.tokens.get(i), other.tokens.get(i)) {
                (Some(a), Some(b)) => cmp_tokens(a, b),
                (Some(a), None) => cmp_null(a),
                (None, Some(b)) => cmp_null(b).reverse(),
                (None, None) => Ordering::Equal,
            };
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    }
}

impl PartialOrd for MavenVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for MavenVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for MavenVersion {}
