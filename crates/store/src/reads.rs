//! Reads, always scoped by tenant. Lists are cursor-paginated by primary key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gs1::{Gln, Gtin};
use network::{Device, DeviceId, Lane, LaneId, Location, Party, PartyId, Product, ProductLink, TenantId};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::backend::on_pool;
use crate::rows::{
    CutoffRow, DEVICE_COLUMNS, DeviceRow, LANE_COLUMNS, LOCATION_COLUMNS, LaneRow, LocationRow, PARTY_COLUMNS,
    PRODUCT_COLUMNS, PartyRow, ProductRow, Tenant, TenantRow, ZoneRow,
};
use crate::writer::{IDEMPOTENCY_KEY_LIFETIME, StoredResponse};
use crate::{Store, StoreError, TenantStore, now_unix_ms, parse_stored};

/// The page size when a request names none.
pub const PAGE_LIMIT_DEFAULT: u32 = 50;
/// The largest page a request may ask for.
pub const PAGE_LIMIT_MAX: u32 = 500;

/// Where a page starts (after the key of the previous page's last item) and how long it is.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: Option<u32>,
}

impl PageRequest {
    fn limit(&self) -> u32 {
        self.limit.unwrap_or(PAGE_LIMIT_DEFAULT).clamp(1, PAGE_LIMIT_MAX)
    }
}

/// One page of a list, and the key to continue after when more items follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_after: Option<String>,
}

/// Separates the key and the tenant in a cursor of a list that merges tenants.
const CURSOR_TENANT_SEPARATOR: char = '\u{1f}';

/// The page position after an item owned by `owner`.
fn owned_key(key: &str, owner: &TenantId) -> String {
    format!("{key}{CURSOR_TENANT_SEPARATOR}{owner}")
}

/// The opaque text form of a page position.
#[derive(Debug)]
pub struct Cursor;

impl Cursor {
    pub fn encode(after: &str) -> String {
        URL_SAFE_NO_PAD.encode(after.as_bytes())
    }

    pub fn decode(cursor: &str) -> Option<String> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        String::from_utf8(bytes).ok().filter(|text| {
            !text.is_empty()
                && text.len() <= 256
                && text.chars().all(|character| !character.is_control() || character == CURSOR_TENANT_SEPARATOR)
        })
    }
}

/// A value and the tenant that owns it (a tenant sees the shared network's locations and lanes).
#[derive(Debug, Clone, PartialEq)]
pub struct Owned<T> {
    pub owner: TenantId,
    pub value: T,
}

#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    pub temperature_class: Option<String>,
    pub brand: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PartyFilter {
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct LocationFilter {
    pub kind: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct LaneFilter {
    pub from_gln: Option<String>,
    pub to_gln: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    pub location_gln: Option<String>,
}

/// Billable units of one tenant on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageRow {
    pub tenant_id: String,
    pub day: String,
    pub unit: String,
    pub quantity: i64,
}

/// The SQL of a list: `SELECT columns FROM table WHERE tenant_id IN (…) [AND filters] [AND key > after] ORDER BY key LIMIT n+1`.
struct ListQuery {
    sql: String,
    texts: Vec<String>,
    limit: u32,
}

impl ListQuery {
    fn new(
        columns: &str,
        table: &str,
        key_column: &str,
        tenant_ids: &[&str],
        filters: &[(&str, Option<&String>)],
        page: &PageRequest,
    ) -> ListQuery {
        let mut texts: Vec<String> = tenant_ids.iter().map(|tenant| (*tenant).to_owned()).collect();
        let placeholders: Vec<String> = (1..=tenant_ids.len()).map(|index| format!("${index}")).collect();
        let mut sql = format!("SELECT {columns} FROM {table} WHERE tenant_id IN ({})", placeholders.join(", "));
        for (column, value) in filters {
            if let Some(value) = value {
                texts.push((*value).clone());
                sql.push_str(&format!(" AND {column} = ${}", texts.len()));
            }
        }
        if let Some(after) = &page.after {
            // A cursor is the last key, and for lists that merge tenants also its tenant.
            match after.split_once(CURSOR_TENANT_SEPARATOR) {
                Some((key, tenant)) => {
                    texts.push(key.to_owned());
                    texts.push(tenant.to_owned());
                    sql.push_str(&format!(" AND ({key_column}, tenant_id) > (${}, ${})", texts.len() - 1, texts.len()));
                }
                None => {
                    texts.push(after.clone());
                    sql.push_str(&format!(" AND {key_column} > ${}", texts.len()));
                }
            }
        }
        let limit = page.limit();
        sql.push_str(&format!(" ORDER BY {key_column}, tenant_id LIMIT {}", limit + 1));
        ListQuery { sql, texts, limit }
    }

    async fn fetch<R>(&self, store: &Store) -> Result<Vec<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        let rows = on_pool!(store.pools(), pool => {
            let mut query = sqlx::query_as::<_, R>(&self.sql);
            for text in &self.texts {
                query = query.bind(text.as_str());
            }
            query.fetch_all(pool).await
        })?;
        Ok(rows)
    }

    /// Cuts the extra row that tells whether another page follows.
    fn page_of<T>(&self, mut items: Vec<T>, key: impl Fn(&T) -> String) -> Page<T> {
        let more = items.len() > self.limit as usize;
        items.truncate(self.limit as usize);
        let next_after = if more { items.last().map(key) } else { None };
        Page { items, next_after }
    }
}

