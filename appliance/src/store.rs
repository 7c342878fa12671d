//! The appliance store: metadata in named sled trees (one transaction per multi-record change) and payloads
//! in a content-addressed directory written by temp file, fsync and rename.
//!
//! Architecture invariant: this is the only module that names sled. Everything else goes through
//! [`MetaStore`] and [`Cas`], so moving metadata to another engine is one contained change.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The schema version this binary writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The named trees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tree {
    /// Schema version, clock high-water mark, audit head, site settings.
    Meta,
    /// Imported kits by id.
    Kits,
    /// Channel high-water marks.
    Channels,
    /// Blob references: `<alg>/<hex>` → kits that carried it.
    Blobs,
    /// Feed documents by payload name → their digest and kit.
    Feeds,
    /// Images by manifest digest.
    Images,
    /// The trusted kit-signer set and its history.
    Trust,
    /// Signed import receipts, by sequence number.
    Receipts,
    /// The hash-chained audit log, by sequence number.
    Audit,
    /// Rejected imports and why.
    Quarantine,
    /// Feed observations: `head|<source>|<id>` → current revision, `rev|<source>|<id>|<n>` → statement.
    Observations,
    /// Alias index: `<ID>|<source>|<id>` for every id a statement names.
    Aliases,
    /// Package index: `<purl base or ecosystem/name>|<source>|<id>`.
    Packages,
    /// Layer analysis results by layer digest (the per-layer cache).
    Layers,
    /// Scanned images' inventories by manifest digest.
    Sboms,
    /// Current findings: `<image digest>|<vulnerability>|<purl>`.
    Findings,
    /// Finding changes: `<image digest>|<seq>` → new / resolved / changed, with the kit that caused it.
    FindingEvents,
    /// Console users by name (argon2id hash, role).
    Users,
    /// Console sessions by the SHA-256 of their token.
    Sessions,
    /// API tokens by the SHA-256 of the token.
    Tokens,
}

impl Tree {
    /// Every tree.
    pub const ALL: [Tree; 20] = [
        Tree::Meta,
        Tree::Kits,
        Tree::Channels,
        Tree::Blobs,
        Tree::Feeds,
        Tree::Images,
        Tree::Trust,
        Tree::Receipts,
        Tree::Audit,
        Tree::Quarantine,
        Tree::Observations,
        Tree::Aliases,
        Tree::Packages,
        Tree::Layers,
        Tree::Sboms,
        Tree::Findings,
        Tree::FindingEvents,
        Tree::Users,
        Tree::Sessions,
        Tree::Tokens,
    ];

    /// The sled tree name.
    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Kits => "kits",
            Tree::Channels => "channels",
            Tree::Blobs => "blobs",
            Tree::Feeds => "feeds",
            Tree::Images => "images",
            Tree::Trust => "trust",
            Tree::Receipts => "receipts",
            Tree::Audit => "audit",
            Tree::Quarantine => "quarantine",
            Tree::Observations => "observations",
            Tree::Aliases => "aliases",
            Tree::Packages => "packages",
            Tree::Layers => "layers",
            Tree::Sboms => "sboms",
            Tree::Findings => "findings",
            Tree::FindingEvents => "finding-events",
            Tree::Users => "users",
            Tree::Sessions => "sessions",
            Tree::Tokens => "tokens",
        }
    }

    /// Trees that record what happened (receipts, audit, quarantine) rather than what the site knows. A
    /// rejected import adds to these and changes nothing else.
    pub fn is_record(self) -> bool {
        matches!(self, Tree::Receipts | Tree::Audit | Tree::Quarantine)
    }

    /// Trees holding credentials (password hashes, session and token digests): never dumped.
    pub fn is_secret(self) -> bool {
        matches!(self, Tree::Users | Tree::Sessions | Tree::Tokens)
    }
}

/// A store failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened or written.
    #[error("store {path}: {reason}")]
    Db {
        /// The data directory.
        path: String,
        /// Why.
        reason: String,
    },
    /// The store was written by a newer binary.
    #[error("store schema {found} is newer than this binary supports ({supported}); upgrade the appliance")]
    SchemaTooNew {
        /// Found.
        found: u32,
        /// Supported.
        supported: u32,
    },
    /// A filesystem error in the blob directory.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A stored record is not what it should be.
    #[error("corrupt record in tree '{tree}': {reason}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// Why.
        reason: String,
    },
}

/// Key/value pairs of one tree, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A set of writes applied in one transaction.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    ops: Vec<(Tree, Vec<u8>, Option<Vec<u8>>)>,
}

