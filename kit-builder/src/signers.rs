//! Kit-signer sets and their rotation (TUF-style): a new set is accepted by a site only when a threshold of
//! its current set signed it under the site's profile. A kit carries the signed set as a trust payload
//! whose name ends in [`SIGNER_SET_SUFFIX`].

use crypto_profiles::dsse::Envelope;
use crypto_profiles::{PublicKey, Signer};
use serde::{Deserialize, Serialize};

/// The payload name suffix of a signed kit-signer set.
pub const SIGNER_SET_SUFFIX: &str = "kit-signers.dsse.json";
/// DSSE payload type of a kit-signer set.
pub const SIGNER_SET_PAYLOAD_TYPE: &str = "application/vnd.stella.kit-signers+json";

/// A kit-signer set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerSet {
    /// Monotonic version; a rotation must raise it.
    pub version: u64,
    /// How many of the keys must sign a kit.
    pub threshold: usize,
    /// SPKI PEM public keys.
    pub keys: Vec<String>,
}

impl SignerSet {
    /// A set from public keys.
    pub fn new(version: u64, threshold: usize, keys: &[PublicKey]) -> SignerSet {
        SignerSet {
            version,
            threshold,
            keys: keys.iter().map(|k| k.to_pem()).collect(),
        }
    }

    /// Parsed keys.
    pub fn public_keys(&self) -> Result<Vec<PublicKey>, crypto_profiles::KeyError> {
        self.keys
            .iter()
            .map(|k| PublicKey::from_pem(k.as_bytes()))
            .collect()
    }

    /// The set signed by the current signers, as a DSSE envelope.
    pub fn sign(
        &self,
        signers: &[&dyn Signer],
    ) -> Result<Envelope, crypto_profiles::dsse::DsseError> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        Envelope::sign(SIGNER_SET_PAYLOAD_TYPE, &bytes, signers)
    }
}
