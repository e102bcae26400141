//! `application/x-www-form-urlencoded` bodies and query strings, read strictly: the
//! Alibaba Cloud SDKs send the management API's parameters this way (keys flattened with
//! dots, lists 1-based), and the console's forms too. What the fields mean is the server's
//! business; here is only how the text becomes `name=value` pairs.

/// The first piece of a form that is not `name=value` with valid percent-encoding and
/// UTF-8 and a non-empty name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the form is malformed at field {field}")]
pub struct MalformedFormField {
    /// 1-based, counting every `&`-separated piece (empty pieces too), so that it points
    /// at the same place in the text whatever was skipped.
    pub field: usize,
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes one component: `+` is a space, `%XX` must be valid hex, the result valid UTF-8.
pub fn decode_component(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut output = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => output.push(b' '),
            b'%' => {
                let high = hex_value(*bytes.get(index + 1)?)?;
                let low = hex_value(*bytes.get(index + 2)?)?;
                output.push(high << 4 | low);
                index += 2;
            }
            other => output.push(other),
        }
        index += 1;
    }
    String::from_utf8(output).ok()
}

/// The decoded `name=value` pairs of a body or query string, in wire order. Empty pieces
/// (`a=1&&b=2`) are skipped; a piece without `=` is a name with an empty value.
pub fn parse_form(text: &str) -> Result<Vec<(String, String)>, MalformedFormField> {
    let mut pairs = Vec::new();
    for (position, piece) in text.split('&').enumerate() {
        if piece.is_empty() {
            continue;
        }
        let (raw_key, raw_value) = piece.split_once('=').unwrap_or((piece, ""));
        match (decode_component(raw_key), decode_component(raw_value)) {
            (Some(key), Some(value)) if !key.is_empty() => pairs.push((key, value)),
            _ => return Err(MalformedFormField { field: position + 1 }),
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    #[test]
    fn decodes_the_sdk_form_in_wire_order() {
        assert_eq!(
            parse_form("auth.accessIps.2=192.168.1.1&&auth.accessIps.1=10.0.0.0%2F8&description=demo+key+%E4%B8%AD&flag"),
            Ok(pairs(&[
                ("auth.accessIps.2", "192.168.1.1"),
                ("auth.accessIps.1", "10.0.0.0/8"),
                ("description", "demo key 中"),
                ("flag", "")
            ]))
        );
        assert_eq!(parse_form(""), Ok(vec![]));
        assert_eq!(parse_form("a=b=c"), Ok(pairs(&[("a", "b=c")])));
    }

    #[test]
    fn refuses_malformed_encoding_and_names_the_field() {
        for (bad, field) in [("a=%zz", 1), ("a=1&b=%E4%B8", 2), ("a=1&&=value", 3), ("a=%4", 1), ("%=1", 1), ("a=%", 1)] {
            assert_eq!(parse_form(bad), Err(MalformedFormField { field }), "{bad}");
        }
    }
}
