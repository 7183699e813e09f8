//! Scanner output: a symbology identifier (ISO/IEC 15424, `]C1`, `]e0`, `]d2`, `]Q3`, ...)
//! followed by the barcode message. GS1 symbologies carry unbracketed element strings with FNC1
//! as ASCII 29; EAN/UPC carry a bare GTIN; plain Data Matrix and QR Code may carry a Digital Link.

use std::fmt;

use crate::digital_link::{DigitalLink, DigitalLinkError};
use crate::element_string::{Element, ElementString, ElementStringError};

/// The symbologies this crate reads, by symbology identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Symbology {
    /// `]C1`: GS1-128.
    Gs1Code128,
    /// `]e0`: GS1 DataBar and GS1 Composite.
    Gs1DataBar,
    /// `]d2`: GS1 DataMatrix.
    Gs1DataMatrix,
    /// `]Q3`: GS1 QR Code.
    Gs1QrCode,
    /// `]J1`: GS1 DotCode.
    Gs1DotCode,
    /// `]E0`: EAN-13 and UPC-A, 13 digits.
    Ean13,
    /// `]E4`: EAN-8, 8 digits.
    Ean8,
    /// `]d1`: Data Matrix without FNC1 (a Digital Link URI).
    DataMatrix,
    /// `]Q1`: QR Code without FNC1 (a Digital Link URI).
    QrCode,
}

impl Symbology {
    const ALL: [Symbology; 9] = [
        Symbology::Gs1Code128,
        Symbology::Gs1DataBar,
        Symbology::Gs1DataMatrix,
        Symbology::Gs1QrCode,
        Symbology::Gs1DotCode,
        Symbology::Ean13,
        Symbology::Ean8,
        Symbology::DataMatrix,
        Symbology::QrCode,
    ];

    /// The three-character symbology identifier.
    pub fn identifier(self) -> &'static str {
        match self {
            Symbology::Gs1Code128 => "]C1",
            Symbology::Gs1DataBar => "]e0",
            Symbology::Gs1DataMatrix => "]d2",
            Symbology::Gs1QrCode => "]Q3",
            Symbology::Gs1DotCode => "]J1",
            Symbology::Ean13 => "]E0",
            Symbology::Ean8 => "]E4",
            Symbology::DataMatrix => "]d1",
            Symbology::QrCode => "]Q1",
        }
    }

    pub fn from_identifier(identifier: &str) -> Option<Symbology> {
        Symbology::ALL.into_iter().find(|symbology| symbology.identifier() == identifier)
    }

    fn carries_element_strings(self) -> bool {
        matches!(
            self,
            Symbology::Gs1Code128
                | Symbology::Gs1DataBar
                | Symbology::Gs1DataMatrix
                | Symbology::Gs1QrCode
                | Symbology::Gs1DotCode
        )
    }
}

impl fmt::Display for Symbology {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.identifier())
    }
}

/// Why scanner output cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("scan data must start with a symbology identifier such as ]C1")]
    MissingSymbologyIdentifier,
    #[error("symbology identifier {identifier:?} does not carry GS1 data")]
    UnsupportedSymbology { identifier: String },
    #[error("{symbology} data must be {expected} digits")]
    PlainGtin { symbology: Symbology, expected: usize },
    #[error("{symbology} data must be a GS1 Digital Link URI")]
    NotDigitalLink { symbology: Symbology },
    #[error("{symbology} cannot carry this element string")]
    CannotCarry { symbology: Symbology },
    #[error("{0}")]
    ElementString(#[from] ElementStringError),
    #[error("{0}")]
    DigitalLink(#[from] DigitalLinkError),
}

/// What one scan carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanData {
    ElementString { symbology: Symbology, element_string: ElementString },
    DigitalLink { symbology: Symbology, digital_link: DigitalLink },
}

impl ScanData {
    /// Reads scanner output such as `]C1010950600013435210ABC` or `]Q1https://id.gs1.org/01/…`.
    pub fn parse(text: &str) -> Result<ScanData, ScanError> {
        let identifier =
            text.get(..3).filter(|prefix| prefix.starts_with(']')).ok_or(ScanError::MissingSymbologyIdentifier)?;
        let symbology = Symbology::from_identifier(identifier)
            .ok_or_else(|| ScanError::UnsupportedSymbology { identifier: identifier.to_owned() })?;
        let message = &text[3..];
        if symbology.carries_element_strings() {
            let element_string = ElementString::parse_unbracketed(message)?;
            return Ok(ScanData::ElementString { symbology, element_string });
        }
        match symbology {
            Symbology::Ean13 | Symbology::Ean8 => {
                let expected = if symbology == Symbology::Ean13 { 13 } else { 8 };
                if message.len() != expected || !message.bytes().all(|byte| byte.is_ascii_digit()) {
                    return Err(ScanError::PlainGtin { symbology, expected });
                }
                let element = Element::new("01", &format!("{message:0>14}"))?;
                let element_string = ElementString::new(vec![element])?;
                Ok(ScanData::ElementString { symbology, element_string })
            }
            _ => {
                let is_web_uri = message.get(..8).is_some_and(|start| start.eq_ignore_ascii_case("https://"))
                    || message.get(..7).is_some_and(|start| start.eq_ignore_ascii_case("http://"));
                if !is_web_uri {
                    return Err(ScanError::NotDigitalLink { symbology });
                }
                let digital_link = DigitalLink::parse(message)?;
                Ok(ScanData::DigitalLink { symbology, digital_link })
            }
        }
    }

