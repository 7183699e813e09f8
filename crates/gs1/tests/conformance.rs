//! Conformance of the crate's AI table with the GS1 Barcode Syntax Dictionary.
//!
//! Reads `$KETEN_CONFORMANCE_DIR/gs1/gs1-syntax-dictionary/gs1-syntax-dictionary.txt` (by default
//! `shared/conformance` beside the repository) with a parser of its own, independent of the
//! script that generated `src/ai_table.rs`, and compares the two AI by AI.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use gs1::application_identifier::{self, ApplicationIdentifierDefinition};

const DICTIONARY_RELATIVE_PATH: &str = "gs1/gs1-syntax-dictionary/gs1-syntax-dictionary.txt";

/// The dictionary text, or `None` (after saying so loudly) when the corpus is absent outside CI.
fn read_dictionary() -> Option<String> {
    let conformance_directory = match std::env::var_os("KETEN_CONFORMANCE_DIR") {
        Some(directory) => PathBuf::from(directory),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"),
    };
    let path = conformance_directory.join(DICTIONARY_RELATIVE_PATH);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(error) => {
            let message = format!("SKIPPED: conformance corpus not found at {} ({error})", path.display());
            let in_ci = std::env::var("CI").is_ok_and(|value| value == "true");
            assert!(!in_ci, "{message}; CI=true requires the corpus");
            // Written to the process's stderr directly so that the test harness does not capture it.
            let _ = writeln!(std::io::stderr(), "\n{message}\n");
            None
        }
    }
}

/// One dictionary entry, in the dictionary's own vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    title: String,
    flags: String,
    /// `(letter, minimum, maximum, optional, linter names)`.
    components: Vec<(char, usize, usize, bool, Vec<String>)>,
    requires: Vec<Vec<Vec<String>>>,
    excludes: Vec<String>,
    primary_key: Option<Vec<Vec<String>>>,
}

fn parse_component(token: &str) -> (char, usize, usize, bool, Vec<String>) {
    let mut parts = token.split(',');
    let mut kind = parts.next().expect("component has a type");
    let optional = kind.starts_with('[');
    if optional {
        kind = kind.trim_start_matches('[').trim_end_matches(']');
    }
    let letter = kind.chars().next().expect("component has a letter");
    let length = &kind[1..];
    let (minimum, maximum) = match length.strip_prefix("..") {
        Some(maximum) => (1, maximum.parse().expect("length")),
        None => {
            let fixed = length.parse().expect("length");
            (fixed, fixed)
        }
    };
    (letter, minimum, maximum, optional, parts.map(str::to_owned).collect())
}

fn split_list(list: &str, separator: char) -> Vec<String> {
    list.split(separator).map(str::to_owned).collect()
}

/// Every AI of the dictionary, ranges expanded, keyed by code.
fn parse_dictionary(text: &str) -> BTreeMap<String, Entry> {
    let mut entries = BTreeMap::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (specification, title) = trimmed.split_once('#').unwrap_or((trimmed, ""));
        let mut tokens: Vec<&str> = specification.split_whitespace().collect();
        let codes = tokens.remove(0);
        let mut flags = String::new();
        if tokens.first().is_some_and(|token| {
            token.chars().all(|character| "*?!\"$%&'()+,-./:;<=>@[\\]^_`{|}~".contains(character))
                && !token.starts_with('[')
        }) {
            flags = tokens.remove(0).to_owned();
        }
        let mut entry = Entry {
            title: title.trim().to_owned(),
            flags,
            components: Vec::new(),
            requires: Vec::new(),
            excludes: Vec::new(),
            primary_key: None,
        };
        for token in tokens {
            if let Some(list) = token.strip_prefix("req=") {
                entry.requires.push(list.split(',').map(|group| split_list(group, '+')).collect());
            } else if let Some(list) = token.strip_prefix("ex=") {
                entry.excludes.extend(split_list(list, ','));
            } else if token == "dlpkey" {
                entry.primary_key = Some(Vec::new());
            } else if let Some(list) = token.strip_prefix("dlpkey=") {
                entry.primary_key = Some(list.split('|').map(|sequence| split_list(sequence, ',')).collect());
            } else {
                assert!(
                    token.trim_start_matches('[').starts_with(['N', 'X', 'Y', 'Z']),
                    "unknown token {token:?} in {line:?}"
                );
                entry.components.push(parse_component(token));
            }
        }
        let (first, last) = codes.split_once('-').unwrap_or((codes, codes));
        let width = first.len();
        let first_number: u32 = first.parse().expect("numeric AI");
        let last_number: u32 = last.parse().expect("numeric AI");
        for number in first_number..=last_number {
            entries.insert(format!("{number:0width$}"), entry.clone());
        }
    }
    entries
}

