//! The transparency log at the HTTP edge: signed checkpoints (made by a background task as soon
//! as entries arrive after a quiet spell, at least every `checkpoint_interval` while they keep
//! arriving, and on shutdown), the C2SP tlog-tiles
//! endpoints, convenience proofs, witness cosignatures and the operator's audit feed.
//!
//! Answers to the edge cases (each tested):
//! - inclusion: `index >= size` (so every index at size 0) → 400 `invalid-proof-request`; size 1,
//!   index 0 → an empty path; `size` beyond the log → 400.
//! - consistency: `old > new` → 400; `old = new` → an empty proof; `old = 0` → 400 (the empty tree
//!   has no consistency proof: every tree extends it); `new` beyond the log → 400.
//! - tiles: a tile or entry bundle not (yet) in the log → 404; a malformed path → 404 with the
//!   reason (the spec's canonical encoding only).
//! - cosignatures: a note that is not a checkpoint this log signed, or carries no valid signature
//!   of a configured witness → 400 `invalid-cosignature`; a bad signature by a configured witness →
//!   400 as well; signature lines of unknown keys are ignored.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use network::TenantId;
use serde::Deserialize;
use serde_json::json;
use store::log::{ENTRIES_READ_MAX, StoredCheckpoint};
use store::{Mutation, Scope, Store, Write};
use tlog::tiles::{TILE_WIDTH_MAX, TileContent, encode_entry_bundle, tiles_for_nodes};
use tlog::{
    Checkpoint, Hash, HashReadError, MemoryTileStore, Note, NoteSigner, ProofBundle, ProofPlan, TileHashReader,
    TileResource, VerifierKey,
};

use crate::AppState;
use crate::api::QueryParams;
use crate::extract::Caller;
use crate::problem::Problem;

/// The transparency log's settings.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Signs checkpoints; its name is the log's origin.
    pub signer: Arc<NoteSigner>,
    /// How often a new checkpoint is signed while entries arrive.
    pub checkpoint_interval: Duration,
    /// Witnesses whose cosignatures the log accepts and serves.
    pub witnesses: Vec<VerifierKey>,
}

impl LogConfig {
    /// A log with a fresh random key (tests, benchmarks); `keten serve` loads its key from a file.
    pub fn generate(origin: &str) -> Result<LogConfig, tlog::KeyError> {
        Ok(LogConfig {
            signer: Arc::new(NoteSigner::from_seed(origin, rand::random())?),
            checkpoint_interval: CHECKPOINT_INTERVAL_DEFAULT,
            witnesses: Vec::new(),
        })
    }
}

/// The default time between checkpoints while entries arrive: half the brief's one second, as a
/// checkpoint's own commit queues behind capture batches under load.
pub const CHECKPOINT_INTERVAL_DEFAULT: Duration = Duration::from_millis(500);
const TEXT: &str = "text/plain; charset=utf-8";
const OCTETS: &str = "application/octet-stream";
/// Tiles and entry bundles never change once served (a partial tile is the prefix of the full one).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The checkpoint changes every second or so.
const CHECKPOINT_CACHE: &str = "public, max-age=1";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/log/checkpoint", get(checkpoint))
        .route("/log/key", get(verifier_key))
        .route("/log/tile/{*path}", get(tile))
        .route("/log/proof/inclusion", get(inclusion))
        .route("/log/proof/consistency", get(consistency))
        .route("/log/cosignatures", post(cosign))
        .route("/v1/log/audit", get(audit))
}

