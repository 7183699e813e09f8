//! The distribution rule of the schema, checked against the live catalog of either backend:
//! every tenant-owned table (every table with a `tenant_id` column, except `tenants` itself) has
//! `tenant_id` as the first column of its primary key and of each of its foreign keys, so the
//! schema distributes by tenant (Citus' multi-tenant model).

use sqlx::Row;

use crate::backend::Pools;
use crate::{Store, StoreError};

/// A table's primary key and foreign keys, columns in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableKeys {
    pub table: String,
    pub columns: Vec<String>,
    pub primary_key: Vec<String>,
    pub foreign_keys: Vec<Vec<String>>,
}

/// Tables that are not tenant-owned: the tenant list, the platform-wide registries of who holds a
/// GTIN or a GLN (keyed by the identifier; reference tables on Citus), the GS1 company prefixes
/// learned from EPC URNs and those the operator verified as a tenant's, the transparency log (one public log for the platform: its entries name
/// the tenant of each event privately, for audits), SQLite's writer clock (the last batch's
/// time) and the time its reserves' lot index is built to, and migration bookkeeping.
pub const PLATFORM_TABLES: [&str; 14] = [
    "tenants",
    "gtin_owners",
    "gln_owners",
    "epc_company_prefixes",
    "verified_company_prefixes",
    "log_entries",
    "log_tiles",
    "log_state",
    "log_checkpoints",
    "log_cosignatures",
    "writer_clock",
    "reserves_indexed",
    "idempotency_keys_indexed",
    "_sqlx_migrations",
];

impl Store {
    /// The keys of every table, read from the database catalog.
    pub async fn table_keys(&self) -> Result<Vec<TableKeys>, StoreError> {
        match self.pools() {
            Pools::Sqlite { read, .. } => {
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )
                .fetch_all(read)
                .await?;
                let mut all = Vec::new();
                for table in tables {
                    let info = sqlx::query("SELECT name, pk FROM pragma_table_info($1) ORDER BY cid")
                        .bind(&table)
                        .fetch_all(read)
                        .await?;
                    let columns = info.iter().map(|row| row.get::<String, _>("name")).collect();
                    let mut primary: Vec<(i64, String)> = info
                        .iter()
                        .filter(|row| row.get::<i64, _>("pk") > 0)
                        .map(|row| (row.get("pk"), row.get("name")))
                        .collect();
                    primary.sort();
                    let foreign = sqlx::query(
                        "SELECT id, seq, \"from\" AS column_name FROM pragma_foreign_key_list($1) ORDER BY id, seq",
                    )
                    .bind(&table)
                    .fetch_all(read)
                    .await?;
                    let mut foreign_keys: Vec<Vec<String>> = Vec::new();
                    let mut current_id = -1;
                    for row in foreign {
                        let id: i64 = row.get("id");
                        if id != current_id {
                            foreign_keys.push(Vec::new());
                            current_id = id;
                        }
                        if let Some(last) = foreign_keys.last_mut() {
                            last.push(row.get("column_name"));
                        }
                    }
                    all.push(TableKeys {
                        table,
                        columns,
                        primary_key: primary.into_iter().map(|(_, name)| name).collect(),
                        foreign_keys,
                    });
                }
                Ok(all)
            }
            Pools::Postgres { pool, .. } => {
                let tables: Vec<String> = sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name")
                    .fetch_all(pool)
                    .await?;
                let mut all = Vec::new();
                for table in tables {
                    let columns: Vec<String> = sqlx::query_scalar("SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position")
                        .bind(&table)
                        .fetch_all(pool)
                        .await?;
                    let constraints = sqlx::query(
                        "SELECT c.contype::text AS kind, c.conname::text AS name, a.attname::text AS column_name \
                         FROM pg_constraint c CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, position) \
                         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
                         WHERE c.conrelid = ('public.' || $1)::regclass AND c.contype IN ('p', 'f') ORDER BY c.conname, k.position",
                    )
                    .bind(&table)
                    .fetch_all(pool)
                    .await?;
                    let mut primary_key = Vec::new();
                    let mut foreign_keys: Vec<Vec<String>> = Vec::new();
                    let mut current_name = String::new();
                    for row in constraints {
                        let kind: String = row.get("kind");
                        let name: String = row.get("name");
                        let column: String = row.get("column_name");
                        if kind == "p" {
                            primary_key.push(column);
                        } else {
                            if name != current_name {
                                foreign_keys.push(Vec::new());
                                current_name = name;
                            }
                            if let Some(last) = foreign_keys.last_mut() {
                                last.push(column);
                            }
                        }
                    }
                    all.push(TableKeys { table, columns, primary_key, foreign_keys });
                }
                Ok(all)
            }
        }
    }
}

/// Every violation of the distribution rule, as readable sentences (empty when the schema obeys it).
pub fn distribution_violations(tables: &[TableKeys]) -> Vec<String> {
    let mut violations = Vec::new();
    for table in tables {
        if PLATFORM_TABLES.contains(&table.table.as_str()) || !table.columns.iter().any(|column| column == "tenant_id")
        {
            if !PLATFORM_TABLES.contains(&table.table.as_str()) {
                violations.push(format!("{}: has no tenant_id column and is not a platform table", table.table));
            }
            continue;
        }
        if table.primary_key.first().map(String::as_str) != Some("tenant_id") {
            violations
                .push(format!("{}: primary key {:?} does not start with tenant_id", table.table, table.primary_key));
        }
        for foreign_key in &table.foreign_keys {
            if foreign_key.first().map(String::as_str) != Some("tenant_id") {
                violations
                    .push(format!("{}: foreign key {:?} does not start with tenant_id", table.table, foreign_key));
            }
        }
    }
    violations
}
