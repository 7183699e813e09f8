//! The few HTML pages the foundation serves: the index, the API reference, the problem pages and a
//! plain product page at the product's Digital Link path (the web issue makes it rich).

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};

use crate::AppState;
use crate::problem::{CATALOG, Problem};

/// Escapes text for HTML (the web crate's, for the few pages written here by hand).
pub use web::escape;

pub fn page(title: &str, body: &str) -> Html<String> {
    page_in("en", title, body)
}

/// [`page`] in a language (its `lang` code).
pub fn page_in(lang: &str, title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/assets/plain.css\"></head><body>{body}</body></html>",
        title = escape(title),
        lang = escape(lang)
    ))
}

pub async fn index(State(app): State<AppState>) -> Html<String> {
    page(
        "Keten",
        &format!(
            "<h1>Keten</h1><p>An open Retail-as-a-Service supply-chain platform. Backend: <code>{backend}</code>, log origin <code>{origin}</code>.</p>\
             <ul><li><a href=\"/docs\">API reference</a> (<a href=\"/openapi.json\">OpenAPI 3.1</a>)</li>\
             <li><a href=\"/problems\">Problem types</a></li><li><a href=\"/healthz\">/healthz</a>, <a href=\"/readyz\">/readyz</a>, <a href=\"/metrics\">/metrics</a></li></ul>\
             <p><a href=\"/sign-in\">Sign in</a> to the merchant portal or the operator console. A product's provenance page lives at its GS1 Digital Link path, <code>/01/&lt;GTIN&gt;/10/&lt;lot&gt;</code>; the store kiosk at <a href=\"/kiosk\">/kiosk</a>.</p>",
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
