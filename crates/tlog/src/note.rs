//! C2SP signed-note: text signed by one or more keys, Ed25519 signatures, and key encodings.
//!
//! ```text
//! <text ending in a newline>
//! <blank line>
//! — <key name> base64(32-bit key ID ‖ signature)
//! ```
//!
//! Verification follows the spec: signature lines from unknown keys (name or key ID not both
//! matching a configured key) are ignored; a signature from a known key that fails to verify
//! rejects the whole note; a note with no verified signature from a known key is rejected.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::cosignature;

/// Largest note accepted by [`Note::parse`]. Room for 64 post-quantum signatures of about 5 kB.
pub const NOTE_SIZE_MAX_BYTES: usize = 1024 * 1024;
/// Most signature lines accepted by [`Note::parse`] (the spec requires accepting at least 16).
pub const NOTE_SIGNATURES_MAX: usize = 64;

const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";
const SIGNER_KEY_PREFIX: &str = "PRIVATE+KEY+";
const ED25519_PUBLIC_KEY_SIZE_BYTES: usize = 32;
const ED25519_SIGNATURE_SIZE_BYTES: usize = 64;

/// The signature types this crate implements (signed-note §Signature types). Others are rejected
/// when configuring a key, and ignored (as unknown keys) in notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureKind {
    /// `0x01`: Ed25519 over the note text.
    Ed25519,
    /// `0x04`: timestamped Ed25519 checkpoint cosignature (c2sp.org/tlog-cosignature).
    CosignatureV1,
}

impl SignatureKind {
    pub fn type_byte(self) -> u8 {
        match self {
            SignatureKind::Ed25519 => 0x01,
            SignatureKind::CosignatureV1 => 0x04,
        }
    }

    pub fn from_type_byte(byte: u8) -> Option<SignatureKind> {
        match byte {
            0x01 => Some(SignatureKind::Ed25519),
            0x04 => Some(SignatureKind::CosignatureV1),
            _ => None,
        }
    }
}

/// Key ID = the first 4 bytes of SHA-256(key name ‖ 0x0A ‖ signature type ‖ public key), as a big-endian u32.
pub fn key_id(name: &str, signature_type: u8, public_key: &[u8]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', signature_type]);
    hasher.update(public_key);
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// A key name, verifier key or signer key that is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key name {name:?} is empty or contains a space, a plus or a control character")]
    InvalidName { name: String },
    #[error("key text is not name+hex(key id)+base64(type||key)")]
    Malformed,
    #[error("key id {text:?} is not 8 lowercase hex digits")]
    MalformedKeyId { text: String },
    #[error("key material is not valid base64")]
    Base64,
    #[error("signature type {type_byte:#04x} is not supported")]
    UnsupportedSignatureType { type_byte: u8 },
    #[error("key material is {length_bytes} bytes, expected {expected_bytes}")]
    WrongKeyLength { length_bytes: usize, expected_bytes: usize },
    #[error("public key is not a valid Ed25519 point")]
    InvalidPublicKey,
    #[error("key id {given:08x} does not match the key id {computed:08x} computed from the key")]
    KeyIdMismatch { given: u32, computed: u32 },
    #[error("key has signature type {actual:?}, expected {expected:?}")]
    WrongKind { expected: SignatureKind, actual: SignatureKind },
}

/// Key names are non-empty and contain no Unicode space, no `+`, and no control character.
pub fn validate_key_name(name: &str) -> Result<(), KeyError> {
    let valid = !name.is_empty()
        && !name.chars().any(|character| character.is_whitespace() || character == '+' || character.is_control());
    if valid { Ok(()) } else { Err(KeyError::InvalidName { name: name.to_owned() }) }
}

/// A public key that verifies note signatures: `<name>+<hex key ID>+<base64(type ‖ public key)>`.
///
/// Parsing recomputes the key ID and rejects a vkey whose ID does not match.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: u32,
    kind: SignatureKind,
    public_key: VerifyingKey,
}

