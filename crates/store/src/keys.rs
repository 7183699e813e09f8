//! API keys: random, shown once, stored as SHA-256, revocable, with scopes.
//!
//! A key reads `ktn_<tenant>_<key id>_<secret>`: the tenant and key id locate the stored row by its
//! primary key (so a key lookup never leaves its tenant's shard); the secret is 32 random bytes in
//! hex, of which only the SHA-256 is stored. Keys are high-entropy random values, so a plain hash
//! (no salt, no slow KDF) resists guessing; comparison is constant-time.

use std::fmt;

use network::TenantId;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::backend::on_pool;
use crate::{Store, StoreError, parse_stored};

/// What a key may do. `tenant:admin` includes `tenant:write`, which includes `tenant:read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The platform operator (keys of the `network` tenant only).
    Operator,
    TenantAdmin,
    TenantWrite,
    TenantRead,
    /// A sensor sending readings.
    Device,
    /// A courier of the network: their vehicle's route, its stops (keys of the `network` tenant
    /// only).
    Courier,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("unknown scope {0:?}: use operator, tenant:admin, tenant:write, tenant:read, device or courier")]
    Unknown(String),
    #[error("the operator and courier scopes belong to keys of the network tenant only")]
    OperatorOutsideNetwork,
    #[error("a key needs at least one scope")]
    Empty,
}

impl Scope {
    pub const ALL: [Scope; 6] =
        [Scope::Operator, Scope::TenantAdmin, Scope::TenantWrite, Scope::TenantRead, Scope::Device, Scope::Courier];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Operator => "operator",
            Scope::TenantAdmin => "tenant:admin",
            Scope::TenantWrite => "tenant:write",
            Scope::TenantRead => "tenant:read",
            Scope::Device => "device",
            Scope::Courier => "courier",
        }
    }

    pub fn parse(text: &str) -> Result<Scope, ScopeError> {
        Scope::ALL.into_iter().find(|scope| scope.name() == text).ok_or_else(|| ScopeError::Unknown(text.to_owned()))
    }

    /// Parses a list of scopes for a key of `tenant_id`, sorted and without duplicates.
    pub fn parse_list<'a>(
        tenant_id: &TenantId,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<Scope>, ScopeError> {
        let mut scopes = Vec::new();
        for name in names {
            let scope = Scope::parse(name.trim())?;
            if matches!(scope, Scope::Operator | Scope::Courier) && !tenant_id.is_network() {
                return Err(ScopeError::OperatorOutsideNetwork);
            }
            scopes.push(scope);
        }
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(ScopeError::Empty);
        }
        Ok(scopes)
    }

    /// Whether holding `self` grants `needed`.
    pub fn grants(self, needed: Scope) -> bool {
        match (self, needed) {
            (held, needed) if held == needed => true,
            (Scope::TenantAdmin, Scope::TenantWrite | Scope::TenantRead) => true,
            (Scope::TenantWrite, Scope::TenantRead) => true,
            _ => false,
        }
    }

    pub(crate) fn join(scopes: &[Scope]) -> String {
        scopes.iter().map(|scope| scope.name()).collect::<Vec<_>>().join(" ")
    }
}

/// Who is calling: the tenant and key an authenticated request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub key_id: String,
    pub scopes: Vec<Scope>,
}

impl Principal {
    pub fn has(&self, needed: Scope) -> bool {
        self.scopes.iter().any(|held| held.grants(needed))
    }

    pub fn is_operator(&self) -> bool {
        self.tenant_id.is_network() && self.scopes.contains(&Scope::Operator)
    }
}

/// A freshly minted key: the full secret text exists only in this value.
pub struct ApiKeySecret {
    pub tenant_id: TenantId,
    pub key_id: String,
    pub secret_sha256: [u8; 32],
    text: String,
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ApiKeySecret({}/{}, secret hidden)", self.tenant_id, self.key_id)
    }
}

const KEY_PREFIX: &str = "ktn";
const KEY_ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

impl ApiKeySecret {
    pub fn generate(tenant_id: &TenantId) -> ApiKeySecret {
        let mut random = [0u8; KEY_ID_BYTES + SECRET_BYTES];
        rand::rng().fill_bytes(&mut random);
        let key_id = hex::encode(&random[..KEY_ID_BYTES]);
        let secret = hex::encode(&random[KEY_ID_BYTES..]);
        let secret_sha256: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let text = format!("{KEY_PREFIX}_{tenant_id}_{key_id}_{secret}");
        ApiKeySecret { tenant_id: tenant_id.clone(), key_id, secret_sha256, text }
    }

    /// The key as the user must present it. Show it once.
    pub fn reveal(&self) -> &str {
        &self.text
    }
}

/// A key as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub tenant_id: TenantId,
    pub key_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_unix_ms: i64,
    pub revoked_unix_ms: Option<i64>,
}

struct PresentedKey<'a> {
    tenant: &'a str,
    key_id: &'a str,
    secret: &'a str,
}

fn split_key(text: &str) -> Option<PresentedKey<'_>> {
    let mut parts = text.split('_');
    let (prefix, tenant, key_id, secret) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if prefix != KEY_PREFIX
        || parts.next().is_some()
        || key_id.len() != KEY_ID_BYTES * 2
        || secret.len() != SECRET_BYTES * 2
    {
        return None;
    }
    Some(PresentedKey { tenant, key_id, secret })
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter().zip(right).fold(0u8, |difference, (a, b)| difference | (a ^ b)) == 0
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    tenant_id: String,
    key_id: String,
    name: String,
    scopes: String,
    secret_sha256: Vec<u8>,
    created_unix_ms: i64,
    revoked_unix_ms: Option<i64>,
}

