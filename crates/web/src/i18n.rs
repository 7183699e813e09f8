//! The pages' two languages, English and Dutch: the choice from `Accept-Language` or `?lang=`,
//! and every text the templates show, by key. Each key has both languages (a test checks it).

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Nl,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Nl];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Nl => "nl",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.split(['-', '_']).next().unwrap_or("").trim();
        if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else if primary.eq_ignore_ascii_case("nl") {
            Some(Lang::Nl)
        } else {
            None
        }
    }

    /// The language of `?lang=` if given and known, else the best of `Accept-Language`
    /// (RFC 9110 §12.5.4: highest weight first, ties in order), else English.
    pub fn choose(query: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(lang) = query.and_then(Lang::parse) {
            return lang;
        }
        let mut best: Option<(u32, Lang)> = None;
        for range in accept_language.unwrap_or("").split(',').take(ACCEPT_LANGUAGE_RANGES_MAX) {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let weight = parts
                .find_map(|parameter| parameter.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f64>().ok())
                .map_or(1000, |q| (q.clamp(0.0, 1.0) * 1000.0) as u32);
            if let Some(lang) = Lang::parse(tag)
                && weight > 0
                && best.is_none_or(|(best_weight, _)| weight > best_weight)
            {
                best = Some((weight, lang));
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }

    /// Every text of the pages in this language, by key.
    pub fn texts(self) -> BTreeMap<&'static str, &'static str> {
        TEXTS.iter().map(|(key, en, nl)| (*key, if self == Lang::En { *en } else { *nl })).collect()
    }

    /// A number with one decimal, as the language writes it (a decimal comma in Dutch); never
    /// `-0.0`.
    pub fn one_decimal(self, value: f64) -> String {
        let text = format!("{:.1}", value + 0.0);
        let text = if text == "-0.0" { "0.0".to_owned() } else { text };
        match self {
            Lang::En => text,
            Lang::Nl => text.replace('.', ","),
        }
    }

    pub fn text(self, key: &str) -> Option<&'static str> {
        TEXTS.iter().find(|(known, ..)| *known == key).map(|(_, en, nl)| if self == Lang::En { *en } else { *nl })
    }

    pub(crate) fn month(self, month: i8) -> &'static str {
        const EN: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        const NL: [&str; 12] = ["jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"];
        let index = (month.clamp(1, 12) - 1) as usize;
        if self == Lang::En { EN[index] } else { NL[index] }
    }
}

/// The most language ranges of an `Accept-Language` header looked at.
pub const ACCEPT_LANGUAGE_RANGES_MAX: usize = 32;

