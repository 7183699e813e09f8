//! RFC 9457 problem details. Every error a client sees has this shape and a stable `type`.
//!
//! The `type` is a relative URI, `/problems/<code>`, resolved against the server's address; the
//! server answers it with a page describing the problem. The codes never change meaning; the list
//! is [`CATALOG`] (also in docs/problems.md).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use store::{StoreError, WriteError};
use utoipa::ToSchema;

/// One offending field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON pointer (RFC 6901) to the field in the request body, or the query parameter as `?name`.
    pub pointer: String,
    /// What is wrong with it.
    pub detail: String,
}

/// An RFC 9457 problem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// `readings-rejected`: what of the batch was stored all the same (`accepted`,
    /// `duplicates` as members of the problem).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub stored: Option<Box<StoredCounts>>,
}

/// Readings of a batch stored despite rejected records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct StoredCounts {
    /// Readings stored now.
    pub accepted: u64,
    /// Valid readings already stored before (same device, same device time), dropped.
    pub duplicates: u64,
}

/// Stable problem codes: (code, HTTP status, title, when it happens).
pub const CATALOG: &[(&str, u16, &str, &str)] = &[
    ("malformed-json", 400, "Malformed JSON", "The body is not syntactically valid JSON."),
    (
        "invalid-parameter",
        400,
        "Invalid query parameter",
        "A query parameter (cursor, limit, filter, date) is malformed, out of range or not one the operation takes (an operation that takes none refuses any query string).",
    ),
    (
        "invalid-digital-link",
        400,
        "Invalid GS1 Digital Link",
        "The URI breaks a rule of the GS1 Digital Link URI syntax; the detail names the rule.",
    ),
    (
        "invalid-scan-data",
        400,
        "Invalid scan data",
        "The scanned data is no GS1 element string, scanner output or Digital Link; the detail says why.",
    ),
    (
        "invalid-epcis",
        400,
        "Invalid EPCIS document",
        "An EPCIS document or event breaks the JSON schema, the XML binding or a CBV 2.0 rule; `errors` lists each with its JSON pointer. Nothing was stored.",
    ),
    (
        "invalid-proof-request",
        400,
        "Invalid proof request",
        "A transparency-log proof was asked for sizes that have none: an index not below the tree size, an old size above the new one, an old size of 0, or a size beyond the log.",
    ),
    (
        "invalid-cosignature",
        400,
        "Invalid cosignature",
        "The note sent to /log/cosignatures is not a checkpoint this log signed, or carries no valid cosignature of a witness the log is configured with.",
    ),
    (
        "invalid-idempotency-key",
        400,
        "Invalid Idempotency-Key",
        "The Idempotency-Key header is empty, longer than 255 characters, or not visible ASCII.",
    ),
    (
        "insufficient-stock",
        409,
        "Insufficient stock",
        "The order (or movement) needs more eligible units than there are: `errors` names each short line with the units wanted and eligible; the detail lists why each site was passed over (status, zone, shelf life, no route in time). Nothing was reserved. Also a count below the units that orders being picked or packed hold.",
    ),
    (
        "invalid-transition",
        409,
        "Invalid order transition",
        "The order cannot move to that status from its current one (e.g. shipped before packed, cancelled after shipping), another step or a recall moved it meanwhile (read it and send the step again), its hold expired (or ended while it was flagged, for a new allocation), or the transition's data does not fit (one SSCC per shipment, shipped units per pick, `at_pickup_point` for an order to an address, `delivered` for an order to a pickup point before `at_pickup_point`, a courier's hand-over with the other status than the stop's).",
    ),
    (
        "lot-conflict",
        409,
        "Lot conflict",
        "A lot is announced or received with another expiry date than the one stored for it (a lot has one expiry), or received (or returned) with another status than the one stored in that zone, or a recalled lot's status would change, or a lot past its expiry date would be made available.",
    ),
    (
        "count-stale",
        409,
        "Count stale",
        "A count's `expected_on_hand` is not the balance's on-hand any more: stock moved since the count began (a receipt, a shipment, a transfer). Count again. Nothing changed.",
    ),
    (
        "lot-unavailable",
        409,
        "Lot unavailable",
        "The order cannot ship: a lot it picked is on hold, in quarantine, expired (by status or past its expiry date) or recalled. Make the lot available again or cancel the order (past its expiry date, only cancelling helps). Nothing changed.",
    ),
    (
        "already-received",
        409,
        "Already received",
        "The pallets of the advance shipping notice (or the named ones) were received before.",
    ),
    (
        "already-dispatched",
        409,
        "Already dispatched",
        "A shipment of the wave is on a route already (another dispatch of the same orders ran first).",
    ),
    (
        "alarm-acknowledged",
        409,
        "Alarm already acknowledged",
        "The alarm is acknowledged or cleared already: it takes one acknowledgement.",
    ),
    (
        "assignment-out-of-order",
        409,
        "Assignment out of order",
        "A device's new assignment must start after its latest one: its history is appended, never rewritten.",
    ),
    (
        "vehicle-busy",
        409,
        "Vehicle busy",
        "A vehicle of the wave is on another route then (another wave planned it meanwhile); plan the wave again.",
    ),
    (
        "no-vehicle",
        422,
        "No vehicle on shift",
        "The depot has no vehicle whose courier's shift leaves time in this wave.",
    ),
    (
        "readings-rejected",
        422,
        "Readings rejected",
        "Some records of a readings batch are not valid readings of the tenant's devices; `errors` names each by its \
         pointer, and the valid rest was stored (`accepted`, `duplicates`).",
    ),
    (
        "zone-unsuitable",
        422,
        "Zone unsuitable",
        "The zone's temperature range does not keep the product's class in range (e.g. chilled fish into an ambient hall).",
    ),
    (
        "unauthorized",
        401,
        "Unauthorized",
        "No API key, or the key is malformed, unknown or revoked. Send `Authorization: Bearer <key>`.",
    ),
    (
        "forbidden",
        403,
        "Forbidden",
        "The key is valid but lacks the scope this operation needs (also: a courier's key posting an order step other than the hand-over, or driving no vehicle).",
    ),
    (
        "not-found",
        404,
        "Not found",
        "No such resource for this tenant (other tenants' resources are not found either).",
    ),
    (
        "not-acceptable",
        406,
        "Not acceptable",
        "The request asks for an EPCIS or CBV version (GS1-EPCIS-Version, GS1-CBV-Version and their Min/Max) other than 2.0.",
    ),
    ("method-not-allowed", 405, "Method not allowed", "The resource exists but does not support this method."),
    (
        "conflict",
        409,
        "Conflict",
        "The resource already exists; or an SSCC already names a pallet (an ASN announcing one the merchant announced before, packing onto one the network's events name or one of the merchant's ASNs announces); or the orders packed with a recall's lots kept changing while it was written (send it again).",
    ),
    (
        "in-use",
        409,
        "Resource in use",
        "The resource is still referred to by another and cannot be deleted, or changed so (a zone's range, a product's temperature class, that would not keep the stock held there).",
    ),
    (
        "limit-reached",
        409,
        "Limit reached",
        "A documented limit (keys per tenant, links per product) would be exceeded.",
    ),
    ("payload-too-large", 413, "Payload too large", "The body exceeds the request body limit."),
    (
        "query-too-large",
        413,
        "Query too large",
        "The EPCIS query matches more events than its maxEventCount (the standard's QueryTooLargeException).",
    ),
    (
        "unsupported-media-type",
        415,
        "Unsupported media type",
        "The body must be sent with `Content-Type: application/json`.",
    ),
    (
        "validation-failed",
        422,
        "Validation failed",
        "The JSON is well formed but fields are missing, of the wrong type, unknown, or invalid; `errors` lists each. Also: an order's pickup point that is not a pickup point, store or pharmacy; an ASN or transfer to a site that keeps no stock.",
    ),
    (
        "unknown-reference",
        422,
        "Unknown reference",
        "A field refers to a party, location or zone that does not exist for this tenant; or a recall names a lot that no stock, inbound pallet, recall or event of the network names.",
    ),
    (
        "idempotency-key-reused",
        422,
        "Idempotency-Key reused",
        "The Idempotency-Key was used before with a different request.",
    ),
    ("overloaded", 503, "Overloaded", "The write queue is full; retry after the time in Retry-After."),
    (
        "unavailable",
        503,
        "Service unavailable",
        "The database cannot be reached, the server is shutting down, or its writer failed (it then stops).",
    ),
    (
        "internal",
        500,
        "Internal error",
        "An unexpected error; it was logged. Nothing was stored unless the request was acknowledged.",
    ),
];

