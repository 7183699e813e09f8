//! The conventional way to place an order, kept only as the baseline of `keten bench orders`: one
//! PostgreSQL transaction per order that locks the stock rows it reads (`SELECT … FOR UPDATE`),
//! allocates with the same rules as Keten, updates the balances and inserts the reservation, its
//! movements, the order, its first history row and the idempotency key with the API's answer
//! (looked up first, in the transaction, as a conventional API does; Keten's writer reads a batch's
//! keys in one statement): the rows Keten's path writes. Keten itself never locks rows
//! this way (see ARCHITECTURE.md); this module is not used by the server.

use std::collections::HashMap;
use std::sync::Arc;

use network::TenantId;
use orders::ProductRule;

use crate::backend::{BackendKind, Conn, Pools, on_conn};
use crate::epcis::placeholders;
use crate::fulfilment::{
    BALANCE_ROW_COLUMNS, BalanceRow, NetworkSnapshot, OrderRecord, PRODUCT_RULE_COLUMNS, PlaceOrder, ProductRuleRow,
    WriterCache, network_snapshot, stored_allocation,
};
use crate::writer::{Arg, execute};
use crate::{StoreError, now_unix_ms};

/// Places orders one transaction each, with row locks.
#[derive(Debug)]
pub struct RowLockOrders {
    pools: Pools,
    tenant: TenantId,
    network: Arc<NetworkSnapshot>,
    products: HashMap<String, ProductRule>,
}

impl RowLockOrders {
    /// Connects to a PostgreSQL database Keten created and filled, with `connections` connections
    /// (one per client, as a conventional server has), and reads the tenant's master data once.
    pub async fn connect(url: &str, connections: u32, tenant: &TenantId) -> Result<RowLockOrders, StoreError> {
        if url.parse::<BackendKind>()? != BackendKind::Postgres {
            return Err(StoreError::UnsupportedUrl(format!("{url} (the row-lock baseline runs on PostgreSQL)")));
        }
        let pools = Pools::connect(url, connections, None).await?;
        let mut conn = pools.acquire_writer().await?;
        let mut cache = WriterCache::default();
        let network = network_snapshot(&mut cache, &mut conn, tenant.as_str()).await?;
        let sql = format!("SELECT {PRODUCT_RULE_COLUMNS} FROM products WHERE tenant_id = $1");
        let rows: Vec<ProductRuleRow> = on_conn!(&mut conn, connection => sqlx::query_as(&sql)
            .bind(tenant.as_str()).fetch_all(&mut *connection).await)?;
        let mut products = HashMap::new();
        for row in rows {
            products.insert(row.gtin.clone(), row.rule()?);
        }
        drop(conn);
        // Every client's connection opened before the run, as Keten's are: their setup is not
        // timed as the baseline's orders.
        let mut opened = Vec::with_capacity(connections as usize);
        for _ in 0..connections {
            opened.push(pools.acquire_writer().await?);
        }
        drop(opened);
        Ok(RowLockOrders { pools, tenant: tenant.clone(), network, products })
    }

    /// Places one order in its own transaction; answers whether it was placed (false: not enough
    /// stock). `idempotency_key` is stored with the request's digest and `answer`'s body for the
    /// placed order (compressed as Keten stores answers), as Keten's path does.
    pub async fn place(
        &self,
        order: &PlaceOrder,
        idempotency_key: &str,
        request_sha256: [u8; 32],
        answer: &(dyn Fn(&OrderRecord) -> Vec<u8> + Send + Sync),
    ) -> Result<bool, StoreError> {
        let mut conn = self.pools.acquire_writer().await?;
        conn.begin().await?;
        match self.place_in(&mut conn, order, idempotency_key, request_sha256, answer).await {
            Ok(placed) => {
                if placed {
                    conn.commit().await?;
                } else {
                    conn.rollback().await?;
                }
                Ok(placed)
            }
            Err(error) => {
                let _ = conn.rollback().await;
                Err(error.into())
            }
        }
    }