impl VerifierKey {
    pub fn new(
        name: &str,
        kind: SignatureKind,
        public_key: [u8; ED25519_PUBLIC_KEY_SIZE_BYTES],
    ) -> Result<VerifierKey, KeyError> {
        validate_key_name(name)?;
        let public_key = VerifyingKey::from_bytes(&public_key).map_err(|_| KeyError::InvalidPublicKey)?;
        Ok(VerifierKey::from_parts(name, kind, public_key))
    }

    fn from_parts(name: &str, kind: SignatureKind, public_key: VerifyingKey) -> VerifierKey {
        VerifierKey {
            name: name.to_owned(),
            key_id: key_id(name, kind.type_byte(), public_key.as_bytes()),
            kind,
            public_key,
        }
    }

    /// Parses the vkey text encoding.
    pub fn parse(text: &str) -> Result<VerifierKey, KeyError> {
        // Base64 has `+` too: the name and the key ID end at the first two.
        let parts: Vec<&str> = text.splitn(3, '+').collect();
        let [name, key_id_text, material_text] = parts.as_slice() else {
            return Err(KeyError::Malformed);
        };
        let (given_key_id, kind, key_material) = parse_key_parts(name, key_id_text, material_text)?;
        let public_key: [u8; ED25519_PUBLIC_KEY_SIZE_BYTES] = key_material.as_slice().try_into().map_err(|_| {
            KeyError::WrongKeyLength { length_bytes: key_material.len(), expected_bytes: ED25519_PUBLIC_KEY_SIZE_BYTES }
        })?;
        let key = VerifierKey::new(name, kind, public_key)?;
        if key.key_id != given_key_id {
            return Err(KeyError::KeyIdMismatch { given: given_key_id, computed: key.key_id });
        }
        Ok(key)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    pub fn kind(&self) -> SignatureKind {
        self.kind
    }

    pub fn public_key(&self) -> &[u8; ED25519_PUBLIC_KEY_SIZE_BYTES] {
        self.public_key.as_bytes()
    }

    /// Checks one signature (without key ID) over a note text. Returns the cosignature timestamp, if any.
    fn verify(&self, text: &str, signature: &[u8]) -> Result<Option<u64>, ()> {
        match self.kind {
            SignatureKind::Ed25519 => {
                verify_ed25519(&self.public_key, text.as_bytes(), signature)?;
                Ok(None)
            }
            SignatureKind::CosignatureV1 => {
                let (timestamp_bytes, signature) = signature.split_first_chunk::<8>().ok_or(())?;
                let timestamp_seconds = u64::from_be_bytes(*timestamp_bytes);
                if timestamp_seconds > cosignature::TIMESTAMP_MAX_SECONDS {
                    return Err(());
                }
                let message = cosignature::signed_message(text, timestamp_seconds);
                verify_ed25519(&self.public_key, message.as_bytes(), signature)?;
                Ok(Some(timestamp_seconds))
            }
        }
    }
}

fn verify_ed25519(public_key: &VerifyingKey, message: &[u8], signature: &[u8]) -> Result<(), ()> {
    let signature: [u8; ED25519_SIGNATURE_SIZE_BYTES] = signature.try_into().map_err(|_| ())?;
    public_key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature)).map_err(|_| ())
}

/// Shared by verifier and signer keys: name, `hex(key ID)`, `base64(type ‖ key material)`.
fn parse_key_parts(
    name: &str,
    key_id_text: &str,
    material_text: &str,
) -> Result<(u32, SignatureKind, Vec<u8>), KeyError> {
    validate_key_name(name)?;
    let key_id_is_canonical =
        key_id_text.len() == 8 && key_id_text.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
    if !key_id_is_canonical {
        return Err(KeyError::MalformedKeyId { text: key_id_text.to_owned() });
    }
    let given_key_id =
        u32::from_str_radix(key_id_text, 16).map_err(|_| KeyError::MalformedKeyId { text: key_id_text.to_owned() })?;
    let material = BASE64.decode(material_text).map_err(|_| KeyError::Base64)?;
    let (type_byte, key_material) = material.split_first().ok_or(KeyError::Malformed)?;
    let kind = SignatureKind::from_type_byte(*type_byte)
        .ok_or(KeyError::UnsupportedSignatureType { type_byte: *type_byte })?;
    Ok((given_key_id, kind, key_material.to_vec()))
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut material = vec![self.kind.type_byte()];
        material.extend_from_slice(self.public_key.as_bytes());
        write!(formatter, "{}+{:08x}+{}", self.name, self.key_id, BASE64.encode(material))
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "VerifierKey({self})")
    }
}

