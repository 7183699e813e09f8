//! The store's behaviour suite: every test runs on SQLite and on PostgreSQL (a scratch server;
//! skipped loudly when PostgreSQL is absent, a failure under CI=true).

use std::sync::Arc;

use gs1::{Gln, Gtin};
use network::*;
use store::*;

struct Backend {
    store: Store,
    _sqlite: Option<scratchdb::SqliteFile>,
}

async fn open(backend: BackendKind, test: &str) -> Option<Backend> {
    match backend {
        BackendKind::Sqlite => {
            let file = scratchdb::SqliteFile::new().unwrap();
            let store = Store::open(StoreConfig::new(file.url())).await.unwrap();
            Some(Backend { store, _sqlite: Some(file) })
        }
        BackendKind::Postgres => {
            let url = scratchdb::postgres_or_skip(test)?;
            Some(Backend { store: Store::open(StoreConfig::new(url)).await.unwrap(), _sqlite: None })
        }
    }
}

/// Declares `$name` as a test per backend.
macro_rules! behaviour {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let backend = super::open(store::BackendKind::Sqlite, stringify!($name)).await.unwrap();
                super::$name(&backend.store).await;
                backend.store.close().await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(backend) = super::open(store::BackendKind::Postgres, stringify!($name)).await else { return };
                super::$name(&backend.store).await;
                backend.store.close().await;
            })*
        }
    };
}

behaviour!(
    schema_keys_start_with_tenant_id,
    products_round_trip_and_modes,
    unknown_references_are_refused_and_store_nothing,
    idempotency_replays_and_detects_a_different_request,
    concurrent_writes_share_transactions,
    tenants_see_only_their_own_data,
    keys_authenticate_until_revoked,
    network_locations_are_visible_to_every_tenant,
    lists_paginate_by_cursor,
    usage_counts_rows_per_day,
    deleting_a_referenced_row_is_refused,
    webhook_deliveries_claim_and_record_under_their_lease,
    subscription_deliveries_claim_and_record_under_their_lease,
    a_location_change_sees_the_stock_its_batch_received,
    large_asns_at_once_keep_each_batch_within_its_pallets,
);

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

async fn create_tenant(store: &Store, tenant_id: &TenantId) {
    let outcome = store
        .write(Write {
            tenant_id: tenant_id.clone(),
            mutation: Mutation::PutTenant { name: tenant_id.to_string(), mode: PutMode::Upsert },
            idempotency: None,
        })
        .await;
    assert!(matches!(outcome, Ok(WriteOutcome::Applied(_))), "{outcome:?}");
}

fn gtin(number: u64) -> Gtin {
    let body = format!("{number:013}");
    let digits: Vec<u8> = body.bytes().map(|byte| byte - b'0').collect();
    Gtin::parse(&format!("{body}{}", gs1::check_digit(&digits))).unwrap()
}

fn gln(number: u64) -> Gln {
    let body = format!("{number:012}");
    let digits: Vec<u8> = body.bytes().map(|byte| byte - b'0').collect();
    Gln::parse(&format!("{body}{}", gs1::check_digit(&digits))).unwrap()
}

fn product(number: u64, name: &str) -> Product {
    Product {
        gtin: gtin(number),
        name: name.into(),
        brand: Some("Fjord".into()),
        description: None,
        temperature_class: TemperatureClass::Chilled,
        shelf_life_days: Some(12),
        min_remaining_shelf_life_days: None,
        nutrition: Some(Nutrition { energy_kj: Some(850.0), protein_g: Some(20.5), ..Nutrition::default() }),
        country_of_origin: Some(Country::parse("NO").unwrap()),
        supplier_party_id: None,
    }
}

fn location(number: u64, kind: LocationKind) -> Location {
    Location {
        gln: gln(number),
        kind,
        name: format!("location {number}"),
        address: Address { city: Some("Oslo".into()), ..Address::default() },
        country: Country::parse("NO").unwrap(),
        coordinates: Coordinates::new(59.91, 10.75).unwrap(),
        time_zone: TimeZoneName::parse("Europe/Oslo").unwrap(),
        zones: vec![Zone {
            name: ZoneName::parse("chill-1").unwrap(),
            range: TemperatureRange::new(Some(0.0), Some(2.0)).unwrap(),
            capacity_pallets: 40,
        }],
        cutoffs: vec![(Service::NextDay, LocalTime::parse("16:00").unwrap())],
        pick_pack_lead_minutes: 90,
        party_id: None,
    }
}

async fn put(store: &Store, tenant_id: &TenantId, mutation: Mutation) -> Result<WriteOutcome, WriteError> {
    store.tenant(tenant_id).write(mutation, None).await
}

async fn schema_keys_start_with_tenant_id(store: &Store) {
    let tables = store.table_keys().await.unwrap();
    assert!(tables.iter().any(|table| table.table == "products"), "catalog read no tables: {tables:?}");
    let products = tables.iter().find(|table| table.table == "products").unwrap();
    assert_eq!(products.primary_key, ["tenant_id", "gtin"]);
    assert!(products.foreign_keys.contains(&vec!["tenant_id".to_owned(), "supplier_party_id".to_owned()]));
    assert_eq!(schema::distribution_violations(&tables), Vec::<String>::new());
    // The rule itself catches a violation.
    let mut broken = products.clone();
    broken.primary_key = vec!["gtin".into()];
    assert_eq!(schema::distribution_violations(&[broken]).len(), 1);
}

async fn products_round_trip_and_modes(store: &Store) {
    let acme = tenant("acme");
    create_tenant(store, &acme).await;
    let salmon = product(950600013435, "Salmon fillet");
    assert_eq!(
        put(store, &acme, Mutation::PutProduct { product: salmon.clone(), mode: PutMode::Create }).await.map(|_| ()),
        Ok(())
    );
    assert_eq!(store.tenant(&acme).product(&salmon.gtin).await.unwrap(), Some(salmon.clone()));
    assert!(matches!(
        put(store, &acme, Mutation::PutProduct { product: salmon.clone(), mode: PutMode::Create }).await,
        Err(WriteError::Conflict(_))
    ));
    let mut renamed = salmon.clone();
    renamed.name = "Salmon loin".into();
    renamed.temperature_class = TemperatureClass::Custom(TemperatureRange::new(Some(-1.0), Some(2.0)).unwrap());
    let outcome =
        put(store, &acme, Mutation::PutProduct { product: renamed.clone(), mode: PutMode::Upsert }).await.unwrap();
    assert!(matches!(outcome, WriteOutcome::Applied(Applied { created: false, .. })));
    assert_eq!(store.tenant(&acme).product(&salmon.gtin).await.unwrap(), Some(renamed));
    let missing = product(1, "Missing");
    assert_eq!(
        put(store, &acme, Mutation::PutProduct { product: missing.clone(), mode: PutMode::Update }).await,
        Err(WriteError::NotFound)
    );
    assert_eq!(store.tenant(&acme).product(&missing.gtin).await.unwrap(), None);
}

