//! The few HTML pages the foundation serves: the index, the API reference, the problem pages and a
//! plain product page at the product's Digital Link path (the web issue makes it rich).

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use gs1::Gtin;

use crate::AppState;
use crate::problem::{CATALOG, Problem};

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}}\
         code,pre{{background:#f2f2f2;padding:0 .2rem}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}}\
         .method{{font-weight:bold;font-family:monospace}}</style></head><body>{body}</body></html>",
        title = escape(title)
    ))
}

pub async fn index(State(app): State<AppState>) -> Html<String> {
    page(
        "Keten",
        &format!(
            "<h1>Keten</h1><p>An open Retail-as-a-Service supply-chain platform. Backend: <code>{backend}</code>, log origin <code>{origin}</code>.</p>\
             <ul><li><a href=\"/docs\">API reference</a> (<a href=\"/openapi.json\">OpenAPI 3.1</a>)</li>\
             <li><a href=\"/problems\">Problem types</a></li><li><a href=\"/healthz\">/healthz</a>, <a href=\"/readyz\">/readyz</a>, <a href=\"/metrics\">/metrics</a></li></ul>\
             <p>The operator console, merchant portal and provenance pages are being built; product pages live at their GS1 Digital Link path, <code>/01/&lt;GTIN&gt;</code>.</p>",
            backend = app.store.backend().name(),
            origin = escape(&app.config.log_origin),
        ),
    )
}

/// A readable rendering of the OpenAPI document.
pub async fn docs(State(app): State<AppState>) -> Html<String> {
    let openapi = &app.openapi;
    let mut body = format!(
        "<h1>{} {}</h1><p>{}</p>",
        escape(&openapi.info.title),
        escape(&openapi.info.version),
        escape(openapi.info.description.as_deref().unwrap_or(""))
    );
    body.push_str("<p>Authenticate with <code>Authorization: Bearer &lt;key&gt;</code>. Every POST accepts an <code>Idempotency-Key</code>. The machine-readable document is <a href=\"/openapi.json\">/openapi.json</a>.</p><table><tr><th>method</th><th>path</th><th>summary</th></tr>");
    for (path, item) in &openapi.paths.paths {
        let operations = [("GET", &item.get), ("POST", &item.post), ("PUT", &item.put), ("DELETE", &item.delete)];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                let summary = operation.summary.clone().or_else(|| operation.description.clone()).unwrap_or_default();
                body.push_str(&format!(
                    "<tr><td class=\"method\">{method}</td><td><code>{}</code></td><td>{}</td></tr>",
                    escape(path),
                    escape(&summary)
                ));
            }
        }
    }
    body.push_str("</table>");
    page("Keten API", &body)
}

pub async fn problems() -> Html<String> {
    let mut body = String::from(
        "<h1>Problem types</h1><p>Errors are RFC 9457 <code>application/problem+json</code>. The <code>type</code> is stable.</p><table><tr><th>type</th><th>status</th><th>title</th><th>when</th></tr>",
    );
    for (code, status, title, when) in CATALOG {
        body.push_str(&format!("<tr><td><a href=\"/problems/{code}\"><code>/problems/{code}</code></a></td><td>{status}</td><td>{}</td><td>{}</td></tr>", escape(title), escape(when)));
    }
    body.push_str("</table>");
    page("Problem types", &body)
}

pub async fn problem(Path(code): Path<String>) -> Response {
    match CATALOG.iter().find(|(known, ..)| *known == code) {
        Some((code, status, title, when)) => page(title, &format!("<h1>{}</h1><p>Type <code>/problems/{code}</code>, HTTP {status}.</p><p>{}</p><p><a href=\"/problems\">All problem types</a></p>", escape(title), escape(when))).into_response(),
        None => Problem::not_found(format!("problem type {code:?}")).into_response(),
    }
}

/// The product behind a GS1 Digital Link `/01/{gtin}`: public fields only.
pub async fn product(State(app): State<AppState>, Path(gtin): Path<String>) -> Result<Html<String>, Problem> {
    let gtin = Gtin::parse(&gtin).map_err(|error| Problem::field("invalid-parameter", "{gtin}", error.to_string()))?;
    let (_, product, party) =
        app.store.public_product(&gtin).await?.ok_or_else(|| Problem::not_found(format!("product {gtin}")))?;
    let mut body = format!("<h1>{}</h1>", escape(&product.name));
    if let Some(brand) = &product.brand {
        body.push_str(&format!("<p>{}</p>", escape(brand)));
    }
    body.push_str(&format!("<p>GTIN <code>{gtin}</code> · kept {}</p>", product.temperature_class.name()));
    if let Some(country) = product.country_of_origin {
        body.push_str(&format!("<p>Origin: {country}</p>"));
    }
    if let Some(party) = party {
        let person = party.public_person_name().map(|name| format!(" — {}", escape(name))).unwrap_or_default();
        body.push_str(&format!("<p>From {} ({}){person}</p>", escape(&party.name), party.kind.name()));
    }
    if let Some(nutrition) = product.nutrition {
        body.push_str("<h2>Nutrition per 100 g</h2><table>");
        let rows = [
            ("Energy (kJ)", nutrition.energy_kj),
            ("Energy (kcal)", nutrition.energy_kcal),
            ("Fat (g)", nutrition.fat_g),
            ("of which saturates (g)", nutrition.saturates_g),
            ("Carbohydrate (g)", nutrition.carbohydrate_g),
            ("of which sugars (g)", nutrition.sugars_g),
            ("Protein (g)", nutrition.protein_g),
            ("Salt (g)", nutrition.salt_g),
        ];
        for (label, value) in rows {
            if let Some(value) = value {
                body.push_str(&format!("<tr><th>{label}</th><td>{value}</td></tr>"));
            }
        }
        body.push_str("</table>");
    }
    Ok(page(&product.name, &body))
}