impl Batch {
    /// Sets a key.
    pub fn put(
        &mut self,
        tree: Tree,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> &mut Self {
        self.ops.push((tree, key.into(), Some(value.into())));
        self
    }

    /// Sets a key to a JSON value.
    pub fn put_json<T: Serialize>(
        &mut self,
        tree: Tree,
        key: impl Into<Vec<u8>>,
        value: &T,
    ) -> &mut Self {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.put(tree, key, bytes)
    }

    /// Removes a key.
    pub fn remove(&mut self, tree: Tree, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push((tree, key.into(), None));
        self
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The metadata store interface the rest of the appliance uses.
pub trait MetaStore {
    /// One value.
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every key/value with a prefix, in key order.
    fn scan(&self, tree: Tree, prefix: &[u8]) -> Result<Entries, StoreError>;
    /// Applies a batch atomically and durably: all of it or none of it, flushed before returning.
    fn apply(&self, batch: Batch) -> Result<(), StoreError>;
    /// At most `limit` key/values with a prefix whose key is above `after` (or from the start), in key order:
    /// one page of a listing, without reading the rest of the tree.
    fn page(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, StoreError>;
    /// The number of keys with a prefix (reads keys and values; use for small or cached counts).
    fn count(&self, tree: Tree, prefix: &[u8]) -> Result<usize, StoreError>;

    /// One JSON value.
    fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        tree: Tree,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.get(tree, key)? {
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    tree: tree.name(),
                    reason: format!("{}: {e}", String::from_utf8_lossy(key)),
                }),
            None => Ok(None),
        }
    }
}

/// The sled-backed store plus its blob directory.
pub struct Store {
    root: PathBuf,
    db: sled::Db,
    trees: Vec<sled::Tree>,
    cas: Cas,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn db_err(root: &Path) -> impl Fn(sled::Error) -> StoreError + '_ {
    move |e| StoreError::Db {
        path: root.display().to_string(),
        reason: e.to_string(),
    }
}

impl Store {
    /// Opens (creating if needed) the store under `root`, checks the schema and recovers from any import
    /// interrupted by a crash.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(root).map_err(|source| StoreError::Io {
            path: root.display().to_string(),
            source,
        })?;
        let db = sled::Config::new()
            .path(root.join("db"))
            .mode(sled::Mode::HighThroughput)
            // sled's default page cache is 1 GiB; an appliance shares its memory with scans and the console.
            .cache_capacity(64 << 20)
            .open()
            .map_err(|e| StoreError::Db {
                path: root.display().to_string(),
                reason: format!("{e} (is another stella process using this data directory?)"),
            })?;
        let mut trees = Vec::with_capacity(Tree::ALL.len());
        for t in Tree::ALL {
            trees.push(db.open_tree(t.name()).map_err(db_err(root))?);
        }
        let cas = Cas::new(root.join("blobs"), root.join("staging"))?;
        let store = Store {
            root: root.to_owned(),
            db,
            trees,
            cas,
        };
        store.migrate()?;
        Ok(store)
    }

    fn tree(&self, t: Tree) -> &sled::Tree {
        &self.trees[Tree::ALL.iter().position(|x| *x == t).unwrap_or(0)]
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let found: Option<u32> = self.get_json(Tree::Meta, b"schema_version")?;
        match found {
            None => {
                let mut b = Batch::default();
                b.put_json(Tree::Meta, "schema_version", &SCHEMA_VERSION);
                self.apply(b)
            }
            Some(v) if v > SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
                found: v,
                supported: SCHEMA_VERSION,
            }),
            // Migrations from older schemas run here, one version at a time, each in one transaction.
            Some(_) => Ok(()),
        }
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The blob directory.
    pub fn cas(&self) -> &Cas {
        &self.cas
    }

    /// Every tree's contents, for fsck and for tests that prove an import changed nothing.
    pub fn dump(&self) -> Result<BTreeMap<Tree, Entries>, StoreError> {
        let mut out = BTreeMap::new();
        for t in Tree::ALL {
            out.insert(t, self.scan(t, b"")?);
        }
        Ok(out)
    }
}

