//! ACS3-HMAC-SHA256, the request signature of Alibaba Cloud's management APIs, as the
//! official SDK computes it (docs/CONTRACT.md#signed-requests).
//!
//! The server signs over the `SignedHeaders` list it is given, never a fixed set, because
//! HTTP libraries add unsigned headers after signing.

use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The algorithm name at the start of the `Authorization` header.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";
/// How far `x-acs-date` may be from the server's clock.
pub const CLOCK_WINDOW_SECONDS: i64 = 15 * 60;
/// SHA-256 of the empty body.
pub const EMPTY_PAYLOAD_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const RFC3986_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The parts of an `Authorization: ACS3-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acs3Authorization {
    pub access_key_id: String,
    /// Lower-case header names in the order given.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Acs3Error {
    #[error("the Authorization header is not an ACS3-HMAC-SHA256 header")]
    NotAcs3,
    #[error("the Authorization header lacks {0}")]
    MissingPart(&'static str),
}

/// Parses `ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..`.
pub fn parse_authorization(header: &str) -> Result<Acs3Authorization, Acs3Error> {
    let rest = header.trim().strip_prefix(ALGORITHM).ok_or(Acs3Error::NotAcs3)?;
    if !rest.starts_with(' ') {
        return Err(Acs3Error::NotAcs3);
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.trim().split(',') {
        let (name, value) = part.trim().split_once('=').unwrap_or((part.trim(), ""));
        match name {
            "Credential" => credential = Some(value.to_string()),
            "SignedHeaders" => {
                signed_headers =
                    Some(value.split(';').map(|name| name.trim().to_ascii_lowercase()).filter(|name| !name.is_empty()).collect::<Vec<_>>())
            }
            "Signature" => signature = Some(value.to_string()),
            _ => {}
        }
    }
    Ok(Acs3Authorization {
        access_key_id: credential.filter(|value| !value.is_empty()).ok_or(Acs3Error::MissingPart("Credential"))?,
        signed_headers: signed_headers.filter(|names| !names.is_empty()).ok_or(Acs3Error::MissingPart("SignedHeaders"))?,
        signature: signature.filter(|value| !value.is_empty()).ok_or(Acs3Error::MissingPart("Signature"))?,
    })
}

fn form_decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// The canonical query: form-decoded, sorted by key, re-encoded with RFC 3986 rules.
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(key), form_decode(value))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(key, value)| format!("{}={}", utf8_percent_encode(key, RFC3986_ENCODE), utf8_percent_encode(value, RFC3986_ENCODE)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Builds the canonical request. `headers` are all request headers as (name, value);
/// only those named in `signed_headers` are used.
pub fn canonical_request(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &[(String, String)],
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    let mut sorted_names: Vec<&String> = signed_headers.iter().collect();
    sorted_names.sort();
    sorted_names.dedup();
    let mut canonical_headers = String::new();
    for name in &sorted_names {
        let mut values: Vec<&str> =
            headers.iter().filter(|(header_name, _)| header_name.eq_ignore_ascii_case(name)).map(|(_, value)| value.trim()).collect();
        values.sort_unstable();
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    let signed_list = sorted_names.iter().map(|name| name.as_str()).collect::<Vec<_>>().join(";");
    format!("{method}\n{raw_path}\n{}\n{canonical_headers}\n{signed_list}\n{payload_hash}", canonical_query(raw_query))
}

/// `ACS3-HMAC-SHA256\n` + hex SHA-256 of the canonical request.
pub fn string_to_sign(canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())))
}

/// Hex HMAC-SHA256 of the string to sign under the AccessKey secret.
pub fn signature(access_key_secret: &str, string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(access_key_secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time comparison of the expected and presented hex signatures.
pub fn signatures_match(expected: &str, presented: &str) -> bool {
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.to_ascii_lowercase().as_bytes()))
}

/// Hex SHA-256 of a body, to compare with `x-acs-content-sha256`.
pub fn payload_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Whether `x-acs-date` (Unix seconds) is within the clock window of `now`.
pub fn within_clock_window(request_time: i64, now: i64) -> bool {
    (request_time - now).abs() <= CLOCK_WINDOW_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_list(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    #[test]
    fn reproduces_the_captured_list_api_keys_signature() {
        let headers = header_list(&[
            ("accept", "application/json"),
            ("host", "127.0.0.1:28741"),
            ("user-agent", "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"),
            ("x-acs-action", "ListApiKeys"),
            ("x-acs-content-sha256", EMPTY_PAYLOAD_SHA256),
            ("x-acs-credentials-provider", "static_ak"),
            ("x-acs-date", "2026-11-27T10:16:45Z"),
            ("x-acs-signature-nonce", "55db9d8ec4ddee9791f5cd965fb354cc"),
            ("x-acs-version", "2026-02-10"),
            ("content-length", "0"),
        ]);
        let signed: Vec<String> = "accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version"
            .split(';')
            .map(String::from)
            .collect();
        let request = canonical_request(
            "GET",
            "/modelstudio/apikeys",
            "workspaceId=llm-ws123&maxResults=10&nextToken=tok&order=desc&orderBy=gmtCreate",
            &headers,
            &signed,
            EMPTY_PAYLOAD_SHA256,
        );
        assert!(request.contains("\nmaxResults=10&nextToken=tok&order=desc&orderBy=gmtCreate&workspaceId=llm-ws123\n"));
        assert_eq!(
            signature("TEST_SECRET_123", &string_to_sign(&request)),
            "f87ba8859183e905330565ae350abb7b0a3a4441ace28b631b5d5b4e2b4650b3"
        );
    }

    #[test]
    fn canonical_query_uses_rfc3986_encoding() {
        assert_eq!(
            canonical_query("description=demo+key+~%2A%2B%2F+%E4%B8%AD%E6%96%87&workspaceId=llm-ws123"),
            "description=demo%20key%20~%2A%2B%2F%20%E4%B8%AD%E6%96%87&workspaceId=llm-ws123"
        );
        assert_eq!(canonical_query("b=&a"), "a=&b=");
    }

    #[test]
    fn parses_the_authorization_header() {
        let parsed = parse_authorization("ACS3-HMAC-SHA256 Credential=LTAI_TEST_AK,SignedHeaders=accept;Host,Signature=abc").unwrap();
        assert_eq!(parsed.access_key_id, "LTAI_TEST_AK");
        assert_eq!(parsed.signed_headers, ["accept", "host"]);
        assert_eq!(parsed.signature, "abc");
        assert_eq!(parse_authorization("Bearer x"), Err(Acs3Error::NotAcs3));
        assert_eq!(parse_authorization("ACS3-HMAC-SHA256 Credential=a,Signature=b"), Err(Acs3Error::MissingPart("SignedHeaders")));
    }

    #[test]
    fn payload_hash_of_the_captured_create_body() {
        let body = "auth.accessIps.1=10.0.0.0%2F8&auth.accessIps.2=192.168.1.1&auth.modelAccessScope.accessibleModels.1=qwen-plus&auth.modelAccessScope.accessibleModels.2=qwen-max&auth.modelAccessScope.allowAllModels=False&auth.type=Custom";
        assert_eq!(payload_sha256(body.as_bytes()), "f75bbdaed79f201eef9f19e5b820856cd5ac896d269f04f077fe460ab13fcb54");
    }
}

#[cfg(test)]
mod captured_create_request {
    use super::*;

    #[test]
    fn reproduces_the_captured_create_api_key_signature() {
        let headers: Vec<(String, String)> = [
            ("host", "127.0.0.1:28741"),
            ("x-acs-version", "2026-02-10"),
            ("x-acs-action", "CreateApiKey"),
            ("user-agent", "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"),
            ("x-acs-date", "2026-11-27T10:16:45Z"),
            ("x-acs-signature-nonce", "de74b4a45d8136a7f56bee0ad5e1b0f7"),
            ("accept", "application/json"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-acs-content-sha256", "f75bbdaed79f201eef9f19e5b820856cd5ac896d269f04f077fe460ab13fcb54"),
            ("x-acs-credentials-provider", "static_ak"),
        ]
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
        let authorization = parse_authorization("ACS3-HMAC-SHA256 Credential=LTAI_TEST_AK,SignedHeaders=accept;content-type;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=d823d38070ccba9e73f16e6888081dbfbe863cae3b67a78a9e6c7db63a4729c5").unwrap();
        let request = canonical_request(
            "POST",
            "/modelstudio/apikeys",
            "description=demo+key+~%2A%2B%2F+%E4%B8%AD%E6%96%87&workspaceId=llm-ws123",
            &headers,
            &authorization.signed_headers,
            "f75bbdaed79f201eef9f19e5b820856cd5ac896d269f04f077fe460ab13fcb54",
        );
        let expected = signature("TEST_SECRET_123", &string_to_sign(&request));
        assert!(signatures_match(&expected, &authorization.signature));
    }
}