/// The table's entry, in the dictionary's vocabulary.
fn entry_of(definition: &ApplicationIdentifierDefinition) -> Entry {
    let mut flags = String::new();
    if definition.predefined_length {
        flags.push('*');
    }
    if definition.digital_link_data_attribute {
        flags.push('?');
    }
    let to_strings = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect::<Vec<_>>();
    Entry {
        title: definition.title.to_owned(),
        flags,
        components: definition
            .components
            .iter()
            .map(|component| {
                (
                    component.character_set.letter(),
                    usize::from(component.length_minimum),
                    usize::from(component.length_maximum),
                    component.optional,
                    component.linters.iter().map(|linter| linter.dictionary_name().to_owned()).collect(),
                )
            })
            .collect(),
        requires: definition
            .requires
            .iter()
            .map(|requirement| requirement.iter().map(|group| to_strings(group)).collect())
            .collect(),
        excludes: to_strings(definition.excludes),
        primary_key: definition
            .digital_link_primary_key
            .map(|sequences| sequences.iter().map(|sequence| to_strings(sequence)).collect()),
    }
}

fn normalise_flags(flags: &str) -> String {
    let mut kept: Vec<char> = flags.chars().filter(|flag| *flag == '*' || *flag == '?').collect();
    kept.sort_unstable();
    kept.into_iter().collect()
}

#[test]
fn ai_table_matches_the_syntax_dictionary_ai_by_ai() {
    let Some(text) = read_dictionary() else {
        return;
    };
    let dictionary = parse_dictionary(&text);
    assert!(dictionary.len() > 500, "dictionary parsed into {} AIs only", dictionary.len());
    let mut differences = Vec::new();
    for (code, expected) in &dictionary {
        let Some(definition) = application_identifier::lookup(code) else {
            differences.push(format!("({code}) is missing from the table"));
            continue;
        };
        let mut actual = entry_of(definition);
        actual.flags = normalise_flags(&actual.flags);
        let mut expected = expected.clone();
        expected.flags = normalise_flags(&expected.flags);
        if actual != expected {
            differences.push(format!("({code}) differs:\n  dictionary: {expected:?}\n  table:      {actual:?}"));
        }
    }
    for definition in application_identifier::application_identifiers() {
        if !dictionary.contains_key(definition.code) {
            differences.push(format!("({}) is in the table but not in the dictionary", definition.code));
        }
    }
    assert!(differences.is_empty(), "{} differences:\n{}", differences.len(), differences.join("\n"));
    println!("{} AIs match the GS1 Barcode Syntax Dictionary", dictionary.len());
}

#[test]
fn every_dictionary_linter_is_implemented() {
    let Some(text) = read_dictionary() else {
        return;
    };
    for entry in parse_dictionary(&text).values() {
        for (_, _, _, _, linters) in &entry.components {
            for name in linters {
                assert!(
                    application_identifier::Linter::from_dictionary_name(name).is_some(),
                    "linter {name} is not implemented"
                );
            }
        }
    }
}