async fn unknown_references_are_refused_and_store_nothing(store: &Store) {
    let acme = tenant("acme");
    create_tenant(store, &acme).await;
    let mut apple = product(2, "Apple");
    apple.supplier_party_id = Some(PartyId::parse("no-such-farm").unwrap());
    assert_eq!(
        put(store, &acme, Mutation::PutProduct { product: apple.clone(), mode: PutMode::Create }).await,
        Err(WriteError::UnknownReference { field: "/supplier_party_id", value: "no-such-farm".into() })
    );
    assert_eq!(store.tenant(&acme).product(&apple.gtin).await.unwrap(), None);
    let lane = Lane {
        lane_id: LaneId::parse("nowhere").unwrap(),
        from: gln(11),
        to: gln(12),
        transit_minutes: 60,
        departures: vec![],
        temperature_classes: vec!["chilled"],
        cost_per_pallet_cents: 100,
    };
    assert!(matches!(
        put(store, &acme, Mutation::PutLane { lane: lane.clone(), mode: PutMode::Create }).await,
        Err(WriteError::UnknownReference { field: "/from", .. })
    ));
    assert_eq!(store.tenant(&acme).lane(&lane.lane_id).await.unwrap(), None);
    assert_eq!(store.usage(Some(&acme), "0000-01-01", "9999-12-31").await.unwrap(), vec![]);
}

fn record(tenant_id: &TenantId, key: &str, request: &[u8]) -> IdempotencyRecord {
    record_answering(tenant_id, key, request, b"first".to_vec())
}

fn record_answering(tenant_id: &TenantId, key: &str, request: &[u8], body: Vec<u8>) -> IdempotencyRecord {
    use sha2::Digest;
    IdempotencyRecord {
        tenant_id: tenant_id.clone(),
        key: key.into(),
        request_sha256: sha2::Sha256::digest(request).into(),
        respond: Box::new(move |applied| StoredResponse {
            status: if applied.created { 201 } else { 200 },
            body: body.clone(),
        }),
    }
}

