//! C2SP tlog-proof: an offline-verifiable proof that an entry is in a log.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! [extra <base64>]
//! index <decimal>
//! <base64 inclusion proof hash, leaf sibling first>...
//! <blank line>
//! <the signed checkpoint, verbatim>
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::checkpoint::{CheckpointError, CheckpointPolicy, VerifiedCheckpoint};
use crate::hash::{Hash, HashError};
use crate::merkle::{PROOF_HASHES_MAX, ProofError, verify_inclusion};
use crate::note::{NOTE_SIZE_MAX_BYTES, Note, NoteError};

/// First line of every proof bundle.
pub const PROOF_BUNDLE_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// Largest extra data accepted by [`ProofBundle::parse`].
pub const EXTRA_SIZE_MAX_BYTES: usize = 64 * 1024;
/// Largest proof bundle accepted by [`ProofBundle::parse`].
pub const PROOF_BUNDLE_SIZE_MAX_BYTES: usize = NOTE_SIZE_MAX_BYTES + 2 * EXTRA_SIZE_MAX_BYTES;

/// A tlog-proof: optional unauthenticated extra data, the entry's index, its inclusion proof,
/// and the signed checkpoint the proof leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofBundle {
    /// Opaque, unauthenticated: never trust it without checking it against the entry.
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub inclusion_proof: Vec<Hash>,
    pub checkpoint: Note,
}

