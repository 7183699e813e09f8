//! The commitment of an event for the public transparency log: salted digests of its fields
//! (selective disclosure, in the manner of SD-JWT), so the log proves that an event was recorded
//! and not changed without showing anyone what it says.
//!
//! Format, version 1 (deterministic given the salts and decoys):
//! - The event's JSON-LD form as stored (without `@context`; `recordTime` is not in it) is
//!   flattened to its leaves; each leaf is a *field*, named by its JSON pointer (`/eventID`,
//!   `/bizStep`, `/quantityList/0/epcClass`, `/quantityList/0/quantity`), its value the leaf's JSON
//!   text. Fine-grained on purpose: a consumer page can show a lot (`…/epcClass`) without its
//!   quantity. One more field, `keten:capturedBy`, names the capturing tenant; the repository's own
//!   field names have no leading `/`, so no field of the event can take them.
//! - Each event has a secret 32-byte *seed*, random, kept by the repository beside the event.
//!   A field's *salt* is the first 16 bytes of SHA-256(`keten-salt-v1` 0x00 seed name): one-way,
//!   so a disclosed salt tells nothing of the seed or of the other fields' salts.
//! - A *disclosure* is (salt, name, value). Its digest is
//!   SHA-256(`keten-disclosure-v1` 0x00 salt name 0x00 value).
//! - The *entry* is the line `keten/epcis-event/v1`, then one line per digest in base64
//!   (standard, padded), sorted, after padding the digest count with decoy digests
//!   (decoy `i` = SHA-256(`keten-decoy-v1` 0x00 seed i as 4 bytes big-endian)) up to the next
//!   power of two (at least 16, at most [`DIGEST_COUNT_MAX`]), so the entry shows no field names
//!   and only the order of magnitude of their number (not, say, how many serials a shipment
//!   held). The log's leaf is RFC 6962's SHA-256(0x00 entry).
//! - So the entry is a function of (event, tenant, seed): the repository recomputes it to audit
//!   its own rows, and serves disclosures without storing salts.
//!
//! Who may see a field receives its disclosure and checks that its digest is a line of the entry;
//! a hidden field cannot be read from the entry (salted) nor swapped (its digest would not be
//! there).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::{Event, Namespace};

/// The first line of an entry.
pub const ENTRY_HEADER: &str = "keten/epcis-event/v1";
/// The fewest digests in an entry (decoys pad up to it).
pub const DIGEST_COUNT_MIN: usize = 16;
/// The most digests in an entry: chosen so that the largest entry fits one entry of a C2SP entry
/// bundle (65,535 bytes). Counts are padded to the next power of two, capped here.
pub const DIGEST_COUNT_MAX: usize = 1448;
/// The most fields committed for one event; an event with more is committed with its fields up
/// to this many, in pointer order, and the rest in one field `keten:rest` (the JSON of the rest).
pub const FIELDS_MAX: usize = 1400;
/// The largest entry: the header line and [`DIGEST_COUNT_MAX`] digest lines.
pub const ENTRY_SIZE_MAX_BYTES: usize = ENTRY_HEADER.len() + 1 + DIGEST_COUNT_MAX * 45;
const _: () = assert!(FIELDS_MAX <= DIGEST_COUNT_MAX);
const _: () = assert!(ENTRY_SIZE_MAX_BYTES <= u16::MAX as usize);
/// The field naming the capturing tenant.
pub const CAPTURED_BY: &str = "keten:capturedBy";
/// The field holding the fields beyond [`FIELDS_MAX`].
pub const REST: &str = "keten:rest";
const DIGEST_DOMAIN: &[u8] = b"keten-disclosure-v1";
const SALT_DOMAIN: &[u8] = b"keten-salt-v1";
const DECOY_DOMAIN: &[u8] = b"keten-decoy-v1";

/// The salt of the field `name` of the event with `seed`.
pub fn salt(seed: &[u8; 32], name: &str) -> [u8; 16] {
    let digest: [u8; 32] = Sha256::new()
        .chain_update(SALT_DOMAIN)
        .chain_update([0])
        .chain_update(seed)
        .chain_update(name.as_bytes())
        .finalize()
        .into();
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&digest[..16]);
    salt
}

fn decoy(seed: &[u8; 32], index: u32) -> [u8; 32] {
    Sha256::new()
        .chain_update(DECOY_DOMAIN)
        .chain_update([0])
        .chain_update(seed)
        .chain_update(index.to_be_bytes())
        .finalize()
        .into()
}