impl MetaStore for Store {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree(tree)
            .get(key)
            .map_err(db_err(&self.root))?
            .map(|v| v.to_vec()))
    }

    fn page(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, StoreError> {
        use std::ops::Bound;
        let t = self.tree(tree);
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        t.range::<Vec<u8>, _>((start, Bound::Unbounded))
            .take_while(|r| r.as_ref().map_or(true, |(k, _)| k.starts_with(prefix)))
            .take(limit)
            .map(|r| {
                r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(db_err(&self.root))
            })
            .collect()
    }

    fn count(&self, tree: Tree, prefix: &[u8]) -> Result<usize, StoreError> {
        let mut n = 0;
        for r in self.tree(tree).scan_prefix(prefix).keys() {
            r.map_err(db_err(&self.root))?;
            n += 1;
        }
        Ok(n)
    }

    fn scan(&self, tree: Tree, prefix: &[u8]) -> Result<Entries, StoreError> {
        self.tree(tree)
            .scan_prefix(prefix)
            .map(|r| {
                r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(db_err(&self.root))
            })
            .collect()
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        use sled::transaction::{TransactionError, Transactional};
        if batch.is_empty() {
            return Ok(());
        }
        let trees: Vec<&sled::Tree> = self.trees.iter().collect();
        let res: Result<(), TransactionError<()>> = trees.as_slice().transaction(|tx| {
            for (t, k, v) in &batch.ops {
                let i = Tree::ALL.iter().position(|x| x == t).unwrap_or(0);
                match v {
                    Some(v) => {
                        tx[i].insert(k.as_slice(), v.as_slice())?;
                    }
                    None => {
                        tx[i].remove(k.as_slice())?;
                    }
                }
            }
            Ok(())
        });
        res.map_err(|e| StoreError::Db {
            path: self.root.display().to_string(),
            reason: format!("transaction failed: {e:?}"),
        })?;
        self.db.flush().map_err(db_err(&self.root))?;
        Ok(())
    }
}

/// The content-addressed blob directory: `blobs/<alg>/<hex>`.
#[derive(Debug, Clone)]
pub struct Cas {
    root: PathBuf,
    staging: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A blob being written; becomes visible only on [`Cas::commit`].
#[derive(Debug)]
pub struct Staged {
    file: tempfile::NamedTempFile,
}

impl Write for Staged {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Cas {
    fn new(root: PathBuf, staging: PathBuf) -> Result<Cas, StoreError> {
        fs::create_dir_all(&root).map_err(io_err(&root))?;
        // Staged files of an interrupted import are garbage: no metadata can name them.
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
        }
        fs::create_dir_all(&staging).map_err(io_err(&staging))?;
        Ok(Cas { root, staging })
    }

    /// The path of a blob.
    pub fn path(&self, alg: &str, hex: &str) -> PathBuf {
        self.root.join(alg).join(hex)
    }

    /// Whether a blob is present.
    pub fn has(&self, alg: &str, hex: &str) -> bool {
        self.path(alg, hex).is_file()
    }

    /// A new staging file.
    pub fn stage(&self) -> Result<Staged, StoreError> {
        let file = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&self.staging)
            .map_err(io_err(&self.staging))?;
        Ok(Staged { file })
    }

    /// Makes a staged blob durable in the staging directory (still invisible); its file handle is closed so
    /// that many can wait for [`Cas::publish`]. Dropping the result deletes the file.
    pub fn seal(&self, staged: Staged) -> Result<tempfile::TempPath, StoreError> {
        staged
            .file
            .as_file()
            .sync_all()
            .map_err(io_err(&self.staging))?;
        Ok(staged.file.into_temp_path())
    }

    /// Moves sealed blobs into place under their digests, then syncs the directories. Blobs already present
    /// are left as they are.
    pub fn publish(
        &self,
        sealed: Vec<(String, String, tempfile::TempPath)>,
    ) -> Result<(), StoreError> {
        let mut dirs = std::collections::BTreeSet::new();
        for (alg, hex, path) in sealed {
            let dest = self.path(&alg, &hex);
            if dest.is_file() {
                continue;
            }
            let dir = self.root.join(&alg);
            if dirs.insert(dir.clone()) {
                fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            }
            path.persist(&dest).map_err(|e| StoreError::Io {
                path: dest.display().to_string(),
                source: e.error,
            })?;
        }
        for dir in dirs {
            fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(&dir))?;
        }
        Ok(())
    }

    /// Removes a blob (used to roll back an import's new blobs).
    pub fn remove(&self, alg: &str, hex: &str) -> Result<(), StoreError> {
        let p = self.path(alg, hex);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io {
                path: p.display().to_string(),
                source: e,
            }),
        }
    }

    /// Every blob as `(alg, hex)`, sorted.
    pub fn list(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for alg in fs::read_dir(&self.root).map_err(io_err(&self.root))? {
            let alg = alg.map_err(io_err(&self.root))?;
            let name = alg.file_name().to_string_lossy().into_owned();
            for f in fs::read_dir(alg.path()).map_err(io_err(&alg.path()))? {
                let f = f.map_err(io_err(&alg.path()))?;
                out.push((name.clone(), f.file_name().to_string_lossy().into_owned()));
            }
        }
        out.sort();
        Ok(out)
    }
}