async fn fetch_optional<R>(store: &Store, sql: &str, texts: &[&str]) -> Result<Option<R>, StoreError>
where
    R: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    let row = on_pool!(store.pools(), pool => {
        let mut query = sqlx::query_as::<_, R>(sql);
        for text in texts {
            query = query.bind(*text);
        }
        query.fetch_optional(pool).await
    })?;
    Ok(row)
}

impl Store {
    pub async fn tenant_record(&self, tenant_id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        let row: Option<TenantRow> = fetch_optional(
            self,
            "SELECT tenant_id, name, created_unix_ms FROM tenants WHERE tenant_id = $1",
            &[tenant_id.as_str()],
        )
        .await?;
        row.map(TenantRow::into_domain).transpose()
    }

    /// Every tenant (the operator's view).
    pub async fn tenants(&self, page: &PageRequest) -> Result<Page<Tenant>, StoreError> {
        let limit = page.limit();
        let after = page.after.clone().unwrap_or_default();
        let sql = format!(
            "SELECT tenant_id, name, created_unix_ms FROM tenants WHERE tenant_id > $1 ORDER BY tenant_id LIMIT {}",
            limit + 1
        );
        let rows: Vec<TenantRow> =
            on_pool!(self.pools(), pool => sqlx::query_as(&sql).bind(after.as_str()).fetch_all(pool).await)?;
        let mut items = rows.into_iter().map(TenantRow::into_domain).collect::<Result<Vec<_>, _>>()?;
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_after = if more { items.last().map(|tenant| tenant.tenant_id.to_string()) } else { None };
        Ok(Page { items, next_after })
    }

