//! End-to-end tests of the EPCIS 2.0 interface: capture, capture jobs, the simple event query and
//! its resource paths, visibility, and the public corpora captured and queried back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::*;

const GTIN: &str = "09506000134352";

pub(super) fn document(events: Vec<Value>) -> Value {
    json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", {"ex": "https://ns.example.com/epcis/"}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-05-01T12:30:00Z",
        "epcisBody": {"eventList": events}
    })
}

fn serial(number: u32) -> String {
    format!("https://id.gs1.org/01/{GTIN}/21/{number}")
}

/// Five events of a salmon's first day: commissioned, shipped, packed on a pallet, received by
/// weight, and a temperature report (in kelvin).
fn salmon_day() -> Vec<Value> {
    vec![
        json!({"type": "ObjectEvent", "eventTime": "2024-05-01T08:00:00Z", "eventTimeZoneOffset": "+02:00",
               "action": "ADD", "bizStep": "commissioning", "epcList": [serial(1), serial(2)],
               "bizLocation": {"id": "urn:epc:id:sgln:9506000.00001.0"}, "ex:harvestBatch": "B1"}),
        json!({"type": "ObjectEvent", "eventTime": "2024-05-01T09:00:00Z", "eventTimeZoneOffset": "+02:00",
               "action": "OBSERVE", "bizStep": "shipping", "disposition": "in_transit", "epcList": [serial(1)],
               "readPoint": {"id": "urn:epc:id:sgln:9506000.00001.0"}}),
        json!({"type": "AggregationEvent", "eventTime": "2024-05-01T10:00:00Z", "eventTimeZoneOffset": "+02:00",
               "action": "ADD", "bizStep": "packing", "parentID": "urn:epc:id:sscc:9506000.0000000001",
               "childEPCs": ["urn:epc:id:sgtin:9506000.013435.1", "urn:epc:id:sgtin:9506000.013435.2"]}),
        json!({"type": "ObjectEvent", "eventTime": "2024-05-01T11:00:00Z", "eventTimeZoneOffset": "+02:00",
               "action": "OBSERVE", "bizStep": "receiving", "epcList": [],
               "quantityList": [{"epcClass": format!("https://id.gs1.org/01/{GTIN}/10/LOT7"), "quantity": 20, "uom": "KGM"}]}),
        json!({"type": "ObjectEvent", "eventTime": "2024-05-01T12:00:00Z", "eventTimeZoneOffset": "+02:00",
               "action": "OBSERVE", "bizStep": "sensor_reporting", "epcList": [],
               "sensorElementList": [{"sensorMetadata": {"deviceID": "urn:epc:id:giai:9506000.42"},
                                      "sensorReport": [{"type": "Temperature", "value": 275.15, "uom": "KEL"}]}]}),
    ]
}

fn events_of(answer: &Answer) -> Vec<Value> {
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["type"], "EPCISQueryDocument", "{:?}", answer.body);
    answer.body["epcisBody"]["queryResults"]["resultsBody"]["eventList"].as_array().cloned().unwrap_or_default()
}

fn times_of(events: &[Value]) -> Vec<String> {
    events.iter().map(|event| event["eventTime"].as_str().unwrap_or("").get(11..16).unwrap_or("").to_owned()).collect()
}

pub(super) fn encode(text: &str) -> String {
    server::epcis::encode_path_segment(text)
}

