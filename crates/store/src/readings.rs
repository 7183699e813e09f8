//! Temperature readings: one row per device and device time, in °C, with the device's, the
//! corrected and the receive time. A duplicate (same device, same device time) is dropped where
//! the write happens (`ON CONFLICT DO NOTHING`), so a batch sent twice stores its readings once.

use std::collections::HashSet;

use network::TenantId;

use crate::backend::{Conn, on_pool};
use crate::epcis::placeholders;
use crate::writer::{Arg, execute};
use crate::{StoreError, TenantStore};

/// Readings one list read answers, at most.
pub const READINGS_LISTED_MAX: u32 = 10_000;
/// Readings one write holds, at most (a batch of the API, a poll of the MQTT subscriber).
pub const READINGS_PER_WRITE_MAX: usize = 100_000;
/// Rows per INSERT statement (6 values each, under SQLite's 32,766 bound parameters).
const ROWS_PER_STATEMENT: usize = 5_000;

/// A reading as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredReading {
    pub device_id: String,
    pub device_unix_ms: i64,
    pub corrected_unix_ms: i64,
    pub received_unix_ms: i64,
    pub celsius: f64,
}

/// Inserts readings, dropping duplicates; answers how many were stored.
pub(crate) async fn insert_readings(
    conn: &mut Conn,
    tenant_id: &TenantId,
    readings: &[StoredReading],
) -> Result<u64, sqlx::Error> {
    let stored = insert_rows(conn, tenant_id.as_str(), readings, true).await?;
    // A reading before where a device's alarm evaluation stands makes that evaluation stale.
    let mut earliest: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for reading in readings {
        let entry = earliest.entry(&reading.device_id).or_insert(reading.corrected_unix_ms);
        *entry = (*entry).min(reading.corrected_unix_ms);
    }
    for (device_id, earliest_unix_ms) in earliest {
        crate::alarms::mark_stale(conn, tenant_id.as_str(), device_id, earliest_unix_ms).await?;
    }
    Ok(stored)
}

/// Multi-row INSERTs of readings; with `drop_duplicates`, `ON CONFLICT DO NOTHING` (Keten's
/// ingest), without it a plain insert (the benchmark's baseline). Answers the rows inserted.
pub(crate) async fn insert_rows(
    conn: &mut Conn,
    tenant: &str,
    readings: &[StoredReading],
    drop_duplicates: bool,
) -> Result<u64, sqlx::Error> {
    let mut stored = 0;
    for chunk in readings.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::with_capacity(64 + chunk.len() * 40);
        sql.push_str(
            "INSERT INTO readings (tenant_id, device_id, device_unix_ms, corrected_unix_ms, received_unix_ms, celsius) VALUES ",
        );
        let mut args = Vec::with_capacity(chunk.len() * 6);
        for (index, reading) in chunk.iter().enumerate() {
            if index > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&placeholders(conn, index * 6 + 1, 6));
            args.extend([
                Arg::Text(tenant),
                Arg::Text(&reading.device_id),
                Arg::Integer(reading.device_unix_ms),
                Arg::Integer(reading.corrected_unix_ms),
                Arg::Integer(reading.received_unix_ms),
                Arg::Real(reading.celsius),
            ]);
        }
        if drop_duplicates {
            sql.push_str(" ON CONFLICT (tenant_id, device_id, device_unix_ms) DO NOTHING");
        }
        stored += execute(conn, &sql, &args).await?;
    }
    Ok(stored)
}

impl TenantStore<'_> {
    /// Which of `device_ids` are this tenant's devices.
    pub async fn known_devices(&self, device_ids: &[&str]) -> Result<HashSet<String>, StoreError> {
        let mut known = HashSet::new();
        for chunk in device_ids.chunks(500) {
            let list: Vec<String> = (0..chunk.len()).map(|index| format!("${}", index + 2)).collect();
            let sql =
                format!("SELECT device_id FROM devices WHERE tenant_id = $1 AND device_id IN ({})", list.join(", "));
            let rows: Vec<(String,)> = on_pool!(self.store.pools(), pool => {
                let mut query = sqlx::query_as(&sql).bind(self.tenant_id.as_str());
                for device in chunk {
                    query = query.bind(*device);
                }
                query.fetch_all(pool).await
            })?;
            known.extend(rows.into_iter().map(|(device,)| device));
        }
        Ok(known)
    }

    /// A device's readings with device time in `[from, to)`, oldest first.
    pub async fn readings(
        &self,
        device_id: &str,
        from_unix_ms: i64,
        to_unix_ms: i64,
        limit: u32,
    ) -> Result<Vec<StoredReading>, StoreError> {
        let sql = format!(
            "SELECT device_id, device_unix_ms, corrected_unix_ms, received_unix_ms, celsius FROM readings \
             WHERE tenant_id = $1 AND device_id = $2 AND device_unix_ms >= $3 AND device_unix_ms < $4 \
             ORDER BY device_unix_ms LIMIT {}",
            limit.clamp(1, READINGS_LISTED_MAX)
        );
        Ok(on_pool!(self.store.pools(), pool => sqlx::query_as(&sql)
            .bind(self.tenant_id.as_str()).bind(device_id).bind(from_unix_ms).bind(to_unix_ms)
            .fetch_all(pool).await)?)
    }
}

