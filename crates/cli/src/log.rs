//! The transparency log from the command line: the log's key file (`keten log key`), the
//! verifiers (`keten verify proof|log`) and a witness (`keten witness`).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::{Args, Subcommand};
use tlog::tiles::{TILE_WIDTH_MAX, Tile, decode_entry_bundle};
use tlog::{
    Checkpoint, CheckpointPolicy, CompactRange, Cosigner, Hash, Note, NoteSigner, ProofBundle, VerifiedCheckpoint,
    VerifierKey, leaf_hash, verify_consistency,
};

/// The default file of the log's signing key.
pub const LOG_KEY_FILE_DEFAULT: &str = "keten-log.key";

#[derive(Debug, Args)]
pub struct LogKeyOptions {
    /// The log's signing key (a C2SP signed-note private key), created with mode 0600 on first use.
    #[arg(long, env = "KETEN_LOG_KEY", default_value = LOG_KEY_FILE_DEFAULT)]
    pub log_key: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Print the log's verifier key (creating the key pair on first use).
    Key {
        #[command(flatten)]
        key: LogKeyOptions,
        /// The log's name (the origin line of its checkpoints).
        #[arg(long, env = "KETEN_LOG_ORIGIN", default_value = "keten.localhost/log")]
        log_origin: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum VerifyCommand {
    /// Verify a proof bundle offline: entry ⇒ leaf ⇒ inclusion path ⇒ root ⇒ signatures. FILE is
    /// a C2SP tlog-proof (`GET /events/{id}/proof`), or its JSON form with disclosures, which are
    /// then checked against the entry too.
    Proof {
        file: PathBuf,
        #[command(flatten)]
        trust: Trust,
    },
    /// Monitor a log: fetch its checkpoint, check it extends the last one seen, re-hash every new
    /// entry from the entry bundles, and report the first mismatch.
    Log {
        /// The server's address, e.g. http://127.0.0.1:8080.
        url: String,
        #[command(flatten)]
        trust: Trust,
        /// Where the last verified checkpoint and its compact range are kept between runs
        /// (without it, every run re-hashes the whole log).
        #[arg(long)]
        state: Option<PathBuf>,
        /// An API key (operator: every event; tenant: its own) to also check that each stored
        /// event still matches its log entry.
        #[arg(long, env = "KETEN_AUDIT_KEY")]
        audit_key: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct Trust {
    /// The log's verifier key (`keten log key` prints it).
    #[arg(long)]
    key: String,
    /// A witness verifier key (repeatable).
    #[arg(long = "witness-key")]
    witness_keys: Vec<String>,
    /// How many of the witnesses must have cosigned.
    #[arg(long, default_value_t = 0)]
    quorum: usize,
}

impl Trust {
    fn policy(&self) -> anyhow::Result<CheckpointPolicy> {
        let log_key = VerifierKey::parse(self.key.trim()).context("--key is not a verifier key")?;
        let witness_keys = self
            .witness_keys
            .iter()
            .map(|key| VerifierKey::parse(key.trim()).with_context(|| format!("--witness-key {key}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        ensure!(self.quorum <= witness_keys.len(), "--quorum {} exceeds the witness keys given", self.quorum);
        Ok(CheckpointPolicy { origin: log_key.name().to_owned(), log_key, witness_keys, witness_quorum: self.quorum })
    }
}

#[derive(Debug, Args)]
pub struct WitnessOptions {
    /// The log to witness, e.g. http://127.0.0.1:8080.
    #[arg(long, required_unless_present = "print_key")]
    log: Option<String>,
    /// The log's verifier key.
    #[arg(long, required_unless_present = "print_key")]
    log_key: Option<String>,
    /// The witness's own key file (a cosignature private key), created with mode 0600 on first use.
    #[arg(long, default_value = "keten-witness.key")]
    key: PathBuf,
    /// The witness's name (its key name), used when the key is created.
    #[arg(long, default_value = "witness.keten.localhost")]
    name: String,
    /// Where the last cosigned checkpoint of each log is kept.
    #[arg(long, default_value = "keten-witness")]
    state: PathBuf,
    /// Cosign once and exit (otherwise every --every-seconds).
    #[arg(long)]
    once: bool,
    #[arg(long, default_value_t = 10)]
    every_seconds: u64,
    /// Only print the witness's verifier key.
    #[arg(long)]
    print_key: bool,
}

// ---------------------------------------------------------------------------------------------
// Key files

/// Reads a secret key file, refusing one that others may read; creates it (mode 0600) with
/// `create` when missing.
fn secret_key_file<T>(
    path: &Path,
    parse: impl Fn(&str) -> anyhow::Result<T>,
    create: impl Fn() -> anyhow::Result<(T, String)>,
) -> anyhow::Result<T> {
    match std::fs::metadata(path) {
        Ok(metadata) => {
            let mode = metadata.permissions().mode();
            ensure!(
                mode & 0o077 == 0,
                "{} is readable by others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            );
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            parse(text.trim()).with_context(|| format!("{} holds no valid key", path.display()))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let (key, text) = create()?;
            let opened = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
            let mut file = match opened {
                // Another process created it meanwhile: use that one.
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    return secret_key_file(path, parse, create);
                }
                other => other.with_context(|| format!("creating {}", path.display()))?,
            };
            writeln!(file, "{text}")?;
            file.sync_all()?;
            tracing::info!(file = %path.display(), "created a new signing key");
            Ok(key)
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// The log's signer from its key file, created on first start; its name must be the origin.
pub fn load_log_signer(path: &Path, origin: &str) -> anyhow::Result<NoteSigner> {
    tlog::note::validate_key_name(origin)
        .with_context(|| format!("--log-origin {origin:?} is not a valid key name"))?;
    let signer = secret_key_file(
        path,
        |text| Ok(NoteSigner::parse(text)?),
        || {
            let signer = NoteSigner::from_seed(origin, rand::random())?;
            let text = signer.to_secret_text();
            Ok((signer, text))
        },
    )?;
    ensure!(
        signer.name() == origin,
        "{} is the key of log {:?}, not of --log-origin {origin:?}",
        path.display(),
        signer.name()
    );
    Ok(signer)
}

pub fn run_log(command: LogCommand) -> anyhow::Result<()> {
    match command {
        LogCommand::Key { key, log_origin } => {
            let signer = load_log_signer(&key.log_key, &log_origin)?;
            println!("{}", signer.verifier_key());
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// verify proof

pub async fn run_verify(command: VerifyCommand) -> anyhow::Result<()> {
    match command {
        VerifyCommand::Proof { file, trust } => {
            let text = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let report = verify_proof(&text, &trust.policy()?)?;
            print!("{report}");
            Ok(())
        }
        VerifyCommand::Log { url, trust, state, audit_key } => {
            let report = verify_log(&url, &trust.policy()?, state.as_deref(), audit_key.as_deref()).await?;
            print!("{report}");
            Ok(())
        }
    }
}

/// Verifies a proof bundle (text, or the JSON answer with disclosures); answers a report. The
/// JSON answer's own `logIndex` and `eventID`, when given, must be what the proof proves: the
/// entry's index, and the event id its entry discloses.
pub fn verify_proof(bytes: &[u8], policy: &CheckpointPolicy) -> anyhow::Result<String> {
    let (proof_text, disclosures, claimed_index, claimed_event) = match bytes.first() {
        Some(b'{') => {
            let value: serde_json::Value = serde_json::from_slice(bytes).context("the JSON proof is malformed")?;
            let proof = value["proof"].as_str().context("the JSON proof has no \"proof\" text")?.to_owned();
            let disclosures = value["disclosures"]
                .as_array()
                .map(|items| items.iter().map(disclosure_of_json).collect::<anyhow::Result<Vec<_>>>())
                .transpose()?
                .unwrap_or_default();
            let index = match &value["logIndex"] {
                serde_json::Value::Null => None,
                index => Some(index.as_u64().context("the JSON proof's logIndex is not a whole number")?),
            };
            let event = match &value["eventID"] {
                serde_json::Value::Null => None,
                event => Some(event.as_str().context("the JSON proof's eventID is not text")?.to_owned()),
            };
            (proof.into_bytes(), disclosures, index, event)
        }
        _ => (bytes.to_vec(), Vec::new(), None, None),
    };
    let bundle = ProofBundle::parse(&proof_text).context("not a C2SP tlog-proof")?;
    if let Some(index) = claimed_index {
        ensure!(
            index == bundle.index,
            "the JSON proof names log index {index}, but its proof is of entry {}",
            bundle.index
        );
    }
    if let Some(event) = &claimed_event {
        let disclosed = disclosures.iter().find(|disclosure| disclosure.name == "/eventID");
        let proved = disclosed.and_then(|disclosure| serde_json::from_str::<String>(&disclosure.value).ok());
        ensure!(
            proved.as_deref() == Some(event.as_str()),
            "the JSON proof names event {event}, but its entry discloses {}",
            proved.map_or_else(|| "no eventID".to_owned(), |proved| format!("event {proved}"))
        );
    }
    let entry = bundle.extra.as_deref().context("the proof carries no entry (its extra line)")?;
    let leaf = leaf_hash(entry);
    let verified = bundle.verify(&leaf, policy).context("the proof does not verify")?;
    let mut report = format!(
        "verified: entry {} is in log {} at size {} (root {}), signed by {}",
        bundle.index,
        verified.checkpoint.origin(),
        verified.checkpoint.size(),
        verified.checkpoint.root_hash(),
        policy.log_key,
    );
    if !verified.witness_signatures.is_empty() {
        let names: Vec<&str> = verified.witness_signatures.iter().map(|signature| signature.name.as_str()).collect();
        report.push_str(&format!("; cosigned by {}", names.join(", ")));
    }
    report.push('\n');
    if !disclosures.is_empty() {
        let fields =
            epcis::commitment::verify(entry, &disclosures).context("a disclosed field does not match the entry")?;
        report.push_str(&format!("verified: {} disclosed fields match the entry\n", fields.len()));
        for (name, value) in fields {
            report.push_str(&format!("  {name} = {value}\n"));
        }
    }
    Ok(report)
}

fn disclosure_of_json(value: &serde_json::Value) -> anyhow::Result<epcis::commitment::Disclosure> {
    let salt = BASE64.decode(value["salt"].as_str().unwrap_or("")).context("a disclosure's salt is not base64")?;
    Ok(epcis::commitment::Disclosure {
        salt: salt.try_into().map_err(|_| anyhow::anyhow!("a disclosure's salt is not 16 bytes"))?,
        name: value["name"].as_str().context("a disclosure has no name")?.to_owned(),
        value: value["value"].as_str().context("a disclosure has no value")?.to_owned(),
    })
}

// ---------------------------------------------------------------------------------------------
// verify log

/// A log fetched over HTTP.
struct LogClient {
    base: String,
    client: reqwest::Client,
}

impl LogClient {
    fn new(url: &str) -> LogClient {
        LogClient { base: url.trim_end_matches('/').to_owned(), client: reqwest::Client::new() }
    }

    async fn get(&self, path: &str, bearer: Option<&str>) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.get(&url);
        if let Some(key) = bearer {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body = response.bytes().await.with_context(|| format!("GET {url}"))?;
        ensure!(status.is_success(), "GET {url}: {status}: {}", String::from_utf8_lossy(&body));
        Ok(body.to_vec())
    }

    async fn checkpoint(&self, policy: &CheckpointPolicy) -> anyhow::Result<(VerifiedCheckpoint, Vec<u8>)> {
        let note = self.get("/log/checkpoint", None).await?;
        let verified = policy.verify(&note).context("the log's checkpoint does not verify")?;
        Ok((verified, note))
    }

    async fn consistency(&self, old: u64, new: u64) -> anyhow::Result<Vec<Hash>> {
        let body = self.get(&format!("/log/proof/consistency?old={old}&new={new}"), None).await?;
        let value: serde_json::Value = serde_json::from_slice(&body)?;
        value["consistencyPath"]
            .as_array()
            .context("no consistencyPath")?
            .iter()
            .map(|hash| Hash::from_base64(hash.as_str().unwrap_or("")).context("a proof hash is malformed"))
            .collect()
    }
}

/// The monitor's state file in `--state DIR`.
const STATE_FILE: &str = "monitor-state.json";

/// What a monitor keeps: the last verified checkpoint and the compact range of its tree.
struct MonitorState {
    checkpoint: Option<Vec<u8>>,
    range: CompactRange,
}

fn read_state(dir: &Path) -> anyhow::Result<MonitorState> {
    let path = dir.join(STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(MonitorState { checkpoint: None, range: CompactRange::new() });
        }
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is malformed", path.display()))?;
    let checkpoint = value["checkpoint"].as_str().context("the saved state has no checkpoint")?;
    let size = value["size"].as_u64().context("the saved state has no size")?;
    let hashes = value["compactRange"]
        .as_array()
        .context("the saved state has no compact range")?
        .iter()
        .map(|hash| Hash::from_base64(hash.as_str().unwrap_or("")))
        .collect::<Result<Vec<_>, _>>()
        .context("the saved compact range has a bad hash")?;
    Ok(MonitorState {
        checkpoint: Some(checkpoint.as_bytes().to_vec()),
        range: CompactRange::from_parts(size, hashes)?,
    })
}

/// The last verified checkpoint and its compact range, in one file written atomically.
fn write_state(dir: &Path, checkpoint: &[u8], range: &CompactRange) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let hashes: Vec<String> = range.hashes().iter().map(Hash::to_base64).collect();
    let state = serde_json::json!({
        "checkpoint": String::from_utf8_lossy(checkpoint),
        "size": range.size(),
        "compactRange": hashes,
    });
    write_atomically(&dir.join(STATE_FILE), state.to_string().as_bytes())
}

fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary).with_context(|| format!("writing {}", temporary.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))
}

/// Verifies a log (see `keten verify log --help`); answers a report, or the first mismatch as
/// the error.
pub async fn verify_log(
    url: &str,
    policy: &CheckpointPolicy,
    state_dir: Option<&Path>,
    audit_key: Option<&str>,
) -> anyhow::Result<String> {
    let started = Instant::now();
    let log = LogClient::new(url);
    let (verified, note) = log.checkpoint(policy).await?;
    let checkpoint = verified.checkpoint;
    let size = checkpoint.size();
    let mut state = match state_dir {
        Some(dir) => read_state(dir)?,
        None => MonitorState { checkpoint: None, range: CompactRange::new() },
    };
    let mut report = String::new();
    if let Some(old_note) = &state.checkpoint {
        let old = policy.verify(old_note).context("the saved checkpoint no longer verifies")?.checkpoint;
        ensure!(
            old.size() == state.range.size(),
            "the saved state is inconsistent: checkpoint and range differ in size"
        );
        ensure!(old.root_hash() == &state.range.root(), "the saved state is inconsistent: its range has another root");
        if size < old.size() {
            bail!("the log shrank: it was at size {} and now shows size {size}", old.size());
        }
        if size == old.size() {
            ensure!(
                checkpoint.root_hash() == old.root_hash(),
                "the log forked: size {size} had root {} and now has root {}",
                old.root_hash(),
                checkpoint.root_hash()
            );
        } else if old.size() > 0 {
            let proof = log.consistency(old.size(), size).await?;
            verify_consistency(old.size(), size, old.root_hash(), checkpoint.root_hash(), &proof).with_context(
                || format!("checkpoint {size} is not consistent with the checkpoint {} seen before", old.size()),
            )?;
        }
        report.push_str(&format!("consistent with the checkpoint of size {} seen before\n", old.size()));
    }
    let first_new = state.range.size();
    let mut audited = 0u64;
    let mut next = first_new;
    while next < size {
        let tile_index = next / u64::from(TILE_WIDTH_MAX);
        let tile_start = tile_index * u64::from(TILE_WIDTH_MAX);
        let width = (size - tile_start).min(u64::from(TILE_WIDTH_MAX)) as u16;
        let tile = Tile::new(0, tile_index, width)?;
        let bundle = log.get(&format!("/log/{}", tile.entries_path()), None).await?;
        let entries = decode_entry_bundle(&bundle)
            .map_err(|error| anyhow::anyhow!("entry bundle {}: {error}", tile.entries_path()))?;
        ensure!(
            entries.len() == usize::from(width),
            "entry bundle {} has {} entries",
            tile.entries_path(),
            entries.len()
        );
        let hashes = tile.hashes(&log.get(&format!("/log/{}", tile.path()), None).await?)?;
        for (offset, entry) in entries.iter().enumerate().skip((next - tile_start) as usize) {
            let index = tile_start + offset as u64;
            let leaf = leaf_hash(entry);
            if leaf != hashes[offset] {
                bail!(
                    "entry {index} does not hash to its leaf in tile {}: the entry or the tile was changed",
                    tile.path()
                );
            }
            state.range.append(leaf);
        }
        if let Some(key) = audit_key {
            audited +=
                audit_entries(&log, key, tile_start + (next - tile_start), &entries[(next - tile_start) as usize..])
                    .await?;
        }
        next = tile_start + u64::from(width);
    }
    ensure!(
        state.range.root() == *checkpoint.root_hash(),
        "the entries 0..{size} hash to root {}, but the checkpoint says {}",
        state.range.root(),
        checkpoint.root_hash()
    );
    let rehashed = size - first_new;
    let seconds = started.elapsed().as_secs_f64();
    report.push_str(&format!(
        "verified: log {} at size {size}, root {}; {rehashed} new entries re-hashed in {seconds:.2} s ({:.0} entries/s)\n",
        checkpoint.origin(),
        checkpoint.root_hash(),
        rehashed as f64 / seconds.max(1e-9),
    ));
    if audit_key.is_some() {
        report.push_str(&format!("audited: {audited} stored events match their log entries\n"));
    }
    if let Some(dir) = state_dir {
        write_state(dir, &note, &state.range)?;
    }
    Ok(report)
}

/// Checks that the events of `entries` (starting at index `first`) as stored now still commit
/// to their entries; answers how many were checked.
async fn audit_entries(log: &LogClient, key: &str, first: u64, entries: &[&[u8]]) -> anyhow::Result<u64> {
    let body = log.get(&format!("/v1/log/audit?first={first}&count={}", entries.len()), Some(key)).await?;
    let value: serde_json::Value = serde_json::from_slice(&body)?;
    let items = value["entries"].as_array().context("the audit answer has no entries")?;
    if value["complete"] == true {
        // An operator's page lists every entry: one left out is a hole in the repository.
        let listed: std::collections::HashSet<u64> = items.iter().filter_map(|item| item["index"].as_u64()).collect();
        if let Some(missing) = (first..first + entries.len() as u64).find(|index| !listed.contains(index)) {
            bail!("entry {missing}: the repository has no record of it (its log entry names no stored event)");
        }
    }
    let mut checked = 0;
    for item in items {
        let index = item["index"].as_u64().context("an audit entry has no index")?;
        let tenant = item["tenant"].as_str().unwrap_or("?");
        let Some(event_id) = item["eventID"].as_str() else {
            bail!("entry {index} (of tenant {tenant}): its event is missing from the repository (deleted or re-keyed)");
        };
        let entry = index.checked_sub(first).and_then(|offset| entries.get(offset as usize)).with_context(|| {
            format!("the audit answered entry {index}, outside {first}..{}", first + entries.len() as u64)
        })?;
        let seed: [u8; 32] = BASE64
            .decode(item["commitmentSeed"].as_str().unwrap_or(""))
            .ok()
            .and_then(|seed| seed.try_into().ok())
            .with_context(|| format!("entry {index} (event {event_id}): no commitment seed"))?;
        let stored: serde_json::Value = serde_json::from_str(item["body"].as_str().unwrap_or(""))
            .with_context(|| format!("entry {index} (event {event_id}): the stored event is not JSON"))?;
        let recomputed = epcis::commitment::commit_json(&stored, tenant, &seed);
        if recomputed.entry != *entry {
            let changed: Vec<String> = recomputed
                .disclosures
                .iter()
                .filter(|disclosure| epcis::commitment::verify(entry, std::slice::from_ref(disclosure)).is_err())
                .map(|disclosure| disclosure.name.clone())
                .collect();
            bail!(
                "entry {index} (event {event_id} of tenant {tenant}): the stored event no longer matches its log entry; \
                 fields changed or added: [{}]",
                changed.join(", ")
            );
        }
        checked += 1;
    }
    Ok(checked)
}

// ---------------------------------------------------------------------------------------------
// witness

pub async fn run_witness(options: WitnessOptions) -> anyhow::Result<()> {
    let name = options.name.clone();
    let cosigner = secret_key_file(
        &options.key,
        |text| Ok(Cosigner::parse(text)?),
        || {
            let cosigner = Cosigner::from_seed(&name, rand::random())?;
            let text = cosigner.to_secret_text();
            Ok((cosigner, text))
        },
    )?;
    if options.print_key {
        println!("{}", cosigner.verifier_key());
        return Ok(());
    }
    let log_key = VerifierKey::parse(options.log_key.as_deref().unwrap_or("").trim())
        .context("--log-key is not a verifier key")?;
    let origin = log_key.name().to_owned();
    let policy = CheckpointPolicy::log_only(&origin, log_key);
    loop {
        match witness_once(&options, &cosigner, &policy).await {
            Ok(report) => println!("{report}"),
            Err(error) if options.once => return Err(error),
            Err(error) => tracing::warn!("{error:#}"),
        }
        if options.once {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(options.every_seconds.max(1))).await;
    }
}

/// Cosigns the log's current checkpoint once it is proven consistent with the last one cosigned.
async fn witness_once(
    options: &WitnessOptions,
    cosigner: &Cosigner,
    policy: &CheckpointPolicy,
) -> anyhow::Result<String> {
    let log_url = options.log.as_deref().unwrap_or("");
    let log = LogClient::new(log_url);
    let (verified, _) = log.checkpoint(policy).await?;
    let checkpoint = verified.checkpoint;
    let state_file = options.state.join(format!("{}.checkpoint", checkpoint.origin().replace('/', "_")));
    let saved = match std::fs::read_to_string(&state_file) {
        Ok(text) => Some(text),
        // Only a missing file is a first meeting with this log; anything else must not be taken for one.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error).with_context(|| format!("reading {}", state_file.display())),
    };
    if let Some(old_text) = saved {
        let old = Checkpoint::parse(&old_text).context("the saved checkpoint is malformed")?;
        if checkpoint.size() < old.size() {
            bail!("refusing to cosign: the log shrank from {} to {}", old.size(), checkpoint.size());
        }
        if checkpoint.size() == old.size() {
            ensure!(
                checkpoint.root_hash() == old.root_hash(),
                "refusing to cosign: the log forked at size {}",
                old.size()
            );
        } else if old.size() > 0 {
            let proof = log.consistency(old.size(), checkpoint.size()).await?;
            verify_consistency(old.size(), checkpoint.size(), old.root_hash(), checkpoint.root_hash(), &proof)
                .context("refusing to cosign: the new checkpoint is not consistent with the last one cosigned")?;
        }
    }
    let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let mut note = Note::new(checkpoint.to_text())?;
    note.add_signature(cosigner.cosign(&checkpoint, timestamp)?)?;
    let url = format!("{}/log/cosignatures", log_url.trim_end_matches('/'));
    let response = reqwest::Client::new().post(&url).body(note.to_string()).send().await?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    ensure!(status.is_success(), "POST {url}: {status}: {body}");
    std::fs::create_dir_all(&options.state)?;
    write_atomically(&state_file, checkpoint.to_text().as_bytes())?;
    Ok(format!("cosigned {} at size {}", checkpoint.origin(), checkpoint.size()))
}
