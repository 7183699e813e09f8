//! The web faces in a real headless Chromium (Debian's `chromium` and `chromedriver`), against
//! the demo: the provenance page verifies in the browser, shows a tampered record as a failure,
//! passes an accessibility check, switches language, and the kiosk follows a simulated scan.
//! Screenshots at phone and desktop size go to `target/screenshots/`.
//!
//! Without chromedriver the test says so loudly and passes; under `CI=true` it fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};

use super::{free_port, get, key_of, start_demo, stop};

const PHONE: (u32, u32) = (390, 844);
const DESKTOP: (u32, u32) = (1280, 900);
const SALMON_LOT_PAGE: &str = "/01/07098765010009/10/LOT-2026-11";

fn chromedriver() -> Option<PathBuf> {
    let path =
        std::env::var_os("CHROMEDRIVER").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    path.exists().then_some(path)
}

fn screenshots() -> PathBuf {
    let directory = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/screenshots"));
    std::fs::create_dir_all(&directory).unwrap();
    directory
}

/// chromedriver, killed when the test ends.
struct Driver(Child);

/// The demo server, killed if the test fails before stopping it.
struct Demo(Option<Child>);

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser(driver_port: u16, profile: &std::path::Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    let arguments = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({ "binary": "/usr/bin/chromium", "args": arguments }),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
        {
            Ok(client) => return client,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("chromedriver did not start a session: {error}"),
        }
    }
}

async fn shot(client: &Client, name: &str, (width, height): (u32, u32)) {
    client.set_window_size(width, height).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Waits until the verification reached a final state and answers it.
async fn verification(client: &Client) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = client
            .execute("return document.getElementById('verified').dataset.state || '';", vec![])
            .await
            .unwrap()
            .as_str()
            .unwrap_or("")
            .to_owned();
        if ["ok", "failed", "unavailable", "incomplete", "nothing"].contains(&state.as_str()) {
            return state;
        }
        assert!(Instant::now() < deadline, "the page never finished verifying (state {state:?})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap(),
        Err(error) => {
            let source = client.source().await.unwrap_or_default();
            let url = client.current_url().await.map(|url| url.to_string()).unwrap_or_default();
            panic!("{css}: {error}\nat {url}:\n{}", &source[..source.len().min(3000)])
        }
    }
}

/// Headings in order without skipped levels, names for images and drawings, labels for inputs,
/// text for links, a page language, and WCAG AA contrast (4.5:1, 3:1 for large text) of every
/// visible text outside drawings.
const ACCESSIBILITY_CHECK: &str = r#"
const problems = [];
if (!document.documentElement.lang) problems.push("the page has no language");
if (document.querySelectorAll("h1").length !== 1) problems.push("expected exactly one h1");
let previous = 0;
for (const heading of document.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
  const level = Number(heading.tagName[1]);
  if (previous === 0 && level !== 1) problems.push("the first heading is not an h1");
  if (previous !== 0 && level > previous + 1) problems.push(heading.tagName + " '" + heading.textContent.trim() + "' skips a level");
  previous = level;
}
for (const image of document.images) if (!image.hasAttribute("alt")) problems.push("an image has no alt text");
for (const drawing of document.querySelectorAll("svg, [role=img]")) {
  const labelled = drawing.getAttribute("aria-labelledby");
  const name = (labelled && document.getElementById(labelled) && document.getElementById(labelled).textContent) || drawing.getAttribute("aria-label");
  if (!name || !name.trim()) problems.push("a drawing has no accessible name");
}
for (const input of document.querySelectorAll("input, select, textarea")) {
  if (input.type === "hidden") continue;
  if (!(input.labels && input.labels.length) && !input.getAttribute("aria-label")) problems.push("an input has no label");
}
for (const link of document.querySelectorAll("a")) if (!link.textContent.trim() && !link.getAttribute("aria-label")) problems.push("a link has no text");
const rgb = (text) => { const m = /rgba?\(([^)]+)\)/.exec(text); if (!m) return null; const p = m[1].split(",").map(Number); return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
const luminance = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
const background = (element) => { for (let e = element; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c && c.a > 0) return c; } return { r: 255, g: 255, b: 255, a: 1 }; };
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const seen = new Set();
let checked = 0;
while (walker.nextNode()) {
  const node = walker.currentNode;
  const element = node.parentElement;
  if (!node.textContent.trim() || seen.has(element) || element.closest("svg")) continue;
  seen.add(element);
  const style = getComputedStyle(element);
  if (style.visibility === "hidden" || element.getClientRects().length === 0) continue;
  const a = luminance(rgb(style.color)), b = luminance(background(element));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
  const large = size >= 24 || (bold && size >= 18.66);
  checked += 1;
  if (ratio < (large ? 3 : 4.5)) problems.push("contrast " + ratio.toFixed(2) + " for '" + node.textContent.trim().slice(0, 40) + "'");
}
if (checked < 20) problems.push("only " + checked + " texts checked");
return problems;
"#;