/// One field with its salt: what a viewer receives to check the field against the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disclosure {
    pub salt: [u8; 16],
    pub name: String,
    pub value: String,
}

impl Disclosure {
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(DIGEST_DOMAIN);
        hasher.update([0]);
        hasher.update(self.salt);
        hasher.update(self.name.as_bytes());
        hasher.update([0]);
        hasher.update(self.value.as_bytes());
        hasher.finalize().into()
    }
}

/// An event's commitment: its disclosures (kept private by the repository) and the entry (public).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitment {
    pub disclosures: Vec<Disclosure>,
    pub entry: Vec<u8>,
}

/// The fields of an event: (JSON pointer, leaf JSON text), in pointer order.
pub fn fields(event: &Event, namespaces: &[Namespace], tenant: &str) -> Vec<(String, String)> {
    fields_of_json(&crate::jsonld::event_to_json(event, namespaces), tenant)
}

/// The fields of an event given as its JSON-LD object (as the repository stores it).
pub fn fields_of_json(event: &Value, tenant: &str) -> Vec<(String, String)> {
    let mut value = event.clone();
    if let Value::Object(map) = &mut value {
        map.remove("@context");
        map.remove("recordTime");
    }
    let mut leaves = Vec::new();
    flatten("", &value, &mut leaves);
    leaves.push((CAPTURED_BY.to_owned(), Value::String(tenant.to_owned()).to_string()));
    leaves.sort();
    if leaves.len() > FIELDS_MAX {
        let rest: Vec<(String, String)> = leaves.split_off(FIELDS_MAX - 1);
        let rest_json = serde_json::to_string(&rest).unwrap_or_default();
        leaves.push((REST.to_owned(), rest_json));
    }
    leaves
}

fn flatten(pointer: &str, value: &Value, leaves: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                let token = key.replace('~', "~0").replace('/', "~1");
                flatten(&format!("{pointer}/{token}"), item, leaves);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (index, item) in items.iter().enumerate() {
                flatten(&format!("{pointer}/{index}"), item, leaves);
            }
        }
        leaf => leaves.push((pointer.to_owned(), leaf.to_string())),
    }
}

/// Every field of an event (its JSON-LD object) with its salt.
pub fn disclosures(event: &Value, tenant: &str, seed: &[u8; 32]) -> Vec<Disclosure> {
    fields_of_json(event, tenant)
        .into_iter()
        .map(|(name, value)| Disclosure { salt: salt(seed, &name), name, value })
        .collect()
}

/// Commits an event under its secret `seed` (random in production, fixed in tests).
pub fn commit(event: &Event, namespaces: &[Namespace], tenant: &str, seed: &[u8; 32]) -> Commitment {
    commit_json(&crate::jsonld::event_to_json(event, namespaces), tenant, seed)
}

/// Commits an event given as its JSON-LD object (as the repository stores it).
pub fn commit_json(event: &Value, tenant: &str, seed: &[u8; 32]) -> Commitment {
    let disclosures = disclosures(event, tenant, seed);
    let mut digests: Vec<[u8; 32]> = disclosures.iter().map(Disclosure::digest).collect();
    let padded = digests.len().max(DIGEST_COUNT_MIN).next_power_of_two().min(DIGEST_COUNT_MAX);
    let mut decoys = 0u32;
    while digests.len() < padded {
        digests.push(decoy(seed, decoys));
        decoys += 1;
    }
    let entry = entry_of(&mut digests);
    debug_assert!(entry.len() <= ENTRY_SIZE_MAX_BYTES);
    Commitment { entry, disclosures }
}

fn entry_of(digests: &mut [[u8; 32]]) -> Vec<u8> {
    digests.sort_unstable();
    let mut entry = String::with_capacity(ENTRY_HEADER.len() + 1 + digests.len() * 45);
    entry.push_str(ENTRY_HEADER);
    entry.push('\n');
    for digest in digests.iter() {
        entry.push_str(&STANDARD.encode(digest));
        entry.push('\n');
    }
    entry.into_bytes()
}

/// Why disclosures do not match an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitmentError {
    #[error("the entry is not a keten/epcis-event/v1 entry")]
    Format,
    #[error("field {0} is not committed in this entry (changed, or from another event)")]
    NotCommitted(String),
    #[error("field {0} is disclosed twice")]
    DuplicateField(String),
}

