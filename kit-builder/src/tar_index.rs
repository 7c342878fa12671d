//! The entries of a tar archive by path, with names resolved through the symbolic and hard links inside
//! it, never outside it: what a docker-archive (`docker save`) needs, since it writes a layer shared by two
//! images once and links to it from the second image's directory (go-containerregistry's `test_link.tar`).

use crate::source::Source;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Most links followed to resolve one name (Linux's limit for symbolic links).
const MAX_LINKS: usize = 40;
/// Most path components walked to resolve one name, links included.
const MAX_COMPONENTS: usize = 4096;

/// What one entry of a docker-archive tar is.
#[derive(Debug)]
enum Entry {
    /// A regular file: where its bytes start in the archive, and how many there are.
    File { offset: u64, size: u64 },
    /// A symbolic link, to a path relative to the link's directory.
    Symlink(String),
    /// A hard link, to a path relative to the archive's root (as tar writes them).
    HardLink(String),
    /// A directory.
    Dir,
    /// Anything else (device, FIFO...): never a blob.
    Other,
}

/// The entries of a docker-archive tar by path (without `./`, empty components or a trailing `/`).
/// Entries whose path is absolute or has a `..` component are left out: nothing can name them. A
/// path given twice means its last entry, as when the archive is unpacked.
#[derive(Debug)]
pub(crate) struct Archive {
    file: PathBuf,
    entries: BTreeMap<String, Entry>,
}

/// A name could not be resolved to a regular file of the archive.
#[derive(Debug)]
pub(crate) enum Unresolved {
    /// Nothing is there (the message says what is missing).
    Missing(String),
    /// Something is there but may not be used: a loop, an escape, a directory.
    Refused(String),
}

impl Unresolved {
    pub(crate) fn into_message(self) -> String {
        match self {
            Unresolved::Missing(m) | Unresolved::Refused(m) => m,
        }
    }
}

/// `p` as an archive key, or `None` when it is absolute or climbs with `..`.
fn archive_key(p: &str) -> Option<String> {
    if p.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

impl Archive {
    pub(crate) fn read(file: &Path) -> Result<Archive, String> {
        let f = File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut archive = tar::Archive::new(f);
        let mut entries = BTreeMap::new();
        for e in archive
            .entries()
            .map_err(|e| format!("not a tar archive: {e}"))?
        {
            let e = e.map_err(|e| format!("corrupt tar archive: {e}"))?;
            let path = e.path().map_err(|e| format!("bad entry path: {e}"))?;
            let Some(key) = archive_key(&path.to_string_lossy()) else {
                continue;
            };
            let kind = e.header().entry_type();
            let target = || {
                e.link_name()
                    .ok()
                    .flatten()
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            let entry = if kind.is_file() {
                Entry::File {
                    offset: e.raw_file_position(),
                    size: e.size(),
                }
            } else if kind.is_symlink() {
                Entry::Symlink(target())
            } else if kind.is_hard_link() {
                Entry::HardLink(target())
            } else if kind.is_dir() {
                Entry::Dir
            } else {
                Entry::Other
            };
            entries.insert(key, entry);
        }
        Ok(Archive {
            file: file.to_owned(),
            entries,
        })
    }

    /// Whether `key` is a directory: the root, one the archive lists, or one it leaves implicit by
    /// listing entries under it.
    fn is_dir(&self, key: &str) -> bool {
        if key.is_empty() || matches!(self.entries.get(key), Some(Entry::Dir)) {
            return true;
        }
        let under = format!("{key}/");
        self.entries
            .range(under.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&under))
    }

    pub(crate) fn slice(&self, offset: u64, len: u64) -> Source {
        Source::Slice {
            file: self.file.clone(),
            offset,
            len,
        }
    }

    /// Where the regular file `name` is (offset and size), following links the way opening `name` in
    /// the unpacked archive would, without ever leaving it: a name or link that is absolute or climbs
    /// above the archive's root is refused, and so are loops. `who` starts the messages.
    pub(crate) fn resolve(&self, name: &str, who: &str) -> Result<(u64, u64), Unresolved> {
        let refused = |why: String| Unresolved::Refused(format!("{who} {why}"));
        let outside = |links: &[String], target: &str| match links.last() {
            Some(l) => refused(format!(
                "leaves the archive: link '{l}' points to '{target}'"
            )),
            None => refused("is outside the archive".into()),
        };
        if name.starts_with('/') {
            return Err(outside(&[], name));
        }
        // Components still to walk (a stack: the next one last), and the path walked so far.
        let mut todo: Vec<&str> = name.split('/').rev().collect();
        let mut at: Vec<&str> = Vec::new();
        // Links followed, and the states they were followed in: meeting a state again is a loop.
        let mut links: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut target_followed = name;
        let mut walked = 0;
        while let Some(c) = todo.pop() {
            walked += 1;
            if walked > MAX_COMPONENTS {
                return Err(refused(format!(
                    "is nested too deeply (more than {MAX_COMPONENTS} path components)"
                )));
            }
            match c {
                "" | "." => continue,
                ".." => {
                    if at.pop().is_none() {
                        return Err(outside(&links, target_followed));
                    }
                    continue;
                }
                c => at.push(c),
            }
            let key = at.join("/");
            let last = todo.iter().all(|c| c.is_empty() || *c == ".");
            let (target, hard) = match self.entries.get(&key) {
                Some(Entry::Symlink(t)) => (t.as_str(), false),
                Some(Entry::HardLink(t)) => (t.as_str(), true),
                Some(Entry::File { offset, size }) if last => return Ok((*offset, *size)),
                Some(Entry::File { .. } | Entry::Other) if !last => {
                    return Err(refused(format!(
                        "goes through '{key}', which is not a directory"
                    )))
                }
                Some(Entry::Other) => {
                    return Err(refused(format!("is '{key}', which is not a regular file")))
                }
                // A directory, or one the archive leaves implicit.
                _ => continue,
            };
            let state = (key.clone(), todo.clone());
            links.push(key);
            if !seen.insert(state) {
                return Err(refused(format!("is a link loop: {}", quoted_chain(&links))));
            }
            if links.len() > MAX_LINKS {
                return Err(refused(format!(
                    "goes through more than {MAX_LINKS} links: {}",
                    quoted_chain(&links)
                )));
            }
            if target.starts_with('/') {
                return Err(outside(&links, target));
            }
            target_followed = target;
            // A symbolic link's target is relative to its directory, a hard link's to the root.
            at.pop();
            if hard {
                at.clear();
            }
            todo.extend(target.split('/').rev());
        }
        let key = at.join("/");
        if self.is_dir(&key) {
            return Err(refused(format!("is '{key}/', a directory")));
        }
        Err(Unresolved::Missing(match links.last() {
            None => format!("{who} is missing"),
            Some(l) => format!(
                "{who} is missing: link '{l}' leads to '{key}', which is not in the archive"
            ),
        }))
    }
}

/// `'a' -> 'b' -> 'c'`.
fn quoted_chain(links: &[String]) -> String {
    links
        .iter()
        .map(|l| format!("'{l}'"))
        .collect::<Vec<_>>()
        .join(" -> ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::oci::read_docker_archive;
    use serde_json::Value;

    /// An entry of a test archive: a file's bytes, a directory, or a symbolic or hard link's target.
    #[derive(Clone, Copy)]
    enum E<'a> {
        File(&'a [u8]),
        Dir,
        Sym(&'a str),
        Hard(&'a str),
    }

    /// Writes a tar of `entries`, names and link targets as given (`..` and `/` included).
    fn archive(dir: &Path, entries: &[(&str, E<'_>)]) -> PathBuf {
        let path = dir.join("archive.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
        for (name, e) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            let (kind, data, target): (_, &[u8], &str) = match e {
                E::File(data) => (tar::EntryType::Regular, data, ""),
                E::Dir => (tar::EntryType::Directory, b"", ""),
                E::Sym(t) => (tar::EntryType::Symlink, b"", t),
                E::Hard(t) => (tar::EntryType::Link, b"", t),
            };
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            gnu.linkname[..target.len()].copy_from_slice(target.as_bytes());
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.finish().unwrap();
        path
    }

    /// manifest.json for images with the given layer names (config `c.json`).
    fn manifest(images: &[&[&str]]) -> Vec<u8> {
        let list: Vec<Value> = images
            .iter()
            .map(|layers| serde_json::json!({"Config": "c.json", "Layers": layers}))
            .collect();
        serde_json::to_vec(&list).unwrap()
    }

    /// The error reading an archive of one image whose only layer is `layer`.
    fn refusal(layer: &str, entries: &[(&str, E<'_>)]) -> String {
        let t = tempfile::tempdir().unwrap();
        let m = manifest(&[&[layer]]);
        let mut all = vec![("manifest.json", E::File(&m)), ("c.json", E::File(b"{}"))];
        all.extend_from_slice(entries);
        read_docker_archive(&archive(t.path(), &all)).unwrap_err()
    }

    #[test]
    fn layers_named_through_links_are_the_entries_the_links_lead_to() {
        let t = tempfile::tempdir().unwrap();
        let m = manifest(&[
            &["a/layer.tar"],
            &[
                "b/layer.tar",
                "c/layer.tar",
                "d/layer.tar",
                "./e//f/../layer.tar",
            ],
        ]);
        let path = archive(
            t.path(),
            &[
                ("manifest.json", E::File(&m)),
                ("c.json", E::File(b"{}")),
                ("a/", E::Dir),
                ("a/layer.tar", E::File(b"the layer")),
                // As `docker save` writes a layer shared with an earlier image.
                ("b/layer.tar", E::Sym("../a/layer.tar")),
                // As tar writes a second name of the same file: relative to the root.
                ("./c/layer.tar", E::Hard("./a/layer.tar")),
                // A link to the directory, and a chain through it.
                ("d", E::Sym("a")),
                ("e/layer.tar", E::Sym("../d/layer.tar")),
            ],
        );
        let images = read_docker_archive(&path).unwrap();
        let want = images[0].layers[0].clone();
        assert_eq!(images[1].layers.len(), 4);
        for l in &images[1].layers {
            assert_eq!(l.digest, want.digest);
            assert_eq!(l.size, 9);
            assert_eq!(l.source.read_all().unwrap(), b"the layer");
        }
    }

    #[test]
    fn link_loops_are_refused_naming_the_entry() {
        assert_eq!(
            refusal(
                "x/layer.tar",
                &[
                    ("x/layer.tar", E::Sym("../y/layer.tar")),
                    ("y/layer.tar", E::Hard("x/layer.tar")),
                ]
            ),
            "entry 'x/layer.tar' named by manifest.json is a link loop: 'x/layer.tar' -> \
             'y/layer.tar' -> 'x/layer.tar'"
        );
        assert_eq!(
            refusal("l", &[("l", E::Sym("l"))]),
            "entry 'l' named by manifest.json is a link loop: 'l' -> 'l'"
        );
        // A link into itself never comes back to the same state, but it does not end either.
        let e = refusal("d/layer.tar", &[("d", E::Sym("d/d"))]);
        assert!(
            e.starts_with("entry 'd/layer.tar' named by manifest.json goes through more than 40 links: 'd' -> 'd' ->"),
            "{e}"
        );
        // manifest.json may be a link too (go-containerregistry's cycle test).
        let t = tempfile::tempdir().unwrap();
        let path = archive(
            t.path(),
            &[
                ("manifest.json", E::Sym("config.json")),
                ("config.json", E::Sym("manifest.json")),
            ],
        );
        assert_eq!(
            read_docker_archive(&path).unwrap_err(),
            "'manifest.json' is a link loop: 'manifest.json' -> 'config.json' -> 'manifest.json'"
        );
    }

    #[test]
    fn links_and_names_that_leave_the_archive_are_refused() {
        let file = E::File(b"x");
        assert_eq!(
            refusal(
                "a/layer.tar",
                &[
                    ("a/layer.tar", E::Sym("../../etc/passwd")),
                    ("etc/passwd", file)
                ]
            ),
            "entry 'a/layer.tar' named by manifest.json leaves the archive: link 'a/layer.tar' \
             points to '../../etc/passwd'"
        );
        assert_eq!(
            refusal("a/layer.tar", &[("a/layer.tar", E::Sym("/etc/passwd"))]),
            "entry 'a/layer.tar' named by manifest.json leaves the archive: link 'a/layer.tar' \
             points to '/etc/passwd'"
        );
        assert_eq!(
            refusal("a/layer.tar", &[("a/layer.tar", E::Hard("../layer.tar"))]),
            "entry 'a/layer.tar' named by manifest.json leaves the archive: link 'a/layer.tar' \
             points to '../layer.tar'"
        );
        assert_eq!(
            refusal("../layer.tar", &[]),
            "entry '../layer.tar' named by manifest.json is outside the archive"
        );
        assert_eq!(
            refusal("/etc/passwd", &[]),
            "entry '/etc/passwd' named by manifest.json is outside the archive"
        );
        // An entry stored under a climbing path cannot be named at all.
        assert_eq!(
            refusal("x/../layer.tar", &[("../layer.tar", E::File(b"x"))]),
            "entry 'x/../layer.tar' named by manifest.json is missing"
        );
    }

    #[test]
    fn missing_targets_directories_and_files_used_as_directories_are_refused() {
        assert_eq!(
            refusal("a/layer.tar", &[]),
            "entry 'a/layer.tar' named by manifest.json is missing"
        );
        assert_eq!(
            refusal("a/layer.tar", &[("a/layer.tar", E::Sym("../b/layer.tar"))]),
            "entry 'a/layer.tar' named by manifest.json is missing: link 'a/layer.tar' leads to \
             'b/layer.tar', which is not in the archive"
        );
        assert_eq!(
            refusal("a/layer.tar", &[("a/layer.tar", E::Sym("."))]),
            "entry 'a/layer.tar' named by manifest.json is 'a/', a directory"
        );
        assert_eq!(
            refusal("a/layer.tar", &[("a", E::File(b"x"))]),
            "entry 'a/layer.tar' named by manifest.json goes through 'a', which is not a directory"
        );
    }

    fn corpus() -> Option<PathBuf> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
        if p.is_dir() {
            Some(p)
        } else {
            eprintln!("skipping: third-party corpus not found at {}", p.display());
            None
        }
    }

    #[test]
    fn corpus_archives_read_and_test_link_gets_its_linked_layer() {
        let Some(c) = corpus() else { return };
        let dir = c.join("images/go-containerregistry/pkg/v1/tarball/testdata");
        let mut read = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if let Ok(images) = read_docker_archive(&path) {
                read.push(path.file_name().unwrap().to_string_lossy().into_owned());
                if path.ends_with("test_link.tar") {
                    // go-containerregistry's TestLayerLink: test_image_3's first layer, a symbolic link,
                    // reads as test_image_1's layer.
                    assert_eq!(images[1].name, "bazel/v1/tarball:test_image_3");
                    let (shared, own) = (&images[0].layers[0], &images[1].layers[0]);
                    assert_eq!(
                        own.digest,
                        "sha256:8897395fd26dc44ad0e2a834335b33198cb41ac4d98dfddf58eced3853fa7b17"
                    );
                    assert_eq!(own.digest, shared.digest);
                    assert_eq!(own.size, 10240);
                }
            }
        }
        assert!(read.iter().any(|n| n == "test_link.tar"), "{read:?}");
        assert!(read.len() >= 5, "{read:?}");
    }
}