    /// Usage counters between two UTC days (inclusive), of one tenant or of all.
    pub async fn usage(
        &self,
        tenant_id: Option<&TenantId>,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let rows: Vec<UsageRow> = on_pool!(self.pools(), pool => {
            sqlx::query_as(
                "SELECT tenant_id, day, unit, quantity FROM usage_counters \
                 WHERE ($1 = '' OR tenant_id = $1) AND day >= $2 AND day <= $3 ORDER BY day, tenant_id, unit LIMIT 100000",
            )
            .bind(tenant_id.map(TenantId::as_str).unwrap_or(""))
            .bind(from_day)
            .bind(to_day)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// Rows each tenant stores now, by table (the level behind the `storage_rows` unit).
    pub async fn storage_rows(&self, tenant_id: &TenantId) -> Result<i64, StoreError> {
        let sql = "SELECT (SELECT COUNT(*) FROM products WHERE tenant_id = $1) + (SELECT COUNT(*) FROM parties WHERE tenant_id = $1) \
                   + (SELECT COUNT(*) FROM locations WHERE tenant_id = $1) + (SELECT COUNT(*) FROM lanes WHERE tenant_id = $1) \
                   + (SELECT COUNT(*) FROM devices WHERE tenant_id = $1) + (SELECT COUNT(*) FROM product_links WHERE tenant_id = $1)";
        let (count,): (i64,) =
            on_pool!(self.pools(), pool => sqlx::query_as(sql).bind(tenant_id.as_str()).fetch_one(pool).await)?;
        Ok(count)
    }
}

impl Store {
    /// A product for the public consumer page, whoever owns it, with its supplier party. The only
    /// read across tenants: callers must show public fields only (no person name without consent).
    pub async fn public_product(&self, gtin: &Gtin) -> Result<Option<(TenantId, Product, Option<Party>)>, StoreError> {
        // The GTIN's holder in the platform registry: a second tenant cannot shadow a brand's page.
        let sql = format!(
            "SELECT p.tenant_id, {} FROM products p JOIN gtin_owners o ON o.gtin = p.gtin AND o.tenant_id = p.tenant_id WHERE p.gtin = $1",
            PRODUCT_COLUMNS.split(", ").map(|column| format!("p.{}", column.trim())).collect::<Vec<_>>().join(", ")
        );
        let row: Option<OwnedProductRow> = fetch_optional(self, &sql, &[gtin.as_str()]).await?;
        let Some(row) = row else { return Ok(None) };
        let owner = parse_stored("tenant", &row.tenant_id, TenantId::parse_any)?;
        let product = row.product.into_domain()?;
        let party = match &product.supplier_party_id {
            Some(party_id) => self.tenant(&owner).party(party_id).await?,
            None => None,
        };
        Ok(Some((owner, product, party)))
    }
}

#[derive(sqlx::FromRow)]
struct ProductLinkRow {
    link_id: String,
    link_type: String,
    href: String,
    title: String,
    language: Option<String>,
    media_type: Option<String>,
}

impl Store {
    /// The time zone (IANA name) of each of `glns` that names a location, for the events steps
    /// record there: its holder's location (`gln_owners`: a GLN has one holder across tenants);
    /// a time zone is no secret of its holder.
    pub async fn site_time_zones(&self, glns: &[&str]) -> Result<Vec<(String, String)>, StoreError> {
        let mut zones = Vec::with_capacity(glns.len());
        for gln in glns {
            let row: Option<(String,)> = fetch_optional(
                self,
                // Through the GLN's holder (`gln_owners`, keyed by GLN): one indexed read.
                "SELECT l.time_zone FROM gln_owners o JOIN locations l ON l.tenant_id = o.tenant_id AND l.gln = o.gln \
                 WHERE o.gln = $1",
                &[gln],
            )
            .await?;
            if let Some((zone,)) = row {
                zones.push(((*gln).to_owned(), zone));
            }
        }
        Ok(zones)
    }

    /// A location for public pages and the resolver: its holder in the platform registry, and only
    /// the shared network's sites and tenants' origins (farms, factories); a tenant's stores or
    /// customers are not public.
    pub async fn public_location(&self, gln: &Gln) -> Result<Option<Owned<Location>>, StoreError> {
        let row: Option<(String,)> = fetch_optional(
            self,
            "SELECT l.tenant_id FROM locations l JOIN gln_owners o ON o.gln = l.gln AND o.tenant_id = l.tenant_id \
             WHERE l.gln = $1 AND (l.tenant_id = 'network' OR l.kind IN ('farm', 'factory'))",
            &[gln.as_str()],
        )
        .await?;
        let Some((owner,)) = row else { return Ok(None) };
        let owner = parse_stored("tenant", &owner, TenantId::parse_any)?;
        let located = self.tenant(&owner).location(gln).await?;
        Ok(located.filter(|owned| owned.owner == owner))
    }
}

#[derive(sqlx::FromRow)]
struct OwnedProductRow {
    tenant_id: String,
    #[sqlx(flatten)]
    product: ProductRow,
}

impl TenantStore<'_> {
    fn visible_tenants(&self) -> Vec<&str> {
        if self.tenant_id.is_network() {
            vec![self.tenant_id.as_str()]
        } else {
            vec![self.tenant_id.as_str(), network::NETWORK_TENANT]
        }
    }

    pub async fn product(&self, gtin: &Gtin) -> Result<Option<Product>, StoreError> {
        let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE tenant_id = $1 AND gtin = $2");
        let row: Option<ProductRow> =
            fetch_optional(self.store, &sql, &[self.tenant_id.as_str(), gtin.as_str()]).await?;
        row.map(ProductRow::into_domain).transpose()
    }

    pub async fn products(&self, filter: &ProductFilter, page: &PageRequest) -> Result<Page<Product>, StoreError> {
        let filters = [("temperature_class", filter.temperature_class.as_ref()), ("brand", filter.brand.as_ref())];
        let query = ListQuery::new(PRODUCT_COLUMNS, "products", "gtin", &[self.tenant_id.as_str()], &filters, page);
        let rows: Vec<ProductRow> = query.fetch(self.store).await?;
        let items = rows.into_iter().map(ProductRow::into_domain).collect::<Result<Vec<_>, _>>()?;
        Ok(query.page_of(items, |product| product.gtin.to_string()))
    }

    pub async fn party(&self, party_id: &PartyId) -> Result<Option<Party>, StoreError> {
        let sql = format!("SELECT {PARTY_COLUMNS} FROM parties WHERE tenant_id = $1 AND party_id = $2");
        let row: Option<PartyRow> =
            fetch_optional(self.store, &sql, &[self.tenant_id.as_str(), party_id.as_str()]).await?;
        row.map(PartyRow::into_domain).transpose()
    }

    pub async fn parties(&self, filter: &PartyFilter, page: &PageRequest) -> Result<Page<Party>, StoreError> {
        let query = ListQuery::new(
            PARTY_COLUMNS,
            "parties",
            "party_id",
            &[self.tenant_id.as_str()],
            &[("kind", filter.kind.as_ref())],
            page,
        );
        let rows: Vec<PartyRow> = query.fetch(self.store).await?;
        let items = rows.into_iter().map(PartyRow::into_domain).collect::<Result<Vec<_>, _>>()?;
        Ok(query.page_of(items, |party| party.party_id.to_string()))
    }

    /// A location of this tenant or of the shared network.
    pub async fn location(&self, gln: &Gln) -> Result<Option<Owned<Location>>, StoreError> {
        let visible = self.visible_tenants();
        let page = PageRequest { after: None, limit: Some(PAGE_LIMIT_MAX) };
        let gln_text = gln.to_string();
        let query = ListQuery::new(LOCATION_COLUMNS, "locations", "gln", &visible, &[("gln", Some(&gln_text))], &page);
        let rows: Vec<LocationRow> = query.fetch(self.store).await?;
        let mut located = self.assemble_locations(&visible, rows).await?;
        // An own location comes before a network one with the same GLN (writes forbid that case).
        located.sort_by_key(|owned| owned.owner.is_network());
        Ok(located.into_iter().next())
    }

    /// Locations this tenant owns, and those of the shared network.
    pub async fn locations(
        &self,
        filter: &LocationFilter,
        page: &PageRequest,
    ) -> Result<Page<Owned<Location>>, StoreError> {
        let visible = self.visible_tenants();
        let filters = [("kind", filter.kind.as_ref()), ("country", filter.country.as_ref())];
        let query = ListQuery::new(LOCATION_COLUMNS, "locations", "gln", &visible, &filters, page);
        let rows: Vec<LocationRow> = query.fetch(self.store).await?;
        let items = self.assemble_locations(&visible, rows).await?;
        Ok(query.page_of(items, |owned| owned_key(owned.value.gln.as_str(), &owned.owner)))
    }

    async fn assemble_locations(
        &self,
        visible: &[&str],
        rows: Vec<LocationRow>,
    ) -> Result<Vec<Owned<Location>>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // The page's GLNs (at most PAGE_LIMIT_MAX + 1), then the visible tenants.
        let glns: Vec<&str> = rows.iter().map(|row| row.gln.as_str()).collect();
        let gln_list = (1..=glns.len()).map(|index| format!("${index}")).collect::<Vec<_>>().join(", ");
        let tenant_list = (glns.len() + 1..=glns.len() + visible.len())
            .map(|index| format!("${index}"))
            .collect::<Vec<_>>()
            .join(", ");
        let zone_sql = format!(
            "SELECT tenant_id, gln, zone_name, min_celsius, max_celsius, capacity_pallets FROM location_zones \
             WHERE gln IN ({gln_list}) AND tenant_id IN ({tenant_list}) ORDER BY tenant_id, gln, position"
        );
        let cutoff_sql = format!(
            "SELECT tenant_id, gln, service, cutoff_local_time FROM location_cutoffs \
             WHERE gln IN ({gln_list}) AND tenant_id IN ({tenant_list}) ORDER BY tenant_id, gln, service"
        );
        let (zones, cutoffs): (Vec<ZoneRow>, Vec<CutoffRow>) = on_pool!(self.store.pools(), pool => {
            let mut zone_query = sqlx::query_as::<_, ZoneRow>(&zone_sql);
            let mut cutoff_query = sqlx::query_as::<_, CutoffRow>(&cutoff_sql);
            for gln in &glns {
                zone_query = zone_query.bind(*gln);
                cutoff_query = cutoff_query.bind(*gln);
            }
            for tenant in visible {
                zone_query = zone_query.bind(*tenant);
                cutoff_query = cutoff_query.bind(*tenant);
            }
            (zone_query.fetch_all(pool).await?, cutoff_query.fetch_all(pool).await?)
        });
        let mut located: Vec<(TenantId, LocationRow, Vec<ZoneRow>, Vec<CutoffRow>)> = Vec::with_capacity(rows.len());
        let mut position: std::collections::HashMap<(String, String), usize> = std::collections::HashMap::new();
        for row in rows {
            let owner = parse_stored("tenant", &row.tenant_id, TenantId::parse_any)?;
            position.insert((row.tenant_id.clone(), row.gln.clone()), located.len());
            located.push((owner, row, Vec::new(), Vec::new()));
        }
        for zone in zones {
            if let Some(index) = position.get(&(zone.tenant_id.clone(), zone.gln.clone())) {
                located[*index].2.push(zone);
            }
        }
        for cutoff in cutoffs {
            if let Some(index) = position.get(&(cutoff.tenant_id.clone(), cutoff.gln.clone())) {
                located[*index].3.push(cutoff);
            }
        }
        located
            .into_iter()
            .map(|(owner, row, zones, cutoffs)| Ok(Owned { owner, value: row.into_domain(zones, cutoffs)? }))
            .collect()
    }

    pub async fn lane(&self, lane_id: &LaneId) -> Result<Option<Owned<Lane>>, StoreError> {
        let visible = self.visible_tenants();
        let lane_text = lane_id.to_string();
        let page = PageRequest { after: None, limit: Some(2) };
        let query = ListQuery::new(LANE_COLUMNS, "lanes", "lane_id", &visible, &[("lane_id", Some(&lane_text))], &page);
        let mut rows: Vec<LaneRow> = query.fetch(self.store).await?;
        rows.sort_by_key(|row| row.tenant_id == network::NETWORK_TENANT);
        let Some(row) = rows.into_iter().next() else { return Ok(None) };
        let owner = parse_stored("tenant", &row.tenant_id, TenantId::parse_any)?;
        Ok(Some(Owned { owner, value: row.into_domain()? }))
    }

    /// Lanes this tenant owns, and those of the shared network.
    pub async fn lanes(&self, filter: &LaneFilter, page: &PageRequest) -> Result<Page<Owned<Lane>>, StoreError> {
        let visible = self.visible_tenants();
        let filters = [("from_gln", filter.from_gln.as_ref()), ("to_gln", filter.to_gln.as_ref())];
        let query = ListQuery::new(LANE_COLUMNS, "lanes", "lane_id", &visible, &filters, page);
        let rows: Vec<LaneRow> = query.fetch(self.store).await?;
        let items = rows
            .into_iter()
            .map(|row| {
                Ok(Owned {
                    owner: parse_stored("tenant", &row.tenant_id, TenantId::parse_any)?,
                    value: row.into_domain()?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(query.page_of(items, |owned| owned_key(owned.value.lane_id.as_str(), &owned.owner)))
    }

    pub async fn device(&self, device_id: &DeviceId) -> Result<Option<Device>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE tenant_id = $1 AND device_id = $2");
        let row: Option<DeviceRow> =
            fetch_optional(self.store, &sql, &[self.tenant_id.as_str(), device_id.as_str()]).await?;
        row.map(DeviceRow::into_domain).transpose()
    }

    pub async fn devices(&self, filter: &DeviceFilter, page: &PageRequest) -> Result<Page<Device>, StoreError> {
        let query = ListQuery::new(
            DEVICE_COLUMNS,
            "devices",
            "device_id",
            &[self.tenant_id.as_str()],
            &[("location_gln", filter.location_gln.as_ref())],
            page,
        );
        let rows: Vec<DeviceRow> = query.fetch(self.store).await?;
        let items = rows.into_iter().map(DeviceRow::into_domain).collect::<Result<Vec<_>, _>>()?;
        Ok(query.page_of(items, |device| device.device_id.to_string()))
    }

    /// The merchant-defined links of one of this tenant's products, oldest first.
    pub async fn product_links(&self, gtin: &Gtin) -> Result<Vec<ProductLink>, StoreError> {
        let rows: Vec<ProductLinkRow> = on_pool!(self.store.pools(), pool => {
            sqlx::query_as(
                "SELECT link_id, link_type, href, title, language, media_type FROM product_links \
                 WHERE tenant_id = $1 AND gtin = $2 ORDER BY created_unix_ms, link_id LIMIT 1000",
            )
            .bind(self.tenant_id.as_str())
            .bind(gtin.as_str())
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|row| ProductLink {
                link_id: row.link_id,
                link_type: row.link_type,
                href: row.href,
                title: row.title,
                language: row.language,
                media_type: row.media_type,
            })
            .collect())
    }

    /// The stored first answer for an idempotency key, unless it has expired.
    pub async fn idempotent_response(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<([u8; 32], StoredResponse)>, StoreError> {
        let oldest_unix_ms = now_unix_ms() - IDEMPOTENCY_KEY_LIFETIME.as_millis() as i64;
        // On SQLite by the keys' index or the tail after it (`crate::idempotency`).
        let sql = match self.store.pools() {
            crate::backend::Pools::Sqlite { .. } => crate::idempotency::SQLITE_KEY_ANSWER_SQL,
            crate::backend::Pools::Postgres { .. } => {
                "SELECT request_sha256, response_status, response_encoding, response_body FROM idempotency_keys \
                 WHERE tenant_id = $1 AND idempotency_key = $2 AND created_unix_ms >= $3"
            }
        };
        let row: Option<(Vec<u8>, i64, String, Vec<u8>)> = on_pool!(self.store.pools(), pool => {
            sqlx::query_as(sql)
            .bind(self.tenant_id.as_str())
            .bind(idempotency_key)
            .bind(oldest_unix_ms)
            .fetch_optional(pool)
            .await
        })?;
        let Some((request_sha256, status, encoding, stored_body)) = row else { return Ok(None) };
        let body = crate::idempotency::decode(&encoding, stored_body).map_err(StoreError::Corrupt)?;
        let request_sha256: [u8; 32] =
            request_sha256.try_into().map_err(|_| StoreError::Corrupt("idempotency request digest".into()))?;
        Ok(Some((request_sha256, StoredResponse { status: status as u16, body })))
    }

    /// Usage of this tenant between two UTC days (inclusive).
    pub async fn usage(&self, from_day: &str, to_day: &str) -> Result<Vec<UsageRow>, StoreError> {
        self.store.usage(Some(&self.tenant_id), from_day, to_day).await
    }
}
