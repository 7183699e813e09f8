//! Every page renders in both languages and every mode from a full view, escapes what it is
//! given, and loads scripts and styles only from `/assets/`.

use web::journey::{Place, Step, journey};
use web::*;

fn provenance(lang: Lang, mode: Mode) -> ProvenanceView {
    let place = |id: &str, name: &str| Place {
        id: id.into(),
        name: name.into(),
        kind: if id == "farm" { "farm" } else { "cold_depot" }.into(),
        time_zone: "Europe/Oslo".into(),
        cold: true,
        coordinates: Some((60.0, 10.0 + id.len() as f64)),
    };
    let steps = vec![
        Step {
            time: "2026-11-23T05:00:00Z".parse().unwrap(),
            business_step: "commissioning".into(),
            place: Some(place("farm", "Farm <b>1</b>")),
            log_index: Some(0),
            fields: r#"{"/bizStep":"\"commissioning\""}"#.into(),
        },
        Step {
            time: "2026-11-23T07:00:00Z".parse().unwrap(),
            business_step: "shipping".into(),
            place: Some(place("farm", "Farm <b>1</b>")),
            log_index: None,
            fields: "{}".into(),
        },
        Step {
            time: "2026-11-23T17:00:00Z".parse().unwrap(),
            business_step: "receiving".into(),
            place: Some(place("oslo-depot", "")),
            log_index: Some(2),
            fields: "{}".into(),
        },
    ];
    let built = journey(steps, true, lang);
    let chart = svg::chart(&svg::ChartInput {
        series: vec![svg::Series { label: "logger".into(), points: vec![(0, 1.0), (3600, 5.0), (7200, 1.0)] }],
        min_celsius: Some(0.0),
        max_celsius: Some(4.0),
        excursions: vec![(3000, 4000)],
        title: "Temperature".into(),
        time_labels: vec![],
    });
    ProvenanceView {
        lang,
        mode,
        path: "/provenance/01/07098765010009/10/L1".into(),
        product: ProductView {
            name: "Salmon <script>alert(1)</script>".into(),
            brand: Some("Nordfjord".into()),
            description: None,
            gtin: "07098765010009".into(),
            lot: Some("L1".into()),
            serial: None,
            expiry: Some("2026-12-10".into()),
            class_key: "class_chilled".into(),
            nutrition: vec![("protein".into(), "20.4".into())],
            allergens: vec!["fish".into()],
        },
        origin: Some(OriginView {
            name: "Fjordlaks".into(),
            kind: "fishery".into(),
            person: Some("Ingrid Solberg".into()),
            country: Some("NO".into()),
            place: Some("Storfjorden".into()),
            harvested: Some(TimeView::new("2026-11-23T05:00:00Z".parse().unwrap(), "Europe/Oslo", lang)),
        }),
        map_svg: svg::map(&[svg::MapPoint { name: "Farm".into(), latitude: 62.4, longitude: 6.1 }], "Map", "map-title"),
        cold_hours: Some(format!("{:.1}", built.cold_hours)),
        journey: built.stops,
        temperature: chart.map(|chart_svg| TemperatureView {
            chart_svg,
            range: "0.0 to 4.0 °C".into(),
            measured: "1.0 – 5.0 °C".into(),
            excursions: 1,
            minutes_out: 17,
            pass: false,
        }),
        shelf_life: Some(ShelfLifeView { at_celsius: "4".into(), days_left: 5 }),
        certifications: vec![LinkView { title: "ASC".into(), href: "https://example.org/asc".into() }],
        checks: vec![
            CheckView { key: "check_temperature_failed".into(), ok: false },
            CheckView { key: "check_recall_failed".into(), ok: false },
        ],
        recalled: true,
        recall_notice: Some("Listeria <b>found</b>: return it for a refund.".into()),
        recalled_inputs: vec![
            RecalledInputView {
                name: Some("Feed <i>X</i>".into()),
                gtin: "07098765010016".into(),
                lot: "F<1>".into(),
                notice: Some("Mould & <toxins>".into()),
            },
            RecalledInputView { name: None, gtin: "07098765010023".into(), lot: "G1".into(), notice: None },
        ],
        recalled_lots: vec![
            RecalledLotView { lot: "L<2>".into(), notice: Some("Glass & <shards>".into()) },
            RecalledLotView { lot: "L3".into(), notice: None },
        ],
        recalled_lots_more: true,
        digital_link: "http://localhost/01/07098765010009/10/L1".into(),
        qr_path: "/qr/01/07098765010009/10/L1".into(),
        proof_path: "/consumer-proof/".into(),
    }
}

fn scripts_only_from_assets(html: &str) {
    for script in html.split("<script").skip(1) {
        let tag = &script[..script.find('>').unwrap()];
        assert!(tag.contains("src=\"/assets/"), "an inline or foreign script: <script{tag}>");
    }
    assert!(!html.contains(" style=\""), "inline styles break the Content-Security-Policy");
    assert!(!html.contains(" onclick="), "inline handlers");
}