/// Where a device measures: a location zone, a vehicle, or a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentTarget {
    /// A zone of a location: `GLN/zone`.
    Zone { gln: gs1::Gln, zone: network::ZoneName },
    /// A vehicle (a reefer trailer, a van), by the operator's or carrier's id.
    Vehicle(String),
    /// A container or pallet: its SSCC.
    Sscc(gs1::Sscc),
}

impl AssignmentTarget {
    pub fn kind(&self) -> &'static str {
        match self {
            AssignmentTarget::Zone { .. } => "zone",
            AssignmentTarget::Vehicle(_) => "vehicle",
            AssignmentTarget::Sscc(_) => "sscc",
        }
    }

    /// The stored form: `GLN/zone`, the vehicle id, the SSCC.
    pub fn key(&self) -> String {
        match self {
            AssignmentTarget::Zone { gln, zone } => format!("{gln}/{zone}"),
            AssignmentTarget::Vehicle(vehicle) => vehicle.clone(),
            AssignmentTarget::Sscc(sscc) => sscc.to_string(),
        }
    }
}

/// An assignment as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AssignmentRecord {
    pub device_id: String,
    pub from_unix_ms: i64,
    pub to_unix_ms: Option<i64>,
    pub target_kind: String,
    pub target: String,
    /// The product class whose alarm rules judge the readings taken there, if any.
    pub class: Option<String>,
}

/// Assignments one exposure reads at a target (one more than it accepts, to tell).
pub const ASSIGNMENTS_AT_TARGET_MAX: usize = 1_001;

/// Assignments a device keeps, at most (then the oldest must be archived first).
pub const ASSIGNMENTS_PER_DEVICE_MAX: usize = 10_000;

/// Assigns a device from `from_unix_ms` on; the open assignment ends there. Refused when the
/// device is unknown or when `from_unix_ms` is not after the latest assignment's start (history
/// is appended, never rewritten).
pub(crate) async fn assign_device(
    conn: &mut Conn,
    tenant_id: &TenantId,
    device_id: &network::DeviceId,
    from_unix_ms: i64,
    target: &AssignmentTarget,
    class: Option<&str>,
    now_unix_ms: i64,
) -> Result<Result<(), crate::WriteError>, sqlx::Error> {
    let tenant = tenant_id.as_str();
    let device = device_id.as_str();
    if !crate::writer::exists(
        conn,
        "SELECT 1 FROM devices WHERE tenant_id = $1 AND device_id = $2",
        &[Arg::Text(tenant), Arg::Text(device)],
    )
    .await?
    {
        return Ok(Err(crate::WriteError::NotFound));
    }
    if let AssignmentTarget::Zone { gln, zone } = target
        && !crate::writer::exists(
            conn,
            "SELECT 1 FROM location_zones WHERE tenant_id IN ($1, 'network') AND gln = $2 AND zone_name = $3",
            &[Arg::Text(tenant), Arg::Text(gln.as_str()), Arg::Text(zone.as_str())],
        )
        .await?
    {
        return Ok(Err(crate::WriteError::UnknownReference { field: "/zone", value: format!("{gln}/{zone}") }));
    }
    if crate::writer::exists(
        conn,
        "SELECT 1 FROM device_assignments WHERE tenant_id = $1 AND device_id = $2 AND from_unix_ms >= $3",
        &[Arg::Text(tenant), Arg::Text(device), Arg::Integer(from_unix_ms)],
    )
    .await?
    {
        return Ok(Err(crate::WriteError::Refused {
            code: "assignment-out-of-order",
            detail: format!(
                "device {device} has an assignment starting at or after this one: history is appended, not rewritten"
            ),
            errors: vec![("/from".into(), "must be after the device's latest assignment".into())],
        }));
    }
    if crate::writer::exists(
        conn,
        &format!(
            "SELECT 1 FROM device_assignments WHERE tenant_id = $1 AND device_id = $2 LIMIT 1 OFFSET {}",
            ASSIGNMENTS_PER_DEVICE_MAX - 1
        ),
        &[Arg::Text(tenant), Arg::Text(device)],
    )
    .await?
    {
        return Ok(Err(crate::WriteError::Limit(format!(
            "a device keeps at most {ASSIGNMENTS_PER_DEVICE_MAX} assignments"
        ))));
    }
    execute(
        conn,
        "UPDATE device_assignments SET to_unix_ms = $3 WHERE tenant_id = $1 AND device_id = $2 AND to_unix_ms IS NULL",
        &[Arg::Text(tenant), Arg::Text(device), Arg::Integer(from_unix_ms)],
    )
    .await?;
    let key = target.key();
    execute(
        conn,
        "INSERT INTO device_assignments (tenant_id, device_id, from_unix_ms, to_unix_ms, target_kind, target, created_unix_ms, class) \
         VALUES ($1, $2, $3, NULL, $4, $5, $6, $7)",
        &[
            Arg::Text(tenant),
            Arg::Text(device),
            Arg::Integer(from_unix_ms),
            Arg::Text(target.kind()),
            Arg::Text(&key),
            Arg::Integer(now_unix_ms),
            Arg::OptionalText(class),
        ],
    )
    .await?;
    Ok(Ok(()))
}

