//! Validation errors: where (a JSON pointer) and why (a reason naming the rule).

use std::fmt;

/// One problem of a document, located by a JSON pointer (RFC 6901) into the JSON-LD form of
/// the document (for XML input: into the equivalent JSON-LD structure, e.g.
/// `/epcisBody/eventList/0/action`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ValidationError {
    pub pointer: String,
    pub detail: String,
}

impl ValidationError {
    pub fn new(pointer: &str, detail: impl Into<String>) -> ValidationError {
        ValidationError { pointer: pointer.to_owned(), detail: detail.into() }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() { "(document)" } else { &self.pointer };
        write!(formatter, "{pointer}: {}", self.detail)
    }
}

/// All the problems of a rejected document; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} validation error(s), first: {}", .errors.len(), .errors.first().map(ToString::to_string).unwrap_or_default())]
pub struct ValidationErrors {
    pub errors: Vec<ValidationError>,
}

/// The most errors kept for one document; more are summarised in one last error.
pub const ERROR_COUNT_MAXIMUM: usize = 1000;

/// Collects errors while a document is read.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    list: Vec<ValidationError>,
    dropped: usize,
}

impl Errors {
    pub(crate) fn push(&mut self, pointer: &str, detail: impl Into<String>) {
        if self.list.len() < ERROR_COUNT_MAXIMUM {
            self.list.push(ValidationError::new(pointer, detail));
        } else {
            self.dropped += 1;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn into_vec(mut self) -> Vec<ValidationError> {
        if self.dropped > 0 {
            self.list.push(ValidationError::new(
                "",
                format!("{} more errors not listed (limit {ERROR_COUNT_MAXIMUM})", self.dropped),
            ));
        }
        self.list
    }
}

/// Appends a reference token to a JSON pointer, escaping `~` and `/`.
pub(crate) fn child_pointer(pointer: &str, token: &str) -> String {
    let escaped = token.replace('~', "~0").replace('/', "~1");
    format!("{pointer}/{escaped}")
}

pub(crate) fn index_pointer(pointer: &str, index: usize) -> String {
    format!("{pointer}/{index}")
}