/// A proof bundle that is malformed or does not verify.
#[derive(Debug, thiserror::Error)]
pub enum ProofBundleError {
    #[error("proof bundle is {size_bytes} bytes, the most accepted is {PROOF_BUNDLE_SIZE_MAX_BYTES}")]
    TooLarge { size_bytes: usize },
    #[error("proof bundle is not valid UTF-8")]
    NotUtf8,
    #[error("proof bundle does not start with the line {PROOF_BUNDLE_HEADER}")]
    MissingHeader,
    #[error("proof bundle extra data is not valid base64 of at most {EXTRA_SIZE_MAX_BYTES} bytes")]
    InvalidExtra,
    #[error("proof bundle has no valid 'index <decimal>' line")]
    InvalidIndex,
    #[error("inclusion proof line {position} is not a base64 hash")]
    InvalidProofHash { position: usize, source: HashError },
    #[error("inclusion proof has more than {PROOF_HASHES_MAX} hashes")]
    TooManyProofHashes,
    #[error("proof bundle has no blank line before the checkpoint")]
    MissingBlankLine,
    #[error("proof bundle checkpoint is not a valid signed note")]
    Note(#[source] NoteError),
    #[error("proof bundle checkpoint is not accepted")]
    Checkpoint(#[from] CheckpointError),
    #[error("inclusion proof does not verify against the checkpoint")]
    Inclusion(#[from] ProofError),
}

fn parse_canonical_decimal(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

impl ProofBundle {
    /// Parses a proof bundle. The checkpoint is parsed as a note, not yet verified.
    pub fn parse(bytes: &[u8]) -> Result<ProofBundle, ProofBundleError> {
        if bytes.len() > PROOF_BUNDLE_SIZE_MAX_BYTES {
            return Err(ProofBundleError::TooLarge { size_bytes: bytes.len() });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ProofBundleError::NotUtf8)?;
        let mut rest = text
            .strip_prefix(PROOF_BUNDLE_HEADER)
            .and_then(|rest| rest.strip_prefix('\n'))
            .ok_or(ProofBundleError::MissingHeader)?;
        let mut next_line = || -> Option<&str> {
            let (line, after) = rest.split_once('\n')?;
            rest = after;
            Some(line)
        };
        let mut line = next_line().ok_or(ProofBundleError::InvalidIndex)?;
        let extra = match line.strip_prefix("extra ") {
            Some(encoded) => {
                if encoded.len() > EXTRA_SIZE_MAX_BYTES.div_ceil(3) * 4 {
                    return Err(ProofBundleError::InvalidExtra);
                }
                let extra = BASE64.decode(encoded).map_err(|_| ProofBundleError::InvalidExtra)?;
                line = next_line().ok_or(ProofBundleError::InvalidIndex)?;
                Some(extra)
            }
            None => None,
        };
        let index =
            line.strip_prefix("index ").and_then(parse_canonical_decimal).ok_or(ProofBundleError::InvalidIndex)?;
        let mut inclusion_proof = Vec::new();
        loop {
            let line = next_line().ok_or(ProofBundleError::MissingBlankLine)?;
            if line.is_empty() {
                break;
            }
            if inclusion_proof.len() == PROOF_HASHES_MAX {
                return Err(ProofBundleError::TooManyProofHashes);
            }
            let hash = Hash::from_base64(line)
                .map_err(|source| ProofBundleError::InvalidProofHash { position: inclusion_proof.len(), source })?;
            inclusion_proof.push(hash);
        }
        let checkpoint = Note::parse(rest.as_bytes()).map_err(ProofBundleError::Note)?;
        Ok(ProofBundle { extra, index, inclusion_proof, checkpoint })
    }

    /// The proof bundle text.
    pub fn to_text(&self) -> String {
        self.to_string()
    }

    /// Verifies the proof for an entry whose leaf hash the caller computed (step 1 of the spec):
    /// the checkpoint under `policy` (origin, log signature, witness quorum), then the inclusion
    /// of `leaf_hash` at `index` under the checkpoint's root hash.
    pub fn verify(&self, leaf_hash: &Hash, policy: &CheckpointPolicy) -> Result<VerifiedCheckpoint, ProofBundleError> {
        let verified = policy.verify_note(self.checkpoint.clone())?;
        verify_inclusion(
            leaf_hash,
            self.index,
            verified.checkpoint.size(),
            &self.inclusion_proof,
            verified.checkpoint.root_hash(),
        )?;
        Ok(verified)
    }
}

impl fmt::Display for ProofBundle {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(formatter, "{PROOF_BUNDLE_HEADER}")?;
        if let Some(extra) = &self.extra {
            writeln!(formatter, "extra {}", BASE64.encode(extra))?;
        }
        writeln!(formatter, "index {}", self.index)?;
        for hash in &self.inclusion_proof {
            writeln!(formatter, "{}", hash.to_base64())?;
        }
        writeln!(formatter)?;
        write!(formatter, "{}", self.checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::cosignature::Cosigner;
    use crate::memory::MemoryHashStore;
    use crate::merkle::inclusion_proof;
    use crate::note::NoteSigner;

    struct Fixture {
        store: MemoryHashStore,
        log: NoteSigner,
        witness: Cosigner,
    }

    fn fixture() -> Fixture {
        let mut store = MemoryHashStore::new();
        for index in 0..1000u32 {
            store.append_entry(format!("event {index}").as_bytes());
        }
        Fixture {
            store,
            log: NoteSigner::from_seed("keten.example/log", [1; 32]).unwrap(),
            witness: Cosigner::from_seed("witness.example", [2; 32]).unwrap(),
        }
    }

    fn bundle(fixture: &Fixture, index: u64, extra: Option<Vec<u8>>) -> ProofBundle {
        let size = fixture.store.size();
        let checkpoint = Checkpoint::new("keten.example/log", size, fixture.store.root_hash()).unwrap();
        let mut note = checkpoint.sign(&fixture.log);
        note.add_signature(fixture.witness.cosign(&checkpoint, 1_700_000_000).unwrap()).unwrap();
        ProofBundle {
            extra,
            index,
            inclusion_proof: inclusion_proof(index, size, &fixture.store).unwrap(),
            checkpoint: note,
        }
    }

    fn policy(fixture: &Fixture) -> CheckpointPolicy {
        CheckpointPolicy {
            origin: "keten.example/log".into(),
            log_key: fixture.log.verifier_key(),
            witness_keys: vec![fixture.witness.verifier_key()],
            witness_quorum: 1,
        }
    }

    #[test]
    fn bundles_round_trip_and_verify() {
        let fixture = fixture();
        for (index, extra) in [(0, None), (617, Some(b"salt".to_vec())), (999, Some(Vec::new()))] {
            let bundle = bundle(&fixture, index, extra);
            let text = bundle.to_text();
            let parsed = ProofBundle::parse(text.as_bytes()).unwrap();
            assert_eq!(parsed, bundle);
            assert_eq!(parsed.to_text(), text);
            let leaf = crate::hash::leaf_hash(format!("event {index}").as_bytes());
            let verified = parsed.verify(&leaf, &policy(&fixture)).unwrap();
            assert_eq!(verified.checkpoint.size(), 1000);
        }
    }

    #[test]
    fn layout_follows_the_spec() {
        let fixture = fixture();
        let text = bundle(&fixture, 5, Some(b"x".to_vec())).to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "c2sp.org/tlog-proof@v1");
        assert_eq!(lines[1], "extra eA==");
        assert_eq!(lines[2], "index 5");
        assert_eq!(lines[13], "");
        assert_eq!(lines[14], "keten.example/log");
        assert_eq!(lines[15], "1000");
    }

    #[test]
    fn bundles_for_other_entries_or_indexes_fail() {
        let fixture = fixture();
        let proof = bundle(&fixture, 617, None);
        let wrong_leaf = crate::hash::leaf_hash(b"event 618");
        assert!(matches!(
            proof.verify(&wrong_leaf, &policy(&fixture)),
            Err(ProofBundleError::Inclusion(ProofError::RootMismatch))
        ));
        let right_leaf = crate::hash::leaf_hash(b"event 617");
        let mut moved = proof.clone();
        moved.index = 616;
        assert!(matches!(moved.verify(&right_leaf, &policy(&fixture)), Err(ProofBundleError::Inclusion(_))));
        moved.index = 1000;
        assert!(matches!(
            moved.verify(&right_leaf, &policy(&fixture)),
            Err(ProofBundleError::Inclusion(ProofError::IndexOutOfRange { index: 1000, size: 1000 }))
        ));
        let mut stranger_policy = policy(&fixture);
        stranger_policy.log_key = NoteSigner::from_seed("keten.example/log", [3; 32]).unwrap().verifier_key();
        assert!(matches!(
            proof.verify(&right_leaf, &stranger_policy),
            Err(ProofBundleError::Checkpoint(CheckpointError::LogSignatureMissing { .. }))
        ));
    }

    fn check_parse_error(text: &str, expected: &str) {
        let error = ProofBundle::parse(text.as_bytes()).expect_err(text);
        assert!(format!("{error:?}").starts_with(expected), "{text:?}: {error:?}");
    }

    #[test]
    fn malformed_bundles_have_defined_errors() {
        let fixture = fixture();
        let good = bundle(&fixture, 3, None).to_text();
        let hash_line = good.lines().nth(2).unwrap();
        check_parse_error("", "MissingHeader");
        check_parse_error(&good.replacen("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2", 1), "MissingHeader");
        check_parse_error(&good.replacen("index 3", "index 03", 1), "InvalidIndex");
        check_parse_error(&good.replacen("index 3", "index -3", 1), "InvalidIndex");
        check_parse_error(&good.replacen("index 3", "extra !!\nindex 3", 1), "InvalidExtra");
        check_parse_error(&good.replacen("index 3", "extra AA==", 1), "InvalidIndex");
        check_parse_error(&good.replacen(hash_line, "AAAA", 1), "InvalidProofHash { position: 0");
        // Without the blank line after the proof, the checkpoint's origin is read as a proof hash.
        check_parse_error(&good.replacen("\n\n", "\n", 1), "InvalidProofHash { position: 10");
        check_parse_error(&good.replace("\n\n\u{2014}", "\n\u{2014}"), "Note(MissingBlankLine)");
        check_parse_error("c2sp.org/tlog-proof@v1\nindex 3\n", "MissingBlankLine");
        let many = format!("c2sp.org/tlog-proof@v1\nindex 3\n{}\n", format!("{hash_line}\n").repeat(65));
        check_parse_error(&many, "TooManyProofHashes");
        check_parse_error(&good.replace('\u{2014}', "-"), "Note(MalformedSignatureLine");
        assert!(matches!(ProofBundle::parse(b"\xff"), Err(ProofBundleError::NotUtf8)));
    }
}