impl TestApp {
    async fn capture(&self, key: &str, body: Value, headers: &[(&str, &str)]) -> Answer {
        let mut all = vec![("content-type", "application/ld+json")];
        all.extend_from_slice(headers);
        let response = {
            let mut request =
                self.client.post(format!("{}/capture", self.base)).bearer_auth(key).body(body.to_string());
            for (name, value) in &all {
                request = request.header(*name, *value);
            }
            request.send().await.unwrap()
        };
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        Answer { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    /// Captures and answers the finished capture job.
    pub(super) async fn capture_job(&self, key: &str, body: Value, headers: &[(&str, &str)]) -> Value {
        let captured = self.capture(key, body, headers).await;
        assert_eq!(captured.status, StatusCode::ACCEPTED, "{:?}", captured.body);
        let location = captured.headers["location"].to_str().unwrap().to_owned();
        assert_eq!(captured.headers["gs1-epcis-capture-limit"], "10000");
        let job = self.get(&location, key).await;
        assert_eq!(job.status, StatusCode::OK, "{:?}", job.body);
        job.body
    }

    pub(super) async fn query(&self, query: &str, key: &str) -> Vec<Value> {
        events_of(&self.get(&format!("/events?{query}"), key).await)
    }
}

pub(super) async fn epcis_capture_and_query(app: &TestApp) {
    let farm = app.tenant("farm", &["tenant:admin"]).await;
    let job = app.capture_job(&farm, document(salmon_day()), &[]).await;
    assert_eq!((job["running"].as_bool(), job["success"].as_bool()), (Some(false), Some(true)), "{job}");
    assert_eq!(job["eventsCaptured"], 5, "{job}");
    assert_eq!(job["captureErrorBehaviour"], "rollback");

    let all = app.query("", &farm).await;
    assert_eq!(times_of(&all), ["08:00", "09:00", "10:00", "11:00", "12:00"], "capture order");
    let every_id: BTreeSet<String> = all.iter().map(|event| event["eventID"].as_str().unwrap().to_owned()).collect();
    assert_eq!(every_id.len(), 5);
    assert!(every_id.iter().all(|id| id.starts_with("ni:///sha-256;")), "hash IDs assigned: {every_id:?}");
    assert!(all.iter().all(|event| event["recordTime"].is_string()), "the repository sets recordTime");

    // One case per parameter family: (query, expected event times).
    let cases: &[(&str, &[&str])] = &[
        ("eventType=AggregationEvent", &["10:00"]),
        ("GE_eventTime=2024-05-01T10:00:00Z&LT_eventTime=2024-05-01T12:00:00Z", &["10:00", "11:00"]),
        ("EQ_action=ADD", &["08:00", "10:00"]),
        ("EQ_bizStep=shipping|receiving", &["09:00", "11:00"]),
        ("EQ_disposition=in_transit", &["09:00"]),
        ("EQ_readPoint=urn:epc:id:sgln:9506000.00001.0", &["09:00"]),
        ("EQ_bizLocation=https://id.gs1.org/414/9506000000015", &["08:00"]),
        ("MATCH_epc=urn:epc:id:sgtin:9506000.013435.1", &["08:00", "09:00", "10:00"]),
        ("MATCH_parentID=urn:epc:id:sscc:9506000.0000000001", &["10:00"]),
        ("MATCH_anyEPC=urn:epc:id:sscc:9506000.0000000001", &["10:00"]),
        ("MATCH_epc=urn:epc:idpat:sgtin:9506000.013435.*", &["08:00", "09:00", "10:00"]),
        ("MATCH_epcClass=urn:epc:class:lgtin:9506000.013435.LOT7", &["11:00"]),
        ("GE_quantity=20", &["11:00"]),
        ("LT_quantity=20", &[]),
        ("EQ_type=Temperature&GE_value_CEL=1.9&LT_value_CEL=2.1", &["12:00"]),
        ("GT_value_CEL=2.1", &[]),
        ("EQ_deviceID=urn:epc:id:giai:9506000.42", &["12:00"]),
        ("EQ_ex:harvestBatch=B1", &["08:00"]),
        ("EXISTS_ex:harvestBatch", &["08:00"]),
        ("EXISTS_errorDeclaration", &[]),
        ("orderBy=eventTime&orderDirection=DESC&eventCountLimit=2", &["12:00", "11:00"]),
        ("orderBy=eventTime&orderDirection=ASC&eventCountLimit=2", &["08:00", "09:00"]),
        ("orderBy=recordTime&orderDirection=DESC", &["12:00", "11:00", "10:00", "09:00", "08:00"]),
        ("maxEventCount=5", &["08:00", "09:00", "10:00", "11:00", "12:00"]),
    ];
    for (query, expected) in cases {
        let found = app.query(query, &farm).await;
        assert_eq!(times_of(&found), *expected, "query {query}");
    }
    let one_id = all[1]["eventID"].as_str().unwrap();
    assert_eq!(times_of(&app.query(&format!("EQ_eventID={}", encode(one_id)), &farm).await), ["09:00"]);
    let by_id = app.get(&format!("/events/{}", encode(one_id)), &farm).await;
    assert_eq!(times_of(&events_of(&by_id)), ["09:00"]);
    assert!(
        app.get("/events/urn:uuid:00000000-0000-0000-0000-000000000000", &farm)
            .await
            .is_problem(404, "/problems/not-found")
    );

    // The resource paths.
    let paths: &[(&str, &[&str])] = &[
        ("/eventTypes/AggregationEvent/events", &["10:00"]),
        ("/epcs/urn:epc:id:sgtin:9506000.013435.2/events", &["08:00", "10:00"]),
        ("/bizSteps/shipping/events", &["09:00"]),
        ("/dispositions/in_transit/events", &["09:00"]),
        ("/readPoints/urn:epc:id:sgln:9506000.00001.0/events", &["09:00"]),
        ("/bizLocations/urn:epc:id:sgln:9506000.00001.0/events?EQ_action=ADD", &["08:00"]),
    ];
    for (path, expected) in paths {
        assert_eq!(times_of(&events_of(&app.get(path, &farm).await)), *expected, "path {path}");
    }
    // GS1-EPC-Format: Always_EPC_URN answers in URNs where the company prefix is known (learned
    // from the URNs captured); Digital Links otherwise.
    let urns =
        app.send("GET", "/events?EQ_bizStep=packing", Some(&farm), None, &[("GS1-EPC-Format", "Always_EPC_URN")]).await;
    assert_eq!(urns.headers["gs1-epc-format"], "Always_EPC_URN");
    let packing = &events_of(&urns)[0];
    assert_eq!(packing["parentID"], "urn:epc:id:sscc:9506000.0000000001");
    assert_eq!(packing["childEPCs"], json!(["urn:epc:id:sgtin:9506000.013435.1", "urn:epc:id:sgtin:9506000.013435.2"]));
    let links = app.get("/events?EQ_bizStep=packing", &farm).await;
    assert_eq!(links.headers["gs1-epc-format"], "Always_GS1_Digital_Link");
    assert_eq!(events_of(&links)[0]["childEPCs"], json!([serial(1), serial(2)]));
    let types = app.get("/eventTypes", &farm).await;
    assert_eq!(types.body["@set"].as_array().map(Vec::len), Some(5));

    // Pages of two, followed by the Link header; the last page has none.
    let mut next = Some("/events?perPage=2".to_owned());
    let mut pages = Vec::new();
    while let Some(path) = next.take() {
        let answer = app.get(&path, &farm).await;
        pages.push(times_of(&events_of(&answer)));
        if let Some(link) = answer.headers.get("link") {
            let link = link.to_str().unwrap();
            assert!(link.ends_with("; rel=\"next\""), "{link}");
            next = Some(link.trim_start_matches('<').split('>').next().unwrap().to_owned());
        }
        assert!(pages.len() <= 4, "paging does not end: {pages:?}");
    }
    assert_eq!(pages.concat(), ["08:00", "09:00", "10:00", "11:00", "12:00"], "{pages:?}");
    // A resource path pages too: its Link repeats the query string, not the path's parameter.
    let first = app.get("/epcs/urn:epc:id:sgtin:9506000.013435.1/events?perPage=2", &farm).await;
    let link = first.headers["link"].to_str().unwrap().to_owned();
    let next = link.trim_start_matches('<').split('>').next().unwrap().to_owned();
    assert!(next.starts_with("/epcs/"), "{next}");
    let second = app.get(&next, &farm).await;
    assert_eq!([times_of(&events_of(&first)), times_of(&events_of(&second))].concat(), ["08:00", "09:00", "10:00"]);
    assert_eq!(pages[0].len(), 2);
    let foreign_token = app.get("/events?perPage=2&EQ_action=ADD&nextPageToken=MS4xLjIuYWJj", &farm).await;
    assert!(foreign_token.is_problem(400, "/problems/invalid-parameter"), "{:?}", foreign_token.body);

    // Capturing the same events again stores nothing new.
    let again = app.capture_job(&farm, document(salmon_day()), &[]).await;
    assert_eq!((again["eventsCaptured"].as_i64(), again["eventsAlreadyCaptured"].as_i64()), (Some(0), Some(5)));
    assert_eq!(app.query("", &farm).await.len(), 5);
    let jobs = app.get("/capture", &farm).await;
    assert_eq!(jobs.body.as_array().map(Vec::len), Some(2), "{:?}", jobs.body);
    // A page at a time, newest first, following Link.
    let first_page = app.get("/capture?perPage=1", &farm).await;
    assert_eq!(first_page.body.as_array().map(Vec::len), Some(1), "{:?}", first_page.body);
    assert_eq!(first_page.body[0], jobs.body[0]);
    let link = first_page.headers["link"].to_str().unwrap().to_owned();
    let next = link.trim_start_matches('<').split('>').next().unwrap().to_owned();
    let second_page = app.get(&next, &farm).await;
    assert_eq!(second_page.body, json!([jobs.body[1]]), "{:?}", second_page.body);
    assert!(second_page.headers.get("link").is_none(), "the last page");
    for bad in ["/capture?perPage=0", "/capture?perPage=1001", "/capture?nextPageToken=abc", "/capture?foo=1"] {
        let refused = app.get(bad, &farm).await;
        assert!(refused.is_problem(400, "/problems/invalid-parameter"), "{bad}: {:?}", refused.body);
    }

    // Visibility: a stranger sees nothing. A tenant that registers the GTIN sees nothing more
    // (anyone may claim a GTIN first), until the operator verifies the GS1 company prefix as its
    // own: then the brand sees the events that name it (not the sensor report, which names no
    // product).
    let shop = app.tenant("shop", &["tenant:admin"]).await;
    assert!(app.query("", &shop).await.is_empty());
    assert!(app.get(&format!("/events/{}", encode(one_id)), &shop).await.is_problem(404, "/problems/not-found"));
    let brand = app.tenant("brand", &["tenant:admin"]).await;
    let product = app.post("/v1/products", &brand, super::salmon(GTIN)).await;
    assert_eq!(product.status, StatusCode::CREATED, "{:?}", product.body);
    assert!(app.query("", &brand).await.is_empty(), "a claim alone shows nothing");
    assert!(app.get(&format!("/events/{}", encode(one_id)), &brand).await.is_problem(404, "/problems/not-found"));
    let prefixes = "/v1/operator/tenants/brand/company-prefixes";
    for (bad, pointer) in [(json!({"company_prefix": "95060"}), "/company_prefix"), (json!({"prefix": "9506000"}), "")]
    {
        let refused = app.post(prefixes, &app.operator_key, bad.clone()).await;
        assert_eq!(refused.status.as_u16() / 100, 4, "{bad}: {:?}", refused.body);
        assert!(refused.body.to_string().contains(pointer), "{bad}: {:?}", refused.body);
    }
    assert!(
        app.post(prefixes, &brand, json!({"company_prefix": "9506000"})).await.is_problem(403, "/problems/forbidden")
    );
    let network = app
        .post("/v1/operator/tenants/network/company-prefixes", &app.operator_key, json!({"company_prefix": "9506000"}))
        .await;
    assert!(network.is_problem(422, "/problems/validation-failed"), "{:?}", network.body);
    assert_eq!(app.get(prefixes, &app.operator_key).await.body, json!([]), "the refused stored nothing");
    let verified = app.post(prefixes, &app.operator_key, json!({"company_prefix": "9506000"})).await;
    assert_eq!(verified.status, StatusCode::CREATED, "{:?}", verified.body);
    let again = app.post(prefixes, &app.operator_key, json!({"company_prefix": "9506000"})).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["verified_at"], verified.body["verified_at"], "when it was verified, not now");
    let listed = app.get(prefixes, &app.operator_key).await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1), "{:?}", listed.body);
    assert_eq!(listed.body[0]["company_prefix"], "9506000", "{:?}", listed.body);
    assert_eq!(times_of(&app.query("", &brand).await), ["08:00", "09:00", "10:00", "11:00"]);
    // The prefix is the brand's: no other tenant registers a GTIN under it, or a prefix over it.
    let squatter = app.post("/v1/products", &shop, super::salmon("09506000134369")).await;
    assert!(squatter.is_problem(409, "/problems/conflict"), "{:?}", squatter.body);
    let overlapping = app
        .post("/v1/operator/tenants/shop/company-prefixes", &app.operator_key, json!({"company_prefix": "950600"}))
        .await;
    assert!(overlapping.is_problem(409, "/problems/conflict"), "{:?}", overlapping.body);
    assert!(app.query("", &shop).await.is_empty());

    // Bad queries and versions get problems.
    for malformed in ["/events?EQ_action=%FF", "/events?EQ_action=%01", "/v1/trace?epc=a&epc=b"] {
        let answer = app.get(malformed, &farm).await;
        assert!(answer.is_problem(400, "/problems/invalid-parameter"), "{malformed}: {:?}", answer.body);
    }
    let bad = app.get("/events?EQ_action=MOVE", &farm).await;
    assert!(bad.is_problem(400, "/problems/invalid-parameter"), "{:?}", bad.body);
    assert_eq!(bad.pointers(), ["?EQ_action"]);
    let too_many = app.get("/events?maxEventCount=4", &farm).await;
    assert!(too_many.is_problem(413, "/problems/query-too-large"), "{:?}", too_many.body);
    let old = app.send("GET", "/events", Some(&farm), None, &[("GS1-EPCIS-Version", "1.2")]).await;
    assert!(old.is_problem(406, "/problems/not-acceptable"), "{:?}", old.body);
    let current = app.send("GET", "/events", Some(&farm), None, &[("GS1-EPCIS-Version", "2.0.0")]).await;
    assert_eq!(current.headers["gs1-epcis-version"], "2.0.0");
    assert_eq!(current.headers["gs1-cbv-version"], "2.0.0");
    let options = app.send("OPTIONS", "/capture", Some(&farm), None, &[]).await;
    assert_eq!(options.status, StatusCode::NO_CONTENT);
    assert_eq!(options.headers["gs1-epcis-capture-file-size-limit"], "16777216");
    assert!(app.send("GET", "/events", None, None, &[]).await.is_problem(401, "/problems/unauthorized"));
    let reader = app.tenant("reader", &["tenant:read"]).await;
    assert!(app.capture(&reader, document(salmon_day()), &[]).await.is_problem(403, "/problems/forbidden"));
}