/// An answer the size of a placed order's view (stored compressed).
fn long_answer() -> Vec<u8> {
    let picks: Vec<String> = (0..24)
        .map(|line| {
            format!(r#"{{"line":{line},"zone":"chill","lot":"L{line}-30","expiry":"2027-01-12","quantity":3}}"#)
        })
        .collect();
    format!(r#"{{"status":"allocated","picks":[{}]}}"#, picks.join(",")).into_bytes()
}

async fn idempotency_replays_and_detects_a_different_request(store: &Store) {
    let acme = tenant("acme");
    create_tenant(store, &acme).await;
    let scoped = store.tenant(&acme);
    let first = scoped
        .write(
            Mutation::PutProduct { product: product(3, "Pear"), mode: PutMode::Create },
            Some(record(&acme, "k-1", b"pear")),
        )
        .await;
    assert!(matches!(first, Ok(WriteOutcome::Applied(Applied { created: true, .. }))));
    // The retry is not applied again (a Create would conflict): the first answer comes back.
    let retry = scoped
        .write(
            Mutation::PutProduct { product: product(3, "Pear"), mode: PutMode::Create },
            Some(record(&acme, "k-1", b"pear")),
        )
        .await;
    assert_eq!(retry, Ok(WriteOutcome::Replayed(StoredResponse { status: 201, body: b"first".to_vec() })));
    let other = scoped
        .write(
            Mutation::PutProduct { product: product(4, "Plum"), mode: PutMode::Create },
            Some(record(&acme, "k-1", b"plum")),
        )
        .await;
    assert_eq!(other, Err(WriteError::IdempotencyMismatch));
    assert_eq!(scoped.product(&gtin(4)).await.unwrap(), None);
    let (digest, stored) = scoped.idempotent_response("k-1").await.unwrap().unwrap();
    assert_eq!(stored.status, 201);
    assert_eq!(digest, record(&acme, "", b"pear").request_sha256);
    // A long answer (stored compressed) comes back byte for byte, from the writer and from a read.
    let long = long_answer();
    let quince = || Mutation::PutProduct { product: product(5, "Quince"), mode: PutMode::Create };
    let first = scoped.write(quince(), Some(record_answering(&acme, "k-2", b"quince", long.clone()))).await;
    assert!(matches!(first, Ok(WriteOutcome::Applied(_))));
    let retry = scoped.write(quince(), Some(record_answering(&acme, "k-2", b"quince", b"other".to_vec()))).await;
    assert_eq!(retry, Ok(WriteOutcome::Replayed(StoredResponse { status: 201, body: long.clone() })));
    assert_eq!(scoped.idempotent_response("k-2").await.unwrap().unwrap().1.body, long);
    // Keys are per tenant.
    let other_tenant = tenant("other");
    create_tenant(store, &other_tenant).await;
    assert!(store.tenant(&other_tenant).idempotent_response("k-1").await.unwrap().is_none());
}

async fn concurrent_writes_share_transactions(store: &Store) {
    let acme = tenant("acme");
    create_tenant(store, &acme).await;
    let before = store.writer_stats();
    let store = Arc::new(store.clone());
    let mut tasks = Vec::new();
    for number in 0..400u64 {
        let store = store.clone();
        let acme = acme.clone();
        tasks.push(tokio::spawn(async move {
            store
                .tenant(&acme)
                .write(Mutation::PutProduct { product: product(1000 + number, "Bulk"), mode: PutMode::Upsert }, None)
                .await
        }));
    }
    for task in tasks {
        assert!(matches!(task.await.unwrap(), Ok(WriteOutcome::Applied(_))));
    }
    let after = store.writer_stats();
    assert_eq!(after.writes - before.writes, 400);
    assert!(after.batches - before.batches < 400, "no batching happened: {before:?} → {after:?}");
    // Every write committed in one batch transaction: each is in the phase totals, and the
    // commits took time.
    let phases = after.phases.since(&before.phases);
    assert_eq!(phases.writes, 400, "{phases:?}");
    assert!(phases.apply_micros > 0 && phases.commit_micros > 0, "{phases:?}");
    let page = store
        .tenant(&acme)
        .products(&ProductFilter::default(), &PageRequest { after: None, limit: Some(500) })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 400);
}

async fn tenants_see_only_their_own_data(store: &Store) {
    let (alpha, beta) = (tenant("alpha"), tenant("beta"));
    create_tenant(store, &alpha).await;
    create_tenant(store, &beta).await;
    put(store, &alpha, Mutation::PutProduct { product: product(5, "Alpha fish"), mode: PutMode::Create })
        .await
        .unwrap();
    put(store, &alpha, Mutation::PutLocation { location: location(20, LocationKind::Farm), mode: PutMode::Create })
        .await
        .unwrap();
    let beta_view = store.tenant(&beta);
    assert_eq!(beta_view.product(&gtin(5)).await.unwrap(), None);
    assert!(beta_view.products(&ProductFilter::default(), &PageRequest::default()).await.unwrap().items.is_empty());
    assert_eq!(beta_view.location(&gln(20)).await.unwrap(), None);
    assert!(beta_view.locations(&LocationFilter::default(), &PageRequest::default()).await.unwrap().items.is_empty());
    // A GTIN belongs to the first tenant that registers it (GS1 keys are the brand's): beta's
    // claim is refused without a trace, and the public page stays alpha's.
    for mode in [PutMode::Create, PutMode::Upsert] {
        let refused = put(store, &beta, Mutation::PutProduct { product: product(5, "Beta fish"), mode }).await;
        assert!(matches!(refused, Err(WriteError::Conflict(_))), "{refused:?}");
    }
    assert_eq!(store.tenant(&beta).product(&gtin(5)).await.unwrap(), None);
    assert_eq!(store.tenant(&alpha).product(&gtin(5)).await.unwrap().unwrap().name, "Alpha fish");
    let (holder, public, _) = store.public_product(&gtin(5)).await.unwrap().unwrap();
    assert_eq!((holder, public.name), (alpha.clone(), "Alpha fish".to_owned()));
    // Once alpha lets go of the GTIN, beta may register it.
    put(store, &alpha, Mutation::DeleteProduct { gtin: gtin(5) }).await.unwrap();
    put(store, &beta, Mutation::PutProduct { product: product(5, "Beta fish"), mode: PutMode::Create }).await.unwrap();
    assert_eq!(store.public_product(&gtin(5)).await.unwrap().unwrap().0, beta.clone());
    assert!(matches!(
        put(store, &beta, Mutation::PutLocation { location: location(20, LocationKind::Store), mode: PutMode::Create })
            .await,
        Err(WriteError::Conflict(_))
    ));
    assert_eq!(put(store, &beta, Mutation::DeleteLocation { gln: gln(20) }).await, Err(WriteError::NotFound));
    assert!(store.tenant(&alpha).location(&gln(20)).await.unwrap().is_some());
}

async fn keys_authenticate_until_revoked(store: &Store) {
    let acme = tenant("acme");
    create_tenant(store, &acme).await;
    let key = ApiKeySecret::generate(&acme);
    let scopes = Scope::parse_list(&acme, ["tenant:write"]).unwrap();
    put(
        store,
        &acme,
        Mutation::CreateKey {
            key_id: key.key_id.clone(),
            name: "ci".into(),
            scopes: scopes.clone(),
            secret_sha256: key.secret_sha256,
        },
    )
    .await
    .unwrap();
    let principal = store.authenticate(key.reveal()).await.unwrap().unwrap();
    assert_eq!((principal.tenant_id.clone(), principal.scopes.clone()), (acme.clone(), scopes));
    assert!(principal.has(Scope::TenantRead) && !principal.has(Scope::TenantAdmin) && !principal.is_operator());
    let mut wrong = key.reveal().to_owned();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    assert_eq!(store.authenticate(&wrong).await.unwrap(), None);
    // A key names its tenant; claiming another tenant finds nothing.
    let forged = key.reveal().replacen("_acme_", "_other_", 1);
    assert_eq!(store.authenticate(&forged).await.unwrap(), None);
    put(store, &acme, Mutation::RevokeKey { key_id: key.key_id.clone() }).await.unwrap();
    assert_eq!(store.authenticate(key.reveal()).await.unwrap(), None);
    assert!(store.key(&acme, &key.key_id).await.unwrap().unwrap().revoked_unix_ms.is_some());
    assert_eq!(
        put(store, &acme, Mutation::RevokeKey { key_id: "0000000000000000".into() }).await,
        Err(WriteError::NotFound)
    );
    let missing = tenant("ghost");
    let ghost_key = ApiKeySecret::generate(&missing);
    assert_eq!(
        put(
            store,
            &missing,
            Mutation::CreateKey {
                key_id: ghost_key.key_id.clone(),
                name: "x".into(),
                scopes: vec![Scope::TenantRead],
                secret_sha256: ghost_key.secret_sha256
            }
        )
        .await,
        Err(WriteError::NotFound)
    );
}

async fn network_locations_are_visible_to_every_tenant(store: &Store) {
    let network = TenantId::network();
    let acme = tenant("acme");
    create_tenant(store, &network).await;
    create_tenant(store, &acme).await;
    let depot = location(30, LocationKind::ColdDepot);
    put(store, &network, Mutation::PutLocation { location: depot.clone(), mode: PutMode::Create }).await.unwrap();
    put(store, &acme, Mutation::PutLocation { location: location(31, LocationKind::Farm), mode: PutMode::Create })
        .await
        .unwrap();
    let seen = store.tenant(&acme).location(&depot.gln).await.unwrap().unwrap();
    assert_eq!((seen.owner.clone(), seen.value.clone()), (network.clone(), depot.clone()));
    let all = store.tenant(&acme).locations(&LocationFilter::default(), &PageRequest::default()).await.unwrap();
    assert_eq!(all.items.iter().map(|owned| owned.value.gln.clone()).collect::<Vec<_>>(), vec![gln(30), gln(31)]);
    // A tenant cannot take a network GLN for itself, but may draw a lane to the network depot.
    assert!(matches!(
        put(store, &acme, Mutation::PutLocation { location: depot.clone(), mode: PutMode::Create }).await,
        Err(WriteError::Conflict(_))
    ));
    let lane = Lane {
        lane_id: LaneId::parse("farm-to-depot").unwrap(),
        from: gln(31),
        to: gln(30),
        transit_minutes: 240,
        departures: vec![LocalTime::parse("06:00").unwrap()],
        temperature_classes: vec!["chilled"],
        cost_per_pallet_cents: 9_000,
    };
    put(store, &acme, Mutation::PutLane { lane: lane.clone(), mode: PutMode::Create }).await.unwrap();
    assert_eq!(store.tenant(&acme).lane(&lane.lane_id).await.unwrap().unwrap().value, lane);
    // The network sees only its own data.
    assert!(store.tenant(&network).location(&gln(31)).await.unwrap().is_none());
    let zones = &store.tenant(&acme).location(&gln(31)).await.unwrap().unwrap().value.zones;
    assert_eq!(zones.len(), 1);
}

async fn lists_paginate_by_cursor(store: &Store) {
    let acme = tenant("acme");
    create_tenant(store, &acme).await;
    for number in 0..7u64 {
        put(store, &acme, Mutation::PutProduct { product: product(100 + number, "Item"), mode: PutMode::Create })
            .await
            .unwrap();
    }
    let scoped = store.tenant(&acme);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = scoped
            .products(&ProductFilter::default(), &PageRequest { after: after.clone(), limit: Some(3) })
            .await
            .unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().map(|product| product.gtin));
        match page.next_after {
            Some(next) => after = Some(Cursor::decode(&Cursor::encode(&next)).unwrap()),
            None => break,
        }
    }
    assert_eq!(seen, (0..7u64).map(|number| gtin(100 + number)).collect::<Vec<_>>());
    let filtered = scoped
        .products(&ProductFilter { temperature_class: Some("frozen".into()), brand: None }, &PageRequest::default())
        .await
        .unwrap();
    assert!(filtered.items.is_empty());
}