/// The private half of a key: `PRIVATE+KEY+<name>+<hex key ID>+<base64(type ‖ 32-byte seed)>`.
/// The key ID is that of the public key. The seed is zeroized on drop.
#[derive(Clone)]
pub(crate) struct SignerKey {
    pub(crate) name: String,
    pub(crate) key_id: u32,
    pub(crate) kind: SignatureKind,
    pub(crate) signing_key: SigningKey,
}

impl SignerKey {
    pub(crate) fn from_seed(name: &str, kind: SignatureKind, seed: [u8; 32]) -> Result<SignerKey, KeyError> {
        validate_key_name(name)?;
        let signing_key = SigningKey::from_bytes(&seed);
        Ok(SignerKey {
            name: name.to_owned(),
            key_id: key_id(name, kind.type_byte(), signing_key.verifying_key().as_bytes()),
            kind,
            signing_key,
        })
    }

    pub(crate) fn parse(text: &str, expected_kind: SignatureKind) -> Result<SignerKey, KeyError> {
        let rest = text.strip_prefix(SIGNER_KEY_PREFIX).ok_or(KeyError::Malformed)?;
        let parts: Vec<&str> = rest.splitn(3, '+').collect();
        let [name, key_id_text, material_text] = parts.as_slice() else {
            return Err(KeyError::Malformed);
        };
        let (given_key_id, kind, mut seed_material) = parse_key_parts(name, key_id_text, material_text)?;
        if kind != expected_kind {
            return Err(KeyError::WrongKind { expected: expected_kind, actual: kind });
        }
        let seed: Result<[u8; 32], _> = seed_material.as_slice().try_into();
        let length_bytes = seed_material.len();
        seed_material.fill(0);
        let seed = seed.map_err(|_| KeyError::WrongKeyLength { length_bytes, expected_bytes: 32 })?;
        let key = SignerKey::from_seed(name, kind, seed)?;
        if key.key_id != given_key_id {
            return Err(KeyError::KeyIdMismatch { given: given_key_id, computed: key.key_id });
        }
        Ok(key)
    }

    pub(crate) fn to_secret_text(&self) -> String {
        let mut material = vec![self.kind.type_byte()];
        material.extend_from_slice(self.signing_key.as_bytes());
        let text = format!("{SIGNER_KEY_PREFIX}{}+{:08x}+{}", self.name, self.key_id, BASE64.encode(&material));
        material.fill(0);
        text
    }

    pub(crate) fn verifier_key(&self) -> VerifierKey {
        VerifierKey::from_parts(&self.name, self.kind, self.signing_key.verifying_key())
    }

    pub(crate) fn sign_message(&self, message: &[u8]) -> [u8; ED25519_SIGNATURE_SIZE_BYTES] {
        self.signing_key.sign(message).to_bytes()
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "SignerKey({}+{:08x}, secret elided)", self.name, self.key_id)
    }
}

/// An Ed25519 note signer (signature type 0x01): a log signs its checkpoints with it.
///
/// The crate does no IO and draws no randomness: generate the 32-byte seed from the operating
/// system's random source and store [`NoteSigner::to_secret_text`] with restrictive permissions.
#[derive(Clone, Debug)]
pub struct NoteSigner {
    key: SignerKey,
}

