//! The web faces over HTTP: the consumer page and its public proofs (what they disclose, for
//! which steps), the kiosk, the assets, and the sessions of the portal and the console.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::epcis_interface::document;
use super::{TestApp, no_redirects, salmon_with_farm};

const LOT_PAGE: &str = "/01/09506000134352/10/LOT-7";

fn log_indexes(html: &str) -> Vec<u64> {
    html.split("data-log-index=\"").skip(1).map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap()).collect()
}

async fn html(app: &TestApp, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let answer = app.client.get(format!("{}{path}", app.base)).header("accept", "text/html").send().await.unwrap();
    (answer.status(), answer.headers().clone(), answer.text().await.unwrap())
}

async fn json_of(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let answer = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
    (answer.status(), answer.json().await.unwrap_or(Value::Null))
}

/// Checks a consumer proof as the browser does: every disclosure is a line of the entry, the
/// entry is in the log under a checkpoint signed by the log's key.
async fn check_proof(app: &TestApp, proof: &Value) -> Vec<(String, String)> {
    let bundle = tlog::ProofBundle::parse(proof["proof"].as_str().unwrap().as_bytes()).unwrap();
    let entry = bundle.extra.clone().unwrap();
    let key_text = app.client.get(format!("{}/log/key", app.base)).send().await.unwrap().text().await.unwrap();
    let key = tlog::VerifierKey::parse(key_text.trim()).unwrap();
    let policy = tlog::CheckpointPolicy::log_only("test.keten/log", key);
    bundle.verify(&tlog::leaf_hash(&entry), &policy).unwrap();
    let disclosures: Vec<epcis::commitment::Disclosure> = proof["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|disclosure| {
            use base64::Engine as _;
            let salt = base64::engine::general_purpose::STANDARD.decode(disclosure["salt"].as_str().unwrap()).unwrap();
            epcis::commitment::Disclosure {
                salt: salt.try_into().unwrap(),
                name: disclosure["name"].as_str().unwrap().to_owned(),
                value: disclosure["value"].as_str().unwrap().to_owned(),
            }
        })
        .collect();
    epcis::commitment::verify(&entry, &disclosures).unwrap();
    disclosures.into_iter().map(|disclosure| (disclosure.name, disclosure.value)).collect()
}

