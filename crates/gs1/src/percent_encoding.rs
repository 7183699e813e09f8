//! Percent-encoding (RFC 3986 §2.1) for Digital Link path segments and query values, and the
//! smaller escape set of EPC URNs (GS1 Tag Data Standard).

/// Whether `byte` is an RFC 3986 unreserved character, never encoded.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)
}

/// Encodes every byte but the unreserved ones, with upper-case hex digits.
pub(crate) fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if is_unreserved(byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Decodes `%XX` escapes. The error is the position of a malformed escape, or of the first
/// escape if the decoded bytes are not UTF-8.
pub(crate) fn decode(text: &str) -> Result<String, usize> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let pair = bytes.get(index + 1..index + 3).ok_or(index)?;
            let high = hex_value(pair[0]).ok_or(index)?;
            let low = hex_value(pair[1]).ok_or(index)?;
            decoded.push(high * 16 + low);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| text.find('%').unwrap_or(0))
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The characters the EPC URI escapes in serials and other CSET 82 components (TDS §6.4 table).
const EPC_ESCAPED: &[u8] = b"\"%&/<>?";

/// Escapes a CSET 82 component for an EPC URN.
pub(crate) fn encode_epc(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if EPC_ESCAPED.contains(&byte) {
            encoded.push_str(&format!("%{byte:02X}"));
        } else {
            encoded.push(char::from(byte));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(encode("AB/c d%"), "AB%2Fc%20d%25");
        assert_eq!(decode("AB%2fc%20d%25"), Ok("AB/c d%".to_owned()));
        assert_eq!(decode("A%2"), Err(1));
        assert_eq!(decode("A%G0"), Err(1));
        assert_eq!(decode("%FF"), Err(0));
        assert_eq!(decode("%C3%A9"), Ok("é".to_owned()));
        assert_eq!(encode_epc("a/b\"c%"), "a%2Fb%22c%25");
    }
}