fn problem(detail: impl Into<String>) -> Problem {
    Problem::new("invalid-proof-request", detail)
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

/// Signs and stores a checkpoint of the committed tree unless the newest one already has its
/// size (the empty tree is checkpointed once, so `/log/checkpoint` always answers).
pub async fn checkpoint_now(store: &Store, signer: &NoteSigner) -> Result<StoredCheckpoint, Problem> {
    let state = store.log_state().await?;
    if let Some(latest) = store.log_latest_checkpoint().await?
        && latest.size >= state.size
    {
        return Ok(latest);
    }
    let checkpoint = Checkpoint::new(signer.name(), state.size, state.root_hash)
        .map_err(|error| Problem::new("internal", format!("checkpoint: {error}")))?;
    let note = checkpoint.sign(signer).to_string();
    store
        .write(Write {
            tenant_id: TenantId::network(),
            mutation: Mutation::PutLogCheckpoint { size: state.size, note: note.clone() },
            idempotency: None,
        })
        .await?;
    Ok(StoredCheckpoint { size: state.size, note, created_unix_ms: store::now_unix_ms() })
}

/// Signs checkpoints until `stopped`: as soon as the log grows after a quiet spell, and then at
/// most once per `interval` while entries keep arriving (so an entry waits at most `interval` for
/// its checkpoint, and an isolated capture hardly at all).
pub(crate) async fn run_checkpointer(
    store: Store,
    signer: Arc<NoteSigner>,
    interval: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let grew = store.log_grew();
    let mut signed_at = tokio::time::Instant::now();
    let mut signed_size = None;
    loop {
        let attempted_at = tokio::time::Instant::now();
        match checkpoint_now(&store, &signer).await {
            // Only a new checkpoint starts a new interval (a wake-up that found nothing new does not).
            Ok(checkpoint) if signed_size != Some(checkpoint.size) => {
                signed_at = attempted_at;
                signed_size = Some(checkpoint.size);
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(detail = %error.detail, "signing a checkpoint failed; retrying");
                grew.notify_one();
            }
        }
        // Wait for entries (the writer wakes us after a commit that appended), then for the rest
        // of the interval since the last checkpoint.
        tokio::select! {
            _ = grew.notified() => {}
            _ = stopped.changed() => break,
        }
        tokio::select! {
            _ = tokio::time::sleep_until(signed_at + interval) => {}
            _ = stopped.changed() => break,
        }
    }
}

/// The stored checkpoint with the cosignatures witnesses sent for it.
pub(crate) async fn with_cosignatures(store: &Store, checkpoint: &StoredCheckpoint) -> Result<String, Problem> {
    let mut note = checkpoint.note.clone();
    for line in store.log_cosignatures(checkpoint.size).await? {
        note.push_str(&line);
        note.push('\n');
    }
    Ok(note)
}

/// `GET /log/checkpoint`: the newest signed checkpoint, with its witness cosignatures.
async fn checkpoint(State(app): State<AppState>) -> Result<Response, Problem> {
    let latest = match app.store.log_latest_checkpoint().await? {
        Some(latest) => latest,
        None => checkpoint_now(&app.store, &app.config.log.signer).await?,
    };
    let note = with_cosignatures(&app.store, &latest).await?;
    Ok(([(header::CONTENT_TYPE, TEXT), (header::CACHE_CONTROL, CHECKPOINT_CACHE)], note).into_response())
}

/// `GET /log/key`: the log's verifier key (C2SP signed-note vkey), for pages that check proofs.
/// A verifier should pin it from an independent source rather than trust this answer.
async fn verifier_key(State(app): State<AppState>) -> Response {
    let key = format!("{}\n", app.config.log.signer.verifier_key());
    ([(header::CONTENT_TYPE, TEXT), (header::CACHE_CONTROL, "public, max-age=3600")], key).into_response()
}

/// A checkpoint covering `index`: the newest, or a new one when the newest is older than it.
async fn checkpoint_covering(app: &AppState, index: u64) -> Result<StoredCheckpoint, Problem> {
    if let Some(latest) = app.store.log_latest_checkpoint().await?
        && latest.size > index
    {
        return Ok(latest);
    }
    let fresh = checkpoint_now(&app.store, &app.config.log.signer).await?;
    if fresh.size <= index {
        return Err(Problem::new("internal", format!("log entry {index} is not in the committed tree")));
    }
    Ok(fresh)
}

// ---------------------------------------------------------------------------------------------
// Tiles

fn not_in_log(what: impl std::fmt::Display) -> Problem {
    Problem::not_found(format!("{what} (not in the log yet)"))
}

/// `GET /log/tile/<L>/<N>[.p/<W>]` and `GET /log/tile/entries/<N>[.p/<W>]`.
async fn tile(State(app): State<AppState>, Path(path): Path<String>) -> Result<Response, Problem> {
    let resource =
        TileResource::parse(&format!("tile/{path}")).map_err(|error| Problem::not_found(format!("tile: {error}")))?;
    let body = match resource {
        TileResource::Hashes(tile) => {
            let data = app.store.log_tiles(&[tile]).await?.pop().flatten();
            data.ok_or_else(|| not_in_log(resource))?
        }
        TileResource::Entries(tile) => {
            let first = tile.index().checked_mul(u64::from(TILE_WIDTH_MAX)).ok_or_else(|| not_in_log(resource))?;
            let entries = app.store.log_entries(first, u64::from(tile.width())).await?;
            if entries.len() != usize::from(tile.width()) {
                return Err(not_in_log(resource));
            }
            encode_entry_bundle(&entries).map_err(|error| Problem::new("internal", error.to_string()))?
        }
    };
    Ok(([(header::CONTENT_TYPE, OCTETS), (header::CACHE_CONTROL, IMMUTABLE)], body).into_response())
}

/// The hashes of a proof plan over the tree of `size`, read from the stored tiles.
pub async fn proof_hashes(store: &Store, plan: &ProofPlan, size: u64) -> Result<Vec<Hash>, Problem> {
    Ok(plans_hashes(store, std::slice::from_ref(plan), size).await?.pop().unwrap_or_default())
}

/// The hashes of several proof plans over the tree of `size`, their tiles read once.
async fn plans_hashes(store: &Store, plans: &[ProofPlan], size: u64) -> Result<Vec<Vec<Hash>>, Problem> {
    let internal = |error: HashReadError| Problem::new("internal", format!("log tiles: {error}"));
    let nodes: Vec<_> = plans.iter().flat_map(ProofPlan::nodes).collect();
    let tiles = tiles_for_nodes(&nodes, size).map_err(internal)?;
    let datas = store.log_tiles(&tiles).await?;
    // Read ahead into memory: the tile reader of `tlog` is synchronous.
    let mut fetched = MemoryTileStore::new();
    for (tile, data) in tiles.into_iter().zip(datas) {
        let data = data.ok_or_else(|| internal(HashReadError::MissingTile(tile)))?;
        fetched.write([TileContent { tile, data }]);
    }
    let hashes = TileHashReader::new(&fetched, size);
    plans.iter().map(|plan| plan.execute(&hashes).map_err(internal)).collect()
}

/// Inclusion proofs of entries `indexes` under one signed checkpoint covering them all.
pub(crate) async fn inclusion_proofs(
    app: &AppState,
    indexes: &[u64],
) -> Result<(StoredCheckpoint, Vec<Vec<Hash>>), Problem> {
    let checkpoint = checkpoint_covering(app, indexes.iter().copied().max().unwrap_or(0)).await?;
    let plans = indexes
        .iter()
        .map(|index| ProofPlan::inclusion(*index, checkpoint.size).map_err(|error| problem(error.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let hashes = plans_hashes(&app.store, &plans, checkpoint.size).await?;
    Ok((checkpoint, hashes))
}

async fn committed_size(store: &Store, size: u64) -> Result<(), Problem> {
    let state = store.log_state().await?;
    if size > state.size {
        return Err(problem(format!("tree size {size} is beyond the log, which has {} entries", state.size)));
    }
    Ok(())
}

fn hashes_json(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(Hash::to_base64).collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionQuery {
    index: u64,
    size: u64,
}

/// `GET /log/proof/inclusion?index=&size=`: the RFC 6962 inclusion path, leaf sibling first.
async fn inclusion(
    State(app): State<AppState>,
    QueryParams(query): QueryParams<InclusionQuery>,
) -> Result<Response, Problem> {
    let plan = ProofPlan::inclusion(query.index, query.size).map_err(|error| problem(error.to_string()))?;
    committed_size(&app.store, query.size).await?;
    let hashes = proof_hashes(&app.store, &plan, query.size).await?;
    let body = json!({ "index": query.index, "treeSize": query.size, "inclusionPath": hashes_json(&hashes) });
    Ok(([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    old: u64,
    new: u64,
}

/// `GET /log/proof/consistency?old=&new=`: the RFC 6962 consistency proof.
async fn consistency(
    State(app): State<AppState>,
    QueryParams(query): QueryParams<ConsistencyQuery>,
) -> Result<Response, Problem> {
    let plan = ProofPlan::consistency(query.old, query.new).map_err(|error| problem(error.to_string()))?;
    committed_size(&app.store, query.new).await?;
    let hashes = proof_hashes(&app.store, &plan, query.new).await?;
    let body = json!({ "oldSize": query.old, "newSize": query.new, "consistencyPath": hashes_json(&hashes) });
    Ok(([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

// ---------------------------------------------------------------------------------------------
// Proof bundles

/// The C2SP tlog-proof of entry `index` (its entry as the `extra` data) under a checkpoint
/// covering it, with that checkpoint's cosignatures.
pub async fn proof_bundle(app: &AppState, index: u64) -> Result<(ProofBundle, Vec<u8>), Problem> {
    let entry = app.store.log_entries(index, 1).await?.pop().ok_or_else(|| not_in_log(format!("log entry {index}")))?;
    let checkpoint = checkpoint_covering(app, index).await?;
    let plan = ProofPlan::inclusion(index, checkpoint.size).map_err(|error| problem(error.to_string()))?;
    let inclusion_proof = proof_hashes(&app.store, &plan, checkpoint.size).await?;
    let note = with_cosignatures(&app.store, &checkpoint).await?;
    let checkpoint = Note::parse(note.as_bytes()).map_err(|error| Problem::new("internal", error.to_string()))?;
    Ok((ProofBundle { extra: Some(entry.clone()), index, inclusion_proof, checkpoint }, entry))
}

// ---------------------------------------------------------------------------------------------
// Witnesses

/// `POST /log/cosignatures`: a witness sends a checkpoint of this log with its cosignature line
/// (a signed note); the log keeps the line and serves it with the checkpoint.
async fn cosign(State(app): State<AppState>, body: Bytes) -> Result<Response, Problem> {
    let invalid = |detail: String| Problem::new("invalid-cosignature", detail);
    let note = Note::parse(&body).map_err(|error| invalid(format!("not a signed note: {error}")))?;
    let checkpoint = Checkpoint::parse(note.text()).map_err(|error| invalid(format!("not a checkpoint: {error}")))?;
    let ours = app.store.log_checkpoint(checkpoint.size()).await?;
    let Some(ours) = ours.filter(|ours| ours.note.starts_with(note.text())) else {
        return Err(invalid(format!(
            "this log signed no checkpoint {} of size {}",
            checkpoint.origin(),
            checkpoint.size()
        )));
    };
    if app.config.log.witnesses.is_empty() {
        return Err(invalid("this log is configured with no witness keys (keten serve --witness-key)".into()));
    }
    let verified = note
        .verify(&app.config.log.witnesses)
        .map_err(|error| invalid(format!("no valid witness cosignature: {error}")))?;
    let mut stored = Vec::new();
    for signature in &verified {
        let line = note
            .signatures()
            .iter()
            .find(|line| line.name == signature.name && line.key_id == signature.key_id)
            .map(|line| line.to_line())
            .unwrap_or_default();
        app.store
            .write(Write {
                tenant_id: TenantId::network(),
                mutation: Mutation::PutLogCosignature {
                    size: ours.size,
                    witness: signature.name.clone(),
                    signature_line: line,
                },
                idempotency: None,
            })
            .await?;
        stored.push(signature.name.clone());
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "size": ours.size, "witnesses": stored }).to_string(),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Audit

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    first: u64,
    #[serde(default = "audit_count_default")]
    count: u64,
}

fn audit_count_default() -> u64 {
    ENTRIES_READ_MAX
}

/// `GET /v1/log/audit?first=&count=`: for log entries `first..first+count` (at most 256), the
/// stored event of each with its commitment seed, so an auditor recomputes each entry from the
/// event as stored now. An operator sees every entry (`"complete": true`), a tenant the entries
/// of its own events only. `size` is the log's size when read (every entry under it is in the
/// log); `first` past it is refused (400), at it answers no entries.
async fn audit(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<Response, Problem> {
    let principal = match caller.0.is_operator() {
        true => &caller.0,
        false => caller.require(Scope::TenantRead)?,
    };
    if query.count > ENTRIES_READ_MAX {
        return Err(Problem::field("invalid-parameter", "?count", format!("must be at most {ENTRIES_READ_MAX}")));
    }
    let size = app.store.log_state().await?.size;
    if query.first > size {
        return Err(Problem::field(
            "invalid-parameter",
            "?first",
            format!("lies past the log's end: it holds {size} entries"),
        ));
    }
    let logged = app.store.logged_events(query.first, query.count).await?;
    // An entry whose event row is gone is listed with a null event: the audit reports it.
    let entries: Vec<serde_json::Value> = logged
        .into_iter()
        .filter(|event| principal.is_operator() || event.tenant_id == principal.tenant_id.as_str())
        .map(|event| {
            json!({
                "index": event.entry_index,
                "tenant": event.tenant_id,
                "eventID": event.event_id,
                "body": event.body,
                "commitmentSeed": event.commitment_seed.as_deref().map(|seed| BASE64.encode(seed)),
            })
        })
        .collect();
    // An operator's page lists every entry of the range that is in the log.
    let body = json!({
        "first": query.first,
        "count": query.count,
        "size": size,
        "complete": principal.is_operator(),
        "entries": entries,
    });
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
