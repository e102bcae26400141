//! The request headers `/auth/verify` reads, found in one pass over the request's headers.
//!
//! `/auth/verify` sits on another gateway's hot path and must stay close to a bare hyper
//! server (docs/PERFORMANCE.md). Each `HeaderMap::get` hashes the name and probes the map;
//! a verification asked about eight names that way, most of them absent, and the lookups
//! were a sixth of its instructions. A proxy sends a handful of headers, so one walk over
//! them, comparing names, costs less than the lookups did. Each field holds the first value
//! of its header, as `HeaderMap::get` would give.

use axum::http::{header, HeaderMap, HeaderValue};

/// The headers of one `/auth/verify` request that its decision reads.
#[derive(Debug, Default, Clone, Copy)]
pub struct VerifyHeaders<'a> {
    pub authorization: Option<&'a HeaderValue>,
    pub x_api_key: Option<&'a HeaderValue>,
    pub x_dashscope_workspace: Option<&'a HeaderValue>,
    pub x_forwarded_for: Option<&'a HeaderValue>,
    pub x_keygate_model: Option<&'a HeaderValue>,
    pub x_keygate_identity: Option<&'a HeaderValue>,
    pub x_original_uri: Option<&'a HeaderValue>,
    pub content_length: Option<&'a HeaderValue>,
    pub has_transfer_encoding: bool,
}

impl<'a> VerifyHeaders<'a> {
    /// Walks `headers` once.
    pub fn of(headers: &'a HeaderMap) -> Self {
        let mut found = VerifyHeaders::default();
        for (name, value) in headers {
            // The standard names compare as the `http` crate's own constants (no string
            // comparison); the others by their lower-case text, which is how a
            // `HeaderName` holds them.
            let slot = if name == header::AUTHORIZATION {
                &mut found.authorization
            } else if name == header::CONTENT_LENGTH {
                &mut found.content_length
            } else if name == header::TRANSFER_ENCODING {
                found.has_transfer_encoding = true;
                continue;
            } else {
                match name.as_str() {
                    "x-api-key" => &mut found.x_api_key,
                    "x-dashscope-workspace" => &mut found.x_dashscope_workspace,
                    "x-forwarded-for" => &mut found.x_forwarded_for,
                    "x-keygate-model" => &mut found.x_keygate_model,
                    "x-keygate-identity" => &mut found.x_keygate_identity,
                    "x-original-uri" => &mut found.x_original_uri,
                    _ => continue,
                }
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        found
    }

    /// Whether the request carries the original request's body (Envoy's `ext_authz` with
    /// `with_request_body`): a `Transfer-Encoding`, or a `Content-Length` that is not 0 (an
    /// unreadable one counts as a body, which the body reader then refuses).
    pub fn has_body(&self) -> bool {
        self.has_transfer_encoding
            || self
                .content_length
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.trim().parse::<u64>().map_or(true, |length| length > 0))
    }

    /// A header's value as text, `None` when absent or not visible ASCII.
    pub fn text(value: Option<&'a HeaderValue>) -> Option<&'a str> {
        value.and_then(|value| value.to_str().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn finds_each_header_the_decision_reads_and_ignores_the_rest() {
        let map = headers(&[
            ("host", "keygate"),
            ("authorization", "Bearer sk-one"),
            ("x-api-key", "sk-two"),
            ("x-dashscope-workspace", "ws-1"),
            ("x-forwarded-for", "203.0.113.7"),
            ("x-keygate-model", "qwen-plus"),
            ("x-keygate-identity", "on"),
            ("x-original-uri", "/api/v1/apps/app-1/completion"),
            ("user-agent", "nginx"),
        ]);
        let found = VerifyHeaders::of(&map);
        assert_eq!(VerifyHeaders::text(found.authorization), Some("Bearer sk-one"));
        assert_eq!(VerifyHeaders::text(found.x_api_key), Some("sk-two"));
        assert_eq!(VerifyHeaders::text(found.x_dashscope_workspace), Some("ws-1"));
        assert_eq!(VerifyHeaders::text(found.x_forwarded_for), Some("203.0.113.7"));
        assert_eq!(VerifyHeaders::text(found.x_keygate_model), Some("qwen-plus"));
        assert_eq!(VerifyHeaders::text(found.x_keygate_identity), Some("on"));
        assert_eq!(VerifyHeaders::text(found.x_original_uri), Some("/api/v1/apps/app-1/completion"));
        assert!(!found.has_body());
    }

    #[test]
    fn a_repeated_header_gives_its_first_value_as_a_lookup_would() {
        let map = headers(&[("authorization", "Bearer first"), ("x-forwarded-for", "198.51.100.1"), ("authorization", "Bearer second")]);
        let found = VerifyHeaders::of(&map);
        assert_eq!(found.authorization, map.get("authorization"));
        assert_eq!(VerifyHeaders::text(found.authorization), Some("Bearer first"));
    }

    #[test]
    fn a_body_is_announced_by_a_nonzero_or_unreadable_length_or_a_transfer_encoding() {
        assert!(!VerifyHeaders::of(&headers(&[("content-length", "0")])).has_body());
        assert!(VerifyHeaders::of(&headers(&[("content-length", "12")])).has_body());
        assert!(VerifyHeaders::of(&headers(&[("content-length", "twelve")])).has_body());
        assert!(VerifyHeaders::of(&headers(&[("transfer-encoding", "chunked")])).has_body());
        assert!(!VerifyHeaders::of(&HeaderMap::new()).has_body());
    }
}