impl Problem {
    /// A problem of a catalogued code.
    pub fn new(code: &'static str, detail: impl Into<String>) -> Problem {
        let (status, title) = CATALOG
            .iter()
            .find(|(known, ..)| *known == code)
            .map(|(_, status, title, _)| (*status, *title))
            .unwrap_or((500, "Internal error"));
        debug_assert!(CATALOG.iter().any(|(known, ..)| *known == code), "uncatalogued problem code {code}");
        Problem {
            problem_type: format!("/problems/{code}"),
            title: title.to_owned(),
            status,
            detail: detail.into(),
            errors: Vec::new(),
            stored: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Problem {
        self.errors = errors;
        self
    }

    pub fn field(code: &'static str, pointer: impl Into<String>, detail: impl Into<String>) -> Problem {
        let detail = detail.into();
        let pointer = pointer.into();
        Problem::new(code, format!("{pointer}: {detail}")).with_errors(vec![FieldError { pointer, detail }])
    }

    pub fn unauthorized() -> Problem {
        Problem::new("unauthorized", "a valid API key is required: send Authorization: Bearer <key>")
    }

    pub fn not_found(what: impl std::fmt::Display) -> Problem {
        Problem::new("not-found", format!("{what} not found"))
    }

    pub fn internal(error: impl std::fmt::Display) -> Problem {
        tracing::error!(%error, "internal error");
        Problem::new("internal", "an unexpected error occurred; it has been logged")
    }

    pub fn code(&self) -> &str {
        self.problem_type.trim_start_matches("/problems/")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Problem {
        if error.is_unavailable() {
            tracing::warn!(%error, "database unavailable");
            return Problem::new("unavailable", "the database is not reachable or the server is shutting down");
        }
        if let StoreError::Limit(detail) = error {
            return Problem::new("limit-reached", detail);
        }
        Problem::internal(error)
    }
}

impl From<WriteError> for Problem {
    fn from(error: WriteError) -> Problem {
        match error {
            WriteError::Conflict(what) => Problem::new("conflict", format!("{what} already exists")),
            WriteError::NotFound => Problem::new("not-found", "not found"),
            WriteError::UnknownReference { field, value } => {
                Problem::field("unknown-reference", field, format!("{value:?} does not exist"))
            }
            WriteError::InUse(what, by) => Problem::new("in-use", format!("{what} is still referred to by {by}")),
            WriteError::IdempotencyMismatch => {
                Problem::new("idempotency-key-reused", "this Idempotency-Key was used for a different request")
            }
            WriteError::Overloaded(queue) => {
                Problem::new("overloaded", format!("the write queue is full ({queue} writes)"))
            }
            WriteError::Stopped => Problem::new("unavailable", "the server is shutting down"),
            WriteError::WriterFailed => Problem::new(
                "unavailable",
                "this node's writer stopped after an internal error (see its log); it takes no writes until it is restarted",
            ),
            WriteError::Limit(limit) => Problem::new("limit-reached", limit),
            // At most FIELD_ERRORS_MAX listed, as the edge's checks list them; the rest counted.
            WriteError::Refused { code, detail, mut errors } => {
                let omitted = errors.len().saturating_sub(crate::dto::FIELD_ERRORS_MAX);
                errors.truncate(crate::dto::FIELD_ERRORS_MAX);
                let detail = if omitted > 0 { format!("{detail}; and {omitted} more") } else { detail };
                Problem::new(code, detail).with_errors(crate::fulfilment::field_errors(errors))
            }
            WriteError::Unavailable(error) => {
                tracing::error!(%error, "database unavailable during a write");
                Problem::new(
                    "unavailable",
                    "the database is unavailable; the write was not stored (retry with the same Idempotency-Key)",
                )
            }
            WriteError::Database(error) => Problem::internal(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write's refusal lists at most `FIELD_ERRORS_MAX` field errors and counts the rest.
    #[test]
    fn a_refusal_lists_at_most_the_field_errors_a_problem_may() {
        let errors = |count: usize| (0..count).map(|line| (format!("/lines/{line}"), "short".to_owned())).collect();
        let many: Problem =
            WriteError::Refused { code: "insufficient-stock", detail: "no stock".into(), errors: errors(150) }.into();
        assert_eq!(many.errors.len(), crate::dto::FIELD_ERRORS_MAX);
        assert_eq!(many.errors.last().map(|error| error.pointer.as_str()), Some("/lines/99"));
        assert_eq!(many.detail, "no stock; and 50 more");
        let few: Problem =
            WriteError::Refused { code: "insufficient-stock", detail: "no stock".into(), errors: errors(100) }.into();
        assert_eq!((few.errors.len(), few.detail.as_str()), (100, "no stock"));
    }

    #[test]
    fn every_code_is_documented_with_its_status() {
        let documentation = include_str!("../../../docs/problems.md");
        for (code, status, ..) in CATALOG {
            let row = format!("| `/problems/{code}` | {status} |");
            assert!(documentation.contains(&row), "docs/problems.md lacks {row}");
        }
        let documented_rows = documentation.lines().filter(|line| line.starts_with("| `/problems/")).count();
        assert_eq!(documented_rows, CATALOG.len(), "docs/problems.md lists a code the catalog lacks");
    }

    #[test]
    fn problems_carry_their_catalogued_status_and_title() {
        let problem = Problem::field("unknown-reference", "/from", "\"123\" does not exist");
        assert_eq!(
            (problem.status, problem.title.as_str(), problem.code()),
            (422, "Unknown reference", "unknown-reference")
        );
        assert_eq!(
            problem.errors,
            vec![FieldError { pointer: "/from".into(), detail: "\"123\" does not exist".into() }]
        );
        let body: serde_json::Value = serde_json::to_value(Problem::new("conflict", "x")).unwrap();
        assert!(body.get("errors").is_none(), "an empty error list is left out");
        assert_eq!(body["type"], "/problems/conflict");
    }
}
