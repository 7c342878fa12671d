//! The tamper-evident audit log: append-only events, each hashing the one before it under the site profile's
//! digest. `stella audit verify` recomputes the chain and names the first event that was edited, removed or
//! moved.

use crate::store::{Batch, MetaStore, StoreError, Tree};
use crypto_profiles::Profile;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When (RFC 3339 UTC).
    pub time: String,
    /// What (`site-init`, `kit-imported`, `kit-rejected`, `import-forced`, ...).
    pub kind: String,
    /// Who or what did it (`cli:root`, `watch`, a console user).
    pub actor: String,
    /// Details.
    pub data: serde_json::Value,
    /// Digest algorithm of the chain.
    pub alg: String,
    /// Hash of the previous event (hex; empty for the first).
    pub prev: String,
    /// Hash of this event over every field above.
    pub hash: String,
}

/// The chain head.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Last sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// A broken chain.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain is broken at an event.
    #[error("audit chain broken at event {seq}: {reason}")]
    Broken {
        /// The first bad event.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The head lives in the audit tree itself (a record tree), under a key no event has.
const HEAD_KEY: &[u8] = b"head";

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn event_hash(profile: &Profile, e: &AuditEvent) -> String {
    // serde_json::Value objects are sorted maps, so this is a canonical encoding of the fields.
    let body = serde_json::json!({
        "seq": e.seq, "time": e.time, "kind": e.kind, "actor": e.actor, "data": e.data, "alg": e.alg, "prev": e.prev,
    });
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    profile.digest(&bytes).map(|d| d.hex()).unwrap_or_default()
}

/// Appends events to a batch, tracking the head across several appends in one transaction.
#[derive(Debug)]
pub struct AuditWriter {
    profile: Profile,
    head: Head,
}

impl AuditWriter {
    /// Starts from the stored head.
    pub fn new(store: &impl MetaStore, profile: &Profile) -> Result<AuditWriter, StoreError> {
        let head = store
            .get_json::<Head>(Tree::Audit, HEAD_KEY)?
            .unwrap_or_default();
        Ok(AuditWriter {
            profile: profile.clone(),
            head,
        })
    }

    /// Adds an event and the new head to `batch`.
    pub fn append(
        &mut self,
        batch: &mut Batch,
        time: &str,
        kind: &str,
        actor: &str,
        data: serde_json::Value,
    ) -> AuditEvent {
        let mut e = AuditEvent {
            seq: self.head.seq + 1,
            time: time.to_owned(),
            kind: kind.to_owned(),
            actor: actor.to_owned(),
            data,
            alg: self.profile.digest_alg().name().to_owned(),
            prev: self.head.hash.clone(),
            hash: String::new(),
        };
        e.hash = event_hash(&self.profile, &e);
        batch.put_json(Tree::Audit, key(e.seq), &e);
        self.head = Head {
            seq: e.seq,
            hash: e.hash.clone(),
        };
        batch.put_json(Tree::Audit, HEAD_KEY, &self.head);
        e
    }
}

/// Every event, in order.
pub fn events(store: &impl MetaStore) -> Result<Vec<AuditEvent>, AuditError> {
    let mut out = Vec::new();
    for (k, v) in store
        .scan(Tree::Audit, b"")?
        .into_iter()
        .filter(|(k, _)| k.len() == 8)
    {
        let e: AuditEvent = serde_json::from_slice(&v).map_err(|err| AuditError::Broken {
            seq: k.as_slice().try_into().map(u64::from_be_bytes).unwrap_or(0),
            reason: format!("unreadable event: {err}"),
        })?;
        out.push(e);
    }
    Ok(out)
}

/// Recomputes the chain; returns the number of events.
pub fn verify(store: &impl MetaStore, profile: &Profile) -> Result<u64, AuditError> {
    let head = store
        .get_json::<Head>(Tree::Audit, HEAD_KEY)?
        .unwrap_or_default();
    let mut prev = String::new();
    let mut expected_seq = 1;
    for (k, v) in store
        .scan(Tree::Audit, b"")?
        .into_iter()
        .filter(|(k, _)| k.len() == 8)
    {
        let key_seq = k.as_slice().try_into().map(u64::from_be_bytes).unwrap_or(0);
        let e: AuditEvent = serde_json::from_slice(&v).map_err(|err| AuditError::Broken {
            seq: key_seq,
            reason: format!("unreadable event: {err}"),
        })?;
        if e.seq != key_seq || e.seq != expected_seq {
            return Err(AuditError::Broken {
                seq: expected_seq,
                reason: format!(
                    "expected event {expected_seq}, found {} (removed or reordered)",
                    e.seq
                ),
            });
        }
        if e.prev != prev {
            return Err(AuditError::Broken {
                seq: e.seq,
                reason: "does not link to the event before it".into(),
            });
        }
        if e.alg != profile.digest_alg().name() {
            return Err(AuditError::Broken {
                seq: e.seq,
                reason: format!(
                    "hashed with '{}', the site profile uses '{}'",
                    e.alg,
                    profile.digest_alg()
                ),
            });
        }
        if event_hash(profile, &e) != e.hash {
            return Err(AuditError::Broken {
                seq: e.seq,
                reason: "content does not match its hash (edited)".into(),
            });
        }
        prev = e.hash;
        expected_seq += 1;
    }
    if head.seq != expected_seq - 1 || head.hash != prev {
        return Err(AuditError::Broken {
            seq: expected_seq,
            reason: format!(
                "head names event {} but the chain ends at {} (truncated)",
                head.seq,
                expected_seq - 1
            ),
        });
    }
    Ok(expected_seq - 1)
}
