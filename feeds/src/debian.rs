//! The Debian security tracker JSON: `package -> CVE/TEMP id -> { releases }`.

use std::collections::BTreeMap;

use crate::node::{Checked, Node};
use crate::{Affected, Observation, PackageRef};

const STATUSES: [&str; 3] = ["resolved", "open", "undetermined"];

pub(crate) fn parse(root: Node<'_>) -> Checked<Vec<Observation>> {
    let mut by_id: BTreeMap<String, Observation> = BTreeMap::new();
    for (package, cves) in root.entries()? {
        for (id, entry) in cves.entries()? {
            let o = by_id
                .entry(id.to_owned())
                .or_insert_with(|| Observation::new("debian", id));
            entry.opt_str("description")?;
            for (release, r) in entry.req("releases")?.entries_lenient()? {
                let status = r.enum_str("status", &STATUSES)?;
                r.opt_str("urgency")?;
                // `fixed_version` "0" means the release was never affected; kept as written.
                let fixed = r.opt_str("fixed_version")?.map(str::to_owned);
                if status == "resolved" && fixed.is_none() {
                    return Err(r.problem("a resolved release needs 'fixed_version'"));
                }
                let mut versions = Vec::new();
                if let Some(repos) = r.opt("repositories")? {
                    for (_, v) in repos.entries()? {
                        versions.push(v.str()?.to_owned());
                    }
                }
                o.affected.push(Affected {
                    package: PackageRef {
                        purl: Some(format!("pkg:deb/debian/{package}?distro={release}")),
                        ecosystem: Some(format!("Debian:{release}")),
                        name: Some(package.to_owned()),
                        cpe: None,
                    },
                    ranges: Vec::new(),
                    // The versions in the release's repositories when the tracker looked.
                    versions: if status == "open" {
                        versions
                    } else {
                        Vec::new()
                    },
                    fixed: fixed.into_iter().collect(),
                    status: Some(status.to_owned()),
                });
            }
        }
    }
    Ok(by_id.into_values().collect())
}
