//! Alpine-style `secfixes` databases (Alpine secdb, Wolfi, Chainguard, MinimOS).

use std::collections::BTreeMap;

use crate::node::{Checked, Node};
use crate::{Affected, Observation, PackageRef};

pub(crate) fn parse(root: Node<'_>) -> Checked<Vec<Observation>> {
    let reponame = root.opt_str("reponame")?;
    let distroversion = root.opt_str("distroversion")?;
    // Alpine's secdb names its release; the others name only their repository.
    let (source, namespace) = match distroversion {
        Some(v) => (format!("alpine-secdb:{v}"), "alpine".to_owned()),
        None => {
            let repo = reponame.ok_or_else(|| {
                root.problem("missing required field 'distroversion' or 'reponame'")
            })?;
            (format!("secdb:{repo}"), repo.to_owned())
        }
    };
    let mut by_id: BTreeMap<String, Observation> = BTreeMap::new();
    for p in root.req("packages")?.arr_lenient()? {
        let pkg = p.req("pkg")?;
        let name = pkg.req_str("name")?;
        let Some(secfixes) = pkg.opt("secfixes")? else {
            continue;
        };
        for (version, ids) in secfixes.entries()? {
            if version.is_empty() {
                return Err(ids.problem("empty version"));
            }
            let ids = match ids.value {
                serde_json::Value::Null => Vec::new(),
                _ => ids.arr_lenient()?,
            };
            for id_node in ids {
                // Some entries list several ids in one string ("CVE-1 CVE-2").
                for id in id_node.str()?.split_whitespace() {
                    let o = by_id
                        .entry(id.to_owned())
                        .or_insert_with(|| Observation::new(source.clone(), id));
                    let mut purl = format!("pkg:apk/{namespace}/{name}");
                    if let Some(v) = distroversion {
                        purl.push_str(&format!("?distro={v}"));
                    }
                    o.affected.push(Affected {
                        package: PackageRef {
                            purl: Some(purl),
                            ecosystem: Some(namespace.clone()),
                            name: Some(name.to_owned()),
                            cpe: None,
                        },
                        // "0" means the package was never affected; kept as written.
                        fixed: vec![version.to_owned()],
                        ..Affected::default()
                    });
                }
            }
        }
    }
    Ok(by_id.into_values().collect())
}