async fn usage_counts_rows_per_day(store: &Store) {
    let acme = tenant("acme");
    create_tenant(store, &acme).await;
    put(store, &acme, Mutation::PutProduct { product: product(7, "A"), mode: PutMode::Create }).await.unwrap();
    put(store, &acme, Mutation::PutProduct { product: product(8, "B"), mode: PutMode::Create }).await.unwrap();
    put(store, &acme, Mutation::PutProduct { product: product(8, "B2"), mode: PutMode::Upsert }).await.unwrap();
    put(store, &acme, Mutation::DeleteProduct { gtin: gtin(7) }).await.unwrap();
    let today = utc_day(now_unix_ms());
    let usage = store.usage(Some(&acme), &today, &today).await.unwrap();
    let quantity = |unit: &str| usage.iter().find(|row| row.unit == unit).map(|row| row.quantity);
    assert_eq!(quantity("storage_rows_created"), Some(2));
    assert_eq!(quantity("storage_rows_deleted"), Some(1));
    assert_eq!(store.storage_rows(&acme).await.unwrap(), 1);
}

async fn deleting_a_referenced_row_is_refused(store: &Store) {
    let acme = tenant("acme");
    create_tenant(store, &acme).await;
    let farm = Party {
        party_id: PartyId::parse("orchard").unwrap(),
        kind: PartyKind::Farm,
        name: "Orchard".into(),
        person_name: Some("Jan de Boer".into()),
        publish_name: true,
        gln: None,
        country: Some(Country::parse("NL").unwrap()),
    };
    put(store, &acme, Mutation::PutParty { party: farm.clone(), mode: PutMode::Create }).await.unwrap();
    let mut apple = product(9, "Apple");
    apple.supplier_party_id = Some(farm.party_id.clone());
    put(store, &acme, Mutation::PutProduct { product: apple.clone(), mode: PutMode::Create }).await.unwrap();
    assert!(matches!(
        put(store, &acme, Mutation::DeleteParty { party_id: farm.party_id.clone() }).await,
        Err(WriteError::InUse(..))
    ));
    assert_eq!(store.tenant(&acme).party(&farm.party_id).await.unwrap(), Some(farm.clone()));
    put(store, &acme, Mutation::DeleteProduct { gtin: apple.gtin.clone() }).await.unwrap();
    put(store, &acme, Mutation::DeleteParty { party_id: farm.party_id.clone() }).await.unwrap();
    assert_eq!(store.tenant(&acme).party(&farm.party_id).await.unwrap(), None);
}

/// SQLite: a long answer is stored compressed, and an answer stored before compression (as it
/// was answered, `identity`) still replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_long_answers_are_stored_compressed_and_older_ones_still_replay() {
    use sqlx::Connection;
    let file = scratchdb::SqliteFile::new().unwrap();
    let acme = tenant("acme");
    let store = Store::open(StoreConfig::new(file.url())).await.unwrap();
    create_tenant(&store, &acme).await;
    let long = long_answer();
    let scoped = store.tenant(&acme);
    for (number, key) in [(1, "k-1"), (2, "k-2")] {
        let mutation = Mutation::PutProduct { product: product(number, "Cod"), mode: PutMode::Create };
        let written = scoped.write(mutation, Some(record_answering(&acme, key, key.as_bytes(), long.clone()))).await;
        assert!(matches!(written, Ok(WriteOutcome::Applied(_))));
    }
    let mut raw = sqlx::SqliteConnection::connect(&file.url()).await.unwrap();
    let (encoding, stored): (String, Vec<u8>) =
        sqlx::query_as("SELECT response_encoding, response_body FROM idempotency_keys WHERE idempotency_key = 'k-1'")
            .fetch_one(&mut raw)
            .await
            .unwrap();
    assert_eq!(encoding, "lz4");
    assert!(stored.len() * 2 < long.len(), "{} stored of {}", stored.len(), long.len());
    // As a row written before the column existed reads.
    sqlx::query(
        "UPDATE idempotency_keys SET response_encoding = 'identity', response_body = $1 WHERE idempotency_key = 'k-2'",
    )
    .bind(&long)
    .execute(&mut raw)
    .await
    .unwrap();
    for key in ["k-1", "k-2"] {
        assert_eq!(scoped.idempotent_response(key).await.unwrap().unwrap().1.body, long, "{key}");
        let number = if key == "k-1" { 1 } else { 2 };
        let retry = scoped
            .write(
                Mutation::PutProduct { product: product(number, "Cod"), mode: PutMode::Create },
                Some(record_answering(&acme, key, key.as_bytes(), Vec::new())),
            )
            .await;
        assert_eq!(retry, Ok(WriteOutcome::Replayed(StoredResponse { status: 201, body: long.clone() })), "{key}");
    }
    // A damaged answer fails its retry (and a read of it), not the writes batched with it.
    sqlx::query("UPDATE idempotency_keys SET response_body = x'ffffff7f0102' WHERE idempotency_key = 'k-1'")
        .execute(&mut raw)
        .await
        .unwrap();
    let (damaged, other) = tokio::join!(
        scoped.write(
            Mutation::PutProduct { product: product(1, "Cod"), mode: PutMode::Create },
            Some(record_answering(&acme, "k-1", b"k-1", Vec::new())),
        ),
        scoped.write(Mutation::PutProduct { product: product(3, "Hake"), mode: PutMode::Create }, None),
    );
    assert!(
        matches!(&damaged, Err(WriteError::Database(detail)) if detail.contains("stored data is invalid")),
        "{damaged:?}"
    );
    assert!(matches!(other, Ok(WriteOutcome::Applied(_))), "{other:?}");
    assert!(matches!(scoped.idempotent_response("k-1").await, Err(StoreError::Corrupt(_))));
    // An encoding the store does not know is refused by the table.
    assert!(
        sqlx::query("UPDATE idempotency_keys SET response_encoding = 'gzip' WHERE idempotency_key = 'k-2'")
            .execute(&mut raw)
            .await
            .is_err()
    );
    store.close().await;
}