impl KeyRow {
    fn into_info(self) -> Result<KeyInfo, StoreError> {
        let tenant_id = parse_stored("tenant", &self.tenant_id, TenantId::parse_any)?;
        let scopes = self
            .scopes
            .split(' ')
            .map(|name| parse_stored("scope", name, Scope::parse))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeyInfo {
            tenant_id,
            key_id: self.key_id,
            name: self.name,
            scopes,
            created_unix_ms: self.created_unix_ms,
            revoked_unix_ms: self.revoked_unix_ms,
        })
    }
}

const KEY_COLUMNS: &str = "tenant_id, key_id, name, scopes, secret_sha256, created_unix_ms, revoked_unix_ms";

impl Store {
    /// The principal for a presented key, or `None` when the key is malformed, unknown or revoked.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>, StoreError> {
        let Some(parts) = split_key(presented) else { return Ok(None) };
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND key_id = $2");
        let row: Option<KeyRow> = on_pool!(self.pools(), pool => sqlx::query_as(&sql).bind(parts.tenant).bind(parts.key_id).fetch_optional(pool).await)?;
        let Some(row) = row else { return Ok(None) };
        let presented_sha256 = Sha256::digest(parts.secret.as_bytes());
        if row.revoked_unix_ms.is_some() || !constant_time_equal(&row.secret_sha256, &presented_sha256) {
            return Ok(None);
        }
        let info = row.into_info()?;
        Ok(Some(Principal { tenant_id: info.tenant_id, key_id: info.key_id, scopes: info.scopes }))
    }

    /// The keys of a tenant, newest first (at most [`crate::PAGE_LIMIT_MAX`]).
    pub async fn keys(&self, tenant_id: &TenantId) -> Result<Vec<KeyInfo>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_unix_ms DESC, key_id LIMIT $2"
        );
        let rows: Vec<KeyRow> = on_pool!(self.pools(), pool => sqlx::query_as(&sql).bind(tenant_id.as_str()).bind(crate::PAGE_LIMIT_MAX as i64).fetch_all(pool).await)?;
        rows.into_iter().map(KeyRow::into_info).collect()
    }

    /// The GS1 company prefixes the operator verified as the tenant's, with when (in prefix
    /// order; a tenant holds few).
    pub async fn verified_company_prefixes(&self, tenant_id: &TenantId) -> Result<Vec<(String, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self.pools(), pool => sqlx::query_as(
            "SELECT company_prefix, verified_unix_ms FROM verified_company_prefixes WHERE tenant_id = $1 \
             ORDER BY company_prefix LIMIT $2")
            .bind(tenant_id.as_str()).bind(crate::PAGE_LIMIT_MAX as i64).fetch_all(pool).await)?;
        Ok(rows)
    }

    pub async fn key(&self, tenant_id: &TenantId, key_id: &str) -> Result<Option<KeyInfo>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND key_id = $2");
        let row: Option<KeyRow> = on_pool!(self.pools(), pool => sqlx::query_as(&sql).bind(tenant_id.as_str()).bind(key_id).fetch_optional(pool).await)?;
        row.map(KeyRow::into_info).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_text() {
        let tenant = TenantId::parse("nordfjord").unwrap();
        let key = ApiKeySecret::generate(&tenant);
        let parts = split_key(key.reveal()).unwrap();
        assert_eq!(parts.tenant, "nordfjord");
        assert_eq!(parts.key_id, key.key_id);
        assert_eq!(Sha256::digest(parts.secret.as_bytes()).as_slice(), key.secret_sha256);
        assert!(!format!("{key:?}").contains(parts.secret));
    }

    #[test]
    fn malformed_keys_are_not_split() {
        for text in ["", "ktn", "ktn_a_b_c", "xyz_nordfjord_0011223344556677_00", "ktn_a_0011223344556677_zz_extra"] {
            assert!(split_key(text).is_none(), "{text}");
        }
    }

    #[test]
    fn scopes_nest_and_operator_is_reserved() {
        assert!(Scope::TenantAdmin.grants(Scope::TenantRead));
        assert!(Scope::TenantWrite.grants(Scope::TenantRead));
        assert!(!Scope::TenantRead.grants(Scope::TenantWrite));
        assert!(!Scope::Device.grants(Scope::TenantRead));
        assert!(!Scope::Operator.grants(Scope::TenantAdmin));
        let tenant = TenantId::parse("nordfjord").unwrap();
        assert_eq!(Scope::parse_list(&tenant, ["operator"]), Err(ScopeError::OperatorOutsideNetwork));
        assert_eq!(Scope::parse_list(&TenantId::network(), ["operator", "operator"]), Ok(vec![Scope::Operator]));
        assert_eq!(Scope::parse_list(&tenant, []), Err(ScopeError::Empty));
        assert!(matches!(Scope::parse_list(&tenant, ["tenant:root"]), Err(ScopeError::Unknown(_))));
    }

    #[test]
    fn comparison_is_exact() {
        assert!(constant_time_equal(b"abc", b"abc"));
        assert!(!constant_time_equal(b"abc", b"abd"));
        assert!(!constant_time_equal(b"abc", b"ab"));
    }
}