pub(super) async fn epcis_bad_documents_store_nothing(app: &TestApp) {
    let farm = app.tenant("farm", &["tenant:admin"]).await;
    let mut events = salmon_day();
    events[1]["action"] = json!("MOVE");
    events[3]["bizStep"] = json!("flying");
    let refused = app.capture(&farm, document(events.clone()), &[]).await;
    assert!(refused.is_problem(400, "/problems/invalid-epcis"), "{:?}", refused.body);
    assert_eq!(refused.pointers(), ["/epcisBody/eventList/1/action", "/epcisBody/eventList/3/bizStep"]);
    assert!(app.query("", &farm).await.is_empty(), "rollback stores nothing");
    assert!(app.get("/capture", &farm).await.body.as_array().is_some_and(Vec::is_empty));

    // proceed: the three valid events are stored, the job lists the two refused.
    let job = app.capture_job(&farm, document(events), &[("GS1-Capture-Error-Behaviour", "proceed")]).await;
    assert_eq!((job["success"].as_bool(), job["eventsCaptured"].as_i64()), (Some(false), Some(3)), "{job}");
    assert_eq!(job["captureErrorBehaviour"], "proceed");
    let pointers: Vec<&str> =
        job["errors"].as_array().unwrap().iter().filter_map(|error| error["pointer"].as_str()).collect();
    assert_eq!(pointers, ["/epcisBody/eventList/1/action", "/epcisBody/eventList/3/bizStep"]);
    assert_eq!(times_of(&app.query("", &farm).await), ["08:00", "10:00", "12:00"]);

    // A document-level error fails the whole document even under proceed.
    let mut broken = document(salmon_day());
    broken["creationDate"] = json!("yesterday");
    let refused = app.capture(&farm, broken, &[("GS1-Capture-Error-Behaviour", "proceed")]).await;
    assert!(refused.is_problem(400, "/problems/invalid-epcis"), "{:?}", refused.body);
    let behaviour = app.capture(&farm, document(salmon_day()), &[("GS1-Capture-Error-Behaviour", "maybe")]).await;
    assert!(behaviour.is_problem(400, "/problems/invalid-parameter"), "{:?}", behaviour.body);

    // Not JSON, not an EPCIS document, the wrong media type, too large.
    let answer = app.raw_post("/capture", &farm, "application/json", b"{\"type\": ".to_vec()).await;
    assert!(answer.is_problem(400, "/problems/invalid-epcis"), "{:?}", answer.body);
    let answer = app.raw_post("/capture", &farm, "text/plain", b"hello".to_vec()).await;
    assert!(answer.is_problem(415, "/problems/unsupported-media-type"), "{:?}", answer.body);
    let huge = vec![b' '; server::epcis::CAPTURE_BYTES_MAX + 1];
    let answer = app.raw_post("/capture", &farm, "application/json", huge).await;
    assert!(answer.is_problem(413, "/problems/payload-too-large"), "{:?}", answer.body);
    assert_eq!(app.query("", &farm).await.len(), 3, "nothing more was stored");

    // One event by POST /events, and EPCIS XML.
    let single = json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "ObjectEvent", "eventID": "urn:uuid:6d5a3c4e-9d1e-4b8f-8f43-1a2b3c4d5e6f",
        "eventTime": "2024-05-02T08:00:00Z", "eventTimeZoneOffset": "+00:00", "action": "OBSERVE",
        "bizStep": "retail_selling", "epcList": [serial(1)]
    });
    let created = app.raw_post("/events", &farm, "application/ld+json", single.to_string().into_bytes()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.headers["location"], "/events/urn%3Auuid%3A6d5a3c4e-9d1e-4b8f-8f43-1a2b3c4d5e6f");
    let found = app.get(created.headers["location"].to_str().unwrap(), &farm).await;
    assert_eq!(events_of(&found)[0]["bizStep"], "retail_selling");
    // The same event again without its eventID (known by its hash): stored once, and the
    // answer names the eventID it is stored under, which reads it back.
    let mut unnamed = single.clone();
    unnamed.as_object_mut().unwrap().remove("eventID");
    let again = app.raw_post("/events", &farm, "application/ld+json", unnamed.to_string().into_bytes()).await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
    assert_eq!(again.headers["location"], created.headers["location"], "{:?}", again.body);
    assert_eq!(again.body["eventID"], "urn:uuid:6d5a3c4e-9d1e-4b8f-8f43-1a2b3c4d5e6f");
    // And the other way: an event stored under its hash, captured again under an eventID of the
    // client's, is answered with the hash it is stored under.
    let mut hashed = unnamed.clone();
    hashed["eventTime"] = json!("2024-05-02T09:00:00Z");
    let first = app.raw_post("/events", &farm, "application/ld+json", hashed.to_string().into_bytes()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let hash_id = first.body["eventID"].as_str().unwrap().to_owned();
    assert!(hash_id.starts_with("ni:///sha-256;"), "{hash_id}");
    let mut renamed = hashed.clone();
    renamed.as_object_mut().unwrap().remove("@context");
    renamed["eventID"] = json!("urn:uuid:0e0e0e0e-2222-4333-8444-555555555555");
    let answered = app.capture(&farm, document(vec![renamed]), &[]).await;
    assert_eq!(answered.status, StatusCode::ACCEPTED, "{:?}", answered.body);
    assert_eq!(answered.body["eventIDs"], json!([hash_id]), "{:?}", answered.body);
    let job = app.get(answered.headers["location"].to_str().unwrap(), &farm).await;
    assert_eq!(job.body["eventsAlreadyCaptured"], 1, "{:?}", job.body);
    let read = app.get(&format!("/events/{}", encode(&hash_id)), &farm).await;
    assert_eq!(events_of(&read).len(), 1, "{:?}", read.body);
    let mut changed = single.clone();
    changed["bizStep"] = json!("shipping");
    let reused = app.raw_post("/events", &farm, "application/ld+json", changed.to_string().into_bytes()).await;
    assert!(reused.is_problem(409, "/problems/conflict"), "an eventID names one event: {:?}", reused.body);
    // In a document under rollback, such a reuse refuses the whole document.
    let stored_before = app.query("", &farm).await.len();
    let mut fresh = salmon_day()[1].clone();
    fresh["eventTime"] = json!("2024-06-01T09:00:00Z");
    let mut conflicting = changed.clone();
    conflicting.as_object_mut().unwrap().remove("@context");
    let refused = app.capture(&farm, document(vec![fresh, conflicting]), &[]).await;
    assert!(refused.is_problem(409, "/problems/conflict"), "{:?}", refused.body);
    assert_eq!(app.query("", &farm).await.len(), stored_before, "rollback stores none of the document");
    let xml = r#"<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0" creationDate="2024-05-01T10:00:00Z">
  <EPCISBody><EventList><ObjectEvent>
    <eventTime>2024-05-03T08:00:00Z</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset>
    <epcList><epc>urn:epc:id:sgtin:9506000.013435.77</epc></epcList>
    <action>OBSERVE</action><bizStep>urn:epcglobal:cbv:bizstep:departing</bizStep>
  </ObjectEvent></EventList></EPCISBody></epcis:EPCISDocument>"#;
    let captured = app.raw_post("/capture", &farm, "application/xml", xml.as_bytes().to_vec()).await;
    assert_eq!(captured.status, StatusCode::ACCEPTED, "{:?}", captured.body);
    let departing = app.query("EQ_bizStep=departing", &farm).await;
    assert_eq!(departing[0]["epcList"], json!([serial(77)]), "stored as a Digital Link");
}

