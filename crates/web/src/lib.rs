//! Keten's web faces, rendered on the server: the consumer's provenance page (phone, large text,
//! the store's kiosk) and the pages around it. This crate holds the templates, the view models the
//! server fills ([`view`]), the journey built from recorded steps ([`journey`]), the SVG map and
//! chart ([`svg`]), the two languages ([`i18n`]) and the CSS and JS embedded in the binary
//! ([`asset`]). It does no IO: nothing here reads a store or a clock.
//!
//! Invariants: every value reaches HTML through the templates' auto-escaping or [`escape`]; the
//! only unescaped inserts are the SVGs this crate draws. Pages load scripts and styles only from
//! `/assets/` (no inline script, no inline style), so a strict Content-Security-Policy holds.

pub mod i18n;
pub mod journey;
pub mod svg;
pub mod view;

use minijinja::{Environment, UndefinedBehavior, context};

pub use i18n::Lang;
pub use view::*;

/// A template that failed to render: a bug in a template or a view, never the user's input.
#[derive(Debug, thiserror::Error)]
#[error("page {page} did not render: {source}")]
pub struct RenderError {
    page: &'static str,
    #[source]
    source: minijinja::Error,
}

/// The templates, loaded once.
#[derive(Debug)]
pub struct Pages {
    env: Environment<'static>,
}

impl Default for Pages {
    fn default() -> Self {
        Pages::new()
    }
}

impl Pages {
    pub fn new() -> Pages {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in [
            ("base.html", include_str!("../templates/base.html")),
            ("provenance.html", include_str!("../templates/provenance.html")),
            ("kiosk.html", include_str!("../templates/kiosk.html")),
            ("staff.html", include_str!("../templates/staff.html")),
            ("macros.html", include_str!("../templates/macros.html")),
            ("sign_in.html", include_str!("../templates/sign_in.html")),
            ("error.html", include_str!("../templates/error.html")),
            ("console.html", include_str!("../templates/console.html")),
            ("portal.html", include_str!("../templates/portal.html")),
            ("portal_alarm.html", include_str!("../templates/portal_alarm.html")),
            ("portal_recall.html", include_str!("../templates/portal_recall.html")),
        ] {
            if let Err(error) = env.add_template(name, source) {
                panic!("template {name} does not parse: {error}");
            }
        }
        Pages { env }
    }

    fn render(&self, page: &'static str, context: minijinja::Value) -> Result<String, RenderError> {
        self.env
            .get_template(page)
            .and_then(|template| template.render(context))
            .map_err(|source| RenderError { page, source })
    }

    /// A product's provenance page.
    pub fn provenance(&self, view: &ProvenanceView) -> Result<String, RenderError> {
        self.render("provenance.html", context! { t => view.lang.texts(), ..minijinja::Value::from_serialize(view) })
    }

    /// The sign-in form.
    pub fn sign_in(&self, view: &SignInView) -> Result<String, RenderError> {
        self.staff("sign_in.html", view, false)
    }

    /// A person's error page (after a form).
    pub fn error(&self, view: &ErrorView) -> Result<String, RenderError> {
        self.staff("error.html", view, view.csrf.is_some())
    }

    /// The operator's console.
    pub fn console(&self, view: &ConsoleView) -> Result<String, RenderError> {
        self.staff("console.html", view, true)
    }

    /// A merchant's portal.
    pub fn portal(&self, view: &PortalView) -> Result<String, RenderError> {
        self.staff("portal.html", view, true)
    }

    /// One alarm in a merchant's portal.
    pub fn portal_alarm(&self, view: &PortalAlarmView) -> Result<String, RenderError> {
        self.staff("portal_alarm.html", view, true)
    }

    /// A recall started from the portal.
    pub fn portal_recall(&self, view: &PortalRecallView) -> Result<String, RenderError> {
        self.staff("portal_recall.html", view, true)
    }

    fn staff(&self, page: &'static str, view: &impl serde::Serialize, signed_in: bool) -> Result<String, RenderError> {
        self.render(page, context! { lang => "en", signed_in, ..minijinja::Value::from_serialize(view) })
    }

    /// The kiosk waiting for a scan.
    pub fn kiosk_idle(&self, view: &KioskIdleView) -> Result<String, RenderError> {
        self.render("kiosk.html", context! { t => view.lang.texts(), ..minijinja::Value::from_serialize(view) })
    }
}

/// Escapes text for HTML and SVG.
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

/// An embedded file under `/assets/`: (content type, body).
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "keten.css" => Some(("text/css; charset=utf-8", include_str!("../assets/keten.css"))),
        "plain.css" => Some(("text/css; charset=utf-8", include_str!("../assets/plain.css"))),
        "provenance.js" => Some(("text/javascript; charset=utf-8", include_str!("../assets/provenance.js"))),
        "kiosk.js" => Some(("text/javascript; charset=utf-8", include_str!("../assets/kiosk.js"))),
        _ => None,
    }
}

/// The Content-Security-Policy of every page: scripts, styles, images and requests from this
/// server only; inline SVG is markup, not script.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
