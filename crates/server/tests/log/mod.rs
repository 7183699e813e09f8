//! End-to-end tests of the transparency log: every captured event is an entry, checkpoints are
//! signed, tiles and entry bundles follow C2SP tlog-tiles, proofs verify (and their edge cases
//! have the documented answers), and an event's proof discloses its fields without the log
//! showing them.

use tlog::tiles::decode_entry_bundle;
use tlog::{CheckpointPolicy, CompactRange, Hash, ProofBundle, VerifiedCheckpoint, VerifierKey, leaf_hash};

use super::*;

struct Raw {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl TestApp {
    async fn raw_get(&self, path: &str, key: Option<&str>, accept: Option<&str>) -> Raw {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request.send().await.unwrap();
        Raw {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.bytes().await.unwrap().to_vec(),
        }
    }

    async fn log_policy(&self) -> CheckpointPolicy {
        let key = self.raw_get("/log/key", None, None).await;
        assert_eq!(key.status, StatusCode::OK);
        let key = VerifierKey::parse(String::from_utf8(key.body).unwrap().trim()).unwrap();
        let origin = key.name().to_owned();
        CheckpointPolicy::log_only(&origin, key)
    }

    /// The log's checkpoint once it covers `size` entries (checkpoints follow within a second).
    async fn checkpoint_at_least(&self, policy: &CheckpointPolicy, size: u64) -> VerifiedCheckpoint {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let answer = self.raw_get("/log/checkpoint", None, None).await;
            assert_eq!(answer.status, StatusCode::OK);
            assert_eq!(answer.headers["content-type"], "text/plain; charset=utf-8");
            let verified = policy.verify(&answer.body).expect("the checkpoint verifies");
            if verified.checkpoint.size() >= size {
                return verified;
            }
            assert!(std::time::Instant::now() < deadline, "no checkpoint of size {size} within 15 s");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    async fn proof_json(&self, path: &str) -> Answer {
        self.send("GET", path, None, None, &[]).await
    }
}

fn secret_events(count: usize, first: usize) -> Vec<Value> {
    (first..first + count)
        .map(|number| {
            let time = jiff::Timestamp::from_second(1_714_550_400 + number as i64 * 60).unwrap();
            json!({"type": "ObjectEvent", "eventTime": time.to_string(), "eventTimeZoneOffset": "+02:00",
                   "action": "OBSERVE", "bizStep": "shipping", "epcList": [],
                   "quantityList": [{"epcClass": format!("https://id.gs1.org/01/09506000134352/10/LOTSECRET{number}"),
                                     "quantity": 480, "uom": "KGM"}],
                   "bizTransactionList": [{"type": "po", "bizTransaction": format!("urn:epcglobal:cbv:bt:9506000000003:POSECRET{number}")}]})
        })
        .collect()
}

fn proof_path(answer: &Answer, name: &str) -> Vec<Hash> {
    answer.body[name]
        .as_array()
        .unwrap()
        .iter()
        .map(|hash| Hash::from_base64(hash.as_str().unwrap()).unwrap())
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

pub(super) async fn log_checkpoints_tiles_and_proofs(app: &TestApp) {
    let farm = app.tenant("logfarm", &["tenant:admin"]).await;
    let policy = app.log_policy().await;
    // The empty log is checkpointed from the start.
    let empty = app.checkpoint_at_least(&policy, 0).await;
    assert_eq!((empty.checkpoint.size(), *empty.checkpoint.root_hash()), (0, Hash::empty_tree()));
    for (count, first) in [(200, 0), (100, 200)] {
        let job = app.capture_job(&farm, super::epcis_interface::document(secret_events(count, first)), &[]).await;
        assert_eq!(job["eventsCaptured"], count, "{job}");
    }
    let verified = app.checkpoint_at_least(&policy, 300).await;
    let (size, root) = (verified.checkpoint.size(), *verified.checkpoint.root_hash());
    assert_eq!(size, 300, "one entry per captured event");

    // Entry bundles and level-0 tiles agree, and re-hash to the signed root.
    let mut leaves = Vec::new();
    for (entries_path, tile_path, width) in
        [("tile/entries/000", "tile/0/000", 256), ("tile/entries/001.p/44", "tile/0/001.p/44", 44)]
    {
        let bundle = app.raw_get(&format!("/log/{entries_path}"), None, None).await;
        assert_eq!(bundle.status, StatusCode::OK, "{entries_path}");
        assert_eq!(bundle.headers["content-type"], "application/octet-stream");
        assert!(bundle.headers["cache-control"].to_str().unwrap().contains("immutable"));
        // (Long strings only: a short one like "480" turns up by chance in base64 digests.)
        for secret in ["LOTSECRET", "POSECRET", "logfarm", "shipping"] {
            assert!(!contains(&bundle.body, secret), "{secret} readable in the public entries");
        }
        let entries = decode_entry_bundle(&bundle.body).unwrap();
        assert_eq!(entries.len(), width);
        let tile = app.raw_get(&format!("/log/{tile_path}"), None, None).await;
        assert_eq!((tile.status, tile.body.len()), (StatusCode::OK, width * 32), "{tile_path}");
        for (entry, hash) in entries.iter().zip(tile.body.chunks(32)) {
            assert!(entry.starts_with(b"keten/epcis-event/v1\n"));
            assert_eq!(leaf_hash(entry).as_bytes(), hash);
            leaves.push(leaf_hash(entry));
        }
    }
    let mut range = CompactRange::new();
    leaves.iter().for_each(|leaf| range.append(*leaf));
    assert_eq!(range.root(), root, "the entries hash to the signed root");
    let level_one = app.raw_get("/log/tile/1/000.p/1", None, None).await;
    assert_eq!(level_one.body, tlog::merkle::root_from_leaf_hashes(&leaves[..256]).as_bytes().to_vec());
    // Not (yet) in the log, or not a canonical path: 404.
    for path in
        ["tile/0/001.p/45", "tile/0/002", "tile/entries/001", "tile/0/1", "tile/0/001.p/256", "tile/0/001.p/044"]
    {
        let answer = app.raw_get(&format!("/log/{path}"), None, None).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }

    // Inclusion proofs verify against the signed root; a changed hash does not.
    for index in [0u64, 1, 255, 256, 299] {
        let answer = app.proof_json(&format!("/log/proof/inclusion?index={index}&size={size}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        let mut path = proof_path(&answer, "inclusionPath");
        tlog::verify_inclusion(&leaves[index as usize], index, size, &path, &root).expect("inclusion verifies");
        path[0].0[0] ^= 1;
        assert!(tlog::verify_inclusion(&leaves[index as usize], index, size, &path, &root).is_err());
    }
    let single = app.proof_json("/log/proof/inclusion?index=0&size=1").await;
    assert_eq!(single.body["inclusionPath"], json!([]), "size 1: the leaf is the root");
    for query in ["index=300&size=300", "index=0&size=0", "index=0&size=301", "index=5&size=2"] {
        let answer = app.proof_json(&format!("/log/proof/inclusion?{query}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(answer.body["type"], "/problems/invalid-proof-request", "{query}");
    }
    let malformed = app.proof_json("/log/proof/inclusion?index=x&size=1").await;
    assert_eq!(malformed.body["type"], "/problems/invalid-parameter");

    // Consistency between two signed checkpoints.
    app.capture_job(&farm, super::epcis_interface::document(secret_events(20, 300)), &[]).await;
    let later = app.checkpoint_at_least(&policy, 320).await;
    let answer = app.proof_json(&format!("/log/proof/consistency?old={size}&new={}", later.checkpoint.size())).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    tlog::verify_consistency(
        size,
        later.checkpoint.size(),
        &root,
        later.checkpoint.root_hash(),
        &proof_path(&answer, "consistencyPath"),
    )
    .expect("the later checkpoint extends the earlier one");
    let same = app.proof_json("/log/proof/consistency?old=300&new=300").await;
    assert_eq!((same.status, same.body["consistencyPath"].clone()), (StatusCode::OK, json!([])), "old = new");
    for query in ["old=301&new=300", "old=0&new=300", "old=300&new=100000"] {
        let answer = app.proof_json(&format!("/log/proof/consistency?{query}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(answer.body["type"], "/problems/invalid-proof-request", "{query}");
    }
}

pub(super) async fn log_event_proofs_disclose_and_hide(app: &TestApp) {
    let farm = app.tenant("prooffarm", &["tenant:admin"]).await;
    let stranger = app.tenant("stranger", &["tenant:admin"]).await;
    let policy = app.log_policy().await;
    app.capture_job(&farm, super::epcis_interface::document(secret_events(3, 0)), &[]).await;
    let events = app.query("", &farm).await;
    let event_id = events[1]["eventID"].as_str().unwrap().to_owned();
    let path = format!("/events/{}/proof", super::epcis_interface::encode(&event_id));

    // The tlog-proof verifies offline: entry ⇒ leaf ⇒ path ⇒ root ⇒ signature.
    let text = app.raw_get(&path, Some(&farm), None).await;
    assert_eq!(text.status, StatusCode::OK, "{}", String::from_utf8_lossy(&text.body));
    assert!(text.body.starts_with(b"c2sp.org/tlog-proof@v1\nextra "));
    let bundle = ProofBundle::parse(&text.body).unwrap();
    let entry = bundle.extra.clone().unwrap();
    bundle.verify(&leaf_hash(&entry), &policy).expect("the proof bundle verifies");
    assert!(!contains(&entry, "POSECRET1") && !contains(&entry, "prooffarm"));
    let mut other_entry = entry.clone();
    other_entry[30] ^= 1;
    assert!(bundle.verify(&leaf_hash(&other_entry), &policy).is_err(), "another entry does not verify");

    // The JSON form adds the disclosures: each field checks against the entry, a swapped one fails.
    let json_form = app.raw_get(&path, Some(&farm), Some("application/json")).await;
    let value: Value = serde_json::from_slice(&json_form.body).unwrap();
    assert_eq!(value["logIndex"], bundle.index);
    let disclosures: Vec<epcis::commitment::Disclosure> = value["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            use base64::Engine as _;
            epcis::commitment::Disclosure {
                salt: base64::engine::general_purpose::STANDARD
                    .decode(item["salt"].as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap(),
                name: item["name"].as_str().unwrap().to_owned(),
                value: item["value"].as_str().unwrap().to_owned(),
            }
        })
        .collect();
    let shown = epcis::commitment::verify(&entry, &disclosures).expect("every disclosed field is committed");
    assert!(shown.contains(&("/bizStep", "\"shipping\"")), "{shown:?}");
    assert!(
        shown
            .iter()
            .any(|(name, value)| *name == "/bizTransactionList/0/bizTransaction" && value.contains("POSECRET1"))
    );
    let mut swapped = disclosures.clone();
    let position = swapped.iter().position(|disclosure| disclosure.name == "/quantityList/0/quantity").unwrap();
    swapped[position].value = "481".into();
    assert!(epcis::commitment::verify(&entry, &swapped).is_err(), "a changed quantity does not verify");

    assert!(shown.iter().any(|(name, _)| *name == epcis::commitment::CAPTURED_BY), "the owner sees who captured");
    let other_record = app.raw_get(&format!("{path}?logIndex=999999"), Some(&farm), None).await;
    assert_eq!(other_record.status, StatusCode::NOT_FOUND);
    let chosen = app.raw_get(&format!("{path}?logIndex={}", bundle.index), Some(&farm), None).await;
    assert_eq!(chosen.body, text.body, "logIndex names the same record");
    let unknown_parameter = app.raw_get(&format!("{path}?index=1"), Some(&farm), None).await;
    assert_eq!(unknown_parameter.status, StatusCode::BAD_REQUEST);

    // A trace with proofs: each event's entry and inclusion path under one signed checkpoint.
    let trace = app.get("/v1/trace?gtin=09506000134352&lot=LOTSECRET1&proofs=true", &farm).await;
    assert_eq!(trace.status, StatusCode::OK, "{:?}", trace.body);
    let checkpoint = policy.verify(trace.body["log"]["checkpoint"].as_str().unwrap().as_bytes()).unwrap().checkpoint;
    let timeline = trace.body["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 1, "{timeline:?}");
    for step in timeline {
        use base64::Engine as _;
        let entry = base64::engine::general_purpose::STANDARD.decode(step["logEntry"].as_str().unwrap()).unwrap();
        let path: Vec<Hash> = step["inclusionPath"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hash| Hash::from_base64(hash.as_str().unwrap()).unwrap())
            .collect();
        let index = step["logIndex"].as_u64().unwrap();
        tlog::verify_inclusion(&leaf_hash(&entry), index, checkpoint.size(), &path, checkpoint.root_hash())
            .expect("the trace's proof verifies");
        assert_eq!(entry, bundle.extra.clone().unwrap(), "the same entry as the event's proof bundle");
    }
    let plain = app.get("/v1/trace?gtin=09506000134352&lot=LOTSECRET1", &farm).await;
    assert!(plain.body["log"].is_null() && plain.body["timeline"][0]["inclusionPath"].is_null());
    assert!(plain.body["timeline"][0]["logIndex"].is_u64());

    // Others see no proof of an event they cannot see; unknown events have none.
    assert_eq!(app.raw_get(&path, Some(&stranger), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.raw_get("/events/urn%3Auuid%3Anone/proof", Some(&farm), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.raw_get(&path, None, None).await.status, StatusCode::UNAUTHORIZED);

    // The audit feed: the operator sees every entry's event, a tenant its own only.
    let audit = app.get("/v1/log/audit?first=0&count=256", &app.operator_key).await;
    assert_eq!(audit.status, StatusCode::OK, "{:?}", audit.body);
    assert_eq!(audit.body["entries"].as_array().unwrap().len(), 3);
    assert_eq!(audit.body["entries"][0]["tenant"], "prooffarm");
    assert_eq!((&audit.body["complete"], &audit.body["size"]), (&json!(true), &json!(3)));
    // At the log's end: nothing yet, and its size says so; past it: refused.
    let at_end = app.get("/v1/log/audit?first=3", &app.operator_key).await;
    assert_eq!((&at_end.body["entries"], &at_end.body["size"]), (&json!([]), &json!(3)), "{:?}", at_end.body);
    let past = app.get("/v1/log/audit?first=4&count=2", &app.operator_key).await;
    assert!(past.is_problem(400, "/problems/invalid-parameter") && past.pointers() == ["?first"], "{:?}", past.body);
    assert_eq!(app.get("/v1/log/audit?first=0", &stranger).await.body["entries"], json!([]));
    let too_many = app.get("/v1/log/audit?first=0&count=257", &app.operator_key).await;
    assert_eq!(too_many.body["type"], "/problems/invalid-parameter");

    // A cosignature from no configured witness is refused, and stores nothing.
    let refused = app.raw_post("/log/cosignatures", &farm, "text/plain", b"not a note".to_vec()).await;
    assert_eq!(refused.body["type"], "/problems/invalid-cosignature");
    let checkpoint = app.raw_get("/log/checkpoint", None, None).await.body;
    let unknown = app.raw_post("/log/cosignatures", &farm, "text/plain", checkpoint.clone()).await;
    assert_eq!(unknown.body["type"], "/problems/invalid-cosignature");
    assert_eq!(app.raw_get("/log/checkpoint", None, None).await.body, checkpoint);
}