/// SQLite: the idempotency keys' index is built in bulk (migration 0029): a key is found while it
/// waits in the tail (by the writer and by a read), once the index holds it (after a restart, whose
/// first batch catches the index up, and once `KEYS_UNINDEXED_MAX` keys waited), and an expired key
/// used again answers its new request from then on, also once the index is extended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_idempotency_keys_are_found_in_their_tail_and_in_their_index() {
    use sqlx::Connection;
    let file = scratchdb::SqliteFile::new().unwrap();
    let acme = tenant("acme");
    let store = Store::open(StoreConfig::new(file.url())).await.unwrap();
    create_tenant(&store, &acme).await;
    let mut raw = sqlx::SqliteConnection::connect(&file.url()).await.unwrap();
    async fn indexed(raw: &mut sqlx::SqliteConnection) -> i64 {
        sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM idempotency_keys_by_key").fetch_one(raw).await.unwrap().0
    }
    let cod = |number: u64| Mutation::PutProduct { product: product(number, "Cod"), mode: PutMode::Create };
    async fn replays(store: &Store, acme: &TenantId, number: u64, key: &str, answer: &[u8]) {
        let scoped = store.tenant(acme);
        let mutation = Mutation::PutProduct { product: product(number, "Cod"), mode: PutMode::Create };
        let retry = scoped.write(mutation, Some(record_answering(acme, key, key.as_bytes(), b"again".to_vec()))).await;
        assert_eq!(retry, Ok(WriteOutcome::Replayed(StoredResponse { status: 201, body: answer.to_vec() })), "{key}");
        assert_eq!(scoped.idempotent_response(key).await.unwrap().unwrap().1.body, answer, "{key}");
        let other = scoped
            .write(
                Mutation::PutProduct { product: product(number, "Cod"), mode: PutMode::Create },
                Some(record(acme, key, b"another request")),
            )
            .await;
        assert_eq!(other, Err(WriteError::IdempotencyMismatch), "{key}");
    }
    let scoped = store.tenant(&acme);
    for number in 1..=3 {
        let key = format!("k-{number}");
        let answer = format!("answer {number}").into_bytes();
        let written = scoped.write(cod(number), Some(record_answering(&acme, &key, key.as_bytes(), answer))).await;
        assert!(matches!(written, Ok(WriteOutcome::Applied(_))), "{written:?}");
    }
    // In the tail: the index does not hold them yet.
    assert_eq!(indexed(&mut raw).await, 0);
    for number in 1..=3 {
        replays(&store, &acme, number, &format!("k-{number}"), format!("answer {number}").as_bytes()).await;
    }
    // A restart: the writer knows no tail, and its first batch puts every key into the index.
    store.close().await;
    let store = Store::open(StoreConfig::new(file.url())).await.unwrap();
    put(&store, &acme, cod(4)).await.unwrap();
    assert_eq!(indexed(&mut raw).await, 3);
    for number in 1..=3 {
        replays(&store, &acme, number, &format!("k-{number}"), format!("answer {number}").as_bytes()).await;
    }
    // k-1 expired (stored 25 hours ago): used again, it is a new request, whose answer replaces it.
    sqlx::query(
        "UPDATE idempotency_keys SET created_unix_ms = created_unix_ms - 90000000 WHERE idempotency_key = 'k-1'",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    let again =
        store.tenant(&acme).write(cod(5), Some(record_answering(&acme, "k-1", b"k-1", b"answer 5".to_vec()))).await;
    assert!(matches!(again, Ok(WriteOutcome::Applied(_))), "{again:?}");
    replays(&store, &acme, 5, "k-1", b"answer 5").await;
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM idempotency_keys WHERE idempotency_key = 'k-1'")
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert_eq!(rows, 1, "the expired answer is deleted");
    // Enough keys waiting extend the index within a batch; every key is still found.
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for client in 0..16u64 {
        let (store, acme) = (store.clone(), acme.clone());
        tasks.push(tokio::spawn(async move {
            let scoped = store.tenant(&acme);
            let mut number = 100 + client;
            while number < 100 + store::KEYS_UNINDEXED_MAX as u64 {
                let key = format!("bulk-{number}");
                let mutation = Mutation::PutProduct { product: product(number, "Hake"), mode: PutMode::Create };
                let written = scoped
                    .write(mutation, Some(record_answering(&acme, &key, b"bulk", key.clone().into_bytes())))
                    .await;
                assert!(matches!(written, Ok(WriteOutcome::Applied(_))), "{written:?}");
                number += 16;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let indexed_now = indexed(&mut raw).await;
    assert!(indexed_now >= 3 + store::KEYS_UNINDEXED_MAX as i64 - 64, "{indexed_now} keys indexed");
    for number in [100, 101, 100 + store::KEYS_UNINDEXED_MAX as u64 - 1] {
        let key = format!("bulk-{number}");
        let retry = store
            .tenant(&acme)
            .write(
                Mutation::PutProduct { product: product(number, "Hake"), mode: PutMode::Create },
                Some(record_answering(&acme, &key, b"bulk", Vec::new())),
            )
            .await;
        assert_eq!(retry, Ok(WriteOutcome::Replayed(StoredResponse { status: 201, body: key.clone().into_bytes() })));
    }
    replays(&store, &acme, 5, "k-1", b"answer 5").await;
    replays(&store, &acme, 2, "k-2", b"answer 2").await;
    let (through, last): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT through_unix_ms FROM idempotency_keys_indexed), (SELECT last_batch_unix_ms FROM writer_clock)",
    )
    .fetch_one(&mut raw)
    .await
    .unwrap();
    assert!(through <= last);
    Arc::into_inner(store).unwrap().close().await;
}

/// SQLite: every batch takes a time after the last committed batch's (the movement journal pages
/// by it), also after a restart with the wall clock behind that time (here: the stored clock an
/// hour ahead, as if the clock stepped back while the server was down).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_batch_times_keep_their_order_across_a_restart_with_the_clock_behind() {
    use sqlx::Connection;
    let file = scratchdb::SqliteFile::new().unwrap();
    let acme = tenant("acme");
    let store = Store::open(StoreConfig::new(file.url())).await.unwrap();
    create_tenant(&store, &acme).await;
    store.close().await;
    let ahead = jiff::Timestamp::now().as_millisecond() + 3_600_000;
    let mut raw = sqlx::SqliteConnection::connect(&file.url()).await.unwrap();
    sqlx::query("UPDATE writer_clock SET last_batch_unix_ms = $1").bind(ahead).execute(&mut raw).await.unwrap();
    let store = Store::open(StoreConfig::new(file.url())).await.unwrap();
    // Each a millisecond or more after the batch before; the writer's own batches (its upkeep)
    // may take some of those milliseconds in between, never the wall clock's time.
    let mut last = ahead;
    for number in [1, 2] {
        put(&store, &acme, Mutation::PutProduct { product: product(number, "Cod"), mode: PutMode::Create })
            .await
            .unwrap();
        let (written,): (i64,) = sqlx::query_as("SELECT updated_unix_ms FROM products WHERE gtin = $1")
            .bind(gtin(number).as_str())
            .fetch_one(&mut raw)
            .await
            .unwrap();
        assert!(written > last && written < ahead + 1_000, "product {number}: {written}, after {last} (ahead {ahead})");
        last = written;
    }
    store.close().await;
}

/// SQLite: orders written before `arrived_unix_ms` (migration 20) take it from their history, as
/// an upgrade runs it: one at its pickup point arrived with its `at_pickup_point` row, one
/// collected there too (not at its collection), one delivered at the door at its delivery; one
/// still open has not arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_orders_from_before_arrivals_arrive_by_their_history() {
    use sqlx::Connection;
    let file = scratchdb::SqliteFile::new().unwrap();
    let mut raw = sqlite_migrated_before(&file, "0020").await;
    // (order, status, delivered), then its history (status, at).
    type History<'a> = &'a [(&'a str, i64)];
    let orders: [(&str, &str, Option<i64>, History); 4] = [
        ("waiting", "at_pickup_point", None, &[("shipped", 100), ("at_pickup_point", 200)]),
        ("collected", "delivered", Some(900), &[("at_pickup_point", 300), ("delivered", 900)]),
        ("home", "delivered", Some(400), &[("out_for_delivery", 350), ("delivered", 410)]),
        ("open", "shipped", None, &[("shipped", 500)]),
    ];
    for (order, status, delivered, history) in orders {
        sqlx::query(
            "INSERT INTO orders (tenant_id, order_id, status, reservation_id, service, lines, destination, allocation, \
             region, promised_by_unix_ms, placed_unix_ms, delivered_unix_ms, updated_unix_ms) \
             VALUES ('acme', $1, $2, $1, 'next_day', '[]', '{}', '{}', 'Amsterdam', 1000, 0, $3, 0)",
        )
        .bind(order)
        .bind(status)
        .bind(delivered)
        .execute(&mut raw)
        .await
        .unwrap();
        for (seq, (step, at)) in history.iter().enumerate() {
            sqlx::query(
                "INSERT INTO order_events (tenant_id, order_id, seq, status, at_unix_ms) VALUES ('acme', $1, $2, $3, $4)",
            )
            .bind(order)
            .bind(seq as i64 + 1)
            .bind(step)
            .bind(at)
            .execute(&mut raw)
            .await
            .unwrap();
        }
    }
    raw.close().await.unwrap();
    let store = Store::open(StoreConfig::new(file.url())).await.unwrap();
    store.close().await;
    let mut raw = sqlx::SqliteConnection::connect(&file.url()).await.unwrap();
    let arrived: Vec<(String, Option<i64>, Option<i64>)> =
        sqlx::query_as("SELECT order_id, arrived_unix_ms, window_from_unix_ms FROM orders ORDER BY order_id")
            .fetch_all(&mut raw)
            .await
            .unwrap();
    let expected: Vec<(String, Option<i64>, Option<i64>)> =
        [("collected", Some(300)), ("home", Some(400)), ("open", None), ("waiting", Some(200))]
            .into_iter()
            .map(|(order, at)| (order.to_owned(), at, None))
            .collect();
    assert_eq!(arrived, expected);
}

/// A folder with the `backend`'s migrations before `version` (its first four digits), to build a
/// database as an older release left it.
fn migrations_before(backend: &str, version: &str) -> tempfile::TempDir {
    let older = tempfile::tempdir().unwrap();
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
    for entry in std::fs::read_dir(&migrations).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.as_str() < version {
            std::fs::copy(&path, older.path().join(&name)).unwrap();
        }
    }
    older
}

/// A connection to the SQLite `file`, created with the migrations before `version`.
async fn sqlite_migrated_before(file: &scratchdb::SqliteFile, version: &str) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let older = migrations_before("sqlite", version);
    let options = std::str::FromStr::from_str(&file.url())
        .map(|options: sqlx::sqlite::SqliteConnectOptions| options.create_if_missing(true));
    let mut raw = sqlx::SqliteConnection::connect_with(&options.unwrap()).await.unwrap();
    sqlx::migrate::Migrator::new(older.path()).await.unwrap().run(&mut raw).await.unwrap();
    raw
}

/// Orders packed before `order_ssccs` (order, allocation): a split order's two pallets, and an
/// order with no SSCC yet.
const PACKED_BEFORE_ORDER_SSCCS: [(&str, &str); 2] = [
    ("split", r#"{"shipments":[{"site":"1","sscc":"387123451000000011"},{"site":"2","sscc":"387123451000000028"}]}"#),
    ("picking", r#"{"shipments":[{"site":"1","sscc":null},{"site":"2"}]}"#),
];
const INSERT_PACKED_ORDER: &str = "INSERT INTO orders (tenant_id, order_id, status, reservation_id, service, lines, \
     destination, allocation, region, promised_by_unix_ms, placed_unix_ms, updated_unix_ms) \
     VALUES ('acme', $1, 'packed', $1, 'next_day', '[]', '{}', $2, 'Amsterdam', 1000, 0, 0)";
const READ_ORDER_SSCCS: &str = "SELECT tenant_id, sscc, order_id FROM order_ssccs ORDER BY sscc";

/// What `order_ssccs` holds after the upgrade: the split order's two SSCCs.
fn order_ssccs_after_upgrade() -> Vec<(String, String, String)> {
    ["387123451000000011", "387123451000000028"]
        .into_iter()
        .map(|sscc| ("acme".to_owned(), sscc.to_owned(), "split".to_owned()))
        .collect()
}

/// SQLite: the SSCCs orders were packed onto before `order_ssccs` (migration 0030) are taken from
/// their allocations as an upgrade runs it, so an ASN may not announce them: each shipment's, and
/// none of an order not packed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_orders_packed_before_order_ssccs_keep_their_ssccs() {
    use sqlx::Connection;
    let file = scratchdb::SqliteFile::new().unwrap();
    let mut raw = sqlite_migrated_before(&file, "0030").await;
    for (order, allocation) in PACKED_BEFORE_ORDER_SSCCS {
        sqlx::query(INSERT_PACKED_ORDER).bind(order).bind(allocation).execute(&mut raw).await.unwrap();
    }
    raw.close().await.unwrap();
    let store = Store::open(StoreConfig::new(file.url())).await.unwrap();
    store.close().await;
    let mut raw = sqlx::SqliteConnection::connect(&file.url()).await.unwrap();
    let packed: Vec<(String, String, String)> = sqlx::query_as(READ_ORDER_SSCCS).fetch_all(&mut raw).await.unwrap();
    assert_eq!(packed, order_ssccs_after_upgrade());
}

/// PostgreSQL: the same, migration 0026.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_orders_packed_before_order_ssccs_keep_their_ssccs() {
    use sqlx::Connection;
    let Some(url) = scratchdb::postgres_or_skip("postgres_orders_packed_before_order_ssccs_keep_their_ssccs") else {
        return;
    };
    let older = migrations_before("postgres", "0026");
    let mut raw = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(older.path()).await.unwrap().run(&mut raw).await.unwrap();
    for (order, allocation) in PACKED_BEFORE_ORDER_SSCCS {
        sqlx::query(INSERT_PACKED_ORDER).bind(order).bind(allocation).execute(&mut raw).await.unwrap();
    }
    raw.close().await.unwrap();
    let store = Store::open(StoreConfig::new(url.clone())).await.unwrap();
    store.close().await;
    let mut raw = sqlx::PgConnection::connect(&url).await.unwrap();
    let packed: Vec<(String, String, String)> = sqlx::query_as(READ_ORDER_SSCCS).fetch_all(&mut raw).await.unwrap();
    assert_eq!(packed, order_ssccs_after_upgrade());
}

/// An order webhook is claimed by one delivery at a time, and a delivery records its outcome
/// only while it still holds its claim: a late record of a delivery whose lease passed to
/// another moves nothing back.
async fn webhook_deliveries_claim_and_record_under_their_lease(store: &Store) {
    use store::fulfilment::{FulfilmentMutation, TransitionCursor};
    let acme = tenant("acme");
    create_tenant(store, &acme).await;
    let fulfil = |mutation| Mutation::Fulfilment(mutation);
    put(
        store,
        &acme,
        fulfil(FulfilmentMutation::PutWebhook {
            webhook_id: "whk_1".into(),
            url: "http://merchant.example/hooks".into(),
            secret: "a-merchant-secret-of-32-characters".into(),
        }),
    )
    .await
    .unwrap();
    let read = || async { store.tenant(&acme).order_webhooks().await.unwrap().remove(0) };
    let created = read().await;
    let claim = |seen: i64, lease: i64| {
        fulfil(FulfilmentMutation::ClaimWebhook {
            webhook_id: "whk_1".into(),
            seen_next_attempt_unix_ms: seen,
            lease_until_unix_ms: lease,
        })
    };
    let cursor = |seq: i64| TransitionCursor { tx: 0, at_unix_ms: 1_000, id: "ord_a".into(), seq };
    // The first delivery claims it; a second that read it at the same moment may not.
    let first_lease = created.next_attempt_unix_ms + 60_000;
    put(store, &acme, claim(created.next_attempt_unix_ms, first_lease)).await.unwrap();
    assert!(matches!(
        put(store, &acme, claim(created.next_attempt_unix_ms, first_lease + 1)).await,
        Err(WriteError::Refused { code: "conflict", .. })
    ));
    assert_eq!(read().await.next_attempt_unix_ms, first_lease, "not due while claimed");
    // Say the first lease passed and another delivery took the webhook over, and delivered.
    let second_lease = first_lease + 60_000;
    put(store, &acme, claim(first_lease, second_lease)).await.unwrap();
    put(
        store,
        &acme,
        fulfil(FulfilmentMutation::WebhookDelivered {
            webhook_id: "whk_1".into(),
            lease_until_unix_ms: second_lease,
            through: Some(cursor(5)),
            alarms_through: None,
        }),
    )
    .await
    .unwrap();
    let delivered = read().await;
    assert_eq!((delivered.after_seq, delivered.attempts), (5, 0));
    assert!(delivered.next_attempt_unix_ms < second_lease, "due again at once");
    // The first delivery's late outcomes change nothing.
    put(
        store,
        &acme,
        fulfil(FulfilmentMutation::WebhookDelivered {
            webhook_id: "whk_1".into(),
            lease_until_unix_ms: first_lease,
            through: Some(cursor(3)),
            alarms_through: None,
        }),
    )
    .await
    .unwrap();
    put(
        store,
        &acme,
        fulfil(FulfilmentMutation::WebhookFailed {
            webhook_id: "whk_1".into(),
            lease_until_unix_ms: first_lease,
            next_attempt_unix_ms: first_lease + 120_000,
            error: "timed out".into(),
        }),
    )
    .await
    .unwrap();
    assert_eq!(read().await, delivered);
}

async fn subscription_deliveries_claim_and_record_under_their_lease(store: &Store) {
    use store::epcis::{QueryMutation, Subscription};
    let acme = tenant("acme");
    create_tenant(store, &acme).await;
    let query = |mutation| Mutation::EpcisQuery(mutation);
    let definition = r#"{"EQ_bizStep":["shipping"]}"#.to_owned();
    put(store, &acme, query(QueryMutation::CreateQuery { name: "moves".into(), definition })).await.unwrap();
    let subscription = Subscription {
        tenant_id: acme.as_str().to_owned(),
        subscription_id: "sub_1".into(),
        query_name: "moves".into(),
        destination: "https://subscriber.example/epcis".into(),
        signature_token: None,
        stream: true,
        schedule: None,
        report_if_empty: false,
        after_seq: 10,
        next_attempt_unix_ms: 1_000,
        attempts: 0,
        last_error: None,
        deliveries: 0,
        created_unix_ms: 0,
    };
    put(store, &acme, query(QueryMutation::CreateSubscription(Box::new(subscription)))).await.unwrap();
    let read = || async { store.tenant(&acme).epcis_subscriptions("moves").await.unwrap().remove(0) };
    let claim = |seen: i64, lease: i64| {
        query(QueryMutation::ClaimSubscription {
            subscription_id: "sub_1".into(),
            seen_next_attempt_unix_ms: seen,
            lease_until_unix_ms: lease,
        })
    };
    let recorded = |lease: i64, after_seq: i64, moved: bool, next: i64| {
        query(QueryMutation::RecordDelivery {
            lease_until_unix_ms: lease,
            subscription_id: "sub_1".into(),
            after_seq,
            moved,
            delivered: moved,
            next_attempt_unix_ms: next,
            error: (!moved).then(|| "answered 503".to_owned()),
        })
    };
    // The first delivery claims it; a second that read it at the same moment may not.
    put(store, &acme, claim(1_000, 61_000)).await.unwrap();
    assert!(matches!(put(store, &acme, claim(1_000, 61_001)).await, Err(WriteError::Conflict(_))));
    assert_eq!(read().await.next_attempt_unix_ms, 61_000, "not due while claimed");
    // Say the first lease passed and another delivery took it over, and delivered events to 12.
    put(store, &acme, claim(61_000, 121_000)).await.unwrap();
    put(store, &acme, recorded(121_000, 12, true, 70_000)).await.unwrap();
    let delivered = read().await;
    assert_eq!((delivered.after_seq, delivered.deliveries, delivered.next_attempt_unix_ms), (12, 1, 70_000));
    // The first delivery's late outcomes change nothing: neither its cursor nor its failure.
    put(store, &acme, recorded(61_000, 11, true, 62_000)).await.unwrap();
    put(store, &acme, recorded(61_000, 10, false, 90_000)).await.unwrap();
    assert_eq!(read().await, delivered);
    // An outcome never leaves it due at its lease's time (a node that read it then could claim it).
    put(store, &acme, claim(70_000, 130_000)).await.unwrap();
    put(store, &acme, recorded(130_000, 12, false, 130_000)).await.unwrap();
    let failed = read().await;
    assert_eq!((failed.next_attempt_unix_ms, failed.attempts), (130_001, 1));
    assert_eq!(failed.last_error.as_deref(), Some("answered 503"));
}

/// A receipt and a change of its zone applied in one batch (receipt first): the change sees the
/// units the receipt put there, not yet written, and is refused.
async fn a_location_change_sees_the_stock_its_batch_received(store: &Store) {
    use store::fulfilment::{AsnPallet, FulfilmentMutation};
    let (acme, dc) = merchant_with_warehouse(store, 30).await;
    let network = TenantId::network();
    let mut warm = dc.clone();
    warm.zones[0].range = TemperatureRange::new(Some(8.0), Some(12.0)).unwrap();
    let mut shared = 0;
    for attempt in 0..5u64 {
        let asn_id = format!("asn_{attempt}");
        let pallet = AsnPallet {
            sscc: sscc(7_000 + attempt),
            gtin: gtin(31),
            lot: format!("L{attempt}"),
            expiry: Some("2099-01-31".into()),
            quantity: 5,
        };
        let created = FulfilmentMutation::CreateAsn {
            asn_id: asn_id.clone(),
            location: dc.gln.clone(),
            expected_unix_ms: None,
            pallets: vec![pallet],
        };
        put(store, &acme, Mutation::Fulfilment(created)).await.unwrap();
        let receipt = FulfilmentMutation::ReceiveAsn {
            asn_id,
            receipt_id: format!("rcp_{attempt}"),
            zone: ZoneName::parse("chill-1").unwrap(),
            ssccs: None,
            status: stock::LotStatus::Available,
            recalled: None,
        };
        let before = store.writer_stats().batches;
        // Queued in this order (each future sends at its first poll): the receipt, then the change.
        let (received, changed) = tokio::join!(
            put(store, &acme, Mutation::Fulfilment(receipt)),
            put(store, &network, Mutation::PutLocation { location: warm.clone(), mode: PutMode::Update }),
        );
        if store.writer_stats().batches == before + 1 {
            shared += 1;
        }
        assert!(received.is_ok(), "{received:?}");
        assert!(matches!(changed, Err(WriteError::InUse(..))), "the chill room holds the lot now: {changed:?}");
    }
    assert!(shared > 0, "no attempt put the receipt and the change in one batch");
}

/// Many large ASNs sent at once are all stored, and no batch is rolled back to be applied write by
/// write. On PostgreSQL, where each SSCC and each lot is a lock of the transaction and the
/// server's lock table is shared and bounded, each is a batch of its own (`BATCH_LOCKS_MAX`).
async fn large_asns_at_once_keep_each_batch_within_its_pallets(store: &Store) {
    use store::fulfilment::{ASN_PALLETS_MAX, AsnPallet, FulfilmentMutation};
    let (acme, dc) = merchant_with_warehouse(store, 40).await;
    const ASNS: usize = 24;
    let writes = (0..ASNS).map(|asn| {
        let pallets = (0..ASN_PALLETS_MAX)
            .map(|index| AsnPallet {
                sscc: sscc((1_000_000 + asn * ASN_PALLETS_MAX + index) as u64),
                gtin: gtin(41),
                lot: format!("L{asn}-{index}"),
                expiry: Some("2099-01-31".into()),
                quantity: 1,
            })
            .collect();
        let created = FulfilmentMutation::CreateAsn {
            asn_id: format!("asn_{asn}"),
            location: dc.gln.clone(),
            expected_unix_ms: None,
            pallets,
        };
        put(store, &acme, Mutation::Fulfilment(created))
    });
    let before = store.writer_stats();
    let outcomes = futures_util::future::join_all(writes).await;
    assert!(outcomes.iter().all(Result::is_ok), "{:?}", outcomes.iter().find(|outcome| outcome.is_err()));
    let after = store.writer_stats();
    assert_eq!(after.batches_applied_one_by_one, before.batches_applied_one_by_one, "{after:?}");
    if store.backend() == BackendKind::Postgres {
        // One ASN of 1,000 pallets and lots a batch (the writes before them went one at a time).
        assert_eq!(after.batch_writes_largest, 1, "{after:?}");
        assert_eq!(after.batches - before.batches, ASNS as u64, "{before:?} {after:?}");
    }
}

/// The network with warehouse `number` (zone chill-1), and tenant acme with product `number + 1`
/// (chilled salmon).
async fn merchant_with_warehouse(store: &Store, number: u64) -> (TenantId, Location) {
    let network = TenantId::network();
    create_tenant(store, &network).await;
    let acme = tenant("acme");
    create_tenant(store, &acme).await;
    let dc = location(number, LocationKind::Warehouse);
    put(store, &network, Mutation::PutLocation { location: dc.clone(), mode: PutMode::Create }).await.unwrap();
    let salmon = product(number + 1, "Salmon");
    put(store, &acme, Mutation::PutProduct { product: salmon, mode: PutMode::Create }).await.unwrap();
    (acme, dc)
}

/// The SSCC of serial reference `number` (17 digits and the check digit).
fn sscc(number: u64) -> gs1::Sscc {
    let body = format!("{number:017}");
    let digits: Vec<u8> = body.bytes().map(|byte| byte - b'0').collect();
    gs1::Sscc::parse(&format!("{body}{}", gs1::check_digit(&digits))).unwrap()
}
