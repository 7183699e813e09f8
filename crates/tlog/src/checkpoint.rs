//! C2SP tlog-checkpoint: the note text of a signed tree head, and the policy that opens one.
//!
//! ```text
//! <origin>
//! <tree size, decimal, no leading zeros>
//! <root hash, base64>
//! [<extension line>...]
//! ```

use std::fmt;

use crate::hash::{Hash, HashError};
use crate::note::{Note, NoteError, NoteSigner, VerifiedSignature, VerifierKey};

/// The three essential lines of a tree head, and the optional opaque extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root_hash: Hash,
    extension_lines: Vec<String>,
}

/// A checkpoint that does not follow the spec's grammar, or fails the verifier's policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint text does not end in a newline")]
    NotNewlineTerminated,
    #[error("checkpoint has {count} lines, at least 3 are required")]
    TooFewLines { count: usize },
    #[error("checkpoint origin is empty or holds a control character")]
    InvalidOrigin,
    #[error("checkpoint tree size {text:?} is not a decimal without leading zeros fitting in 64 bits")]
    InvalidSize { text: String },
    #[error("checkpoint root hash is invalid")]
    InvalidRootHash(#[source] HashError),
    #[error("checkpoint extension line {position} is empty or holds a control character")]
    InvalidExtensionLine { position: usize },
    #[error("checkpoint note is invalid")]
    Note(#[from] NoteError),
    #[error("checkpoint origin {actual:?} is not the expected {expected:?}")]
    WrongOrigin { expected: String, actual: String },
    #[error("checkpoint is not signed by the log key {name}+{key_id:08x}")]
    LogSignatureMissing { name: String, key_id: u32 },
    #[error("checkpoint has {verified} verified witness cosignatures, policy requires {required}")]
    WitnessQuorumNotMet { verified: usize, required: usize },
}

fn is_clean_line(line: &str) -> bool {
    !line.is_empty() && !line.chars().any(|character| character.is_ascii_control() && character != '\u{7f}')
}

impl Checkpoint {
    pub fn new(origin: &str, size: u64, root_hash: Hash) -> Result<Checkpoint, CheckpointError> {
        Checkpoint::with_extension_lines(origin, size, root_hash, Vec::new())
    }

    /// A checkpoint with extension lines (NOT RECOMMENDED by the spec: monitors cannot audit them).
    pub fn with_extension_lines(
        origin: &str,
        size: u64,
        root_hash: Hash,
        extension_lines: Vec<String>,
    ) -> Result<Checkpoint, CheckpointError> {
        if !is_clean_line(origin) {
            return Err(CheckpointError::InvalidOrigin);
        }
        if let Some(position) = extension_lines.iter().position(|line| !is_clean_line(line)) {
            return Err(CheckpointError::InvalidExtensionLine { position });
        }
        Ok(Checkpoint { origin: origin.to_owned(), size, root_hash, extension_lines })
    }

    /// Parses a checkpoint note text (with its final newline, without the blank line).
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text.strip_suffix('\n').ok_or(CheckpointError::NotNewlineTerminated)?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size_text, root_text, extension_lines @ ..] = lines.as_slice() else {
            return Err(CheckpointError::TooFewLines { count: lines.len() });
        };
        let size_is_canonical = !size_text.is_empty()
            && size_text.bytes().all(|byte| byte.is_ascii_digit())
            && (*size_text == "0" || !size_text.starts_with('0'));
        let size = size_is_canonical
            .then(|| size_text.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| CheckpointError::InvalidSize { text: (*size_text).to_owned() })?;
        let root_hash = Hash::from_base64(root_text).map_err(CheckpointError::InvalidRootHash)?;
        Checkpoint::with_extension_lines(
            origin,
            size,
            root_hash,
            extension_lines.iter().map(|line| (*line).to_owned()).collect(),
        )
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn root_hash(&self) -> &Hash {
        &self.root_hash
    }

    pub fn extension_lines(&self) -> &[String] {
        &self.extension_lines
    }

    /// The note text.
    pub fn to_text(&self) -> String {
        self.to_string()
    }

    /// The checkpoint as a note signed by the log.
    pub fn sign(&self, signer: &NoteSigner) -> Note {
        let mut note = Note::new(self.to_text()).expect("a checkpoint is a valid note text");
        note.sign(signer).expect("a fresh note has room for one signature");
        note
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(formatter, "{}", self.origin)?;
        writeln!(formatter, "{}", self.size)?;
        writeln!(formatter, "{}", self.root_hash.to_base64())?;
        for line in &self.extension_lines {
            writeln!(formatter, "{line}")?;
        }
        Ok(())
    }
}