async fn accessibility_problems(client: &Client) -> Vec<String> {
    let answer = client.execute(ACCESSIBILITY_CHECK, vec![]).await.unwrap();
    serde_json::from_value(answer).unwrap()
}

async fn scan(client: &Client, code: &str) {
    let mut keys = KeyActions::new("scanner".to_owned());
    for character in code.chars() {
        keys = keys.then(KeyAction::Down { value: character }).then(KeyAction::Up { value: character });
    }
    let enter = char::from(Key::Enter);
    keys = keys.then(KeyAction::Down { value: enter }).then(KeyAction::Up { value: enter });
    client.perform_actions(keys).await.unwrap();
}

async fn sign_in(client: &Client, base: &str, key: &str) {
    client.goto(&format!("{base}/sign-in")).await.unwrap();
    client.find(Locator::Id("key")).await.unwrap().send_keys(key).await.unwrap();
    client.find(Locator::Css("form.sign-in button")).await.unwrap().click().await.unwrap();
}

async fn wait_for_path(client: &Client, fragment: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let url = client.current_url().await.unwrap().to_string();
        if url.contains(fragment) {
            return url;
        }
        assert!(Instant::now() < deadline, "the browser never reached {fragment}; it is at {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Changes the recorded time of the salmon's receipt in Oslo, behind Keten's back.
async fn tamper(database_url: &str) {
    use sqlx::Connection as _;
    let mut connection = sqlx::SqliteConnection::connect(database_url).await.unwrap();
    let changed = sqlx::query(
        "UPDATE epcis_events SET body = replace(body, '2026-11-23T17:00:00Z', '2026-11-23T15:00:00Z') \
         WHERE body LIKE '%2026-11-23T17:00:00Z%'",
    )
    .execute(&mut connection)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(changed, 1, "the Oslo receipt is one stored event");
}

/// Runs the page's own check (`KetenProof.checkAnswer`) on a step's proof as served and altered:
/// every alteration of the inclusion proof, the checkpoint, its signature, the entry or the key
/// must fail, with the reason.
async fn checks_catch_altered_proofs(client: &Client, base: &str) {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    let step = client
        .execute(
            "const li = document.querySelector('li.event[data-log-index]'); \
             return [li.dataset.logIndex, li.dataset.fields, li.querySelector('time').getAttribute('datetime')];",
            vec![],
        )
        .await
        .unwrap();
    let index = step[0].as_str().unwrap().to_owned();
    let item = format!("/provenance{SALMON_LOT_PAGE}");
    let answer: serde_json::Value =
        reqwest::get(format!("{base}/consumer-proof/{index}?item={item}")).await.unwrap().json().await.unwrap();
    let key = reqwest::get(format!("{base}/log/key")).await.unwrap().text().await.unwrap();
    let check = |answer: serde_json::Value, key: String| {
        let arguments = vec![answer, step[0].clone(), step[1].clone(), step[2].clone(), serde_json::Value::String(key)];
        async move {
            let script = "const [answer, index, fields, time, keyText, done] = arguments; \
                KetenProof.parseVerifierKey(keyText).then((key) => KetenProof.checkAnswer(answer, index, fields, time, key)) \
                .then(() => done('ok'), (error) => done('failed: ' + error.message));";
            client.execute_async(script, arguments).await.unwrap().as_str().unwrap().to_owned()
        }
    };
    assert_eq!(check(answer.clone(), key.clone()).await, "ok");
    let proof = answer["proof"].as_str().unwrap().to_owned();
    let with_proof = |proof: String| {
        let mut altered = answer.clone();
        altered["proof"] = serde_json::Value::String(proof);
        altered
    };
    let (head, note) = proof.split_once("\n\n").unwrap();
    let lines: Vec<&str> = head.lines().collect();
    let first_hash = lines.iter().position(|line| line.starts_with("index ")).unwrap() + 1;
    assert!(lines.len() > first_hash + 1, "the salmon's entry has an inclusion path");
    // A hash of the inclusion path changed, or the path cut short.
    let mut flipped: Vec<String> = lines.iter().map(|line| line.to_string()).collect();
    let mut hash = STANDARD.decode(&flipped[first_hash]).unwrap();
    hash[0] ^= 1;
    flipped[first_hash] = STANDARD.encode(hash);
    let verdict = check(with_proof(format!("{}\n\n{note}", flipped.join("\n"))), key.clone()).await;
    assert!(verdict.contains("not in the log"), "{verdict}");
    let short = format!("{}\n\n{note}", lines[..lines.len() - 1].join("\n"));
    let verdict = check(with_proof(short), key.clone()).await;
    assert!(verdict.contains("too short") || verdict.contains("not in the log"), "{verdict}");
    // The entry given a line more: the disclosures still match, the leaf does not.
    let entry_line = lines.iter().position(|line| line.starts_with("extra ")).unwrap();
    let mut entry = STANDARD.decode(&lines[entry_line][6..]).unwrap();
    entry.extend_from_slice(format!("{}\n", STANDARD.encode([7u8; 32])).as_bytes());
    let mut longer: Vec<String> = lines.iter().map(|line| line.to_string()).collect();
    longer[entry_line] = format!("extra {}", STANDARD.encode(entry));
    let verdict = check(with_proof(format!("{}\n\n{note}", longer.join("\n"))), key.clone()).await;
    assert!(verdict.contains("not in the log"), "{verdict}");
    // The checkpoint's signature changed by one bit.
    let signature_line = note.lines().find(|line| line.starts_with('\u{2014}')).unwrap();
    let encoded = signature_line.rsplit(' ').next().unwrap();
    let mut signature = STANDARD.decode(encoded).unwrap();
    *signature.last_mut().unwrap() ^= 1;
    let forged = note.replace(encoded, &STANDARD.encode(signature));
    let verdict = check(with_proof(format!("{head}\n\n{forged}")), key.clone()).await;
    assert!(verdict.contains("signature does not verify"), "{verdict}");
    // Another log's key, and a key whose ID does not match it.
    let other =
        tlog::NoteSigner::from_seed(key.split('+').next().unwrap(), [9; 32]).unwrap().verifier_key().to_string();
    let verdict = check(answer.clone(), other).await;
    assert!(verdict.contains("not signed by the log's key"), "{verdict}");
    let stranger = tlog::NoteSigner::from_seed("another.example/log", [9; 32]).unwrap().verifier_key().to_string();
    let verdict = check(answer.clone(), stranger).await;
    assert!(verdict.contains("another log"), "{verdict}");
    let mut parts: Vec<String> = key.trim().splitn(3, '+').map(str::to_owned).collect();
    parts[1] = if parts[1].starts_with('0') { format!("1{}", &parts[1][1..]) } else { format!("0{}", &parts[1][1..]) };
    let verdict = check(answer.clone(), parts.join("+")).await;
    assert!(verdict.contains("ID does not match"), "{verdict}");
    // A field the page shows, disclosed with another value.
    let mut lying = answer.clone();
    let disclosure =
        lying["disclosures"].as_array_mut().unwrap().iter_mut().find(|field| field["name"] == "/eventTime").unwrap();
    disclosure["value"] = serde_json::Value::String("\"2020-01-01T00:00:00Z\"".into());
    let verdict = check(lying, key.clone()).await;
    assert!(verdict.contains("/eventTime") && verdict.contains("not what the log recorded"), "{verdict}");
}

#[test]
fn provenance_page_verifies_in_chromium_and_the_kiosk_follows_a_scan() {
    let Some(driver_path) = chromedriver() else {
        let message = "NO CHROMEDRIVER: the browser tests did not run (apt-get install -y chromium chromium-driver)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        eprintln!("\n\n*** {message} ***\n");
        return;
    };
    let file = scratchdb::SqliteFile::new().unwrap();
    let port = free_port();
    let directory = tempfile::tempdir().unwrap();
    let (demo, lines) = start_demo(&file.url(), port, directory.path(), &[]);
    let mut demo = Demo(Some(demo));
    let operator_key = key_of(&lines, "operator key:");
    let salmon_key = key_of(&lines, "(nordfjord) key:");
    let pharma_key = key_of(&lines, "(pharmapol) key:");
    let (status, alarms) = get(port, "/v1/alarms", &pharma_key);
    assert_eq!(status, 200);
    let alarm_id = alarms[0]["alarm_id"].as_str().unwrap().to_owned();
    let driver_port = free_port();
    let _driver = Driver(
        Command::new(driver_path)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = browser(driver_port, &directory.path().join("chromium")).await;
        client.set_window_size(PHONE.0, PHONE.1).await.unwrap();

        // The consumer scans the salmon pack: the page tells its story and verifies it.
        client.goto(&format!("{base}{SALMON_LOT_PAGE}")).await.unwrap();
        assert_eq!(verification(&client).await, "ok", "{}", text(&client, "#verify-log").await);
        assert!(text(&client, "#verify-status").await.starts_with("Verified"));
        assert_eq!(text(&client, "h1").await, "Norwegian salmon fillets 2 × 125 g");
        assert_eq!(text(&client, ".origin .farmer").await, "Ingrid Solberg");
        let journey = text(&client, "#journey").await;
        for place in [
            "Fjordlaks salmon farm",
            "Keten Cold Depot Oslo",
            "Keten Chilled DC Amsterdam",
            "Pickup Point Amsterdam Centraal",
        ] {
            assert!(journey.contains(place), "{place} missing from the journey: {journey}");
        }
        assert!(journey.contains("Hours in cold storage"), "{journey}");
        let steps = client.find_all(Locator::Css("li.event.ok")).await.unwrap().len();
        assert!(steps >= 6, "every logged step is checked ({steps})");
        assert_eq!(client.find_all(Locator::Css("li.event.failed")).await.unwrap().len(), 0);
        let readings = client.find_all(Locator::Css("svg.chart polyline.readings")).await.unwrap();
        assert_eq!(readings.len(), 1, "the pallet logger's line");
        assert!(client.find(Locator::Css("svg.map circle")).await.is_ok());
        assert!(text(&client, ".shelf-life").await.contains("days left"));
        let problems = accessibility_problems(&client).await;
        assert!(problems.is_empty(), "accessibility: {problems:#?}");
        checks_catch_altered_proofs(&client, &base).await;
        shot(&client, "provenance-phone", PHONE).await;
        shot(&client, "provenance-desktop", DESKTOP).await;

        // Dutch, by the switch, and large text for the stores' zones.
        client.find(Locator::Css("a[hreflang=nl]")).await.unwrap().click().await.unwrap();
        wait_for_path(&client, "lang=nl").await;
        assert_eq!(text(&client, "#journey-title").await, "Reis");
        assert_eq!(verification(&client).await, "ok");
        assert!(text(&client, "#verify-status").await.starts_with("Geverifieerd"));
        client.goto(&format!("{base}{SALMON_LOT_PAGE}?view=large")).await.unwrap();
        assert_eq!(verification(&client).await, "ok");
        let problems = accessibility_problems(&client).await;
        assert!(problems.is_empty(), "accessibility in large text: {problems:#?}");
        shot(&client, "provenance-large-phone", PHONE).await;
        shot(&client, "provenance-large-desktop", DESKTOP).await;

        // The store's mirror: a scanner types the vaccine's element string and Enter.
        client.goto(&format!("{base}{SALMON_LOT_PAGE}?kiosk=1")).await.unwrap();
        assert_eq!(client.execute("return document.body.className;", vec![]).await.unwrap(), "mode-kiosk");
        shot(&client, "kiosk-desktop", DESKTOP).await;
        shot(&client, "kiosk-phone", PHONE).await;
        // A 2D scanner types the QR code's Digital Link.
        scan(&client, "https://id.gs1.org/01/05901234010009/10/VAX-2611").await;
        let url = wait_for_path(&client, "/provenance/01/05901234010009/10/VAX-2611").await;
        assert!(url.contains("kiosk=1"), "{url}");
        assert!(text(&client, "h1").await.starts_with("Influenza vaccine"));
        scan(&client, "(01)00000000000000").await;
        wait_for_path(&client, "/kiosk/scan").await;
        assert!(text(&client, ".kiosk-unknown").await.contains("not known"));

        // The operator plans the depot's courier routes (the wave when the demo's packed orders
        // leave, which depends on the time of day), signs in with a key and acknowledges the
        // demo's alarm in the console.
        let orders: serde_json::Value = reqwest::Client::new()
            .get(format!("{base}/v1/orders"))
            .bearer_auth(&salmon_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let wave = orders["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|order| order["status"] == "packed")
            .filter_map(|order| order["shipments"][0]["last_mile_departure_at"].as_str())
            .max()
            .expect("the demo's packed orders")
            .to_owned();
        let planned = reqwest::Client::new()
            .post(format!("{base}/v1/operator/dispatch"))
            .bearer_auth(&operator_key)
            .header("content-type", "application/json")
            .body(serde_json::json!({"depot": "8712345000011", "wave": wave, "allow_late": true}).to_string())
            .send()
            .await
            .unwrap();
        assert!(planned.status().is_success(), "{}", planned.text().await.unwrap());
        sign_in(&client, &base, &operator_key).await;
        wait_for_path(&client, "/console").await;
        let row = format!("tr[data-alarm='{alarm_id}']");
        let listed = text(&client, &row).await;
        assert!(listed.contains("pharmapol") && listed.contains("above-8-for-30min"), "{listed}");
        assert!(text(&client, ".log-size").await.parse::<u64>().unwrap() >= 22);
        assert!(client.find(Locator::Css("#network-title + figure svg line.lane")).await.is_ok(), "lanes are drawn");
        let routes = client.find_all(Locator::Css("svg polyline.route")).await.unwrap();
        assert!(!routes.is_empty(), "the depot's routes are drawn");
        let problems = accessibility_problems(&client).await;
        assert!(problems.is_empty(), "accessibility of the console: {problems:#?}");
        shot(&client, "console-desktop", DESKTOP).await;
        shot(&client, "console-phone", PHONE).await;
        client
            .find(Locator::Css(&format!("{row} input[name=person]")))
            .await
            .unwrap()
            .send_keys("Anna Kowalska")
            .await
            .unwrap();
        client
            .find(Locator::Css(&format!("{row} input[name=comment]")))
            .await
            .unwrap()
            .send_keys("Reefer repaired; lot held for QA")
            .await
            .unwrap();
        client.find(Locator::Css(&format!("{row} button"))).await.unwrap().click().await.unwrap();
        wait_for_path(&client, "/console#alarms").await;
        assert!(client.find(Locator::Css(&row)).await.is_err(), "an acknowledged alarm leaves the open list");
        let alarm: serde_json::Value = reqwest::Client::new()
            .get(format!("{base}/v1/alarms/{alarm_id}"))
            .bearer_auth(&pharma_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(alarm["acknowledged_by"], "Anna Kowalska", "{alarm}");
        client.find(Locator::Css(".sign-out button")).await.unwrap().click().await.unwrap();
        wait_for_path(&client, "/sign-in").await;
        client.goto(&format!("{base}/console")).await.unwrap();
        wait_for_path(&client, "/sign-in").await;

        // A merchant sees its own portal, and not another merchant's pages.
        sign_in(&client, &base, &salmon_key).await;
        wait_for_path(&client, "/portal").await;
        assert!(text(&client, "#products-title + ul").await.contains("Norwegian salmon fillets"));
        assert!(text(&client, "table.stock").await.contains("LOT-2026-11"));
        let problems = accessibility_problems(&client).await;
        assert!(problems.is_empty(), "accessibility of the portal: {problems:#?}");
        shot(&client, "portal-desktop", DESKTOP).await;
        shot(&client, "portal-phone", PHONE).await;
        // The merchant recalls its salmon lot from the portal and sees the orders it touches.
        client.find(Locator::Id("recall-lots")).await.unwrap().send_keys("LOT-2026-11").await.unwrap();
        client.find(Locator::Id("recall-reason")).await.unwrap().send_keys("Listeria in a sample").await.unwrap();
        client.find(Locator::Css("form.recall-form button")).await.unwrap().click().await.unwrap();
        wait_for_path(&client, "/portal/recalls").await;
        let affected = text(&client, "table.recall-orders").await;
        assert!(affected.contains("ord_demo_"), "{affected}");
        shot(&client, "portal-recall-desktop", DESKTOP).await;
        client.goto(&format!("{base}/portal/alarms/{alarm_id}")).await.unwrap();
        assert!(
            text(&client, "main").await.contains(&format!("alarm {alarm_id}")),
            "another merchant's alarm is not found"
        );
        assert!(text(&client, "h1").await.contains("Not found"), "{}", text(&client, "main").await);
        client.goto(&format!("{base}/console")).await.unwrap();
        assert_eq!(text(&client, "h1").await, "Forbidden", "a merchant cannot open the console");
        client.find(Locator::Css(".sign-out button")).await.unwrap().click().await.unwrap();
        wait_for_path(&client, "/sign-in").await;

        // Someone edits the Oslo receipt in the database: the same page now shows the failure.
        tamper(&file.url()).await;
        client.goto(&format!("{base}{SALMON_LOT_PAGE}")).await.unwrap();
        assert!(text(&client, "#recall").await.contains("Recalled"), "the recall is on the consumer's page");
        assert_eq!(verification(&client).await, "failed");
        assert!(text(&client, "#verify-status").await.starts_with("Not verified"));
        let failed = client.find_all(Locator::Css("li.event.failed")).await.unwrap();
        assert_eq!(failed.len(), 1, "only the edited step fails");
        let log = text(&client, "#verify-log").await;
        assert!(log.contains("/eventTime") && log.contains("not what the log recorded"), "{log}");
        shot(&client, "provenance-tampered-phone", PHONE).await;
        client.close().await.unwrap();
    });
    // A clean shutdown when everything passed (a failed assertion kills it instead).
    stop(demo.0.take().unwrap());
}