    async fn place_in(
        &self,
        conn: &mut Conn,
        order: &PlaceOrder,
        idempotency_key: &str,
        request_sha256: [u8; 32],
        answer: &(dyn Fn(&OrderRecord) -> Vec<u8> + Send + Sync),
    ) -> Result<bool, sqlx::Error> {
        let tenant = self.tenant.as_str();
        let now_unix_ms = now_unix_ms();
        // A retry finds its first answer and does nothing more.
        let oldest_unix_ms = now_unix_ms - crate::writer::IDEMPOTENCY_KEY_LIFETIME.as_millis() as i64;
        let first: Option<(Vec<u8>, i64, String, Vec<u8>)> = on_conn!(conn, connection => sqlx::query_as(
            "SELECT request_sha256, response_status, response_encoding, response_body FROM idempotency_keys \
             WHERE tenant_id = $1 AND idempotency_key = $2 AND created_unix_ms >= $3")
            .bind(tenant).bind(idempotency_key).bind(oldest_unix_ms).fetch_optional(&mut *connection).await)?;
        if first.is_some() {
            return Ok(true);
        }
        let mut gtins: Vec<String> = order.lines.iter().map(|line| line.gtin.to_string()).collect();
        gtins.sort();
        gtins.dedup();
        let list = (0..gtins.len()).map(|index| format!("${}", index + 2)).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {BALANCE_ROW_COLUMNS} FROM stock_balances WHERE tenant_id = $1 AND gtin IN ({list}) \
             ORDER BY gtin, location_gln, zone, lot FOR UPDATE"
        );
        let rows: Vec<BalanceRow> = on_conn!(conn, connection => {
            let mut query = sqlx::query_as(&sql).bind(tenant);
            for gtin in &gtins {
                query = query.bind(gtin.as_str());
            }
            query.fetch_all(&mut *connection).await
        })?;
        let decode = |error: String| sqlx::Error::Decode(error.into());
        let mut lots = Vec::with_capacity(rows.len());
        let today = crate::utc_date(now_unix_ms);
        for row in rows {
            let cached = row.cached()?;
            let gtin = gs1::Gtin::parse(&cached.key.gtin).map_err(|error| decode(error.to_string()))?;
            lots.extend(cached.stock_lot(&gtin, cached.balance.free(), today).map(orders::StockLot::into_owned));
        }
        let products: Vec<ProductRule> = gtins.iter().filter_map(|gtin| self.products.get(gtin).cloned()).collect();
        let Some(pickup) = &order.destination.pickup_point else {
            return Err(decode("the baseline orders to pickup points".into()));
        };
        let Some(site) = self.network.sites.iter().find(|site| site.gln.as_str() == pickup) else {
            return Ok(false);
        };
        let time_zone = site.time_zone.zone().clone();
        let destination = orders::Destination { coordinates: site.coordinates, time_zone };
        let request = orders::OrderRequest {
            lines: &order.lines,
            products: &products,
            destination: &destination,
            service: order.service,
            placed_unix_ms: now_unix_ms,
            window_from_unix_ms: now_unix_ms,
            latest_delivery_unix_ms: order.latest_delivery_unix_ms,
        };
        let view = orders::NetworkView { sites: &self.network.sites, lanes: &self.network.lanes };
        let Ok(allocation) = orders::allocate(view, &lots, &request) else { return Ok(false) };
        let mut movements: Vec<(String, String, String, String, i64)> = Vec::new();
        for shipment in &allocation.shipments {
            for pick in &shipment.picks {
                let gtin = order.lines[pick.line].gtin.to_string();
                execute(
                    conn,
                    "UPDATE stock_balances SET reserved = reserved + $1, updated_unix_ms = $2 \
                     WHERE tenant_id = $3 AND gtin = $4 AND location_gln = $5 AND zone = $6 AND lot = $7",
                    &[
                        Arg::Integer(pick.quantity),
                        Arg::Integer(now_unix_ms),
                        Arg::Text(tenant),
                        Arg::Text(&gtin),
                        Arg::Text(shipment.site.as_str()),
                        Arg::Text(pick.zone.as_str()),
                        Arg::Text(&pick.lot),
                    ],
                )
                .await?;
                movements.push((
                    gtin,
                    shipment.site.to_string(),
                    pick.zone.to_string(),
                    pick.lot.clone(),
                    pick.quantity,
                ));
            }
        }
        let mut sql = String::from(
            "INSERT INTO stock_movements (tenant_id, operation_id, line, kind, gtin, location_gln, zone, lot, quantity, \
             reason, at_unix_ms) VALUES ",
        );
        let mut args = Vec::new();
        for (row, (gtin, site, zone, lot, quantity)) in movements.iter().enumerate() {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&placeholders(conn, row * 11 + 1, 11));
            args.extend([
                Arg::Text(tenant),
                Arg::Text(&order.order_id),
                Arg::Integer(row as i64),
                Arg::Text("reserve"),
                Arg::Text(gtin),
                Arg::Text(site),
                Arg::Text(zone),
                Arg::Text(lot),
                Arg::Integer(*quantity),
                Arg::OptionalText(None),
                Arg::Integer(now_unix_ms),
            ]);
        }
        execute(conn, &sql, &args).await?;
        execute(
            conn,
            "INSERT INTO reservations (tenant_id, reservation_id, state, expires_unix_ms, created_unix_ms, updated_unix_ms) \
             VALUES ($1, $2, 'pending', NULL, $3, $3)",
            &[Arg::Text(tenant), Arg::Text(&order.order_id), Arg::Integer(now_unix_ms)],
        )
        .await?;
        let mut stored = stored_allocation(&allocation);
        stored.time_zone = destination.time_zone.iana_name().map(str::to_owned);
        let lines: Vec<crate::fulfilment::StoredLine> = order
            .lines
            .iter()
            .map(|line| crate::fulfilment::StoredLine { gtin: line.gtin.to_string(), quantity: line.quantity })
            .collect();
        let encode = |error: serde_json::Error| decode(error.to_string());
        // The region an order to a pickup point counts in, as Keten's path names it.
        let region = site.address.city.clone().unwrap_or_else(|| site.gln.to_string());
        execute(
            conn,
            "INSERT INTO orders (tenant_id, order_id, status, reservation_id, service, lines, destination, allocation, region, \
             promised_by_unix_ms, latest_delivery_unix_ms, placed_unix_ms, updated_unix_ms) \
             VALUES ($1, $2, 'allocated', $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            &[
                Arg::Text(tenant),
                Arg::Text(&order.order_id),
                Arg::Text(order.service.name()),
                Arg::Text(&serde_json::to_string(&lines).map_err(encode)?),
                Arg::Text(&serde_json::to_string(&order.destination).map_err(encode)?),
                Arg::Text(&serde_json::to_string(&stored).map_err(encode)?),
                Arg::Text(&region),
                Arg::Integer(allocation.promised_by_unix_ms),
                Arg::OptionalInteger(order.latest_delivery_unix_ms),
                Arg::Integer(now_unix_ms),
            ],
        )
        .await?;
        execute(
            conn,
            "INSERT INTO order_events (tenant_id, order_id, seq, status, detail, at_unix_ms) \
             VALUES ($1, $2, 1, 'allocated', $3, $4)",
            &[
                Arg::Text(tenant),
                Arg::Text(&order.order_id),
                Arg::Text(crate::fulfilment::PLACED),
                Arg::Integer(now_unix_ms),
            ],
        )
        .await?;
        let record = OrderRecord {
            order_id: order.order_id.clone(),
            status: orders::OrderStatus::Allocated,
            service: order.service,
            lines,
            destination: order.destination.clone(),
            allocation: stored,
            region,
            promised_by_unix_ms: allocation.promised_by_unix_ms,
            first_promised_by_unix_ms: None,
            latest_delivery_unix_ms: order.latest_delivery_unix_ms,
            placed_unix_ms: now_unix_ms,
            window_from_unix_ms: now_unix_ms,
            delivered_unix_ms: None,
            arrived_unix_ms: None,
            updated_unix_ms: now_unix_ms,
            stepped_unix_ms: None,
            reservation_id: order.order_id.clone(),
            reservation: stock::ReservationState::Pending,
            hold_expires_unix_ms: None,
        };
        let (encoding, body) = crate::idempotency::encode(&answer(&record));
        execute(
            conn,
            "INSERT INTO idempotency_keys (tenant_id, idempotency_key, request_sha256, response_status, \
             response_encoding, response_body, created_unix_ms) VALUES ($1, $2, $3, 201, $4, $5, $6)",
            &[
                Arg::Text(tenant),
                Arg::Text(idempotency_key),
                Arg::Bytes(&request_sha256),
                Arg::Text(encoding),
                Arg::Bytes(&body),
                Arg::Integer(now_unix_ms),
            ],
        )
        .await?;
        Ok(true)
    }

    pub async fn close(&self) {
        self.pools.close().await;
    }
}

/// The plain way to store readings, kept only as the baseline of `keten bench readings`: a
/// multi-row `INSERT` of rows already built, one transaction per batch, on a connection of its
/// own — no parsing, no device check, no duplicate handling, no group commit.
#[derive(Debug)]
pub struct PlainReadings {
    pools: Pools,
    tenant: TenantId,
}

impl PlainReadings {
    pub async fn connect(url: &str, tenant: &TenantId) -> Result<PlainReadings, StoreError> {
        Ok(PlainReadings { pools: Pools::connect(url, 1, None).await?, tenant: tenant.clone() })
    }

    /// Inserts one batch in one transaction.
    pub async fn insert(&self, rows: &[crate::readings::StoredReading]) -> Result<(), StoreError> {
        let mut conn = self.pools.acquire_writer().await?;
        conn.begin().await?;
        crate::readings::insert_rows(&mut conn, self.tenant.as_str(), rows, false).await?;
        conn.commit().await?;
        Ok(())
    }
}