impl NoteSigner {
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<NoteSigner, KeyError> {
        Ok(NoteSigner { key: SignerKey::from_seed(name, SignatureKind::Ed25519, seed)? })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ seed)>`.
    pub fn parse(text: &str) -> Result<NoteSigner, KeyError> {
        Ok(NoteSigner { key: SignerKey::parse(text, SignatureKind::Ed25519)? })
    }

    /// The secret key text. Whoever holds it can sign as this key.
    pub fn to_secret_text(&self) -> String {
        self.key.to_secret_text()
    }

    pub fn verifier_key(&self) -> VerifierKey {
        self.key.verifier_key()
    }

    pub fn name(&self) -> &str {
        &self.key.name
    }

    pub fn key_id(&self) -> u32 {
        self.key.key_id
    }

    /// Signs a note text (which should be valid per [`Note::new`]).
    pub fn sign(&self, text: &str) -> NoteSignature {
        NoteSignature {
            name: self.key.name.clone(),
            key_id: self.key.key_id,
            signature: self.key.sign_message(text.as_bytes()).to_vec(),
        }
    }
}

/// One signature line: key name, key ID, and the signature bytes after the key ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: u32,
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// `— <name> base64(key ID ‖ signature)`, without the newline.
    pub fn to_line(&self) -> String {
        let mut bytes = self.key_id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.signature);
        format!("{SIGNATURE_LINE_PREFIX}{} {}", self.name, BASE64.encode(bytes))
    }

    fn parse_line(line: &str) -> Result<NoteSignature, NoteError> {
        let malformed = || NoteError::MalformedSignatureLine { line: line.to_owned() };
        let rest = line.strip_prefix(SIGNATURE_LINE_PREFIX).ok_or_else(malformed)?;
        let (name, encoded) = rest.split_once(' ').ok_or_else(malformed)?;
        validate_key_name(name).map_err(|_| malformed())?;
        let bytes = BASE64.decode(encoded).map_err(|_| NoteError::SignatureBase64 { line: line.to_owned() })?;
        let Some((key_id_bytes, signature)) = bytes.split_first_chunk::<4>() else {
            return Err(malformed());
        };
        if signature.is_empty() {
            return Err(malformed());
        }
        Ok(NoteSignature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes(*key_id_bytes),
            signature: signature.to_vec(),
        })
    }
}

/// A signature line that verified against a configured key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub name: String,
    pub key_id: u32,
    pub kind: SignatureKind,
    /// For cosignatures: the cosigner's timestamp, POSIX seconds.
    pub timestamp_seconds: Option<u64>,
}

/// A note that cannot be parsed or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("note is {size_bytes} bytes, the most accepted is {NOTE_SIZE_MAX_BYTES}")]
    TooLarge { size_bytes: usize },
    #[error("note is not valid UTF-8")]
    NotUtf8,
    #[error("note contains the control character {code:#04x}")]
    ControlCharacter { code: u32 },
    #[error("note text is empty or does not end in a newline")]
    TextNotNewlineTerminated,
    #[error("note has no blank line separating the text from the signatures")]
    MissingBlankLine,
    #[error("note has no signature lines")]
    NoSignatures,
    #[error("note has more than {NOTE_SIGNATURES_MAX} signatures")]
    TooManySignatures,
    #[error("signature line {line:?} is not '— <name> <base64>'")]
    MalformedSignatureLine { line: String },
    #[error("signature line {line:?} is not valid base64")]
    SignatureBase64 { line: String },
    #[error("signature by known key {name}+{key_id:08x} does not verify")]
    InvalidSignature { name: String, key_id: u32 },
    #[error("known key {name}+{key_id:08x} signed the note more than once")]
    DuplicateSignature { name: String, key_id: u32 },
    #[error("no signature from a known key")]
    NoVerifiedSignature,
}

/// A note: its text and its signature lines (verified or not: see [`Note::verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

fn check_characters(text: &str) -> Result<(), NoteError> {
    match text.chars().find(|character| character.is_ascii_control() && *character != '\n' && *character != '\u{7f}') {
        Some(character) => Err(NoteError::ControlCharacter { code: character.into() }),
        None => Ok(()),
    }
}

impl Note {
    /// An unsigned note. The text must be non-empty, end in a newline, and hold no control
    /// character other than newline.
    pub fn new(text: impl Into<String>) -> Result<Note, NoteError> {
        let text = text.into();
        check_characters(&text)?;
        if !text.ends_with('\n') {
            return Err(NoteError::TextNotNewlineTerminated);
        }
        Ok(Note { text, signatures: Vec::new() })
    }