/// Checks that every disclosure is committed in `entry`; answers the disclosed fields.
pub fn verify<'d>(entry: &[u8], disclosures: &'d [Disclosure]) -> Result<Vec<(&'d str, &'d str)>, CommitmentError> {
    let text = std::str::from_utf8(entry).map_err(|_| CommitmentError::Format)?;
    let mut lines = text.split('\n');
    if lines.next() != Some(ENTRY_HEADER) || !text.ends_with('\n') {
        return Err(CommitmentError::Format);
    }
    let mut committed = std::collections::HashSet::new();
    for line in lines.filter(|line| !line.is_empty()) {
        let digest = STANDARD.decode(line).map_err(|_| CommitmentError::Format)?;
        if digest.len() != 32 {
            return Err(CommitmentError::Format);
        }
        committed.insert(digest);
    }
    let mut names = std::collections::HashSet::new();
    if let Some(twice) = disclosures.iter().find(|disclosure| !names.insert(disclosure.name.as_str())) {
        return Err(CommitmentError::DuplicateField(twice.name.clone()));
    }
    disclosures
        .iter()
        .map(|disclosure| match committed.contains(disclosure.digest().as_slice()) {
            true => Ok((disclosure.name.as_str(), disclosure.value.as_str())),
            false => Err(CommitmentError::NotCommitted(disclosure.name.clone())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        crate::parse_json_event(
            r#"{"@context":["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],"type":"ObjectEvent",
            "eventTime":"2026-11-23T05:00:00Z","eventTimeZoneOffset":"+01:00","action":"OBSERVE","bizStep":"shipping",
            "epcList":[],"quantityList":[{"epcClass":"https://id.gs1.org/01/07098765010009/10/LOT-2026-11","quantity":480,"uom":"KGM"}],
            "bizTransactionList":[{"type":"po","bizTransaction":"urn:epcglobal:cbv:bt:4012345000009:PO-12"}]}"#,
        )
        .expect("valid")
    }

    const SEED: [u8; 32] = [7; 32];

    #[test]
    fn fields_are_fine_grained_and_named_by_pointer() {
        let names: Vec<String> = fields(&event(), &[], "nordfjord").into_iter().map(|(name, _)| name).collect();
        assert!(names.contains(&"/quantityList/0/epcClass".to_owned()), "{names:?}");
        assert!(names.contains(&"/quantityList/0/quantity".to_owned()));
        assert!(names.contains(&"/bizTransactionList/0/bizTransaction".to_owned()));
        assert!(names.contains(&"keten:capturedBy".to_owned()));
        assert!(!names.iter().any(|name| name.starts_with("/@context") || name == "/recordTime"));
    }

    #[test]
    fn the_entry_hides_fields_and_shows_only_padded_digests() {
        let commitment = commit(&event(), &[], "nordfjord", &SEED);
        let text = String::from_utf8(commitment.entry.clone()).unwrap();
        assert!(text.starts_with("keten/epcis-event/v1\n"));
        for secret in ["PO-12", "480", "LOT-2026-11", "shipping", "nordfjord", "quantity"] {
            assert!(!text.contains(secret), "{secret} readable in the entry");
        }
        let digests = text.lines().count() - 1;
        assert!(digests.is_power_of_two() && digests >= DIGEST_COUNT_MIN, "padded digest count {digests}");
        // Deterministic for a given seed; another seed gives another entry for the same event.
        let again = commit(&event(), &[], "nordfjord", &SEED);
        assert_eq!(again.entry, commitment.entry);
        assert_ne!(commit(&event(), &[], "nordfjord", &[8; 32]).entry, commitment.entry);
        // Salts differ per field, and a salt reveals nothing of the others.
        let salts: std::collections::HashSet<[u8; 16]> =
            commitment.disclosures.iter().map(|disclosure| disclosure.salt).collect();
        assert_eq!(salts.len(), commitment.disclosures.len());
    }

    #[test]
    fn disclosed_fields_verify_and_swapped_ones_do_not() {
        let commitment = commit(&event(), &[], "nordfjord", &SEED);
        // A consumer page gets the product and lot, not the quantity or the order.
        let public: Vec<Disclosure> = commitment
            .disclosures
            .iter()
            .filter(|disclosure| {
                ["/quantityList/0/epcClass", "/bizStep", "/eventTime"].contains(&disclosure.name.as_str())
            })
            .cloned()
            .collect();
        let shown = verify(&commitment.entry, &public).expect("public fields verify");
        assert!(shown.contains(&("/bizStep", "\"shipping\"")));
        // Swapping a value, or moving a value to another field, breaks the check.
        let mut swapped = public.clone();
        swapped[0].value = "\"https://id.gs1.org/01/07098765010009/10/LOT-OTHER\"".into();
        assert!(matches!(verify(&commitment.entry, &swapped), Err(CommitmentError::NotCommitted(_))));
        let mut renamed = public.clone();
        renamed[0].name = "/quantityList/1/epcClass".into();
        assert!(verify(&commitment.entry, &renamed).is_err());
        // Guessing a hidden field without its salt fails: the quantity 480 with a wrong salt.
        let guess = Disclosure { salt: [0; 16], name: "/quantityList/0/quantity".into(), value: "480".into() };
        assert!(verify(&commitment.entry, &[guess]).is_err());
        assert_eq!(verify(b"something else\n", &public), Err(CommitmentError::Format));
        // A field disclosed twice (say, a second capturedBy) is refused, even with valid digests.
        let twice = vec![public[0].clone(), public[0].clone()];
        assert!(matches!(verify(&commitment.entry, &twice), Err(CommitmentError::DuplicateField(_))));
    }

    #[test]
    fn event_fields_cannot_take_the_repository_names_and_counts_are_coarse() {
        // An extension named like the repository's own field stays a pointer of its own.
        let event = crate::parse_json_event(
            r#"{"@context":["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",{"keten":"https://keten.example/"}],
            "type":"ObjectEvent","eventTime":"2026-11-23T05:00:00Z","eventTimeZoneOffset":"+01:00","action":"OBSERVE",
            "epcList":[],"keten:capturedBy":"someone-else"}"#,
        )
        .expect("valid");
        let namespaces = [crate::model::Namespace { prefix: "keten".into(), iri: "https://keten.example/".into() }];
        let names: Vec<String> = fields(&event, &namespaces, "nordfjord").into_iter().map(|(name, _)| name).collect();
        assert_eq!(names.iter().filter(|name| name.as_str() == "keten:capturedBy").count(), 1, "{names:?}");
        // 18 and 24 serials give entries of one size: the count shows only its order of magnitude.
        let shipment = |serials: usize| {
            let epcs: Vec<String> =
                (0..serials).map(|serial| format!("\"urn:epc:id:sgtin:7098765.001000.{serial}\"")).collect();
            let text = format!(
                r#"{{"type":"ObjectEvent","eventTime":"2026-11-23T05:00:00Z","eventTimeZoneOffset":"+01:00","action":"OBSERVE","epcList":[{}]}}"#,
                epcs.join(",")
            );
            commit(&crate::parse_json_event(&text).expect("valid"), &[], "nordfjord", &SEED).entry.len()
        };
        assert_eq!(shipment(18), shipment(24));
        assert!(shipment(24) < shipment(40));
    }

    #[test]
    fn the_largest_event_fits_an_entry_bundle() {
        let epcs: Vec<String> =
            (0..5000).map(|serial| format!("\"urn:epc:id:sgtin:7098765.001000.{serial}\"")).collect();
        let text = format!(
            r#"{{"type":"ObjectEvent","eventTime":"2026-11-23T05:00:00Z","eventTimeZoneOffset":"+01:00","action":"OBSERVE","epcList":[{}]}}"#,
            epcs.join(",")
        );
        let event = crate::parse_json_event(&text).expect("valid");
        let commitment = commit(&event, &[], "nordfjord", &SEED);
        assert_eq!(commitment.disclosures.len(), FIELDS_MAX);
        assert!(commitment.entry.len() <= ENTRY_SIZE_MAX_BYTES && ENTRY_SIZE_MAX_BYTES <= 65_535);
        assert_eq!(commitment.disclosures.last().map(|disclosure| disclosure.name.as_str()), Some("keten:rest"));
        assert_eq!(commitment.entry.iter().filter(|byte| **byte == b'\n').count() - 1, DIGEST_COUNT_MAX);
        verify(&commitment.entry, &commitment.disclosures).expect("all fields verify");
    }
}