// ---------------------------------------------------------------------------------------------
// The public corpora, captured over HTTP and queried back.

fn corpus_directory() -> Option<PathBuf> {
    let directory = std::env::var_os("KETEN_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"));
    if directory.join("epcis").is_dir() {
        return Some(directory);
    }
    eprintln!("SKIPPED: EPCIS conformance corpus not found at {} (set KETEN_CONFORMANCE_DIR)", directory.display());
    assert!(std::env::var("CI").as_deref() != Ok("true"), "conformance corpus missing under CI=true");
    None
}

fn files_in(directory: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(directory).unwrap_or_else(|error| panic!("{}: {error}", directory.display())).flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_in(&path, extensions));
        } else if path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| extensions.contains(&extension))
        {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Valid documents of the corpora not captured, and why (the same as the epcis crate's
/// conformance test, which explains each in detail).
const EXCLUDED: &[(&str, &str)] = &[
    ("gs1-EPCIS/XML/CaptureJob/", "capture job status documents, not EPCIS documents"),
    ("masterdata_all_possible_fields.xml", "an EPCISMasterDataDocument"),
    ("Mimasu/Example-masterData.xml", "an EPCISMasterDataDocument"),
    ("CBV/CBV-11.4-2020-06-16a.xml", "an EPCISMasterDataDocument"),
    ("JumbledFieldsOrder.xml", "elements out of the XSD sequence, rejected by the XML binding"),
    ("SensorDataExamples.xml", "bizStep Bizstep-sensor_reporting is not a CBV term"),
    ("XML/Query/queryDocument.xml", "a GRAI with a wrong check digit"),
];

pub(super) async fn epcis_corpora_are_captured_and_queried_back(app: &TestApp) {
    let Some(corpus) = corpus_directory() else { return };
    let epcis_directory = corpus.join("epcis");
    let openepcis = epcis_directory.join("openepcis-test-resources/core/src/main/resources/2.0/EPCIS");
    let mut documents = files_in(&epcis_directory.join("gs1-EPCIS/JSON"), &["jsonld", "json"]);
    documents.extend(files_in(&epcis_directory.join("gs1-EPCIS/XML"), &["xml", "json"]));
    for folder in ["JSON/Capture/Documents", "JSON/Query", "XML/Capture/Documents", "XML/Query"] {
        documents.extend(files_in(&openepcis.join(folder), &["json", "xml"]).into_iter().filter(|path| {
            let text = path.to_string_lossy();
            !text.contains("/Invalid/") && !text.contains("/Queries/")
        }));
    }
    let mut failures = Vec::new();
    let (mut captured_documents, mut compared_events) = (0, 0);
    for (index, path) in documents.iter().enumerate() {
        let name = path.display().to_string();
        if let Some((_, reason)) = EXCLUDED.iter().find(|(suffix, _)| name.contains(suffix)) {
            eprintln!("excluded {name}: {reason}");
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let xml = name.ends_with(".xml");
        let parsed = match xml {
            true => epcis::parse_xml_document(&text),
            false => epcis::parse_json_document(&text),
        };
        let Ok(mut original) = parsed else {
            failures.push(format!("{name}: the epcis crate rejects it"));
            continue;
        };
        // A query document's events are captured as an EPCISDocument; XML goes in as XML.
        let (content_type, body) = match (xml, original.kind) {
            (true, epcis::DocumentKind::Document) => ("application/xml", text.clone().into_bytes()),
            _ => {
                let mut capture = original.clone();
                capture.kind = epcis::DocumentKind::Document;
                capture.creation_date = capture.creation_date.or(epcis::Timestamp::parse("2024-01-01T00:00:00Z").ok());
                capture.query_results = None;
                ("application/ld+json", epcis::jsonld::document_to_json(&capture).to_string().into_bytes())
            }
        };
        // Each document in its own tenant: the corpora reuse eventIDs across files.
        let key = app.tenant(&format!("corpus{index}"), &["tenant:admin"]).await;
        let answer = app.raw_post("/capture", &key, content_type, body).await;
        if answer.status != StatusCode::ACCEPTED {
            failures.push(format!("{name}: capture answered {} {}", answer.status, answer.body));
            continue;
        }
        captured_documents += 1;
        let hash_ids = original.event_hash_ids();
        for (event, hash_id) in original.events.iter_mut().zip(hash_ids) {
            let event_id = event.event_id.get_or_insert(hash_id).clone();
            event.record_time = None;
            let found = app.get(&format!("/events/{}", encode(&event_id)), &key).await;
            let text = found.body.to_string();
            // One eventID may hold the event and its error declaration: one of them must equal.
            let returned = epcis::parse_json_document(&text).map(|document| document.events).unwrap_or_default();
            let equal = returned.into_iter().any(|mut returned| {
                returned.record_time = None;
                epcis::events_equal(event, &returned)
            });
            match equal {
                true => compared_events += 1,
                false => failures.push(format!(
                    "{name}: event {event_id} not read back equal\n    sent: {}\n    read: {}",
                    epcis::compare::canonical_form(event),
                    found.body
                )),
            }
        }
    }
    eprintln!("corpora: {captured_documents} documents captured, {compared_events} events read back equal");
    assert!(captured_documents > 100, "the corpus was not read");

    // Every invalid document is refused, and nothing is stored.
    let key = app.tenant("invalid", &["tenant:admin"]).await;
    let stored_before = app.store.epcis_event_count().await.unwrap();
    let mut invalid = Vec::new();
    for folder in ["JSON/Capture/Invalid", "JSON/Query/Invalid", "XML/Capture/Invalid", "XML/Query/Invalid"] {
        invalid.extend(files_in(&openepcis.join(folder), &["json", "xml"]).into_iter().filter(|path| {
            // Query definitions are not documents (judged by the query interface).
            !path.to_string_lossy().contains("/Queries/")
        }));
    }
    for path in &invalid {
        let text = std::fs::read_to_string(path).unwrap();
        let is_document = text.contains("EPCISDocument") || text.contains("EPCISQueryDocument");
        let content_type = if path.extension().is_some_and(|extension| extension == "xml") {
            "application/xml"
        } else {
            "application/json"
        };
        let endpoint = if is_document { "/capture" } else { "/events" };
        let answer = app.raw_post(endpoint, &key, content_type, text.into_bytes()).await;
        if !answer.is_problem(400, "/problems/invalid-epcis") {
            failures.push(format!("{}: invalid, but answered {} {}", path.display(), answer.status, answer.body));
        }
    }
    assert_eq!(app.store.epcis_event_count().await.unwrap(), stored_before, "an invalid document stored events");
    eprintln!("corpora: {} invalid documents refused", invalid.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Named queries and webhook subscriptions.

pub(super) async fn epcis_named_queries(app: &TestApp) {
    let farm = app.tenant("farm", &["tenant:admin"]).await;
    app.capture_job(&farm, document(salmon_day()), &[]).await;
    let created = app
        .post(
            "/queries",
            &farm,
            json!({"name": "moves", "query": {"EQ_bizStep": ["shipping", "packing"], "EQ_action": ["OBSERVE", "ADD"]}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.headers["location"], "/queries/moves");
    let again = app.post("/queries", &farm, json!({"name": "moves", "query": {}})).await;
    assert!(again.is_problem(409, "/problems/conflict"), "{:?}", again.body);
    let bad = app.post("/queries", &farm, json!({"name": "bad", "query": {"EQ_action": ["MOVE"]}})).await;
    assert!(bad.is_problem(400, "/problems/invalid-parameter"), "{:?}", bad.body);
    let bad_name = app.post("/queries", &farm, json!({"name": "a b", "query": {}})).await;
    assert!(bad_name.is_problem(422, "/problems/validation-failed"), "{:?}", bad_name.body);
    let names: Vec<Value> =
        app.get("/queries", &farm).await.body.as_array().unwrap().iter().map(|query| query["name"].clone()).collect();
    assert_eq!(names, [json!("moves")], "refused queries are not stored");
    let found = events_of(&app.get("/queries/moves/events", &farm).await);
    assert_eq!(times_of(&found), ["09:00", "10:00"]);
    assert_eq!(found.len(), 2);
    let listed = app.get("/queries", &farm).await;
    assert_eq!(listed.body[0]["name"], "moves");
    let paged = app.get("/queries/moves/events?perPage=1", &farm).await;
    assert!(paged.headers.get("link").is_some(), "a second page follows");
    let stray = app.get("/queries/moves/events?EQ_action=ADD", &farm).await;
    assert!(stray.is_problem(400, "/problems/invalid-parameter"), "{:?}", stray.body);
    // Subscriptions need a stream or a schedule and an https (or http) destination with a host.
    for (body, pointer) in [
        (json!({"dest": "http://127.0.0.1:9/hook"}), ""),
        (json!({"dest": "ftp://example.com/", "stream": true}), "/dest"),
        (json!({"dest": "https://", "stream": true}), "/dest"),
        (json!({"dest": "file:///etc/passwd", "stream": true}), "/dest"),
        (json!({"dest": "http://127.0.0.1:9/hook", "schedule": {"hour": "25"}}), "/schedule"),
        (json!({"dest": "http://127.0.0.1:9/hook", "stream": true, "colour": 1}), "/colour"),
    ] {
        let refused = app.post("/queries/moves/subscriptions", &farm, body.clone()).await;
        assert!(refused.is_problem(422, "/problems/validation-failed"), "{body}: {:?}", refused.body);
        assert_eq!(refused.pointers(), [pointer], "{body}");
    }
    let subscriptions = app.get("/queries/moves/subscriptions", &farm).await;
    assert_eq!(subscriptions.body, json!([]), "refused subscriptions are not stored");
    let https = app
        .post("/queries/moves/subscriptions", &farm, json!({"dest": "https://127.0.0.1:9/hook", "stream": true}))
        .await;
    assert_eq!(https.status, StatusCode::CREATED, "{:?}", https.body);
    let subscriptions = app.get("/queries/moves/subscriptions", &farm).await;
    assert_eq!(subscriptions.body.as_array().map(Vec::len), Some(1), "{:?}", subscriptions.body);
    let deleted = app.send("DELETE", "/queries/moves", Some(&farm), None, &[]).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(app.get("/queries/moves/events", &farm).await.is_problem(404, "/problems/not-found"));
}

/// A delivery as received: the `GS1-Signature` header and the body.
type Delivery = (Option<String>, String);

/// A webhook receiver: records each request, and fails the next `fail` requests with 503.
#[derive(Clone, Default)]
struct Receiver {
    received: std::sync::Arc<std::sync::Mutex<Vec<Delivery>>>,
    fail: std::sync::Arc<std::sync::atomic::AtomicU32>,
    failed: std::sync::Arc<std::sync::atomic::AtomicU32>,
    /// How long the next request waits before it is answered (milliseconds; then 0).
    slow_once_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Requests that arrived (answered or not yet).
    arrived: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl Receiver {
    async fn start(&self) -> String {
        use std::sync::atomic::Ordering;
        let receiver = self.clone();
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let receiver = receiver.clone();
                async move {
                    receiver.arrived.fetch_add(1, Ordering::SeqCst);
                    let delay = receiver.slow_once_ms.swap(0, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                    if receiver.fail.load(Ordering::SeqCst) > 0 {
                        receiver.fail.fetch_sub(1, Ordering::SeqCst);
                        receiver.failed.fetch_add(1, Ordering::SeqCst);
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let signature =
                        headers.get("gs1-signature").and_then(|value| value.to_str().ok()).map(str::to_owned);
                    receiver.received.lock().unwrap().push((signature, body));
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{address}/hook")
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.received.lock().unwrap().clone()
    }

    async fn wait_for(&self, count: usize) -> Vec<Delivery> {
        for _ in 0..200 {
            let deliveries = self.deliveries();
            if deliveries.len() >= count {
                return deliveries;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("expected {count} deliveries, got {:?}", self.deliveries());
    }
}

fn shipping_event(number: u32) -> Value {
    json!({"type": "ObjectEvent", "eventTime": format!("2024-05-0{number}T09:00:00Z"), "eventTimeZoneOffset": "+02:00",
           "action": "OBSERVE", "bizStep": "shipping", "epcList": [serial(100 + number)]})
}

/// A stream subscription delivers each matching event once, signed, retries a failing receiver,
/// and keeps its place across a restart of keten.
pub(super) async fn epcis_webhooks_survive_a_restart(backend: Backend) {
    let (url, sqlite) = match backend {
        Backend::Sqlite => {
            let file = scratchdb::SqliteFile::new().unwrap();
            (file.url(), Some(file))
        }
        Backend::Postgres => match scratchdb::postgres_or_skip("epcis_webhooks_survive_a_restart") {
            Some(url) => (url, None),
            None => return,
        },
    };
    let receiver = Receiver::default();
    let hook = receiver.start().await;
    let first = spawn_app_at(url.clone(), None).await;
    let farm = first.tenant("farm", &["tenant:admin"]).await;
    let query = json!({"name": "shipments", "query": {"EQ_bizStep": ["shipping"]}});
    assert_eq!(first.post("/queries", &farm, query).await.status, StatusCode::CREATED);
    let subscribed = first
        .post(
            "/queries/shipments/subscriptions",
            &farm,
            json!({"dest": hook, "signatureToken": "s3cret", "stream": true}),
        )
        .await;
    assert_eq!(subscribed.status, StatusCode::CREATED, "{:?}", subscribed.body);
    let subscription_id = subscribed.body["subscriptionID"].as_str().unwrap().to_owned();

    // Event 1 is delivered, signed with the token.
    first.capture_job(&farm, document(vec![shipping_event(1), salmon_day()[0].clone()]), &[]).await;
    let deliveries = receiver.wait_for(1).await;
    let (signature, body) = &deliveries[0];
    assert!(server::subscriptions::signature_matches("s3cret", body.as_bytes(), signature.as_deref().unwrap_or("")));
    let document_sent: Value = serde_json::from_str(body).unwrap();
    assert_eq!(document_sent["epcisBody"]["queryResults"]["subscriptionID"], subscription_id.as_str());
    assert_eq!(document_sent["epcisBody"]["queryResults"]["queryName"], "shipments");
    let sent = document_sent["epcisBody"]["queryResults"]["resultsBody"]["eventList"].as_array().unwrap();
    assert_eq!(sent.len(), 1, "only the matching event: {body}");
    assert_eq!(sent[0]["epcList"], json!([serial(101)]));

    // The receiver fails; keten retries, then stops; a new keten on the same database delivers
    // event 2 (and not event 1 again).
    receiver.fail.store(1000, std::sync::atomic::Ordering::SeqCst);
    first.capture_job(&farm, document(vec![shipping_event(2)]), &[]).await;
    for _ in 0..100 {
        if receiver.failed.load(std::sync::atomic::Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(receiver.failed.load(std::sync::atomic::Ordering::SeqCst) >= 2, "keten retries a failing receiver");
    let TestApp { _shutdown, server, .. } = first;
    drop(_shutdown);
    server.await.unwrap().unwrap();
    receiver.fail.store(0, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(receiver.deliveries().len(), 1, "nothing delivered while failing");

    let second = spawn_app_at(url, None).await;
    let deliveries = receiver.wait_for(2).await;
    let (signature, body) = &deliveries[1];
    assert!(server::subscriptions::signature_matches("s3cret", body.as_bytes(), signature.as_deref().unwrap_or("")));
    let sent: Value = serde_json::from_str(body).unwrap();
    assert_eq!(sent["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]["epcList"], json!([serial(102)]));
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(receiver.deliveries().len(), 2, "each event once");
    let listed = second.get("/queries/shipments/subscriptions", &farm).await;
    assert_eq!(listed.body[0]["deliveries"], 2, "{:?}", listed.body);

    // A schedule with reportIfEmpty reports even when nothing new matched.
    let scheduled = second
        .post(
            "/queries/shipments/subscriptions",
            &farm,
            json!({"dest": hook, "schedule": {"second": "[0-59]"}, "reportIfEmpty": true}),
        )
        .await;
    assert_eq!(scheduled.status, StatusCode::CREATED, "{:?}", scheduled.body);
    let deliveries = receiver.wait_for(3).await;
    let empty: Value = serde_json::from_str(&deliveries[2].1).unwrap();
    assert_eq!(empty["epcisBody"]["queryResults"]["resultsBody"]["eventList"], json!([]));
    assert_eq!(deliveries[2].0, None, "no token, no signature");
    drop(sqlite);
}

/// A stream subscription two API nodes share sends each event once, even when its receiver is
/// slow to answer: a delivery claims the subscription first.
pub(super) async fn epcis_subscriptions_deliver_once_on_two_nodes(apps: &[&TestApp]) {
    let receiver = Receiver::default();
    receiver.slow_once_ms.store(1_500, std::sync::atomic::Ordering::SeqCst);
    let hook = receiver.start().await;
    let farm = apps[0].tenant("farm", &["tenant:admin"]).await;
    let query = json!({"name": "shipments", "query": {"EQ_bizStep": ["shipping"]}});
    assert_eq!(apps[0].post("/queries", &farm, query).await.status, StatusCode::CREATED);
    let subscribed =
        apps[0].post("/queries/shipments/subscriptions", &farm, json!({"dest": hook, "stream": true})).await;
    assert_eq!(subscribed.status, StatusCode::CREATED, "{:?}", subscribed.body);
    // Events captured through both nodes, one at a time, each waking its node's worker.
    let mut expected = Vec::new();
    for number in 1..=6 {
        apps[number as usize % apps.len()].capture_job(&farm, document(vec![shipping_event(number)]), &[]).await;
        expected.push(json!([serial(100 + number)]));
    }
    let sent = || -> Vec<Value> {
        receiver
            .deliveries()
            .iter()
            .flat_map(|(_, body)| {
                let document: Value = serde_json::from_str(body).unwrap();
                document["epcisBody"]["queryResults"]["resultsBody"]["eventList"].as_array().unwrap().clone()
            })
            .map(|event| event["epcList"].clone())
            .collect()
    };
    for _ in 0..100 {
        if sent().len() >= expected.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Long enough for a slow delivery sent beside another to arrive too.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(sent(), expected, "each event once, in order");
}

/// A server stopped in the middle of a delivery gives up the send at once and records it: it
/// stops within seconds (the subscriber is still thinking), and the next server on the database
/// sends the events at once (the subscription is not left claimed until its lease ends).
pub(super) async fn epcis_a_stopping_server_gives_up_its_deliveries() {
    let file = scratchdb::SqliteFile::new().unwrap();
    let receiver = Receiver::default();
    // Longer than a delivery's timeout: waiting for the answer would hold the stop.
    receiver.slow_once_ms.store(30_000, std::sync::atomic::Ordering::SeqCst);
    let hook = receiver.start().await;
    let first = spawn_app_at(file.url(), None).await;
    let farm = first.tenant("farm", &["tenant:admin"]).await;
    let query = json!({"name": "shipments", "query": {"EQ_bizStep": ["shipping"]}});
    assert_eq!(first.post("/queries", &farm, query).await.status, StatusCode::CREATED);
    let subscribed = first.post("/queries/shipments/subscriptions", &farm, json!({"dest": hook, "stream": true})).await;
    assert_eq!(subscribed.status, StatusCode::CREATED, "{:?}", subscribed.body);
    first.capture_job(&farm, document(vec![shipping_event(1)]), &[]).await;
    for _ in 0..100 {
        if receiver.arrived.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(receiver.arrived.load(std::sync::atomic::Ordering::SeqCst), 1, "the delivery is under way");
    let TestApp { _shutdown, server, .. } = first;
    let stopping = std::time::Instant::now();
    drop(_shutdown);
    server.await.unwrap().unwrap();
    assert!(stopping.elapsed() < std::time::Duration::from_secs(3), "stopped in {:?}", stopping.elapsed());
    let second = spawn_app_at(file.url(), None).await;
    second.capture_job(&farm, document(vec![shipping_event(2)]), &[]).await;
    // Both events arrive within seconds, the first again (at least once), in order.
    let deliveries = receiver.wait_for(1).await;
    let sent: Vec<Value> = deliveries
        .iter()
        .flat_map(|(_, body)| {
            let document: Value = serde_json::from_str(body).unwrap();
            document["epcisBody"]["queryResults"]["resultsBody"]["eventList"].as_array().unwrap().clone()
        })
        .map(|event| event["epcList"].clone())
        .collect();
    let expected = [json!([serial(101)]), json!([serial(102)])];
    assert!(sent == expected || sent == expected[..1], "{sent:?}");
    if sent.len() == 1 {
        let deliveries = receiver.wait_for(2).await;
        let document: Value = serde_json::from_str(&deliveries[1].1).unwrap();
        assert_eq!(document["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]["epcList"], expected[1]);
    }
}

/// A subscriber that never answers holds up only its own subscription: another tenant's is
/// delivered meanwhile, long before the silent one's delivery times out.
pub(super) async fn epcis_a_silent_subscriber_holds_up_only_its_own_subscription(app: &TestApp) {
    use std::sync::atomic::Ordering;
    let (silent, accepted, given_up) = super::fulfilment::silent_endpoint("/hook").await;
    let receiver = Receiver::default();
    let heard = receiver.start().await;
    let mut keys = Vec::new();
    for (tenant, destination) in [("quiet", &silent), ("heard", &heard)] {
        let key = app.tenant(tenant, &["tenant:admin"]).await;
        let query = json!({"name": "shipments", "query": {"EQ_bizStep": ["shipping"]}});
        assert_eq!(app.post("/queries", &key, query).await.status, StatusCode::CREATED);
        let subscribed =
            app.post("/queries/shipments/subscriptions", &key, json!({"dest": destination, "stream": true})).await;
        assert_eq!(subscribed.status, StatusCode::CREATED, "{:?}", subscribed.body);
        keys.push(key);
    }
    // The silent subscriber's event first: its delivery hangs.
    app.capture_job(&keys[0], document(vec![shipping_event(1)]), &[]).await;
    for _ in 0..100 {
        if accepted.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(accepted.load(Ordering::SeqCst) > 0, "the silent subscriber was never called");
    app.capture_job(&keys[1], document(vec![shipping_event(2)]), &[]).await;
    for _ in 0..200 {
        if !receiver.deliveries().is_empty() || given_up.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        !receiver.deliveries().is_empty() && !given_up.load(Ordering::SeqCst),
        "the other subscriber waited for the silent one"
    );
    let sent: Value = serde_json::from_str(&receiver.deliveries()[0].1).unwrap();
    assert_eq!(sent["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]["epcList"], json!([serial(102)]));
}

// ---------------------------------------------------------------------------------------------
// Trace.

pub(super) async fn epcis_trace_follows_lots(app: &TestApp) {
    let farm = app.tenant("farm", &["tenant:admin"]).await;
    let fish = "https://id.gs1.org/01/09506000134352/10/LOT1";
    let other = "https://id.gs1.org/01/09506000134352/10/LOT9";
    let fillet = "https://id.gs1.org/01/09506000134369/10/F1";
    let pallet = "https://id.gs1.org/00/095060000000000015";
    let at = |hour: u32| format!("2024-05-01T{hour:02}:00:00Z");
    let events = vec![
        json!({"type": "ObjectEvent", "eventTime": at(6), "eventTimeZoneOffset": "+02:00", "action": "ADD",
               "bizStep": "commissioning", "epcList": [], "quantityList": [{"epcClass": fish, "quantity": 100, "uom": "KGM"}],
               "bizLocation": {"id": "urn:epc:id:sgln:9506000.00001.0"}}),
        json!({"type": "ObjectEvent", "eventTime": at(7), "eventTimeZoneOffset": "+02:00", "action": "ADD",
               "bizStep": "commissioning", "epcList": [], "quantityList": [{"epcClass": other, "quantity": 50, "uom": "KGM"}]}),
        json!({"type": "TransformationEvent", "eventTime": at(8), "eventTimeZoneOffset": "+02:00",
               "inputQuantityList": [{"epcClass": fish, "quantity": 100, "uom": "KGM"}],
               "outputQuantityList": [{"epcClass": fillet, "quantity": 60, "uom": "KGM"}]}),
        json!({"type": "AggregationEvent", "eventTime": at(9), "eventTimeZoneOffset": "+02:00", "action": "ADD",
               "bizStep": "packing", "parentID": pallet,
               "childQuantityList": [{"epcClass": fillet, "quantity": 60, "uom": "KGM"}, {"epcClass": other, "quantity": 50, "uom": "KGM"}]}),
        json!({"type": "ObjectEvent", "eventTime": at(10), "eventTimeZoneOffset": "+02:00", "action": "OBSERVE",
               "bizStep": "shipping", "epcList": [pallet],
               "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:9506000000015:PO-77"}]}),
        json!({"type": "ObjectEvent", "eventTime": at(12), "eventTimeZoneOffset": "+02:00", "action": "OBSERVE",
               "bizStep": "receiving", "epcList": [pallet], "bizLocation": {"id": "urn:epc:id:sgln:9506000.00002.0"}}),
    ];
    app.capture_job(&farm, document(events), &[]).await;
    let hours = |answer: &Answer| -> Vec<String> {
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        answer.body["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["eventTime"].as_str().unwrap()[11..13].to_owned())
            .collect()
    };
    // Forward from the fish lot: what it became and what carried it; not the other lot's history.
    let forward = app.get("/v1/trace?gtin=09506000134352&lot=LOT1", &farm).await;
    assert_eq!(hours(&forward), ["06", "08", "09", "10", "12"]);
    let reach: BTreeMap<String, String> = forward.body["graph"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| (node["id"].as_str().unwrap().to_owned(), node["reach"].as_str().unwrap().to_owned()))
        .collect();
    let expected: BTreeMap<String, String> = [(fish, "start"), (fillet, "product"), (pallet, "product")]
        .into_iter()
        .map(|(id, reach)| (id.to_owned(), reach.to_owned()))
        .collect();
    assert_eq!(reach, expected);
    let relations: Vec<&str> = forward.body["graph"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["relation"].as_str().unwrap())
        .collect();
    assert_eq!(relations, ["made_into", "contained_in"]);
    assert_eq!(forward.body["truncated"], false);
    let shipping = &forward.body["timeline"][3];
    assert_eq!(shipping["bizTransactions"], json!(["urn:epcglobal:cbv:bt:9506000000015:PO-77"]));
    // Backward from the fillet lot to the farm's harvest.
    let backward = app.get(&format!("/v1/trace?epc={}", encode(fillet)), &farm).await;
    assert_eq!(hours(&backward), ["06", "08", "09", "10", "12"]);
    // The pallet alone: its own journey only (not down into what it carried).
    let pallet_trace = app.get("/v1/trace?epc=urn:epc:id:sscc:9506000.0000000001", &farm).await;
    assert_eq!(hours(&pallet_trace), ["09", "10", "12"]);
    // Another tenant sees nothing; bad parameters get a problem.
    let stranger = app.tenant("stranger", &["tenant:read"]).await;
    assert_eq!(hours(&app.get("/v1/trace?gtin=09506000134352&lot=LOT1", &stranger).await), Vec::<String>::new());
    let bad_gtin = app.get("/v1/trace?gtin=09506000134353&lot=LOT1", &farm).await;
    assert!(
        bad_gtin.is_problem(400, "/problems/invalid-parameter") && bad_gtin.pointers() == ["?gtin"],
        "{:?}",
        bad_gtin.body
    );
    assert!(app.get("/v1/trace", &farm).await.is_problem(400, "/problems/invalid-parameter"));
    // A parameter the trace does not take is refused, not ignored.
    for unknown in ["gtin=09506000134352&lot=LOT1&bogus=1", "gtin=09506000134352&lot=LOT1&direction=backward"] {
        let answer = app.get(&format!("/v1/trace?{unknown}"), &farm).await;
        assert!(answer.is_problem(400, "/problems/invalid-parameter"), "{unknown}: {:?}", answer.body);
    }
}

/// With the standard's JSON schema configured, a document the semantic layer lets through but the
/// schema refuses (a sensor report without a type) is refused with the schema's pointer.
pub(super) async fn epcis_schema_layer() {
    let Some(corpus) = corpus_directory() else { return };
    let text = std::fs::read_to_string(corpus.join("epcis/gs1-EPCIS/EPCIS-JSON-Schema.json")).unwrap();
    let schema = std::sync::Arc::new(epcis::schema::SchemaValidator::from_json_text(&text).unwrap());
    let file = scratchdb::SqliteFile::new().unwrap();
    let url = file.url();
    let app = spawn_app_configured(url, Some(file), |config| config.epcis_schema = Some(schema)).await;
    let farm = app.tenant("farm", &["tenant:admin"]).await;
    let mut events = salmon_day();
    events[4]["sensorElementList"][0]["sensorReport"][0].as_object_mut().unwrap().remove("type");
    let refused = app.capture(&farm, document(events.clone()), &[]).await;
    assert!(refused.is_problem(400, "/problems/invalid-epcis"), "{:?}", refused.body);
    assert!(
        refused.body["errors"].as_array().unwrap().iter().all(|error| {
            error["pointer"].as_str().unwrap().starts_with("/epcisBody/eventList/4")
                && error["detail"].as_str().unwrap().starts_with("JSON schema:")
        }),
        "{:?}",
        refused.body
    );
    assert!(app.query("", &farm).await.is_empty());
    // proceed keeps the other four.
    let job = app.capture_job(&farm, document(events), &[("GS1-Capture-Error-Behaviour", "proceed")]).await;
    assert_eq!(job["eventsCaptured"], 4, "{job}");
}

// ---------------------------------------------------------------------------------------------
// Every parameter family on a generated data set, against the pure predicate as the oracle.

fn generated_events(count: usize) -> Vec<Value> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut random = move |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let gln = |number: u64| format!("urn:epc:id:sgln:9506000.0000{number}.0");
    let item = |number: u64| format!("urn:epc:id:sgtin:9506000.013435.{number}");
    let steps = ["shipping", "receiving", "packing", "storing", "inspecting"];
    let dispositions = ["in_transit", "in_progress", "active", "damaged"];
    let units = [("CEL", 0.0, 1.0), ("KEL", 273.15, 1.0), ("FAH", 32.0, 1.8)];
    (0..count)
        .map(|index| {
            let time = jiff::Timestamp::from_second(1_714_550_400 + index as i64 * 600).unwrap();
            let mut event = json!({
                "eventTime": time.to_string(),
                "eventTimeZoneOffset": "+02:00",
                "bizStep": steps[random(steps.len() as u64) as usize],
                "disposition": dispositions[random(dispositions.len() as u64) as usize],
                "readPoint": {"id": gln(random(5) + 1)},
                "bizLocation": {"id": gln(random(5) + 1)},
            });
            match random(4) {
                0 => {
                    event["type"] = json!("AggregationEvent");
                    event["action"] = json!(["ADD", "DELETE"][random(2) as usize]);
                    event["parentID"] = json!(format!("urn:epc:id:sscc:9506000.000000000{}", random(5)));
                    event["childEPCs"] = json!([item(random(30)), item(random(30))]);
                }
                _ => {
                    event["type"] = json!("ObjectEvent");
                    event["action"] = json!(["ADD", "OBSERVE", "DELETE"][random(3) as usize]);
                    event["epcList"] = json!([item(random(30))]);
                    event["quantityList"] = json!([{"epcClass": format!("urn:epc:class:lgtin:9506000.013435.L{}", random(4)),
                                                    "quantity": random(50), "uom": "KGM"}]);
                }
            }
            if random(3) == 0 {
                let (unit, offset, factor) = units[random(3) as usize];
                let celsius = random(100) as f64 / 10.0;
                event["sensorElementList"] = json!([{"sensorMetadata": {"deviceID": format!("urn:epc:id:giai:9506000.{}", random(3))},
                    "sensorReport": [{"type": "Temperature", "value": celsius * factor + offset, "uom": unit}]}]);
            }
            if random(4) == 0 {
                event["bizTransactionList"] = json!([{"type": "po", "bizTransaction": format!("urn:epcglobal:cbv:bt:9506000000015:PO-{}", random(5))}]);
            }
            if random(5) == 0 {
                event["sourceList"] = json!([{"type": "owning_party", "source": gln(random(5) + 1)}]);
            }
            if random(6) == 0 {
                event["errorDeclaration"] = json!({"declarationTime": time.to_string(), "reason": "incorrect_data"});
            }
            event["ex:count"] = json!(random(10));
            event
        })
        .collect()
}

/// Fetches every page of a query (perPage 7, following Link) and answers the eventIDs.
async fn all_pages(app: &TestApp, key: &str, query: &str) -> Vec<String> {
    let mut next = Some(format!("/events?perPage=7&{query}"));
    let mut ids = Vec::new();
    let mut pages = 0;
    while let Some(path) = next.take() {
        let answer = app.get(&path, key).await;
        for event in events_of(&answer) {
            ids.push(event["eventID"].as_str().unwrap().to_owned());
        }
        if let Some(link) = answer.headers.get("link") {
            next = Some(link.to_str().unwrap().trim_start_matches('<').split('>').next().unwrap().to_owned());
        }
        pages += 1;
        assert!(pages < 200, "paging does not end for {query}");
    }
    ids
}

pub(super) async fn epcis_query_families_match_the_predicate(app: &TestApp) {
    let farm = app.tenant("farm", &["tenant:admin"]).await;
    let events = generated_events(240);
    for chunk in events.chunks(80) {
        app.capture_job(&farm, document(chunk.to_vec()), &[]).await;
    }
    let oracle_document = epcis::parse_json_document(&document(events).to_string()).expect("generated document");
    let oracle_ids = oracle_document.event_hash_ids();
    let mut prefixes = epcis::query::PrefixMap::new();
    prefixes.insert("ex".into(), vec!["https://ns.example.com/epcis/".into()]);
    let queries = [
        "eventType=AggregationEvent",
        "eventType=ObjectEvent|TransformationEvent",
        "GE_eventTime=2024-05-01T12:00:00Z&LT_eventTime=2024-05-01T20:00:00.5Z",
        "EQ_action=DELETE",
        "EQ_bizStep=packing|inspecting",
        "EQ_disposition=damaged",
        "EQ_readPoint=urn:epc:id:sgln:9506000.00002.0",
        "EQ_bizLocation=urn:epc:id:sgln:9506000.00003.0|urn:epc:id:sgln:9506000.00004.0",
        "MATCH_epc=urn:epc:id:sgtin:9506000.013435.7",
        "MATCH_epc=urn:epc:idpat:sgtin:9506000.013435.*&EQ_action=ADD",
        "MATCH_parentID=urn:epc:id:sscc:9506000.0000000003",
        "MATCH_anyEPC=urn:epc:id:sgtin:9506000.013435.11|urn:epc:id:sscc:9506000.0000000001",
        "MATCH_epcClass=urn:epc:class:lgtin:9506000.013435.L2",
        "GE_quantity=25&LT_quantity=30",
        "EQ_quantity=10",
        "EXISTS_errorDeclaration",
        "EQ_errorReason=incorrect_data&EQ_bizStep=shipping",
        "EQ_bizTransaction_po=urn:epcglobal:cbv:bt:9506000000015:PO-3",
        "EQ_source_owning_party=urn:epc:id:sgln:9506000.00001.0",
        "EXISTS_sensorElementList",
        "EQ_type=Temperature&GE_value_CEL=5",
        "LT_value_KEL=276.15",
        "GT_value_FAH=40&EQ_deviceID=urn:epc:id:giai:9506000.1",
        "EQ_ex:count=3",
        "GT_ex:count=7&eventType=ObjectEvent",
        "EXISTS_ex:count&EQ_disposition=active",
    ];
    for query in queries {
        let parameters: Vec<(String, epcis::query::ParameterValue)> = query
            .split('&')
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                epcis::query::url_parameter(name, value)
            })
            .collect();
        let predicate = epcis::query::EventQuery::parse(&parameters, &prefixes).expect(query);
        let expected: Vec<String> = oracle_document
            .events
            .iter()
            .zip(&oracle_ids)
            .filter(|(event, _)| predicate.matches(event))
            .map(|(_, id)| id.clone())
            .collect();
        assert!(
            !expected.is_empty() && expected.len() < 240,
            "query {query} selects {} of 240: not a test",
            expected.len()
        );
        let found = all_pages(app, &farm, query).await;
        assert_eq!(
            found, expected,
            "query {query}: the repository's answer (capture order) differs from the predicate's"
        );
    }
}
