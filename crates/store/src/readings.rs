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
    let tenant = tenant_id.as_str();
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
        sql.push_str(" ON CONFLICT (tenant_id, device_id, device_unix_ms) DO NOTHING");
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