#[test]
fn the_provenance_page_renders_in_every_language_and_mode() {
    let pages = Pages::new();
    for lang in Lang::ALL {
        for mode in [Mode::Normal, Mode::Large, Mode::Kiosk] {
            let html = pages.provenance(&provenance(lang, mode)).unwrap();
            scripts_only_from_assets(&html);
            assert!(html.contains("Salmon &lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "the name is escaped");
            assert!(!html.contains("<script>alert"), "no injected script");
            assert!(html.contains("Farm &lt;b&gt;1&lt;&#x2f;b&gt;"), "place names are escaped");
            assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())));
            assert!(html.contains(&format!("class=\"mode-{}\"", format!("{mode:?}").to_lowercase())));
            assert!(html.contains("role=\"alert\" id=\"recall\""), "the recall banner");
            assert!(html.contains("role=\"alert\" id=\"recall-input\""), "the recalled input's banner");
            assert!(
                html.contains("Feed &lt;i&gt;X&lt;&#x2f;i&gt; <code>07098765010016</code>")
                    && html.contains("<code>F&lt;1&gt;</code>"),
                "the recalled input, escaped"
            );
            // The brands' own words, escaped: the lot's recall under its banner, an input's beside
            // it, none for an input whose recall says nothing.
            let banner = html.split("id=\"recall\"").nth(1).unwrap().split("</div>").next().unwrap();
            assert!(
                banner.contains("<p class=\"recall-notice\" lang=\"\" dir=\"auto\">Listeria &lt;b&gt;found&lt;&#x2f;b&gt;: return it for a refund.</p>"),
                "{banner}"
            );
            let inputs = html.split("id=\"recall-input\"").nth(1).unwrap().split("</div>").next().unwrap();
            assert_eq!(inputs.matches("class=\"recall-notice\"").count(), 1, "{inputs}");
            assert!(inputs.contains("Mould &amp; &lt;toxins&gt;</span></li>"), "{inputs}");
            // A product's recalled lots, each with its recall's words, and that there are more.
            let lots = html.split("role=\"alert\" id=\"recall-lots\"").nth(1).unwrap().split("</div>").next().unwrap();
            assert!(lots.contains("<code>L&lt;2&gt;</code><br>") && lots.contains("<code>L3</code></li>"), "{lots}");
            assert!(lots.contains("Glass &amp; &lt;shards&gt;</span></li>"), "{lots}");
            assert!(lots.contains(lang.text("recalled_lots_more").unwrap()), "{lots}");
            assert!(html.contains("Ingrid Solberg"));
            assert!(html.contains("data-log-index=\"0\"") && html.contains("data-log-index=\"2\""));
            assert_eq!(html.matches("data-log-index").count(), 2, "a step without a log entry is not checked");
            assert_eq!(html.matches("class=\"unlogged\"").count(), 1, "and says so");
            assert!(html.contains("class=\"excursion\""));
            assert_eq!(html.contains("/assets/kiosk.js"), mode == Mode::Kiosk);
            let private = lang.text("private_place").unwrap();
            assert!(html.contains(&private.replace('\'', "&#x27;")), "a place not in the registry is a partner's site");
        }
    }
    let dutch = pages.provenance(&provenance(Lang::Nl, Mode::Normal)).unwrap();
    assert!(dutch.contains("Gemaakt van een teruggeroepen partij") && dutch.contains(", partij <code>"));
    assert!(dutch.contains("Teruggeroepen") && dutch.contains(">Reis<") && dutch.contains("Geoogst en verpakt"));
    let english = pages.provenance(&provenance(Lang::En, Mode::Normal)).unwrap();
    assert!(english.contains("Recalled") && english.contains(">Journey<") && english.contains("Harvested and packed"));
}

