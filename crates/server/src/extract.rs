//! Request extractors: the caller's key, JSON bodies (strict), the Idempotency-Key.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use store::{Principal, Scope};

use crate::AppState;
use crate::problem::{FieldError, Problem};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// Fails with 403 unless the key holds `scope` (or one that includes it).
    pub fn require(&self, scope: Scope) -> Result<&Principal, Problem> {
        if self.0.has(scope) {
            Ok(&self.0)
        } else {
            Err(Problem::new("forbidden", format!("this operation needs the {} scope", scope.name())))
        }
    }

    /// Fails with 403 unless the key is an operator key.
    pub fn require_operator(&self) -> Result<&Principal, Problem> {
        if self.0.is_operator() {
            Ok(&self.0)
        } else {
            Err(Problem::new("forbidden", "this operation needs the operator scope"))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(Problem::unauthorized)?;
        let (scheme, key) = header.split_once(' ').ok_or_else(Problem::unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Problem::unauthorized());
        }
        match state.store.authenticate(key.trim()).await? {
            Some(principal) => Ok(Caller(principal)),
            None => Err(Problem::unauthorized()),
        }
    }
}

/// A JSON body parsed strictly (unknown fields rejected by the types), with the SHA-256 of the
/// request (method, path and body) for idempotency.
#[derive(Debug)]
pub struct JsonBody<T> {
    pub value: T,
    pub request_sha256: [u8; 32],
}

/// Turns serde's path into a JSON pointer.
fn pointer_of(path: &serde_path_to_error::Path) -> String {
    let mut pointer = String::new();
    for segment in path.iter() {
        let text = match segment {
            serde_path_to_error::Segment::Seq { index } => index.to_string(),
            serde_path_to_error::Segment::Map { key } | serde_path_to_error::Segment::Enum { variant: key } => {
                key.replace('~', "~0").replace('/', "~1")
            }
            serde_path_to_error::Segment::Unknown => continue,
        };
        pointer.push('/');
        pointer.push_str(&text);
    }
    pointer
}

/// The field a serde message names (`unknown field `x``, `missing field `x``), if any.
fn named_field(message: &str) -> Option<&str> {
    for prefix in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            return rest.split('`').next();
        }
    }
    None
}

/// Parses JSON bytes into `T`, or a problem naming the offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    if result.is_ok()
        && let Err(error) = deserializer.end()
    {
        return Err(Problem::new("malformed-json", format!("the body is not valid JSON: {error}")));
    }
    result.map_err(|error| {
        let mut pointer = pointer_of(error.path());
        let inner = error.inner();
        let message = inner.to_string();
        let detail = message.split(" at line ").next().unwrap_or(&message).to_owned();
        if inner.is_syntax() || inner.is_eof() {
            return Problem::new("malformed-json", format!("the body is not valid JSON: {message}"));
        }
        if let Some(field) = named_field(&detail)
            && !pointer.ends_with(&format!("/{field}"))
        {
            pointer.push('/');
            pointer.push_str(field);
        }
        Problem::new("validation-failed", format!("{pointer}: {detail}"))
            .with_errors(vec![FieldError { pointer, detail }])
    })
}

/// SHA-256 over method, path with query, and body: what a retry must repeat exactly.
pub fn request_sha256(method: &Method, path_and_query: &str, body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(path_and_query.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hasher.finalize().into()
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type =
            request.headers().get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if media_type != "application/json"
            && !(media_type.starts_with("application/") && media_type.ends_with("+json"))
        {
            return Err(Problem::new(
                "unsupported-media-type",
                format!("expected Content-Type: application/json, found {content_type:?}"),
            ));
        }
        let method = request.method().clone();
        let path = request.uri().path_and_query().map(|value| value.as_str().to_owned()).unwrap_or_default();
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new("payload-too-large", format!("the body exceeds {} bytes", crate::BODY_BYTES_MAX))
            } else {
                Problem::new("malformed-json", rejection.body_text())
            }
        })?;
        let value = parse_json(&bytes)?;
        Ok(JsonBody { value, request_sha256: request_sha256(&method, &path, &bytes) })
    }
}

/// An optional JSON body: none when the request has neither a Content-Type nor a body.
impl<T: DeserializeOwned> axum::extract::OptionalFromRequest<AppState> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        let headers = request.headers();
        let empty = headers.get(header::CONTENT_LENGTH).is_none_or(|length| length.as_bytes() == b"0")
            && headers.get(header::TRANSFER_ENCODING).is_none();
        if headers.get(header::CONTENT_TYPE).is_none() && empty {
            return Ok(None);
        }
        <JsonBody<T> as FromRequest<AppState>>::from_request(request, state).await.map(Some)
    }
}

/// The `Idempotency-Key` header, when present and well formed.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else { return Ok(IdempotencyKey(None)) };
        let text = value.to_str().unwrap_or("");
        let visible = text.bytes().all(|byte| (0x21..=0x7e).contains(&byte));
        if text.is_empty() || text.len() > store::IDEMPOTENCY_KEY_LENGTH_MAX || !visible {
            return Err(Problem::new(
                "invalid-idempotency-key",
                format!("the Idempotency-Key must be 1-{} visible ASCII characters", store::IDEMPOTENCY_KEY_LENGTH_MAX),
            ));
        }
        Ok(IdempotencyKey(Some(text.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        nested: Option<Nested>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        grams: f64,
    }

    fn check(body: &str, expected_code: &str, expected_pointer: Option<&str>) {
        let problem = parse_json::<Sample>(body.as_bytes()).unwrap_err();
        assert_eq!(problem.code(), expected_code, "{problem:?}");
        assert_eq!(problem.errors.first().map(|error| error.pointer.as_str()), expected_pointer, "{problem:?}");
    }

    #[test]
    fn json_errors_point_at_the_field() {
        check("{", "malformed-json", None);
        check("{\"name\": \"a\"} trailing", "malformed-json", None);
        check("{\"name\": 3}", "validation-failed", Some("/name"));
        check("{\"name\": \"a\", \"colour\": 1}", "validation-failed", Some("/colour"));
        check("{}", "validation-failed", Some("/name"));
        check("{\"name\": \"a\", \"nested\": {\"grams\": \"x\"}}", "validation-failed", Some("/nested/grams"));
        check("{\"name\": \"a\", \"nested\": {}}", "validation-failed", Some("/nested/grams"));
        assert!(parse_json::<Sample>(b"{\"name\": \"a\", \"nested\": {\"grams\": 1.5}}").is_ok());
    }
}
