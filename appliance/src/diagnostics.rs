//! Start-up diagnostics: the crypto self-test of each profile, as a table or JSON.

use crypto_profiles::{Profile, ProfileId, SelfTestItem};
use serde::Serialize;

/// The self-test outcome of one profile.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileReport {
    /// The profile.
    pub profile: ProfileId,
    /// Whether every item passed.
    pub ok: bool,
    /// Each algorithm's result, or why the profile could not start.
    pub items: Vec<SelfTestItem>,
}

/// Runs the self-test of each profile. A profile that cannot start (e.g. no GOST engine) is a failed report.
pub fn self_test(profiles: &[ProfileId]) -> Vec<ProfileReport> {
    profiles
        .iter()
        .map(|&id| match Profile::new(id) {
            Ok(p) => match p.self_test() {
                Ok(items) => ProfileReport {
                    profile: id,
                    ok: true,
                    items,
                },
                Err(items) => ProfileReport {
                    profile: id,
                    ok: false,
                    items,
                },
            },
            Err(e) => ProfileReport {
                profile: id,
                ok: false,
                items: vec![SelfTestItem {
                    algorithm: "profile".into(),
                    result: e.to_string(),
                }],
            },
        })
        .collect()
}

/// A plain-text table of reports.
pub fn render(reports: &[ProfileReport]) -> String {
    let mut out = String::new();
    for r in reports {
        out.push_str(&format!(
            "profile {}: {}\n",
            r.profile,
            if r.ok { "ok" } else { "FAILED" }
        ));
        for i in &r.items {
            out.push_str(&format!("  {:<30} {}\n", i.algorithm, i.result));
        }
    }
    out
}
