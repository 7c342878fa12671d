//! Timestamp checks. Times are kept exactly as written; these functions only decide whether
//! the text is what the format promises.

use crate::node::{Checked, Node};

fn digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

fn num(s: &[u8]) -> u32 {
    s.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

/// `YYYY-MM-DD` with a plausible month and day.
pub(crate) fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && digits(&b[0..4])
        && b[4] == b'-'
        && digits(&b[5..7])
        && b[7] == b'-'
        && digits(&b[8..10])
        && (1..=12).contains(&num(&b[5..7]))
        && (1..=31).contains(&num(&b[8..10]))
}

/// Whether a timestamp must carry a zone (`Z` or `±HH:MM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zone {
    /// RFC 3339 proper.
    Required,
    /// NVD and CVE 5 also write local-less times such as `2022-07-11T13:15:08.503`.
    Optional,
}

/// RFC 3339 `date-time` (with `zone`), e.g. `2023-01-08T18:02:03.647787998-06:00`.
pub(crate) fn is_date_time(s: &str, zone: Zone) -> bool {
    let b = s.as_bytes();
    if b.len() < 19 || !is_date(&s[..10]) || !matches!(b[10], b'T' | b't' | b' ') {
        return false;
    }
    let t = &b[11..19];
    if !(digits(&t[0..2]) && t[2] == b':' && digits(&t[3..5]) && t[5] == b':' && digits(&t[6..8])) {
        return false;
    }
    if num(&t[0..2]) > 23 || num(&t[3..5]) > 59 || num(&t[6..8]) > 60 {
        return false;
    }
    let mut rest = &b[19..];
    if let Some((&b'.', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        [] => zone == Zone::Optional,
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            digits(&[*h1, *h2, *m1, *m2]) && num(&[*h1, *h2]) <= 23 && num(&[*m1, *m2]) <= 59
        }
        _ => false,
    }
}

impl Node<'_> {
    /// An optional RFC 3339 field, returned as written.
    pub(crate) fn opt_time(&self, key: &str, zone: Zone) -> Checked<Option<String>> {
        match self.opt(key)? {
            None => Ok(None),
            Some(n) => n.time(zone).map(Some),
        }
    }

    /// A required RFC 3339 field, returned as written.
    pub(crate) fn req_time(&self, key: &str, zone: Zone) -> Checked<String> {
        self.req(key)?.time(zone)
    }

    pub(crate) fn time(&self, zone: Zone) -> Checked<String> {
        let s = self.str()?;
        if is_date_time(s, zone) {
            Ok(s.to_owned())
        } else {
            Err(self.problem(format!("'{s}' is not an RFC 3339 date-time")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times() {
        assert!(is_date_time(
            "2023-01-08T18:02:03.647787998-06:00",
            Zone::Required
        ));
        assert!(is_date_time("2021-01-01T00:00:00Z", Zone::Required));
        assert!(!is_date_time("2022-07-11T13:15:08.503", Zone::Required));
        assert!(is_date_time("2022-07-11T13:15:08.503", Zone::Optional));
        assert!(!is_date_time("2020-04-13", Zone::Optional));
        assert!(!is_date_time("2020-13-01T00:00:00Z", Zone::Required));
        assert!(!is_date_time("2020-01-01T00:00:00+0100", Zone::Required));
        assert!(!is_date_time("2020-01-01T00:00:00.Z", Zone::Required));
    }
}
