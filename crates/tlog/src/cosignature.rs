//! C2SP tlog-cosignature, Ed25519 type (`0x04`): a witness's timestamped signature of a checkpoint.
//!
//! The signature line carries `key ID ‖ u64 big-endian timestamp ‖ 64-byte Ed25519 signature`;
//! the signed message is
//!
//! ```text
//! cosignature/v1
//! time <POSIX seconds>
//! <the whole checkpoint note text, extension lines included>
//! ```
//!
//! Verification is done by [`crate::Note::verify`] with a [`crate::VerifierKey`] of kind
//! [`crate::SignatureKind::CosignatureV1`]; the verified timestamp is returned with it.

use crate::checkpoint::Checkpoint;
use crate::note::{KeyError, NoteSignature, SignatureKind, SignerKey, VerifierKey};

/// Cosignature timestamps must not exceed 2^63 - 1.
pub const TIMESTAMP_MAX_SECONDS: u64 = i64::MAX as u64;

/// The message a v1 cosignature signs.
pub fn signed_message(note_text: &str, timestamp_seconds: u64) -> String {
    format!("cosignature/v1\ntime {timestamp_seconds}\n{note_text}")
}

/// A cosignature that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    #[error("timestamp {timestamp_seconds} exceeds 2^63 - 1")]
    TimestampTooLarge { timestamp_seconds: u64 },
}

/// An Ed25519 cosigner (signature type 0x04), as run by a witness. It states that, as of the
/// timestamp, the checkpoint is the largest consistent one it has seen for the origin: the caller
/// must have checked consistency before calling [`Cosigner::cosign`].
#[derive(Clone, Debug)]
pub struct Cosigner {
    key: SignerKey,
}

impl Cosigner {
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Cosigner, KeyError> {
        Ok(Cosigner { key: SignerKey::from_seed(name, SignatureKind::CosignatureV1, seed)? })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x04 ‖ seed)>`.
    pub fn parse(text: &str) -> Result<Cosigner, KeyError> {
        Ok(Cosigner { key: SignerKey::parse(text, SignatureKind::CosignatureV1)? })
    }

    pub fn to_secret_text(&self) -> String {
        self.key.to_secret_text()
    }

    /// The vkey (type 0x04) that verifies this cosigner's signatures.
    pub fn verifier_key(&self) -> VerifierKey {
        self.key.verifier_key()
    }

    pub fn name(&self) -> &str {
        &self.key.name
    }

    pub fn key_id(&self) -> u32 {
        self.key.key_id
    }

    /// Cosigns a checkpoint at `timestamp_seconds` (POSIX seconds).
    pub fn cosign(&self, checkpoint: &Checkpoint, timestamp_seconds: u64) -> Result<NoteSignature, CosignatureError> {
        if timestamp_seconds > TIMESTAMP_MAX_SECONDS {
            return Err(CosignatureError::TimestampTooLarge { timestamp_seconds });
        }
        let message = signed_message(&checkpoint.to_text(), timestamp_seconds);
        let mut signature = timestamp_seconds.to_be_bytes().to_vec();
        signature.extend_from_slice(&self.key.sign_message(message.as_bytes()));
        Ok(NoteSignature { name: self.key.name.clone(), key_id: self.key.key_id, signature })
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signature, VerifyingKey};

    use super::*;
    use crate::hash::leaf_hash;
    use crate::note::{Note, NoteError, NoteSigner};

    fn checkpoint() -> Checkpoint {
        Checkpoint::with_extension_lines("example.com/behind-the-sofa", 20852163, leaf_hash(b"x"), vec!["ext".into()])
            .unwrap()
    }

    #[test]
    fn signature_layout_is_key_id_timestamp_signature() {
        let witness = Cosigner::from_seed("witness.example.com/w1", [4; 32]).unwrap();
        let signature = witness.cosign(&checkpoint(), 1679315147).unwrap();
        assert_eq!(
            signature.key_id,
            crate::note::key_id("witness.example.com/w1", 0x04, witness.verifier_key().public_key())
        );
        assert_eq!(signature.signature.len(), 8 + 64);
        assert_eq!(signature.signature[..8], 1679315147u64.to_be_bytes());
        // The signed message is the header, the time line and the whole note text, extension lines included.
        let message = "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n".to_owned()
            + &leaf_hash(b"x").to_base64()
            + "\next\n";
        let public_key = VerifyingKey::from_bytes(witness.verifier_key().public_key()).unwrap();
        let ed25519_signature = Signature::from_slice(&signature.signature[8..]).unwrap();
        assert!(public_key.verify_strict(message.as_bytes(), &ed25519_signature).is_ok());
    }

    #[test]
    fn cosignatures_verify_through_notes_and_report_their_timestamp() {
        let log = NoteSigner::from_seed("example.com/behind-the-sofa", [1; 32]).unwrap();
        let witness = Cosigner::from_seed("witness.example.com/w1", [4; 32]).unwrap();
        let mut note = checkpoint().sign(&log);
        note.add_signature(witness.cosign(&checkpoint(), 1679315147).unwrap()).unwrap();
        let verified = Note::parse(note.to_string().as_bytes()).unwrap().verify(&[witness.verifier_key()]).unwrap();
        assert_eq!(verified[0].timestamp_seconds, Some(1679315147));

        // Changing the timestamp breaks the signature.
        let mut tampered = note.clone();
        let mut signatures = tampered.signatures().to_vec();
        signatures[1].signature[7] ^= 1;
        tampered = Note::new(tampered.text()).unwrap();
        for signature in signatures {
            tampered.add_signature(signature).unwrap();
        }
        assert!(matches!(tampered.verify(&[witness.verifier_key()]), Err(NoteError::InvalidSignature { .. })));
    }

    #[test]
    fn timestamps_are_limited_to_63_bits() {
        let witness = Cosigner::from_seed("w", [4; 32]).unwrap();
        assert!(witness.cosign(&checkpoint(), TIMESTAMP_MAX_SECONDS).is_ok());
        assert_eq!(
            witness.cosign(&checkpoint(), TIMESTAMP_MAX_SECONDS + 1),
            Err(CosignatureError::TimestampTooLarge { timestamp_seconds: TIMESTAMP_MAX_SECONDS + 1 })
        );
    }

    #[test]
    fn the_same_key_as_plain_ed25519_is_another_key() {
        // A cosigner key (type 0x04) and a note key (type 0x01) from the same seed and name have different IDs.
        let witness = Cosigner::from_seed("w", [4; 32]).unwrap();
        let plain = NoteSigner::from_seed("w", [4; 32]).unwrap();
        assert_ne!(witness.key_id(), plain.key_id());
        assert_eq!(witness.verifier_key().public_key(), plain.verifier_key().public_key());
        let parsed = Cosigner::parse(&witness.to_secret_text()).unwrap();
        assert_eq!(parsed.verifier_key(), witness.verifier_key());
        assert!(parsed.verifier_key().to_string().starts_with(&format!("w+{:08x}+B", witness.key_id())));
    }
}