/// What a verifier trusts: the log's origin and key, and witnesses with a quorum.
#[derive(Debug, Clone)]
pub struct CheckpointPolicy {
    pub origin: String,
    pub log_key: VerifierKey,
    /// Witness keys; usually of kind [`crate::SignatureKind::CosignatureV1`].
    pub witness_keys: Vec<VerifierKey>,
    /// How many distinct witnesses must have cosigned. 0 trusts the log alone.
    pub witness_quorum: usize,
}

/// A checkpoint whose log signature verified and whose witness quorum was met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: Note,
    /// The verified witness signatures (with their timestamps, for cosignatures).
    pub witness_signatures: Vec<VerifiedSignature>,
}

impl CheckpointPolicy {
    /// A policy trusting the log's signature alone.
    pub fn log_only(origin: &str, log_key: VerifierKey) -> CheckpointPolicy {
        CheckpointPolicy { origin: origin.to_owned(), log_key, witness_keys: Vec::new(), witness_quorum: 0 }
    }

    /// Opens a signed checkpoint: parses the note, verifies it (unknown signatures ignored, a bad
    /// signature from any configured key rejects it), requires the log's signature and the witness
    /// quorum, then parses the text as a checkpoint of the expected origin.
    pub fn verify(&self, note_bytes: &[u8]) -> Result<VerifiedCheckpoint, CheckpointError> {
        let note = Note::parse(note_bytes)?;
        self.verify_note(note)
    }