const ASSIGNMENT_COLUMNS: &str = "device_id, from_unix_ms, to_unix_ms, target_kind, target, class";

impl TenantStore<'_> {
    /// A device's assignments, oldest first.
    pub async fn device_assignments(&self, device_id: &str) -> Result<Vec<AssignmentRecord>, StoreError> {
        let sql = format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM device_assignments WHERE tenant_id = $1 AND device_id = $2 \
             ORDER BY from_unix_ms LIMIT {ASSIGNMENTS_PER_DEVICE_MAX}"
        );
        Ok(on_pool!(self.store.pools(), pool => sqlx::query_as(&sql)
            .bind(self.tenant_id.as_str()).bind(device_id).fetch_all(pool).await)?)
    }

    /// The assignments to a target that overlap `[from, to)`, by start.
    pub async fn assignments_at(
        &self,
        target: &AssignmentTarget,
        from_unix_ms: i64,
        to_unix_ms: i64,
    ) -> Result<Vec<AssignmentRecord>, StoreError> {
        let sql = format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM device_assignments WHERE tenant_id = $1 AND target_kind = $2 AND target = $3 \
             AND from_unix_ms < $5 AND (to_unix_ms IS NULL OR to_unix_ms > $4) ORDER BY from_unix_ms LIMIT {ASSIGNMENTS_AT_TARGET_MAX}"
        );
        Ok(on_pool!(self.store.pools(), pool => sqlx::query_as(&sql)
            .bind(self.tenant_id.as_str()).bind(target.kind()).bind(target.key()).bind(from_unix_ms).bind(to_unix_ms)
            .fetch_all(pool).await)?)
    }
}

impl TenantStore<'_> {
    /// A device's assignments that overlap `[from, to)`, by start.
    pub async fn device_assignments_between(
        &self,
        device_id: &str,
        from_unix_ms: i64,
        to_unix_ms: i64,
    ) -> Result<Vec<AssignmentRecord>, StoreError> {
        let sql = format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM device_assignments WHERE tenant_id = $1 AND device_id = $2 \
             AND from_unix_ms < $4 AND (to_unix_ms IS NULL OR to_unix_ms > $3) ORDER BY from_unix_ms LIMIT 100"
        );
        Ok(on_pool!(self.store.pools(), pool => sqlx::query_as(&sql)
            .bind(self.tenant_id.as_str()).bind(device_id).bind(from_unix_ms).bind(to_unix_ms).fetch_all(pool).await)?)
    }

    /// The lots announced on a pallet (an ASN's SSCC).
    pub async fn lots_on_pallet(&self, sscc: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(on_pool!(self.store.pools(), pool => sqlx::query_as(
            "SELECT DISTINCT gtin, lot FROM asn_pallets WHERE tenant_id = $1 AND sscc = $2 ORDER BY gtin, lot LIMIT 100")
            .bind(self.tenant_id.as_str()).bind(sscc).fetch_all(pool).await)?)
    }

    /// The lots that had stock in a zone at some time in `[from, to]`, from their on-hand
    /// movements (at most 100 lots looked at: [`LOTS_INTO_PLACE_SQL`]).
    pub async fn lots_in_zone_during(
        &self,
        gln: &str,
        zone: &str,
        from_unix_ms: i64,
        to_unix_ms: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let candidates: Vec<(String, String)> = on_pool!(self.store.pools(), pool => sqlx::query_as(LOTS_INTO_PLACE_SQL)
            .bind(self.tenant_id.as_str()).bind(gln).bind(zone).bind(to_unix_ms).fetch_all(pool).await)?;
        let mut lots = Vec::new();
        for (gtin, lot) in candidates {
            let stays = self.lot_zone_stays(&gtin, &lot).await?;
            let there = stays.iter().any(|stay| {
                stay.location_gln == gln
                    && stay.zone == zone
                    && stay.from_unix_ms <= to_unix_ms
                    && stay.to_unix_ms.is_none_or(|end| end > from_unix_ms)
            });
            if there {
                lots.push((gtin, lot));
            }
        }
        Ok(lots)
    }
}