#[test]
fn the_staff_pages_render() {
    let pages = Pages::new();
    let time = TimeView::new("2026-11-23T05:00:00Z".parse().unwrap(), "UTC", Lang::En);
    let alarm = AlarmRowView {
        tenant: "pharmapol".into(),
        alarm_id: "alm_1".into(),
        device: "logger".into(),
        target: "sscc 3590".into(),
        rule: "above-8-for-30min".into(),
        severity: "critical".into(),
        state: "escalated".into(),
        opened: time.clone(),
        peak_celsius: "11.4".into(),
        held_lots: vec!["05901234010009/VAX-2611".into()],
        acknowledged_by: None,
        comment: None,
        needs_person: true,
    };
    let console = pages
        .console(&ConsoleView {
            csrf: "token-1".into(),
            network_svg: svg::network(
                &[
                    svg::MapPoint { name: "Oslo".into(), latitude: 59.9, longitude: 10.7 },
                    svg::MapPoint { name: "Amsterdam".into(), latitude: 52.4, longitude: 4.9 },
                ],
                &[(0, 1), (1, 7)],
                "Network",
                "network-map",
            ),
            orders: vec![("delivered".into(), 3)],
            sla: web::SlaTableView { from: "2026-11-01".into(), to: "2026-12-01".into(), lines: vec![] },
            alarms: vec![alarm.clone()],
            log: LogView {
                origin: "keten.localhost/log".into(),
                size: 22,
                checkpoint_at: Some(time.clone()),
                cosignatures: 1,
            },
            tenants: vec![TenantLineView { tenant: "pharmapol".into(), name: "PharmaPol".into(), rows: 10 }],
            depots: vec![DepotRoutesView {
                name: "Amsterdam DC".into(),
                routes: 1,
                open_stops: 2,
                svg: svg::routes(
                    &svg::MapPoint { name: "Amsterdam DC".into(), latitude: 52.3, longitude: 4.8 },
                    &[svg::RouteLine { label: "van-1 <r1>".into(), stops: vec![(52.37, 4.9), (52.35, 4.95)] }],
                    "Routes",
                    "routes-0",
                ),
            }],
        })
        .unwrap();
    scripts_only_from_assets(&console);
    assert!(console.contains("action=\"/console/alarms/pharmapol/alm_1/acknowledge\""));
    assert_eq!(
        console.matches("name=\"csrf\" value=\"token-1\"").count(),
        2,
        "the sign-out and the acknowledgement forms"
    );
    assert!(console.contains("24-hour promise, 2026-11-01 to 2026-12-01 (UTC days)"), "the SLA's period: {console}");
    assert!(console.contains("No orders in the period."), "{console}");
    assert_eq!(console.matches("class=\"lane\"").count(), 1, "a lane to an unknown place is left out");
    assert!(
        console.contains("class=\"route\"") && console.contains("van-1 &lt;r1&gt;"),
        "routes drawn, labels escaped"
    );
    let portal = pages
        .portal(&PortalView {
            csrf: "token-2".into(),
            tenant: "pharmapol".into(),
            products: vec![],
            stock: vec![],
            orders: vec![],
            sla: web::SlaTableView {
                from: "2026-11-05".into(),
                to: "2026-12-05".into(),
                lines: vec![web::SlaLineView {
                    region: "Amsterdam <Noord>".into(),
                    service: "next_day".into(),
                    orders: 4,
                    delivered: 2,
                    failed: 1,
                    by_promise_percent: Some("67 %".into()),
                    within_24h_percent: Some("33 %".into()),
                    late_open: 0,
                }],
            },
            alarms: vec![AlarmRowView {
                acknowledged_by: Some("Anna".into()),
                comment: Some("ok".into()),
                ..alarm.clone()
            }],
            recalls: vec![RecallLineView {
                recall_id: "rcl_1".into(),
                gtin: "09506000134352".into(),
                lots: vec!["LOT-7".into(), "<LOT-8>".into()],
                reason: "Listeria".into(),
                recalled: TimeView::new("2026-11-23T05:00:00Z".parse().unwrap(), "UTC", Lang::En),
            }],
            storage_rows: 5,
            request_id: "portal-recall-1".into(),
        })
        .unwrap();
    assert_eq!(portal.matches("class=\"recall\"").count(), 1, "{portal}");
    let sla = portal.split("<table class=\"sla\">").nth(1).expect("the merchant's own SLA table");
    assert!(
        sla.contains(
            "<td>Amsterdam &lt;Noord&gt;</td><td>next_day</td><td>4</td><td>2</td><td>1</td><td>67 %</td><td>33 %</td>"
        ),
        "a row per region and service, escaped: {sla}"
    );
    assert!(portal.contains("Your 24-hour promise, 2026-11-05 to 2026-12-05 (UTC days)"), "{portal}");
    assert!(portal.contains("LOT-7, &lt;LOT-8&gt;"), "lots listed, escaped: {portal}");
    assert!(
        portal.contains("href=\"/portal/alarms/alm_1\"") && !portal.contains("/acknowledge"),
        "merchants read alarms here"
    );
    let sign_in = pages.sign_in(&SignInView { csrf: "t".into(), error: Some("This key is not known".into()) }).unwrap();
    assert!(
        sign_in.contains("<label for=\"key\">") && sign_in.contains("role=\"alert\"") && !sign_in.contains("Sign out")
    );
    let error = pages
        .error(&ErrorView {
            csrf: Some("t".into()),
            status: 404,
            title: "Not found".into(),
            detail: "alarm x not found".into(),
            problem_type: "/problems/not-found".into(),
        })
        .unwrap();
    assert!(error.contains("alarm x not found"));
    let alarm_page = pages
        .portal_alarm(&PortalAlarmView {
            csrf: "t".into(),
            tenant: "pharmapol".into(),
            alarm,
            reports: vec![("Lot".into(), "/portal/reports/temperature?gtin=1&lot=2".into())],
        })
        .unwrap();
    assert!(alarm_page.contains("&#x2f;portal&#x2f;reports&#x2f;temperature?gtin=1&amp;lot=2"), "{alarm_page}");
    // A recall's page: its orders, and the lots made from its lots, each as the answer says.
    let recall = serde_json::json!({
        "recall_id": "rcl_1", "gtin": "08712345101206", "lots": ["BEEF1"], "pickup_points": [], "history_truncated": true,
        "public_notice": "Do not eat <it>",
        "inbound_pallets": [], "affected_orders": [],
        "derived_lots": [
            {"gtin": "08712345101213", "lot": "LAS<1>", "made_from": ["BEEF1"], "own_product": true,
             "recall_id": null, "units_on_hand": 6, "units_on_hold": 4,
             "orders": [{"order_id": "ord_1"}, {"order_id": "ord_2"}]},
            {"gtin": "08712345101220", "lot": "BOX1", "made_from": ["BEEF1"], "own_product": false,
             "recall_id": null, "units_on_hand": 0, "orders": []},
            {"gtin": "08712345101213", "lot": "LAS2", "made_from": ["BEEF1"], "own_product": true,
             "recall_id": "rcl_0", "units_on_hand": 0, "orders": []}
        ],
        "derived_items": [{"item": "https://id.gs1.org/01/08712345101213/21/S1", "gtin": "08712345101213",
                           "made_from": ["BEEF1"]}],
        "source_lots": [{"gtin": "08712345101305", "lot": "C<1>", "used_in": ["BEEF1"], "product": "Feed <b>",
                         "brand": null, "own_product": false, "recall_id": "rcl_9"}]
    });
    let recall_page = pages
        .portal_recall(&PortalRecallView { csrf: "t".into(), tenant: "mince".into(), recall, replayed: false })
        .unwrap();
    let derived = recall_page.split("<table class=\"recall-derived\">").nth(1).expect("the derived lots' table");
    let rows: Vec<&str> = derived.split("</tbody>").next().unwrap().split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), 3, "{derived}");
    assert!(
        rows[0].contains("LAS&lt;1&gt;")
            && rows[0].contains("<td>6</td><td>4</td><td>2</td>")
            && rows[0].contains("not recalled")
    );
    assert!(rows[1].contains("another brand") && !rows[1].contains("recalled"), "{}", rows[1]);
    assert!(rows[2].contains("<code>rcl_0</code>"), "{}", rows[2]);
    // A recall stored before the units on hold were listed: the cell stays empty.
    assert!(rows[2].contains("<td>0</td><td></td><td>0</td>"), "{}", rows[2]);
    assert!(recall_page.contains("1 serialised items"), "{recall_page}");
    let sources = recall_page.split("<table class=\"recall-sources\">").nth(1).expect("the source lots' table");
    assert!(
        sources.contains("<td>C&lt;1&gt;</td><td>Feed &lt;b&gt;</td><td></td><td>BEEF1</td><td><code>rcl_9</code>"),
        "{sources}"
    );
    assert!(recall_page.contains("reached their limits"), "a cut list says so: {recall_page}");
    assert!(recall_page.contains("<q class=\"recall-notice\">Do not eat &lt;it&gt;</q>"), "{recall_page}");
    // A recall answered (and stored, for the form's replay) before the derived lots were listed.
    let none = serde_json::json!({"recall_id": "rcl_2", "gtin": "1", "lots": ["A"], "pickup_points": [],
        "inbound_pallets": [], "affected_orders": []});
    let plain = pages
        .portal_recall(&PortalRecallView { csrf: "t".into(), tenant: "mince".into(), recall: none, replayed: false })
        .unwrap();
    assert!(!plain.contains("Made from these lots") && !plain.contains("reached their limits"), "{plain}");
    assert!(!plain.contains("What they were made from"), "{plain}");
    assert!(plain.contains("no notice was given") && !plain.contains("recall-notice"), "{plain}");
    let kiosk = pages.kiosk_idle(&KioskIdleView { lang: Lang::Nl, unknown: true }).unwrap();
    assert!(kiosk.contains("Scan een product") && kiosk.contains("kiosk-unknown"));
}

#[test]
fn assets_are_embedded() {
    for name in ["keten.css", "provenance.js", "kiosk.js"] {
        let (content_type, body) = asset(name).unwrap();
        assert!(!body.is_empty() && content_type.contains("charset=utf-8"), "{name}");
    }
    assert!(asset("../Cargo.toml").is_none());
    assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self'") && !CONTENT_SECURITY_POLICY.contains("unsafe"));
}