    /// Parses a signed note. Checks the form only: call [`Note::verify`] before trusting the text.
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > NOTE_SIZE_MAX_BYTES {
            return Err(NoteError::TooLarge { size_bytes: bytes.len() });
        }
        let note = std::str::from_utf8(bytes).map_err(|_| NoteError::NotUtf8)?;
        check_characters(note)?;
        let separator = note.rfind("\n\n").ok_or(NoteError::MissingBlankLine)?;
        let text = &note[..=separator];
        let signature_block = &note[separator + 2..];
        if signature_block.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let Some(signature_block) = signature_block.strip_suffix('\n') else {
            return Err(NoteError::MalformedSignatureLine {
                line: signature_block.rsplit('\n').next().unwrap_or_default().to_owned(),
            });
        };
        let lines: Vec<&str> = signature_block.split('\n').collect();
        if lines.len() > NOTE_SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures);
        }
        let signatures = lines.into_iter().map(NoteSignature::parse_line).collect::<Result<_, _>>()?;
        Ok(Note { text: text.to_owned(), signatures })
    }

    /// The note text, including its final newline. Untrusted until [`Note::verify`] succeeds.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Appends a signature line (for example a witness's cosignature).
    pub fn add_signature(&mut self, signature: NoteSignature) -> Result<(), NoteError> {
        if self.signatures.len() == NOTE_SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures);
        }
        validate_key_name(&signature.name)
            .map_err(|_| NoteError::MalformedSignatureLine { line: signature.to_line() })?;
        if signature.signature.is_empty() {
            return Err(NoteError::MalformedSignatureLine { line: signature.to_line() });
        }
        self.signatures.push(signature);
        Ok(())
    }

    /// Signs the text with `signer` and appends the signature line.
    pub fn sign(&mut self, signer: &NoteSigner) -> Result<(), NoteError> {
        let signature = signer.sign(&self.text);
        self.add_signature(signature)
    }

    /// Verifies the signatures from the given keys (see the module documentation for the rules).
    /// Returns the verified signatures, in note order; never empty.
    pub fn verify(&self, keys: &[VerifierKey]) -> Result<Vec<VerifiedSignature>, NoteError> {
        let mut verified: Vec<VerifiedSignature> = Vec::new();
        for signature in &self.signatures {
            let Some(key) = keys.iter().find(|key| key.name == signature.name && key.key_id == signature.key_id) else {
                continue;
            };
            if verified.iter().any(|seen| seen.name == signature.name && seen.key_id == signature.key_id) {
                return Err(NoteError::DuplicateSignature { name: signature.name.clone(), key_id: signature.key_id });
            }
            let timestamp_seconds = key
                .verify(&self.text, &signature.signature)
                .map_err(|()| NoteError::InvalidSignature { name: signature.name.clone(), key_id: signature.key_id })?;
            verified.push(VerifiedSignature {
                name: signature.name.clone(),
                key_id: signature.key_id,
                kind: key.kind,
                timestamp_seconds,
            });
        }
        if verified.is_empty() {
            return Err(NoteError::NoVerifiedSignature);
        }
        Ok(verified)
    }
}