/// A pallet announced on an ASN, as custody needs it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PalletCustody {
    pub sscc: String,
    pub gtin: String,
    pub lot: String,
    pub location_gln: String,
    pub received_zone: Option<String>,
    pub received_unix_ms: Option<i64>,
}

/// A stretch during which a lot had stock in a zone: from the movement that brought the first
/// units in to the one that took the last out (open while units remain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneStay {
    pub location_gln: String,
    pub zone: String,
    pub from_unix_ms: i64,
    pub to_unix_ms: Option<i64>,
}

/// Movements one custody derivation reads, at most.
pub const CUSTODY_MOVEMENTS_MAX: usize = 20_000;

impl TenantStore<'_> {
    /// The pallets announced with a lot, or the pallet with an SSCC.
    pub async fn pallets_for_custody(
        &self,
        sscc: Option<&str>,
        lot: Option<(&str, &str)>,
    ) -> Result<Vec<PalletCustody>, StoreError> {
        let (gtin, lot) = lot.unzip();
        Ok(on_pool!(self.store.pools(), pool => sqlx::query_as(
            "SELECT p.sscc, p.gtin, p.lot, a.location_gln, p.received_zone, p.received_unix_ms \
             FROM asn_pallets p JOIN asns a ON a.tenant_id = p.tenant_id AND a.asn_id = p.asn_id \
             WHERE p.tenant_id = $1 AND ($2 IS NULL OR p.sscc = $2) AND ($3 IS NULL OR (p.gtin = $3 AND p.lot = $4)) \
             ORDER BY p.sscc LIMIT 1000")
            .bind(self.tenant_id.as_str()).bind(sscc).bind(gtin).bind(lot).fetch_all(pool).await)?)
    }

    /// Where a lot had stock, zone by zone, from its on-hand movements in the journal's order.
    pub async fn lot_zone_stays(&self, gtin: &str, lot: &str) -> Result<Vec<ZoneStay>, StoreError> {
        // `kind <> 'reserve'` lets SQLite read its lot index, which leaves reserves out (migration 0018).
        let sql = format!(
            "SELECT location_gln, zone, kind, quantity, at_unix_ms FROM stock_movements \
             WHERE tenant_id = $1 AND gtin = $2 AND lot = $3 AND kind <> 'reserve' \
             AND kind IN ('receipt', 'ship', 'adjust', 'transfer_in', 'transfer_out', 'return', 'scrap') \
             ORDER BY {} LIMIT {CUSTODY_MOVEMENTS_MAX}",
            crate::fulfilment::JOURNAL_ORDER
        );
        let rows: Vec<(String, String, String, i64, i64)> = on_pool!(self.store.pools(), pool => sqlx::query_as(&sql)
            .bind(self.tenant_id.as_str()).bind(gtin).bind(lot).fetch_all(pool).await)?;
        if rows.len() >= CUSTODY_MOVEMENTS_MAX {
            return Err(StoreError::Limit(format!(
                "lot {lot} of {gtin} has more than {CUSTODY_MOVEMENTS_MAX} on-hand movements: its custody is not derived"
            )));
        }
        let mut on_hand: std::collections::BTreeMap<(String, String), (i64, usize)> = Default::default();
        let mut stays: Vec<ZoneStay> = Vec::new();
        for (location_gln, zone, kind, quantity, at_unix_ms) in rows {
            let Some(kind) = stock::MovementKind::parse(&kind) else { continue };
            let delta = kind.delta(quantity).on_hand;
            let key = (location_gln.clone(), zone.clone());
            let entry = on_hand.entry(key).or_insert((0, usize::MAX));
            let before = entry.0;
            entry.0 += delta;
            if before <= 0 && entry.0 > 0 {
                entry.1 = stays.len();
                stays.push(ZoneStay { location_gln, zone, from_unix_ms: at_unix_ms, to_unix_ms: None });
            } else if before > 0
                && entry.0 <= 0
                && let Some(stay) = stays.get_mut(entry.1)
            {
                stay.to_unix_ms = Some(at_unix_ms);
            }
        }
        Ok(stays)
    }
}

/// The lots that came into a zone (`$1` tenant, `$2` location, `$3` zone) up to `$4`, by the
/// movements that bring stock in (their own index, `stock_movements_into_place`).
pub(crate) const LOTS_INTO_PLACE_SQL: &str = "SELECT DISTINCT gtin, lot FROM stock_movements WHERE tenant_id = $1 \
     AND location_gln = $2 AND zone = $3 AND at_unix_ms <= $4 AND kind IN ('receipt', 'transfer_in', 'return', 'adjust') \
     ORDER BY gtin, lot LIMIT 100";
