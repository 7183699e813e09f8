//! Browser sessions for the merchant portal and the operator console: an API key is exchanged
//! once for a session cookie, and forms carry a CSRF token.
//!
//! The cookie is `<payload>.<HMAC-SHA256>` (base64url), payload `v1|tenant|key id|expires|csrf`,
//! keyed by a secret derived from the log's signing key (every node of one Keten shares it). It
//! is `HttpOnly`, `SameSite=Strict`, `Path=/`, and when the public URL is HTTPS `Secure` with the
//! `__Host-` name prefix (no other host can set it). Every
//! request checks the signature, the expiry and that the key is still not revoked (revoking the
//! key ends its sessions). Forms carry the session's CSRF token; the sign-in form, before any
//! session, a double-submit token (a cookie and a field that must match).

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use network::TenantId;
use sha2::{Digest as _, Sha256};
use store::{Principal, Store, constant_time_equal};

use crate::subscriptions::hmac_sha256;

pub const SESSION_COOKIE: &str = "keten_session";
pub const SIGN_IN_COOKIE: &str = "keten_sign_in";

/// A cookie's name: behind TLS with the `__Host-` prefix, so that no other host (a sibling
/// subdomain) can set it, and the browser keeps it only as `Secure` and `Path=/` without a domain.
pub fn cookie_name(name: &str, secure: bool) -> String {
    if secure { format!("__Host-{name}") } else { name.to_owned() }
}
/// How long a session lasts.
pub const SESSION_SECONDS: i64 = 8 * 3600;
/// The largest cookie header read.
const COOKIE_HEADER_BYTES_MAX: usize = 8192;

/// The secret sessions are signed with, derived from the log's signing key.
pub fn secret(log_key_text: &str) -> [u8; 32] {
    Sha256::new().chain_update(b"keten-session-v1\0").chain_update(log_key_text.as_bytes()).finalize().into()
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
}

fn random_token() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter(|text| text.len() <= COOKIE_HEADER_BYTES_MAX)
        .flat_map(|text| text.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

fn attributes(secure: bool, max_age_seconds: i64) -> String {
    format!("; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{}", if secure { "; Secure" } else { "" })
}

/// `Set-Cookie` for a new session of `principal`, and its CSRF token.
pub fn start(secret: &[u8; 32], principal: &Principal, now_unix_s: i64, secure: bool) -> (HeaderValue, String) {
    let csrf = random_token();
    let payload =
        format!("v1|{}|{}|{}|{csrf}", principal.tenant_id.as_str(), principal.key_id, now_unix_s + SESSION_SECONDS);
    let signature = hmac_sha256(secret, payload.as_bytes());
    let value = format!("{}.{}", BASE64URL.encode(&payload), BASE64URL.encode(signature));
    let cookie = format!("{}={value}{}", cookie_name(SESSION_COOKIE, secure), attributes(secure, SESSION_SECONDS));
    (HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static("keten_session=")), csrf)
}

/// `Set-Cookie` that ends the session in the browser.
pub fn end(secure: bool) -> HeaderValue {
    HeaderValue::from_str(&format!("{}={}", cookie_name(SESSION_COOKIE, secure), attributes(secure, 0)))
        .unwrap_or(HeaderValue::from_static("keten_session="))
}

/// The session's (tenant, key id, CSRF) if the cookie is signed by `secret` and not expired.
fn verify(secret: &[u8; 32], value: &str, now_unix_s: i64) -> Option<(TenantId, String, String)> {
    let (payload, signature) = value.split_once('.')?;
    let payload = BASE64URL.decode(payload).ok()?;
    let signature = BASE64URL.decode(signature).ok()?;
    let expected = hmac_sha256(secret, &payload);
    if !constant_time_equal(&expected, &signature) {
        return None;
    }
    let text = String::from_utf8(payload).ok()?;
    let mut parts = text.split('|');
    let (version, tenant, key_id, expires, csrf) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "v1" || parts.next().is_some() || expires.parse::<i64>().ok()? <= now_unix_s {
        return None;
    }
    Some((TenantId::parse_any(tenant).ok()?, key_id.to_owned(), csrf.to_owned()))
}

/// The request's session, if its cookie is valid and its key not revoked.
pub async fn current(
    store: &Store,
    secret: &[u8; 32],
    headers: &HeaderMap,
    secure: bool,
) -> Result<Option<Session>, store::StoreError> {
    let Some(value) = cookie(headers, &cookie_name(SESSION_COOKIE, secure)) else { return Ok(None) };
    let Some((tenant, key_id, csrf)) = verify(secret, value, jiff::Timestamp::now().as_second()) else {
        return Ok(None);
    };
    let Some(key) = store.key(&tenant, &key_id).await? else { return Ok(None) };
    if key.revoked_unix_ms.is_some() {
        return Ok(None);
    }
    Ok(Some(Session {
        principal: Principal { tenant_id: key.tenant_id, key_id: key.key_id, scopes: key.scopes },
        csrf,
    }))
}

/// A fresh double-submit token for the sign-in form, and its `Set-Cookie`.
pub fn sign_in_token(secure: bool) -> (HeaderValue, String) {
    let token = random_token();
    let cookie = format!("{}={token}{}", cookie_name(SIGN_IN_COOKIE, secure), attributes(secure, 3600));
    (HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static("keten_sign_in=")), token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal() -> Principal {
        Principal { tenant_id: TenantId::parse_any("nordfjord").unwrap(), key_id: "k1".into(), scopes: Vec::new() }
    }

    fn value_of(cookie: &HeaderValue) -> String {
        let text = cookie.to_str().unwrap();
        text.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
    }

    #[test]
    fn sessions_verify_until_they_expire_and_only_under_their_secret() {
        let secret = secret("PRIVATE+KEY+example");
        let (cookie, csrf) = start(&secret, &principal(), 1_000, false);
        let text = cookie.to_str().unwrap();
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Strict") && !text.contains("Secure"));
        let value = value_of(&cookie);
        let (tenant, key_id, token) = verify(&secret, &value, 1_001).unwrap();
        assert_eq!((tenant.as_str(), key_id.as_str(), token.as_str()), ("nordfjord", "k1", csrf.as_str()));
        assert!(verify(&secret, &value, 1_000 + SESSION_SECONDS).is_none(), "expired");
        assert!(verify(&super::secret("another key"), &value, 1_001).is_none(), "another secret");
        // A payload changed to another tenant no longer matches its signature.
        let (payload, signature) = value.split_once('.').unwrap();
        let forged = String::from_utf8(BASE64URL.decode(payload).unwrap()).unwrap().replace("nordfjord", "pharmapol");
        assert!(verify(&secret, &format!("{}.{signature}", BASE64URL.encode(forged)), 1_001).is_none());
        let secure = start(&secret, &principal(), 0, true).0.to_str().unwrap().to_owned();
        assert!(
            secure.starts_with("__Host-keten_session=") && secure.contains("; Secure") && secure.contains("Path=/")
        );
        assert!(!secure.contains("Domain"), "a __Host- cookie has no domain");
        assert!(sign_in_token(true).0.to_str().unwrap().starts_with("__Host-keten_sign_in="));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; keten_session=abc.def; keten_sign_in=t"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc.def"));
        assert_eq!(cookie(&headers, SIGN_IN_COOKIE), Some("t"));
        assert_eq!(cookie(&headers, "keten"), None);
    }
}