/// (key, English, Dutch).
const TEXTS: &[(&str, &str, &str)] = &[
    ("skip", "Skip to the journey", "Ga naar de reis"),
    ("brand", "Brand", "Merk"),
    ("gtin", "GTIN", "GTIN"),
    ("lot", "Lot", "Partij"),
    ("serial", "Serial", "Serienummer"),
    ("expiry", "Use by", "Te gebruiken tot"),
    ("kept", "Kept", "Bewaard"),
    ("class_frozen", "frozen", "diepvries"),
    ("class_chilled", "chilled", "gekoeld"),
    ("class_ambient", "at room temperature", "op kamertemperatuur"),
    ("class_pharma", "at 2–8 °C (medicine)", "bij 2–8 °C (geneesmiddel)"),
    ("class_custom", "within its own temperature range", "binnen het eigen temperatuurbereik"),
    ("private_place", "A partner's site", "Een locatie van een partner"),
    ("photo", "Photo of the product to come", "Foto van het product volgt"),
    ("nutrition", "Nutrition per 100 g", "Voedingswaarde per 100 g"),
    ("energy_kj", "Energy (kJ)", "Energie (kJ)"),
    ("energy_kcal", "Energy (kcal)", "Energie (kcal)"),
    ("fat", "Fat (g)", "Vetten (g)"),
    ("saturates", "of which saturates (g)", "waarvan verzadigd (g)"),
    ("carbohydrate", "Carbohydrate (g)", "Koolhydraten (g)"),
    ("sugars", "of which sugars (g)", "waarvan suikers (g)"),
    ("protein", "Protein (g)", "Eiwitten (g)"),
    ("salt", "Salt (g)", "Zout (g)"),
    ("allergens", "Allergens", "Allergenen"),
    ("origin", "Origin", "Herkomst"),
    ("from", "From", "Van"),
    ("farmer", "Farmer", "Boer"),
    ("country", "Country", "Land"),
    ("place", "Place", "Plaats"),
    ("harvested", "Harvested / caught", "Geoogst / gevangen"),
    ("map", "Map of the journey", "Kaart van de reis"),
    ("journey", "Journey", "Reis"),
    (
        "journey_none",
        "No steps of this item's journey are recorded yet.",
        "Er zijn nog geen stappen van de reis van dit product vastgelegd.",
    ),
    ("in_transit", "On the road", "Onderweg"),
    ("hours", "h", "u"),
    ("range_to", "to", "tot"),
    ("range_at_least", "at least", "minimaal"),
    ("range_at_most", "at most", "maximaal"),
    ("range_none", "none", "geen"),
    ("hours_here", "hours here", "uur hier"),
    ("cold_hours", "Hours in cold storage", "Uren in de koeling"),
    ("cold", "cold", "koel"),
    ("arrived", "arrived", "aangekomen"),
    ("left", "left", "vertrokken"),
    ("temperature", "Temperature", "Temperatuur"),
    (
        "temperature_none",
        "No temperatures were measured on this item's way.",
        "Onderweg zijn geen temperaturen gemeten.",
    ),
    ("range", "Allowed range", "Toegestaan bereik"),
    ("measured", "Measured", "Gemeten"),
    ("excursions", "Times out of range", "Keren buiten bereik"),
    ("minutes_out", "minutes out of range", "minuten buiten bereik"),
    ("shelf_life", "Shelf life left", "Resterende houdbaarheid"),
    ("days_left", "days left", "dagen over"),
    ("shelf_life_from", "from the temperatures measured on its way", "berekend uit de temperaturen onderweg"),
    ("at", "at", "bij"),
    ("chart", "Temperature along the journey", "Temperatuur tijdens de reis"),
    ("certifications", "Certifications and checks", "Certificaten en controles"),
    ("certifications_none", "No certifications recorded.", "Geen certificaten vastgelegd."),
    ("check_temperature_ok", "Temperature kept within range", "Temperatuur binnen bereik gebleven"),
    ("check_temperature_failed", "Temperature left its range", "Temperatuur buiten bereik geweest"),
    ("check_recall_ok", "Not recalled", "Niet teruggeroepen"),
    ("check_recall_failed", "Recalled", "Teruggeroepen"),
    ("recalled_title", "Recalled — do not eat or use", "Teruggeroepen — niet eten of gebruiken"),
    (
        "recalled_text",
        "This lot has been recalled by its brand. Return it to the store or pickup point.",
        "Deze partij is door het merk teruggeroepen. Breng het terug naar de winkel of het afhaalpunt.",
    ),
    ("check_recall_input_failed", "Made from a recalled lot", "Gemaakt van een teruggeroepen partij"),
    (
        "recalled_input_title",
        "Made from a recalled lot — do not eat or use",
        "Gemaakt van een teruggeroepen partij — niet eten of gebruiken",
    ),
    (
        "recalled_input_text",
        "This lot was made from a lot that its maker has recalled. Return it to the store or pickup point.",
        "Deze partij is gemaakt van een partij die de maker heeft teruggeroepen. Breng het terug naar de winkel of het afhaalpunt.",
    ),
    ("recalled_input_lot", "lot", "partij"),
    (
        "recalled_lots_title",
        "Some lots of this product are recalled",
        "Sommige partijen van dit product zijn teruggeroepen",
    ),
    (
        "recalled_lots_text",
        "Check the lot number on the pack. Do not eat or use a pack of a lot below: return it to the store or pickup point.",
        "Controleer het partijnummer op de verpakking. Eet of gebruik geen verpakking van een partij hieronder: breng het terug naar de winkel of het afhaalpunt.",
    ),
    ("recalled_lots_more", "and more lots", "en meer partijen"),
    ("verified", "Verified", "Geverifieerd"),
    ("verify_title", "Verification", "Verificatie"),
    (
        "verify_intro",
        "Your browser checks each step against Keten's public log: the record's fields, its place in the log and the log's signature.",
        "Uw browser controleert elke stap met het openbare logboek van Keten: de velden van het record, de plek in het logboek en de handtekening van het logboek.",
    ),
    ("verify_pending", "Checking…", "Bezig met controleren…"),
    (
        "verify_nojs",
        "Verification needs JavaScript; everything else on this page works without it.",
        "Voor de verificatie is JavaScript nodig; de rest van deze pagina werkt zonder.",
    ),
    (
        "verify_ok",
        "Verified: each logged step below is in the public log, unchanged.",
        "Geverifieerd: elke vastgelegde stap hieronder staat ongewijzigd in het openbare logboek.",
    ),
    (
        "verify_incomplete",
        "Not every step could be checked just now; reload the page to try again.",
        "Niet elke stap kon nu worden gecontroleerd; laad de pagina opnieuw om het nog eens te proberen.",
    ),
    ("not_logged", "not in the log", "niet in het logboek"),
    (
        "verify_failed",
        "Not verified: a step does not match the public log.",
        "Niet geverifieerd: een stap klopt niet met het openbare logboek.",
    ),
    (
        "verify_unavailable",
        "Verification is not available in this browser.",
        "Verificatie is niet beschikbaar in deze browser.",
    ),
    ("verify_nothing", "No logged steps to verify yet.", "Nog geen vastgelegde stappen om te verifiëren."),
    ("digital_link", "GS1 Digital Link", "GS1 Digital Link"),
    ("qr", "QR code of this item", "QR-code van dit product"),
    ("language", "Language", "Taal"),
    ("large", "Large text, high contrast", "Grote letters, hoog contrast"),
    ("normal", "Normal view", "Normale weergave"),
    ("kiosk_scan", "Scan a product", "Scan een product"),
    (
        "kiosk_hint",
        "Hold a product's barcode or QR code to the scanner.",
        "Houd de barcode of QR-code van een product voor de scanner.",
    ),
    (
        "kiosk_unknown",
        "This code is not known here. Try another product.",
        "Deze code is hier niet bekend. Probeer een ander product.",
    ),
    ("code_unknown_title", "Not known here", "Hier niet bekend"),
    (
        "code_invalid",
        "This code cannot be read: it may be misprinted or damaged.",
        "Deze code kan niet worden gelezen: misschien is hij verkeerd gedrukt of beschadigd.",
    ),
    ("code_invalid_title", "Code not readable", "Code niet leesbaar"),
    (
        "footer",
        "Keten — every step recorded, nothing quietly rewritten.",
        "Keten — elke stap vastgelegd, niets stilletjes herschreven.",
    ),
    ("step_commissioning", "Harvested and packed", "Geoogst en verpakt"),
    ("step_entered_network", "Entered the network", "Het netwerk binnengekomen"),
    ("step_shipping", "Shipped", "Verzonden"),
    ("step_receiving", "Received", "Ontvangen"),
    ("step_departing", "Departed", "Vertrokken"),
    ("step_arriving", "Arrived", "Aangekomen"),
    ("step_stocking", "On the shelf", "In het schap"),
    ("step_storing", "Stored", "Opgeslagen"),
    ("step_picking", "Picked", "Verzameld"),
    ("step_packing", "Packed", "Ingepakt"),
    ("step_loading", "Loaded", "Geladen"),
    ("step_retail_selling", "Sold", "Verkocht"),
    ("step_sensor_reporting", "Temperature checked", "Temperatuur gecontroleerd"),
    ("step_holding", "Held back", "Tegengehouden"),
    ("step_inspecting", "Inspected", "Geïnspecteerd"),
    ("step_transforming", "Processed", "Verwerkt"),
    ("step_other", "Recorded", "Vastgelegd"),
];