    /// As [`CheckpointPolicy::verify`], for an already parsed note.
    pub fn verify_note(&self, note: Note) -> Result<VerifiedCheckpoint, CheckpointError> {
        let mut keys = Vec::with_capacity(1 + self.witness_keys.len());
        keys.push(self.log_key.clone());
        keys.extend(self.witness_keys.iter().cloned());
        let log_signature_missing = || CheckpointError::LogSignatureMissing {
            name: self.log_key.name().to_owned(),
            key_id: self.log_key.key_id(),
        };
        let verified = match note.verify(&keys) {
            Ok(verified) => verified,
            Err(NoteError::NoVerifiedSignature) => return Err(log_signature_missing()),
            Err(error) => return Err(error.into()),
        };
        let is_log = |signature: &VerifiedSignature| {
            signature.name == self.log_key.name() && signature.key_id == self.log_key.key_id()
        };
        if !verified.iter().any(is_log) {
            return Err(log_signature_missing());
        }
        let witness_signatures: Vec<VerifiedSignature> =
            verified.into_iter().filter(|signature| !is_log(signature)).collect();
        if witness_signatures.len() < self.witness_quorum {
            return Err(CheckpointError::WitnessQuorumNotMet {
                verified: witness_signatures.len(),
                required: self.witness_quorum,
            });
        }
        let checkpoint = Checkpoint::parse(note.text())?;
        if checkpoint.origin != self.origin {
            return Err(CheckpointError::WrongOrigin { expected: self.origin.clone(), actual: checkpoint.origin });
        }
        Ok(VerifiedCheckpoint { checkpoint, note, witness_signatures })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::cosignature::Cosigner;
    use crate::hash::leaf_hash;

    const ROOT_BASE64: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

    fn check_parse(text: &str, expected: Result<(&str, u64, usize), CheckpointError>) {
        let parsed = Checkpoint::parse(text);
        match expected {
            Ok((origin, size, extension_count)) => {
                let checkpoint = parsed.unwrap();
                assert_eq!(
                    (checkpoint.origin(), checkpoint.size(), checkpoint.extension_lines().len()),
                    (origin, size, extension_count)
                );
                assert_eq!(checkpoint.to_text(), text, "printing gives back the text");
            }
            Err(error) => assert_eq!(parsed, Err(error), "{text:?}"),
        }
    }

    #[test]
    fn checkpoint_grammar() {
        check_parse(
            &format!("example.com/behind-the-sofa\n20852163\n{ROOT_BASE64}\n"),
            Ok(("example.com/behind-the-sofa", 20852163, 0)),
        );
        check_parse(&format!("o\n0\n{ROOT_BASE64}\n"), Ok(("o", 0, 0)));
        check_parse(&format!("o\n18446744073709551615\n{ROOT_BASE64}\n"), Ok(("o", u64::MAX, 0)));
        check_parse(
            &format!("origin with spaces+plus\n1\n{ROOT_BASE64}\next one\next two\n"),
            Ok(("origin with spaces+plus", 1, 2)),
        );
        check_parse(&format!("o\n1\n{ROOT_BASE64}"), Err(CheckpointError::NotNewlineTerminated));
        check_parse("o\n1\n", Err(CheckpointError::TooFewLines { count: 2 }));
        check_parse(&format!("\n1\n{ROOT_BASE64}\n"), Err(CheckpointError::InvalidOrigin));
        for size in ["01", "00", "", "-1", "+1", " 1", "1.0", "18446744073709551616", "0x10"] {
            check_parse(
                &format!("o\n{size}\n{ROOT_BASE64}\n"),
                Err(CheckpointError::InvalidSize { text: size.into() }),
            );
        }
        check_parse("o\n1\nAAAA\n", Err(CheckpointError::InvalidRootHash(HashError::WrongLength { length_bytes: 3 })));
        check_parse("o\n1\n!!!!\n", Err(CheckpointError::InvalidRootHash(HashError::Base64)));
        check_parse(&format!("o\n1\n{ROOT_BASE64}\n\n"), Err(CheckpointError::InvalidExtensionLine { position: 0 }));
        check_parse(
            &format!("o\n1\n{ROOT_BASE64}\na\tb\n"),
            Err(CheckpointError::InvalidExtensionLine { position: 0 }),
        );
    }

    #[test]
    fn checkpoints_refuse_invalid_lines_when_built() {
        let root = leaf_hash(b"");
        assert_eq!(Checkpoint::new("", 1, root), Err(CheckpointError::InvalidOrigin));
        assert_eq!(Checkpoint::new("a\nb", 1, root), Err(CheckpointError::InvalidOrigin));
        assert_eq!(
            Checkpoint::with_extension_lines("o", 1, root, vec!["ok".into(), "".into()]),
            Err(CheckpointError::InvalidExtensionLine { position: 1 })
        );
    }

    struct Fixture {
        log: NoteSigner,
        witnesses: Vec<Cosigner>,
        checkpoint: Checkpoint,
    }

    fn fixture() -> Fixture {
        Fixture {
            log: NoteSigner::from_seed("keten.example/log", [1; 32]).unwrap(),
            witnesses: (0..3)
                .map(|number| Cosigner::from_seed(&format!("witness{number}.example"), [10 + number; 32]).unwrap())
                .collect(),
            checkpoint: Checkpoint::new("keten.example/log", 42, leaf_hash(b"root")).unwrap(),
        }
    }

    fn policy(fixture: &Fixture, witness_quorum: usize) -> CheckpointPolicy {
        CheckpointPolicy {
            origin: "keten.example/log".into(),
            log_key: fixture.log.verifier_key(),
            witness_keys: fixture.witnesses.iter().map(Cosigner::verifier_key).collect(),
            witness_quorum,
        }
    }

    fn cosigned(fixture: &Fixture, witness_count: usize) -> Note {
        let mut note = fixture.checkpoint.sign(&fixture.log);
        for (number, witness) in fixture.witnesses.iter().take(witness_count).enumerate() {
            note.add_signature(witness.cosign(&fixture.checkpoint, 1_700_000_000 + number as u64).unwrap()).unwrap();
        }
        note
    }

    #[test]
    fn policy_requires_the_log_signature_the_origin_and_the_quorum() {
        let fixture = fixture();
        let note = cosigned(&fixture, 2);
        let verified = policy(&fixture, 2).verify(note.to_string().as_bytes()).unwrap();
        assert_eq!(verified.checkpoint, fixture.checkpoint);
        assert_eq!(
            verified.witness_signatures.iter().map(|signature| signature.timestamp_seconds).collect::<Vec<_>>(),
            vec![Some(1_700_000_000), Some(1_700_000_001)]
        );
        assert_eq!(
            policy(&fixture, 3).verify(note.to_string().as_bytes()),
            Err(CheckpointError::WitnessQuorumNotMet { verified: 2, required: 3 })
        );
        let mut other_origin = policy(&fixture, 0);
        other_origin.origin = "other.example/log".into();
        assert!(matches!(other_origin.verify(note.to_string().as_bytes()), Err(CheckpointError::WrongOrigin { .. })));
    }

    #[test]
    fn witness_signatures_alone_do_not_open_a_checkpoint() {
        let fixture = fixture();
        let mut note = Note::new(fixture.checkpoint.to_text()).unwrap();
        note.add_signature(fixture.witnesses[0].cosign(&fixture.checkpoint, 5).unwrap()).unwrap();
        assert!(matches!(
            policy(&fixture, 0).verify(note.to_string().as_bytes()),
            Err(CheckpointError::LogSignatureMissing { .. })
        ));
        let unsigned_by_anyone_known = format!("{}\n\u{2014} stranger.example AAAAAAA=\n", fixture.checkpoint);
        assert!(matches!(
            policy(&fixture, 0).verify(unsigned_by_anyone_known.as_bytes()),
            Err(CheckpointError::LogSignatureMissing { .. })
        ));
    }

    #[test]
    fn a_tampered_checkpoint_fails_its_signature() {
        let fixture = fixture();
        let text = cosigned(&fixture, 1).to_string().replace("\n42\n", "\n43\n");
        assert!(matches!(
            policy(&fixture, 0).verify(text.as_bytes()),
            Err(CheckpointError::Note(NoteError::InvalidSignature { .. }))
        ));
    }

    #[test]
    fn a_signed_note_that_is_not_a_checkpoint_is_rejected_after_verification() {
        let fixture = fixture();
        let mut note = Note::new("keten.example/log\nnot a size\n").unwrap();
        note.sign(&fixture.log).unwrap();
        assert_eq!(
            policy(&fixture, 0).verify(note.to_string().as_bytes()),
            Err(CheckpointError::TooFewLines { count: 2 })
        );
    }

    proptest! {
        #[test]
        fn print_and_parse_are_inverse(
            origin in "[a-z0-9./ +\u{e9}-]{1,30}",
            size in any::<u64>(),
            root in any::<[u8; 32]>(),
            extension_lines in proptest::collection::vec("[a-zA-Z0-9 =+/]{1,20}", 0..3),
        ) {
            let checkpoint = Checkpoint::with_extension_lines(&origin, size, Hash(root), extension_lines).unwrap();
            let text = checkpoint.to_text();
            let parsed = Checkpoint::parse(&text).unwrap();
            prop_assert_eq!(&parsed, &checkpoint);
            prop_assert_eq!(parsed.to_text(), text);
        }
    }
}