    pub fn symbology(&self) -> Symbology {
        match self {
            ScanData::ElementString { symbology, .. } | ScanData::DigitalLink { symbology, .. } => *symbology,
        }
    }

    /// The element string carried, converting a Digital Link.
    pub fn element_string(&self) -> ElementString {
        match self {
            ScanData::ElementString { element_string, .. } => element_string.clone(),
            ScanData::DigitalLink { digital_link, .. } => digital_link.to_element_string(),
        }
    }
}

impl ElementString {
    /// Scanner output for `symbology`: its identifier and the unbracketed message. EAN-13 and
    /// EAN-8 carry a lone GTIN of that length; plain Data Matrix and QR Code carry the canonical
    /// Digital Link.
    pub fn to_scan_data(&self, symbology: Symbology) -> Result<String, ScanError> {
        let identifier = symbology.identifier();
        if symbology.carries_element_strings() {
            return Ok(format!("{identifier}{}", self.to_unbracketed()));
        }
        match symbology {
            Symbology::Ean13 | Symbology::Ean8 => {
                let length = if symbology == Symbology::Ean13 { 13 } else { 8 };
                let [element] = self.elements() else {
                    return Err(ScanError::CannotCarry { symbology });
                };
                let padding = 14 - length;
                let fits = element.code() == "01" && element.value().bytes().take(padding).all(|byte| byte == b'0');
                match fits {
                    true => Ok(format!("{identifier}{}", &element.value()[padding..])),
                    false => Err(ScanError::CannotCarry { symbology }),
                }
            }
            _ => {
                let digital_link = DigitalLink::from_element_string(self)?;
                Ok(format!("{identifier}{digital_link}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element_string::GROUP_SEPARATOR as GS;

    fn check(input: &str, expected: Result<&str, &str>) {
        let actual = ScanData::parse(input)
            .map(|scan| format!("{} {}", scan.symbology(), scan.element_string()))
            .map_err(|error| error.to_string());
        assert_eq!(actual, expected.map(str::to_owned).map_err(str::to_owned), "{input:?}");
    }

    #[test]
    fn reads_gs1_symbologies() {
        check(&format!("]C1010950600013435210ABC{GS}17261231"), Ok("]C1 (01)09506000134352(10)ABC(17)261231"));
        check("]e00109506000134352", Ok("]e0 (01)09506000134352"));
        check(&format!("]d2{GS}0109506000134352"), Ok("]d2 (01)09506000134352"));
        check("]Q30109506000134352", Ok("]Q3 (01)09506000134352"));
        check("]E09506000134352", Ok("]E0 (01)09506000134352"));
        check("]E495010014", Ok("]E4 (01)00000095010014"));
        check("]Q1https://id.gs1.org/01/09506000134352/10/ABC", Ok("]Q1 (01)09506000134352(10)ABC"));
        check("0109506000134352", Err("scan data must start with a symbology identifier such as ]C1"));
        check("]A0123", Err("symbology identifier \"]A0\" does not carry GS1 data"));
        check("]E0950600013435", Err("]E0 data must be 13 digits"));
        check("]E09506000134353", Err("(01) check digit at position 13 should be 2, found 3"));
        check("]Q1hello", Err("]Q1 data must be a GS1 Digital Link URI"));
        check("]C1", Err("element string is empty"));
        check("]C", Err("scan data must start with a symbology identifier such as ]C1"));
    }

    #[test]
    fn writes_scan_data() {
        let element_string = ElementString::parse_bracketed("(01)09506000134352(10)ABC(17)261231").unwrap();
        assert_eq!(
            element_string.to_scan_data(Symbology::Gs1DataMatrix).unwrap(),
            format!("]d2010950600013435210ABC{GS}17261231")
        );
        assert_eq!(
            element_string.to_scan_data(Symbology::QrCode).unwrap(),
            "]Q1https://id.gs1.org/01/09506000134352/10/ABC?17=261231"
        );
        assert!(element_string.to_scan_data(Symbology::Ean13).is_err());
        let gtin_only = ElementString::parse_bracketed("(01)09506000134352").unwrap();
        assert_eq!(gtin_only.to_scan_data(Symbology::Ean13).unwrap(), "]E09506000134352");
        assert!(gtin_only.to_scan_data(Symbology::Ean8).is_err());
    }
}

/// The form a scan arrived in (see [`read_any`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScannedForm {
    /// Scanner output with a symbology identifier (`]C1…`, `]Q3…`).
    ScannerOutput(Symbology),
    /// A GS1 Digital Link URI, typed or from a camera app.
    DigitalLink,
    /// Human-readable bracketed element string, `(01)…(10)…`.
    Bracketed,
    /// Unbracketed element string with FNC1 as GS (ASCII 29).
    Unbracketed,
    /// A bare GTIN-8/12/13/14 (a keyboard-wedge scanner without symbology identifiers).
    PlainGtin,
}

impl ScannedForm {
    pub fn name(self) -> &'static str {
        match self {
            ScannedForm::ScannerOutput(_) => "scanner_output",
            ScannedForm::DigitalLink => "digital_link",
            ScannedForm::Bracketed => "bracketed_element_string",
            ScannedForm::Unbracketed => "unbracketed_element_string",
            ScannedForm::PlainGtin => "plain_gtin",
        }
    }
}

/// Reads whatever a scanner, a phone or a person produced: scanner output with a symbology
/// identifier, a Digital Link URI, a bracketed or unbracketed element string, or a bare GTIN.
/// Answers the form and the element string (a Digital Link's primary key first).
pub fn read_any(text: &str) -> Result<(ScannedForm, ElementString), ScanError> {
    let text = text.trim_matches(|character: char| character == '\r' || character == '\n' || character == ' ');
    if text.starts_with(']') {
        let scan = ScanData::parse(text)?;
        return Ok((ScannedForm::ScannerOutput(scan.symbology()), scan.element_string()));
    }
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return Ok((ScannedForm::DigitalLink, DigitalLink::parse(text)?.to_element_string()));
    }
    if text.starts_with('(') {
        return Ok((ScannedForm::Bracketed, ElementString::parse_bracketed(text)?));
    }
    let digits = text.bytes().all(|byte| byte.is_ascii_digit());
    if matches!(text.len(), 8 | 12 | 13) && digits {
        let element = Element::new("01", &format!("{text:0>14}"))?;
        return Ok((ScannedForm::PlainGtin, ElementString::new(vec![element])?));
    }
    // 14 digits: a GTIN-14 (an ITF-14 read without its symbology identifier) when its check
    // digit holds; otherwise an element string if they are one, else the GTIN's error.
    if text.len() == 14 && digits {
        return match Element::new("01", text) {
            Ok(element) => Ok((ScannedForm::PlainGtin, ElementString::new(vec![element])?)),
            Err(gtin_error) => match ElementString::parse_unbracketed(text) {
                Ok(element_string) => Ok((ScannedForm::Unbracketed, element_string)),
                Err(_) => Err(gtin_error.into()),
            },
        };
    }
    Ok((ScannedForm::Unbracketed, ElementString::parse_unbracketed(text)?))
}

#[cfg(test)]
mod read_any_tests {
    use super::*;

    fn check(input: &str, form: ScannedForm, bracketed: &str) {
        let (found_form, element_string) = read_any(input).unwrap();
        assert_eq!((found_form, element_string.to_bracketed()), (form, bracketed.to_owned()), "{input}");
    }

    #[test]
    fn every_form_is_read() {
        check(
            "]C1010950600013435210ABC123",
            ScannedForm::ScannerOutput(Symbology::Gs1Code128),
            "(01)09506000134352(10)ABC123",
        );
        check(
            "https://id.gs1.org/01/09506000134352/10/ABC123?17=261231",
            ScannedForm::DigitalLink,
            "(01)09506000134352(10)ABC123(17)261231",
        );
        check(
            "(01)09506000134352(17)261231(10)ABC123",
            ScannedForm::Bracketed,
            "(01)09506000134352(17)261231(10)ABC123",
        );
        check("0109506000134352\u{1d}10ABC123\n", ScannedForm::Unbracketed, "(01)09506000134352(10)ABC123");
        check("9506000134352", ScannedForm::PlainGtin, "(01)09506000134352");
        check("09506000134352", ScannedForm::PlainGtin, "(01)09506000134352");
        check("19506000134359", ScannedForm::PlainGtin, "(01)19506000134359");
        // 14 digits whose check digit fails are read as an element string, which refuses them.
        let wrong = read_any("09506000134353").unwrap_err().to_string();
        assert!(wrong.contains("check digit"), "the GTIN's error: {wrong}");
        assert!(read_any("9506000134353").is_err(), "a wrong check digit is caught");
        assert!(read_any("]X9abc").is_err());
    }
}