/// The text key of a CBV business step (`commissioning`, or its CBV URI forms); any other
/// value (a company's own step) is "Recorded".
pub fn step_key(step: &str) -> String {
    let name = ["https://ref.gs1.org/cbv/BizStep-", "https://gs1.org/voc/BizStep-", "urn:epcglobal:cbv:bizstep:"]
        .iter()
        .find_map(|prefix| step.strip_prefix(prefix))
        .unwrap_or(step);
    let key = format!("step_{name}");
    if TEXTS.iter().any(|(known, ..)| *known == key) { key } else { "step_other".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_take_the_languages_decimal_mark_and_no_minus_zero() {
        assert_eq!(Lang::En.one_decimal(46.04), "46.0");
        assert_eq!(Lang::Nl.one_decimal(46.04), "46,0");
        assert_eq!(Lang::Nl.one_decimal(-0.04), "0,0");
        assert_eq!(Lang::En.one_decimal(-1.25), "-1.2");
    }

    #[test]
    fn every_text_has_both_languages_and_keys_are_unique() {
        for (index, (key, en, nl)) in TEXTS.iter().enumerate() {
            assert!(!en.is_empty() && !nl.is_empty(), "{key}");
            assert!(TEXTS[..index].iter().all(|(earlier, ..)| earlier != key), "{key} twice");
        }
    }

    #[test]
    fn accept_language_picks_the_highest_weight() {
        assert_eq!(Lang::choose(None, Some("nl-NL,nl;q=0.9,en;q=0.8")), Lang::Nl);
        assert_eq!(Lang::choose(None, Some("de-DE,en;q=0.5,nl;q=0.7")), Lang::Nl);
        assert_eq!(Lang::choose(None, Some("nl;q=0,en")), Lang::En);
        assert_eq!(Lang::choose(None, Some("fr")), Lang::En);
        assert_eq!(Lang::choose(None, None), Lang::En);
        assert_eq!(Lang::choose(Some("nl"), Some("en")), Lang::Nl);
        assert_eq!(Lang::choose(Some("xx"), Some("nl-BE")), Lang::Nl);
    }

    #[test]
    fn steps_have_labels() {
        assert_eq!(step_key("commissioning"), "step_commissioning");
        assert_eq!(step_key("https://ref.gs1.org/cbv/BizStep-receiving"), "step_receiving");
        assert_eq!(step_key("urn:epcglobal:cbv:bizstep:shipping"), "step_shipping");
        assert_eq!(step_key("something_new"), "step_other");
        assert_eq!(step_key("https://example.com/steps/pre-receiving"), "step_other", "only the CBV's own names");
    }
}