pub async fn consumer_pages_prove_their_steps_and_nothing_else(app: &TestApp) {
    let key = salmon_with_farm(app).await;
    let lot = "https://id.gs1.org/01/09506000134352/10/LOT-7";
    let events = vec![
        json!({"type": "ObjectEvent", "eventTime": "2026-11-23T05:00:00Z", "eventTimeZoneOffset": "+01:00", "action": "ADD",
               "bizStep": "commissioning", "epcList": [], "quantityList": [{"epcClass": lot, "quantity": 480, "uom": "KGM"}],
               "bizLocation": {"id": "https://id.gs1.org/414/9506000000015"}}),
        json!({"type": "ObjectEvent", "eventTime": "2026-11-23T09:00:00Z", "eventTimeZoneOffset": "+01:00", "action": "OBSERVE",
               "bizStep": "receiving", "epcList": [], "quantityList": [{"epcClass": lot, "quantity": 480, "uom": "KGM"}],
               "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:9506000000015:PO-77"}],
               "bizLocation": {"id": "https://id.gs1.org/414/9506000000022"}}),
    ];
    app.capture_job(&key, document(events), &[]).await;
    // Another merchant's event about its own lot.
    let other = app.tenant("appelhof", &["tenant:write"]).await;
    let apple = json!({"gtin": "09506000134369", "name": "Apples", "temperature_class": "chilled"});
    assert_eq!(app.post("/v1/products", &other, apple).await.status, StatusCode::CREATED);
    let theirs =
        vec![json!({"type": "ObjectEvent", "eventTime": "2026-11-23T06:00:00Z", "eventTimeZoneOffset": "+01:00",
        "action": "ADD", "bizStep": "commissioning", "epcList": [],
        "quantityList": [{"epcClass": "https://id.gs1.org/01/09506000134369/10/A1", "quantity": 5}]})];
    app.capture_job(&other, document(theirs), &[]).await;

    let (status, headers, page) = html(app, LOT_PAGE).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(headers["content-security-policy"], web::CONTENT_SECURITY_POLICY);
    assert!(headers["vary"].to_str().unwrap().contains("Accept-Language"));
    assert!(page.contains("Ingrid Solberg") && page.contains("Harvested and packed") && page.contains("Received"));
    // The quantity as a word of its own (a unit may follow): its digits may occur by chance inside
    // hashes, proofs, ids and the server's address (its port is random).
    let words: Vec<&str> = page.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=_-".contains(c))).collect();
    assert!(
        !words.iter().any(|word| word.trim_end_matches(|c: char| c.is_ascii_alphabetic()) == "480")
            && !page.contains("PO-77")
            && !page.contains("nordfjord"),
        "no quantities, orders or capturer: {page}"
    );
    assert!(!page.contains("9506000000015") && !page.contains("9506000000022"), "no private places: {page}");
    assert!(page.contains("A partner&#x27;s site"), "{page}");
    let indexes = log_indexes(&page);
    assert_eq!(indexes.len(), 2, "{page}");

    // Each step's proof checks, and discloses time, step, place and the lot: nothing more.
    for index in &indexes {
        let (status, proof) = json_of(app, &format!("/consumer-proof/{index}?item=/provenance{LOT_PAGE}")).await;
        assert_eq!(status, StatusCode::OK, "{proof}");
        let fields = check_proof(app, &proof).await;
        let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
        // The places are not in the public registry: neither shown nor disclosed.
        assert_eq!(names, ["/bizStep", "/eventTime", "/quantityList/0/epcClass"], "{proof}");
    }
    // Not for a step of another item, not for an index not on the page, not for a bad item.
    for index in 0..4u64 {
        if indexes.contains(&index) {
            continue;
        }
        let (status, body) = json_of(app, &format!("/consumer-proof/{index}?item={LOT_PAGE}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "index {index}: {body}");
    }
    let (status, _) = json_of(app, &format!("/consumer-proof/{}?item=/01/09506000134369/10/A1", indexes[0])).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a step of the salmon is not on the apples' page");
    let (status, body) = json_of(app, "/consumer-proof/0?item=/01/09506000134353").await;
    assert_eq!((status, body["type"].as_str()), (StatusCode::BAD_REQUEST, Some("/problems/invalid-digital-link")));
    // A bad index, no item, or a parameter it does not take: problems like any other answer.
    for path in [
        "/consumer-proof/abc?item=/01/09506000134352/10/LOT-7",
        "/consumer-proof/0",
        &format!("/consumer-proof/0?item={LOT_PAGE}&x=1"),
    ] {
        let answer = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(answer.headers()["content-type"], "application/problem+json", "{path}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["type"], "/problems/invalid-parameter", "{path}: {body}");
    }

    // Dutch by Accept-Language; the recall shows at once.
    let answer = app
        .client
        .get(format!("{}{LOT_PAGE}", app.base))
        .header("accept", "text/html")
        .header("accept-language", "nl-NL,nl;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(answer.contains("<html lang=\"nl\">") && answer.contains("Geoogst en verpakt"));
    let recall = json!({"gtin": "09506000134352", "lots": ["LOT-7"], "reason": "Listeria found in a sample"});
    let recalled = app.post("/v1/recalls", &key, recall).await;
    assert_eq!(recalled.status, StatusCode::CREATED, "{:?}", recalled.body);
    // The recall status is reused for at most a second.
    let recalled_at = std::time::Instant::now();
    loop {
        let (_, _, page) = html(app, LOT_PAGE).await;
        if page.contains("id=\"recall\"") && page.contains("Recalled") {
            break;
        }
        assert!(
            recalled_at.elapsed() < server::provenance::RECALL_STATUS_LIFETIME + std::time::Duration::from_secs(1),
            "no recall banner: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (_, _, page) = html(app, "/01/09506000134352/10/LOT-8").await;
    assert!(!page.contains("id=\"recall\""), "another lot is not recalled");

    // The kiosk follows a scan, and says so when it does not know the code.
    let client = no_redirects();
    let scanned = client
        .get(format!("{}/kiosk/scan?lang=nl&data=%2801%2909506000134352%2810%29LOT-7", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(scanned.status(), StatusCode::SEE_OTHER);
    assert_eq!(scanned.headers()["location"], "/provenance/01/09506000134352/10/LOT-7?kiosk=1&lang=nl");
    for data in ["(01)00000000000000", "not a barcode", ""] {
        let unknown = client.get(format!("{}/kiosk/scan", app.base)).query(&[("data", data)]).send().await.unwrap();
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND, "{data:?}");
        assert!(unknown.text().await.unwrap().contains("kiosk-unknown"));
    }
    let (status, _, kiosk) = html(app, &format!("{LOT_PAGE}?kiosk=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(kiosk.contains("class=\"mode-kiosk\"") && kiosk.contains("/assets/kiosk.js"));

    // Assets are served; nothing else is.
    let script = app.client.get(format!("{}/assets/provenance.js", app.base)).send().await.unwrap();
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(script.text().await.unwrap().contains("crypto.subtle.verify"));
    let (status, body) = json_of(app, "/assets/..%2FCargo.toml").await;
    assert_eq!((status, body["type"].as_str()), (StatusCode::NOT_FOUND, Some("/problems/not-found")));

    // A brand that deletes a product its events name keeps the GTIN: another tenant registering
    // it would be shown the brand's events. The brand may register it again.
    let apples = "/v1/products/09506000134369";
    assert_eq!(app.send("DELETE", apples, Some(&other), None, &[]).await.status, StatusCode::NO_CONTENT);
    let squatter = app.tenant("squatter", &["tenant:write"]).await;
    let apple = json!({"gtin": "09506000134369", "name": "Not apples", "temperature_class": "chilled"});
    assert!(app.post("/v1/products", &squatter, apple.clone()).await.is_problem(409, "/problems/conflict"));
    let events = app.get("/events?MATCH_anyEPCClass=https://id.gs1.org/01/09506000134369/10/A1", &squatter).await;
    assert_eq!(events.status, StatusCode::OK, "{:?}", events.body);
    assert_eq!(events.body["epcisBody"]["queryResults"]["resultsBody"]["eventList"], json!([]), "{:?}", events.body);
    assert_eq!(app.post("/v1/products", &other, apple).await.status, StatusCode::CREATED);
}

fn cookie_value(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers.get_all("set-cookie").iter().find_map(|value| {
        let text = value.to_str().ok()?;
        text.strip_prefix(&format!("{name}="))?.split(';').next().map(str::to_owned)
    })
}

/// The consumer page counts a product's hours in cold storage at cold depots and in the zones of
/// any site that keep its class, when its steps name them; a zone that does not keep it (an
/// ambient hall) is not counted. On the road it travels refrigerated.
pub async fn consumer_pages_count_hours_in_zones_that_keep_the_product_cold(app: &TestApp) {
    let key = salmon_with_farm(app).await;
    super::fulfilment::network(app).await;
    let dc = super::fulfilment::dc();
    let hall = super::fulfilment::gln("871234500103");
    let warehouse = json!({"gln": hall, "kind": "warehouse", "name": "Utrecht hall", "address": {"city": "Utrecht"},
        "country": "NL", "latitude": 52.09, "longitude": 5.12, "time_zone": "Europe/Amsterdam",
        "zones": [{"name": "ambient", "capacity_pallets": 10}], "pick_pack_lead_minutes": 60});
    let created = app.post("/v1/locations", &app.operator_key, warehouse).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let lot = "https://id.gs1.org/01/09506000134352/10/LOT-7";
    let step = |time: &str, business_step: &str, place: String| {
        json!({"type": "ObjectEvent", "eventTime": time, "eventTimeZoneOffset": "+01:00", "action": "OBSERVE",
               "bizStep": business_step, "epcList": [], "quantityList": [{"epcClass": lot, "quantity": 10}],
               "bizLocation": {"id": place}})
    };
    let site = |gln: &str, zone: Option<&str>| match zone {
        Some(zone) => format!("https://id.gs1.org/414/{gln}/254/{zone}"),
        None => format!("https://id.gs1.org/414/{gln}"),
    };
    let events = vec![
        // 8 h in the DC's 0–2 °C room, 2 h on the road, 3 h in an ambient hall, 1 h on the road.
        step("2026-11-23T05:00:00Z", "receiving", site(&dc, Some("chill"))),
        step("2026-11-23T13:00:00Z", "shipping", site(&dc, None)),
        step("2026-11-23T15:00:00Z", "receiving", site(&hall, Some("ambient"))),
        step("2026-11-23T18:00:00Z", "shipping", site(&hall, None)),
        step("2026-11-23T19:00:00Z", "receiving", site(&dc, None)),
    ];
    app.capture_job(&key, document(events), &[]).await;
    let (status, _, page) = html(app, LOT_PAGE).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Amsterdam DC") && page.contains("Utrecht hall"), "{page}");
    assert!(page.contains("<strong>Hours in cold storage:</strong> 11.0 h"), "{page}");
    // In Dutch, with a decimal comma.
    let (_, _, dutch) = html(app, &format!("{LOT_PAGE}?lang=nl")).await;
    assert!(dutch.contains("<strong>Uren in de koeling:</strong> 11,0 u"), "{dutch}");
}

pub async fn sessions_open_the_portal_and_the_console(app: &TestApp) {
    let key = salmon_with_farm(app).await;
    // The lots recalled below, commissioned: a recall names lots the network knows.
    let commissioned: Vec<Value> = ["LOT-7", "LOT-8", "LOT-9", "LOT-10"]
        .iter()
        .map(|lot| {
            json!({"type": "ObjectEvent", "eventTime": "2026-11-23T05:00:00Z", "eventTimeZoneOffset": "+01:00",
                   "action": "ADD", "bizStep": "commissioning", "epcList": [],
                   "quantityList": [{"epcClass": format!("https://id.gs1.org/01/09506000134352/10/{lot}"), "quantity": 480, "uom": "KGM"}]})
        })
        .collect();
    app.capture_job(&key, document(commissioned), &[]).await;
    let client = no_redirects();
    let form = client.get(format!("{}/sign-in", app.base)).send().await.unwrap();
    let set_cookie = form.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let token = cookie_value(form.headers(), "keten_sign_in").unwrap();
    assert!(form.text().await.unwrap().contains(&format!("name=\"csrf\" value=\"{token}\"")));
    let sign_in = |cookie: String, body: String| {
        client
            .post(format!("{}/sign-in", app.base))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    // A form from elsewhere (no matching token) and an unknown key are refused.
    let forged = sign_in("keten_sign_in=abc".into(), format!("key={key}&csrf=xyz")).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(cookie_value(forged.headers(), "keten_session").is_none());
    let unknown =
        sign_in(format!("keten_sign_in={token}"), format!("key=ktn_nordfjord_0_0&csrf={token}")).await.unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let signed = sign_in(format!("keten_sign_in={token}"), format!("key={key}&csrf={token}")).await.unwrap();
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed.headers()["location"], "/portal");
    let session = cookie_value(signed.headers(), "keten_session").unwrap();
    let cookie = format!("keten_session={session}");

    let page = |path: &str| client.get(format!("{}{path}", app.base)).header("cookie", cookie.clone()).send();
    let portal = page("/portal").await.unwrap();
    assert_eq!(portal.status(), StatusCode::OK);
    assert_eq!(portal.headers()["cache-control"], "no-store");
    let portal = portal.text().await.unwrap();
    assert!(portal.contains("Salmon fillets") && portal.contains("qr&#x2f;01&#x2f;09506000134352"), "{portal}");
    let csrf = portal.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert_eq!(page("/console").await.unwrap().status(), StatusCode::FORBIDDEN, "a merchant is not the operator");
    assert_eq!(page("/portal/alarms/alm_unknown").await.unwrap().status(), StatusCode::NOT_FOUND);
    // A tampered cookie is no session.
    let tampered = client
        .get(format!("{}/portal", app.base))
        .header("cookie", format!("keten_session=x{session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (tampered.status(), tampered.headers()["location"].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/sign-in")
    );
    // A recall from the portal's form: the session's token, a request id that makes a resent
    // form start one recall, not two.
    let recall_form = |body: String| {
        client
            .post(format!("{}/portal/recalls", app.base))
            .header("cookie", cookie.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    // One lot a line; "A, B" on one line is one lot, refused for its space, and stores nothing.
    let one_line = recall_form(format!("csrf={csrf}&request_id=r0&gtin=09506000134352&lots=LOT-7%2C+LOT-8&reason=x"));
    assert_eq!(one_line.await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);
    let fields = "gtin=09506000134352&lots=LOT-7%0D%0A+LOT-8+%0D%0A&reason=Listeria";
    let forged = recall_form(format!("csrf=wrong&request_id=r1&{fields}")).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let blank = recall_form(format!("csrf={csrf}&request_id=&{fields}")).await.unwrap();
    assert_eq!(blank.status(), StatusCode::BAD_REQUEST);
    let first = recall_form(format!("csrf={csrf}&request_id=r1&{fields}")).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = first.text().await.unwrap();
    let recall_id = first.split("Recall rcl_").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert!(first.contains("LOT-7, LOT-8"), "{first}");
    let again = recall_form(format!("csrf={csrf}&request_id=r1&{fields}")).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again = again.text().await.unwrap();
    assert!(again.contains(&format!("Recall rcl_{recall_id}")) && again.contains("sent before"), "{again}");
    // The box "also hold the lots made from these" ticked is another request.
    let ticked = recall_form(format!("csrf={csrf}&request_id=r1&{fields}&hold_derived=on")).await.unwrap();
    assert_eq!(ticked.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(ticked.text().await.unwrap().contains("different request"));
    // A notice left blank is the form as before it had one; one filled in is another request.
    let blank_notice = recall_form(format!("csrf={csrf}&request_id=r1&{fields}&public_notice=+%0D%0A+")).await.unwrap();
    assert_eq!(blank_notice.status(), StatusCode::OK);
    let told = recall_form(format!("csrf={csrf}&request_id=r1&{fields}&public_notice=Bring+it+back")).await.unwrap();
    assert_eq!(told.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(told.text().await.unwrap().contains("different request"));
    let bad = recall_form(format!("csrf={csrf}&request_id=r2&gtin=09506000134352&lots=&reason=x")).await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY, "no lots");
    // The notice's lines are one paragraph: consumers are told it as the page shows it.
    let lines = "gtin=09506000134352&lots=LOT-10&reason=Seal&public_notice=Do+not+eat+%3Cit%3E.%0D%0A++Bring+it+back.";
    let noticed = recall_form(format!("csrf={csrf}&request_id=r3&{lines}")).await.unwrap();
    assert_eq!(noticed.status(), StatusCode::CREATED);
    let noticed = noticed.text().await.unwrap();
    assert!(noticed.contains("<q class=\"recall-notice\">Do not eat &lt;it&gt;. Bring it back.</q>"), "{noticed}");
    let told = app.send("GET", "/recall-status/01/09506000134352/10/LOT-10", None, None, &[]).await;
    assert_eq!(told.body["public_notice"], "Do not eat <it>. Bring it back.", "{:?}", told.body);
    // The portal lists the recalls made (through the API too), newest first.
    let later = json!({"gtin": "09506000134352", "lots": ["LOT-9"], "reason": "Seal broken"});
    let later = app.post("/v1/recalls", &key, later).await;
    assert_eq!(later.status, StatusCode::CREATED, "{:?}", later.body);
    // A product with recalled lots (and no stock) stays: its lots' recall status reads through it.
    let deleted = app.send("DELETE", "/v1/products/09506000134352", Some(&key), None, &[]).await;
    assert!(deleted.is_problem(409, "/problems/in-use"), "{:?}", deleted.body);
    assert!(deleted.body["detail"].as_str().unwrap().contains("a recall"), "{:?}", deleted.body);
    let listed = page("/portal").await.unwrap().text().await.unwrap();
    assert!(listed.contains("<table class=\"sla\">"), "{listed}");
    // Over the period `/v1/sla` reports by default.
    let reported = app.get("/v1/sla", &key).await;
    let period = format!("Your 24-hour promise, {} to {} (UTC days)", reported.body["from"], reported.body["to"]);
    assert!(listed.contains(&period.replace('"', "")), "{period} in {listed}");
    let rows: Vec<&str> = listed.split("<tr class=\"recall\">").skip(1).collect();
    assert_eq!(rows.len(), 3, "{listed}");
    assert!(
        rows[0].contains(later.body["recall_id"].as_str().unwrap()) && rows[0].contains("Seal broken"),
        "{}",
        rows[0]
    );
    let portal_recall = recall_id.split_whitespace().next().unwrap();
    assert!(rows[1].contains("LOT-10"), "{}", rows[1]);
    assert!(rows[2].contains(&format!("rcl_{portal_recall}")) && rows[2].contains("LOT-7, LOT-8"), "{}", rows[2]);

    // Signing out needs the session's token.
    let sign_out = |body: String| {
        client
            .post(format!("{}/sign-out", app.base))
            .header("cookie", cookie.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    assert_eq!(sign_out("csrf=wrong".into()).await.unwrap().status(), StatusCode::FORBIDDEN);
    let out = sign_out(format!("csrf={csrf}")).await.unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));

    // Revoking the key ends its sessions.
    let key_id = key.split('_').nth(2).unwrap();
    let revoked = app
        .send("DELETE", &format!("/v1/operator/tenants/nordfjord/keys/{key_id}"), Some(&app.operator_key), None, &[])
        .await;
    assert!(revoked.status.is_success(), "{:?}", revoked.body);
    let after = page("/portal").await.unwrap();
    assert_eq!((after.status(), after.headers()["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, "/sign-in"));

    // The operator's key opens the console.
    let form = client.get(format!("{}/sign-in", app.base)).send().await.unwrap();
    let token = cookie_value(form.headers(), "keten_sign_in").unwrap();
    let operator =
        sign_in(format!("keten_sign_in={token}"), format!("key={}&csrf={token}", app.operator_key)).await.unwrap();
    assert_eq!(operator.headers()["location"], "/console");
    let session = cookie_value(operator.headers(), "keten_session").unwrap();
    let console = client
        .get(format!("{}/console", app.base))
        .header("cookie", format!("keten_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(console.status(), StatusCode::OK);
    let console = console.text().await.unwrap();
    assert!(console.contains("Operator console") && console.contains("nordfjord"), "{console}");
    let refused = client
        .post(format!("{}/console/alarms/nordfjord/alm_x/acknowledge", app.base))
        .header("cookie", format!("keten_session={session}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=wrong&person=A&comment=B")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "an acknowledgement without the form's token");
}