/// The note as text: the text, a blank line, and one line per signature.
impl fmt::Display for Note {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)?;
        formatter.write_str("\n")?;
        for signature in &self.signatures {
            formatter.write_str(&signature.to_line())?;
            formatter.write_str("\n")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn signer(name: &str, seed_byte: u8) -> NoteSigner {
        NoteSigner::from_seed(name, [seed_byte; 32]).unwrap()
    }

    fn signed(text: &str, signers: &[&NoteSigner]) -> String {
        let mut note = Note::new(text).unwrap();
        for signer in signers {
            note.sign(signer).unwrap();
        }
        note.to_string()
    }

    #[test]
    fn keys_whose_base64_holds_a_plus_round_trip() {
        // Found in use: about half of all keys have a `+` in their base64 part.
        let mut with_plus = 0;
        for seed_byte in 0..=40u8 {
            let signer = signer("example.com/log", seed_byte);
            let verifier = signer.verifier_key().to_string();
            let secret = signer.to_secret_text();
            if verifier.matches('+').count() > 2 {
                with_plus += 1;
            }
            assert_eq!(VerifierKey::parse(&verifier).unwrap(), signer.verifier_key(), "{verifier}");
            assert_eq!(NoteSigner::parse(&secret).unwrap().verifier_key(), signer.verifier_key(), "{secret}");
        }
        assert!(with_plus > 0, "no seed gave a key with a + in its base64");
    }

    /// Parses and verifies `note` with `keys`: "ok <verified names>" or the error's Debug text.
    fn check_verify(note: &str, keys: &[VerifierKey], expected: &str) {
        let answer = match Note::parse(note.as_bytes()).and_then(|note| note.verify(keys)) {
            Ok(verified) => {
                format!("ok {}", verified.iter().map(|signature| signature.name.as_str()).collect::<Vec<_>>().join(","))
            }
            Err(error) => format!("{error:?}"),
        };
        assert!(answer.starts_with(expected), "{note:?}: {answer}");
    }

    #[test]
    fn signature_rules_of_the_spec() {
        let log = signer("example.com/log", 1);
        let other = signer("example.com/other", 2);
        let impostor_same_name = signer("example.com/log", 3);
        let log_keys = [log.verifier_key()];
        let text = "hello\n";

        check_verify(&signed(text, &[&log]), &log_keys, "ok example.com/log");
        // Unknown keys are ignored, before or after the known one.
        check_verify(&signed(text, &[&other, &log]), &log_keys, "ok example.com/log");
        check_verify(&signed(text, &[&log, &other]), &log_keys, "ok example.com/log");
        // Same name, different key ID: unknown, ignored; alone it leaves nothing verified.
        check_verify(&signed(text, &[&impostor_same_name, &log]), &log_keys, "ok example.com/log");
        check_verify(&signed(text, &[&impostor_same_name]), &log_keys, "NoVerifiedSignature");
        check_verify(&signed(text, &[&other]), &log_keys, "NoVerifiedSignature");
        // A known key signing twice is rejected.
        check_verify(&signed(text, &[&log, &log]), &log_keys, "DuplicateSignature");
        // Several known keys: all must verify, all are reported.
        check_verify(
            &signed(text, &[&log, &other]),
            &[log.verifier_key(), other.verifier_key()],
            "ok example.com/log,example.com/other",
        );
    }

    #[test]
    fn a_bad_signature_from_a_known_key_rejects_the_note() {
        let log = signer("example.com/log", 1);
        let other = signer("example.com/other", 2);
        // A signature over another text, with the log's name and key ID.
        let forged = signed("goodbye\n", &[&log]);
        let forged_line = forged.lines().last().unwrap();
        let note = format!("{}{forged_line}\n", signed("hello\n", &[&other]));
        check_verify(&note, &[log.verifier_key(), other.verifier_key()], "InvalidSignature");
        check_verify(&note, &[other.verifier_key()], "ok example.com/other");
        // Wrong signature length for the algorithm.
        let short = NoteSignature { name: "example.com/log".into(), key_id: log.key_id(), signature: vec![1; 10] };
        check_verify(&format!("hello\n\n{}\n", short.to_line()), &[log.verifier_key()], "InvalidSignature");
    }

    #[test]
    fn malformed_notes_have_defined_errors() {
        let log = signer("example.com/log", 1);
        let keys = [log.verifier_key()];
        let good = signed("hello\n", &[&log]);
        let line = good.lines().last().unwrap().to_owned();
        let encoded = line.rsplit(' ').next().unwrap().to_owned();
        check_verify(&good, &keys, "ok");
        check_verify(&format!("hello\n{line}\n"), &keys, "MissingBlankLine");
        check_verify(&format!("hello{line}\n"), &keys, "MissingBlankLine");
        check_verify("hello\n\n", &keys, "NoSignatures");
        check_verify(&format!("hello\n\n{line}"), &keys, "MalformedSignatureLine");
        check_verify(&format!("hello\n\n{line}\ntrailing garbage\n"), &keys, "MalformedSignatureLine");
        check_verify(&format!("hello\n\n{line}\n\n"), &keys, "NoSignatures");
        check_verify(&format!("hello\n\n- example.com/log {encoded}\n"), &keys, "MalformedSignatureLine");
        check_verify(&format!("hello\n\n\u{2014} example.com/log  {encoded}\n"), &keys, "SignatureBase64");
        check_verify(&format!("hello\n\n\u{2014} example.com/log {encoded}!\n"), &keys, "SignatureBase64");
        check_verify(
            &format!("hello\n\n\u{2014} example.com/log {}\n", encoded.trim_end_matches('=')),
            &keys,
            "SignatureBase64",
        );
        check_verify("hello\n\n\u{2014} example.com/log AAAAAA==\n", &keys, "MalformedSignatureLine");
        // Five bytes: key ID 0 and a one-byte signature. Well formed, from an unknown key.
        check_verify("hello\n\n\u{2014} example.com/log AAAAAAA=\n", &keys, "NoVerifiedSignature");
        check_verify(&format!("hello\n\n\u{2014} example.com+log {encoded}\n"), &keys, "MalformedSignatureLine");
        check_verify(&format!("hello\n\n\u{2014}  {encoded}\n"), &keys, "MalformedSignatureLine");
        check_verify(&format!("hel\tlo\n\n{line}\n"), &keys, "ControlCharacter { code: 9 }");
        check_verify(&format!("hello\r\n\n{line}\n"), &keys, "ControlCharacter { code: 13 }");
        assert_eq!(Note::parse(b"\xff\n\n"), Err(NoteError::NotUtf8));
        assert_eq!(Note::new("no newline"), Err(NoteError::TextNotNewlineTerminated));
        assert_eq!(Note::new(""), Err(NoteError::TextNotNewlineTerminated));
        let huge = vec![b'a'; NOTE_SIZE_MAX_BYTES + 1];
        assert_eq!(Note::parse(&huge), Err(NoteError::TooLarge { size_bytes: NOTE_SIZE_MAX_BYTES + 1 }));
    }

    #[test]
    fn non_canonical_base64_is_rejected() {
        // "AAAAAAB=" decodes leniently to the same bytes as "AAAAAAA=", but its trailing bits are set.
        let note = "hello\n\n\u{2014} example.com/log AAAAAAB=\n";
        assert!(matches!(Note::parse(note.as_bytes()), Err(NoteError::SignatureBase64 { .. })));
    }

    #[test]
    fn signature_count_is_limited() {
        let log = signer("example.com/log", 1);
        let unknown = NoteSignature { name: "example.com/unknown".into(), key_id: 1, signature: vec![0; 64] };
        let mut note = Note::new("hello\n").unwrap();
        note.sign(&log).unwrap();
        for _ in 1..NOTE_SIGNATURES_MAX {
            note.add_signature(unknown.clone()).unwrap();
        }
        let at_limit = note.to_string();
        assert_eq!(Note::parse(at_limit.as_bytes()).unwrap().verify(&[log.verifier_key()]).unwrap().len(), 1);
        assert_eq!(note.add_signature(unknown.clone()), Err(NoteError::TooManySignatures));
        let over_limit = format!("{at_limit}{}\n", unknown.to_line());
        assert_eq!(Note::parse(over_limit.as_bytes()), Err(NoteError::TooManySignatures));
    }

    #[test]
    fn texts_with_empty_lines_split_at_the_last_blank_line() {
        let log = signer("example.com/log", 1);
        for text in ["a\n\nb\n", "a\n\n", "\n", "\n\n\n"] {
            let note_text = signed(text, &[&log]);
            let note = Note::parse(note_text.as_bytes()).unwrap();
            assert_eq!(note.text(), text);
            assert!(note.verify(&[log.verifier_key()]).is_ok());
        }
    }

    fn check_vkey_error(text: &str, expected: KeyError) {
        assert_eq!(VerifierKey::parse(text), Err(expected), "{text}");
    }

    #[test]
    fn verifier_keys_round_trip_and_reject_malformed_text() {
        let log = signer("example.com/log", 1);
        let vkey = log.verifier_key().to_string();
        assert_eq!(VerifierKey::parse(&vkey), Ok(log.verifier_key()));
        let [name, id, material]: [&str; 3] = vkey.splitn(3, '+').collect::<Vec<_>>().try_into().unwrap();
        check_vkey_error("example.com/log", KeyError::Malformed);
        // A fourth `+` part is part of the base64 (which has `+`), and then not valid key material.
        assert!(VerifierKey::parse(&format!("{vkey}+extra")).is_err());
        check_vkey_error(
            &format!("{name}+{}+{material}", id.to_uppercase()),
            KeyError::MalformedKeyId { text: id.to_uppercase() },
        );
        check_vkey_error(&format!("{name}+{id}0+{material}"), KeyError::MalformedKeyId { text: format!("{id}0") });
        check_vkey_error(
            &format!("{name}+00000000+{material}"),
            KeyError::KeyIdMismatch { given: 0, computed: log.key_id() },
        );
        check_vkey_error(&format!("{name}+{id}+{material}!"), KeyError::Base64);
        check_vkey_error(&format!("{name}+{id}+AgAA"), KeyError::UnsupportedSignatureType { type_byte: 2 });
        check_vkey_error(
            &format!("{name}+{id}+AQAA"),
            KeyError::WrongKeyLength { length_bytes: 2, expected_bytes: 32 },
        );
        check_vkey_error(&format!("{name}+{id}+"), KeyError::Malformed);
        check_vkey_error(&format!("+{id}+{material}"), KeyError::InvalidName { name: String::new() });
        check_vkey_error(&format!("a b+{id}+{material}"), KeyError::InvalidName { name: "a b".into() });
    }

    #[test]
    fn signer_keys_round_trip_and_keep_their_kind() {
        let log = signer("example.com/log", 9);
        let secret = log.to_secret_text();
        assert!(secret.starts_with("PRIVATE+KEY+example.com/log+"));
        let parsed = NoteSigner::parse(&secret).unwrap();
        assert_eq!(parsed.verifier_key(), log.verifier_key());
        assert_eq!(
            crate::Cosigner::parse(&secret).unwrap_err(),
            KeyError::WrongKind { expected: SignatureKind::CosignatureV1, actual: SignatureKind::Ed25519 }
        );
        assert_eq!(NoteSigner::parse(&secret["PRIVATE+KEY+".len()..]).unwrap_err(), KeyError::Malformed);
        let wrong_id = secret.replace(&format!("+{:08x}+", log.key_id()), "+00000000+");
        assert!(matches!(NoteSigner::parse(&wrong_id), Err(KeyError::KeyIdMismatch { .. })));
        assert!(!format!("{log:?}").contains(secret.rsplit('+').next().unwrap()));
        assert_eq!(
            NoteSigner::from_seed("bad name", [0; 32]).unwrap_err(),
            KeyError::InvalidName { name: "bad name".into() }
        );
    }

    #[test]
    fn key_ids_hash_name_type_and_key() {
        let log = signer("example.com/log", 1);
        let public_key = *log.verifier_key().public_key();
        assert_eq!(log.key_id(), key_id("example.com/log", 0x01, &public_key));
        assert_ne!(key_id("example.com/log", 0x04, &public_key), log.key_id());
        assert_ne!(key_id("example.com/log2", 0x01, &public_key), log.key_id());
    }

    fn note_strategy() -> impl Strategy<Value = Note> {
        let line = "[a-zA-Z0-9 +/=.:\u{e9}\u{2014}\u{1f41f}-]{0,20}";
        let text = proptest::collection::vec(line, 1..6)
            .prop_map(|lines| lines.iter().map(|line| format!("{line}\n")).collect::<String>());
        let signature = ("[a-z0-9./\u{e9}-]{1,12}", any::<u32>(), proptest::collection::vec(any::<u8>(), 1..80))
            .prop_map(|(name, key_id, signature)| NoteSignature { name, key_id, signature });
        (text, proptest::collection::vec(signature, 1..5)).prop_map(|(text, signatures)| {
            let mut note = Note::new(text).unwrap();
            for signature in signatures {
                note.add_signature(signature).unwrap();
            }
            note
        })
    }

    proptest! {
        #[test]
        fn parse_and_print_are_inverse(note in note_strategy()) {
            let printed = note.to_string();
            let parsed = Note::parse(printed.as_bytes()).unwrap();
            prop_assert_eq!(&parsed, &note);
            prop_assert_eq!(parsed.to_string(), printed);
        }

        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Note::parse(&bytes);
        }
    }
}
