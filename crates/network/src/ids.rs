//! Identifiers chosen by people: tenants, parties, lanes, devices, zones.

use std::fmt;

/// The tenant that owns the shared network (the platform operator's warehouses, depots, pickup
/// points and lanes). Every tenant can read its locations and lanes; only operator keys write them.
pub const NETWORK_TENANT: &str = "network";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be {min}-{max} characters, found {found}")]
    Length { min: usize, max: usize, found: usize },
    #[error("may contain only {allowed}, found {found:?}")]
    Character { allowed: &'static str, found: char },
    #[error("must start with a lowercase letter or digit")]
    Start,
    #[error("{0:?} is reserved")]
    Reserved(String),
}

/// A slug: lowercase ASCII letters, digits and `-` (and `_`, `.` where `extra` allows them).
fn parse_slug(text: &str, max: usize, extra: &'static str, allowed: &'static str) -> Result<String, IdError> {
    let length = text.chars().count();
    if length == 0 || length > max {
        return Err(IdError::Length { min: 1, max, found: length });
    }
    for character in text.chars() {
        let ok = character.is_ascii_lowercase()
            || character.is_ascii_digit()
            || character == '-'
            || extra.contains(character);
        if !ok {
            return Err(IdError::Character { allowed, found: character });
        }
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(IdError::Start);
    }
    Ok(text.to_owned())
}

macro_rules! slug_id {
    ($(#[$meta:meta])* $name:ident, $max:expr, $extra:expr, $allowed:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub const LENGTH_MAX: usize = $max;

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

slug_id!(
    /// A tenant (a merchant renting the network), e.g. `nordfjord-salmon`. Lowercase letters,
    /// digits and `-`, at most 32 characters. It appears in API keys, so `_` and `.` are excluded.
    TenantId, 32, "", "a-z, 0-9 and -"
);
slug_id!(
    /// A party (supplier, farm, fishery, carrier) within a tenant.
    PartyId, 64, "_.", "a-z, 0-9, -, _ and ."
);
slug_id!(
    /// A lane within a tenant, e.g. `oslo-amsterdam-reefer`.
    LaneId, 64, "_.", "a-z, 0-9, -, _ and ."
);
slug_id!(
    /// A device (data logger, reefer unit, room sensor) within a tenant.
    DeviceId, 64, "_.", "a-z, 0-9, -, _ and ."
);
slug_id!(
    /// A vehicle of the network (a van, a cargo bike) and its courier, e.g. `van-ams-1`.
    VehicleId, 64, "_.", "a-z, 0-9, -, _ and ."
);
slug_id!(
    /// A temperature zone within a location, e.g. `chill-1`.
    ZoneName, 32, "_.", "a-z, 0-9, -, _ and ."
);

impl TenantId {
    /// Parses a tenant id a merchant may be given: the network tenant is reserved.
    pub fn parse(text: &str) -> Result<TenantId, IdError> {
        let tenant = TenantId::parse_any(text)?;
        if tenant.0 == NETWORK_TENANT {
            return Err(IdError::Reserved(text.to_owned()));
        }
        Ok(tenant)
    }

    /// Parses any tenant id, the reserved network tenant included (for stored values).
    pub fn parse_any(text: &str) -> Result<TenantId, IdError> {
        if text.len() < 2 {
            return Err(IdError::Length { min: 2, max: Self::LENGTH_MAX, found: text.chars().count() });
        }
        parse_slug(text, Self::LENGTH_MAX, "", "a-z, 0-9 and -").map(TenantId)
    }

    pub fn network() -> TenantId {
        TenantId(NETWORK_TENANT.to_owned())
    }

    pub fn is_network(&self) -> bool {
        self.0 == NETWORK_TENANT
    }
}

macro_rules! slug_parse {
    ($($name:ident),*) => {
        $(impl $name {
            pub fn parse(text: &str) -> Result<$name, IdError> {
                parse_slug(text, Self::LENGTH_MAX, "_.", "a-z, 0-9, -, _ and .").map($name)
            }
        })*
    };
}
slug_parse!(PartyId, LaneId, DeviceId, VehicleId, ZoneName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_slugs_and_network_is_reserved() {
        assert_eq!(TenantId::parse("nordfjord-salmon").unwrap().as_str(), "nordfjord-salmon");
        assert_eq!(TenantId::parse("network"), Err(IdError::Reserved("network".into())));
        assert!(TenantId::parse_any("network").unwrap().is_network());
        assert_eq!(TenantId::parse("Acme"), Err(IdError::Character { allowed: "a-z, 0-9 and -", found: 'A' }));
        assert_eq!(TenantId::parse("a_b"), Err(IdError::Character { allowed: "a-z, 0-9 and -", found: '_' }));
        assert_eq!(TenantId::parse("-ab"), Err(IdError::Start));
        assert!(matches!(TenantId::parse("x"), Err(IdError::Length { .. })));
        assert!(matches!(TenantId::parse(&"a".repeat(33)), Err(IdError::Length { .. })));
    }

    #[test]
    fn other_ids_allow_underscore_and_dot() {
        assert!(PartyId::parse("farm.alesund_1").is_ok());
        assert!(matches!(LaneId::parse(""), Err(IdError::Length { .. })));
        assert!(matches!(ZoneName::parse("Chill"), Err(IdError::Character { .. })));
    }
}
