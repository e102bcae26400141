//! Console sessions and CSRF protection.
//!
//! A login stores a session (the same kind as `POST /keygate/v1/sessions` makes) and sends
//! its token in the cookie `keygate_session` (`HttpOnly; SameSite=Strict; Path=/console;
//! Max-Age` = the session lifetime; `Secure` whenever the browser came over HTTPS: to a TLS
//! listener, or through a proxy that says so in `X-Forwarded-Proto`). Every form carries a
//! CSRF token: an HMAC-SHA256, under a key derived from the master key, of the session
//! token's digest; the login form's token is bound the same way to a random nonce held in
//! the short-lived cookie `keygate_login`.
//!
//! Handlers take [`Console`] (a signed-in caller, for pages) or [`ConsoleForm`] (a
//! signed-in caller whose form carried the right CSRF token, for every POST), so none can
//! skip either check.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::i18n::Language;
use crate::management::authentication::Authenticated;
use crate::management::form::FormFields;
use crate::operations::sessions::{authenticate_session, is_disabled};
use crate::operations::{ErrorKind, OperationError};
use crate::request_body::{read_body, BodyReadError};
use crate::request_context::{new_request_id, RequestContext};
use crate::secrets::session_token_digest;
use crate::state::AppState;
use crate::tls::ServedOverTls;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "keygate_session";
/// The cookie that binds the login form's CSRF token.
pub const LOGIN_COOKIE: &str = "keygate_login";
/// Seconds a login form stays valid.
pub const LOGIN_FORM_LIFETIME_SECONDS: i64 = 900;
/// The hidden field every console form carries.
pub const CSRF_FIELD: &str = "csrf_token";
/// Largest console form body.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// The value of cookie `name` in the request, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie_name, _)| *cookie_name == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// How the browser reached the console: over HTTPS or not. Its cookies are `Secure` over
/// HTTPS, so that the browser never sends them in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrowserTransport {
    pub https: bool,
}

impl BrowserTransport {
    /// HTTPS when the request came over a TLS listener (`crate::tls::ServedOverTls`), or
    /// through a proxy that says `X-Forwarded-Proto: https` (a client that fakes the header
    /// only makes its own cookie `Secure`, which it then cannot send over plain HTTP).
    pub fn of(headers: &HeaderMap, extensions: &axum::http::Extensions) -> BrowserTransport {
        let over_tls = extensions.get::<ServedOverTls>().is_some();
        let behind_https_proxy =
            headers.get("x-forwarded-proto").and_then(|value| value.to_str().ok()).is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
        BrowserTransport { https: over_tls || behind_https_proxy }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BrowserTransport {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(BrowserTransport::of(&parts.headers, &parts.extensions))
    }
}

/// A `Set-Cookie` value with the console's flags; `max_age_seconds` 0 removes it.
pub fn cookie_header(transport: BrowserTransport, name: &str, value: &str, max_age_seconds: i64) -> HeaderValue {
    let text = format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={max_age_seconds}{}",
        if transport.https { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).expect("cookie values are base62 or hex")
}

fn csrf_mac(state: &AppState, purpose: &str, binding: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&state.shared.master_key.derive("csrf")).expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(binding);
    hex::encode(mac.finalize().into_bytes())
}

/// The CSRF token of the session with this token.
pub fn session_csrf_token(state: &AppState, session_token: &str) -> String {
    csrf_mac(state, "session", &session_token_digest(session_token))
}

/// The CSRF token of a login form bound to `nonce` (the `keygate_login` cookie).
pub fn login_csrf_token(state: &AppState, nonce: &str) -> String {
    csrf_mac(state, "login", nonce.as_bytes())
}

/// Constant-time comparison of an expected token with the one a form sent.
pub fn csrf_token_matches(expected: &str, presented: &str) -> bool {
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// Why a console request was not let through (`layout` renders it).
#[derive(Debug)]
pub enum ConsoleRejection {
    /// No live session: go to the login page.
    NotSignedIn,
    /// A form without the right CSRF token; the page is in the language of the request.
    CsrfRefused(Language),
    /// A request the console never makes (wrong content type, unknown region, bad body).
    BadRequest(Language, String),
    /// Refused with this answer (a form too large or too slow), made with the request id.
    Refused(Box<Response>),
    /// An operation failed unexpectedly: a generic page; an internal failure's detail goes
    /// to the log.
    Internal(Language, OperationError),
}

/// A signed-in console caller: who it is, the region it is working in, and the CSRF
/// token its forms must carry.
#[derive(Debug, Clone)]
pub struct Console {
    pub auth: Authenticated,
    pub csrf_token: String,
    /// Where the browser sent this request, for the URLs a page shows.
    pub origin: RequestOrigin,
    /// The language of the pages ([`Language::of_request`]).
    pub language: Language,
    session_digest: [u8; 32],
}

/// The scheme and `Host` a request was sent to: `https` behind an HTTPS proxy (as for the
/// cookie's `Secure`), else `http`; the host as the browser wrote it, port included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOrigin {
    pub scheme: &'static str,
    pub host: String,
}

impl RequestOrigin {
    /// Where the browser reached keygate: `https` when the request came over TLS, to this
    /// listener or to a proxy in front of it (`X-Forwarded-Proto: https`).
    pub fn of(headers: &HeaderMap, extensions: &axum::http::Extensions) -> RequestOrigin {
        let scheme = if BrowserTransport::of(headers, extensions).https { "https" } else { "http" };
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .filter(|host| !host.is_empty() && host.bytes().all(|byte| byte.is_ascii_alphanumeric() || b".-:[]".contains(&byte)))
            .unwrap_or("localhost");
        RequestOrigin { scheme, host: host.to_string() }
    }

    /// The host without its port (an IPv6 address keeps its brackets).
    pub fn hostname(&self) -> &str {
        match self.host.rfind(':') {
            Some(colon) if !self.host[colon..].contains(']') => &self.host[..colon],
            _ => &self.host,
        }
    }
}

impl Console {
    /// The digest the session is stored under (logout deletes it).
    pub fn session_digest(&self) -> &[u8; 32] {
        &self.session_digest
    }

    /// The region this request works in.
    pub fn region(&self) -> &str {
        &self.auth.region
    }
}

/// The region named by `?region=` when this process serves it; `None` when not named.
fn requested_region(state: &AppState, language: Language, query: Option<&str>) -> Result<Option<String>, ConsoleRejection> {
    let fields =
        FormFields::parse(query.unwrap_or(""), "query string").map_err(|error| ConsoleRejection::BadRequest(language, error.message))?;
    match fields.get_non_empty("region") {
        None => Ok(None),
        Some(region) if state.shared.served_regions.iter().any(|served| served == region) => Ok(Some(region.to_string())),
        Some(_) => Err(ConsoleRejection::BadRequest(language, language.text("error.unknown_region").into())),
    }
}

impl FromRequestParts<AppState> for Console {
    type Rejection = ConsoleRejection;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let context = parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .unwrap_or_else(|| RequestContext { request_id: new_request_id(), client_address: None });
        let language = Language::of_request(&parts.headers);
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(ConsoleRejection::NotSignedIn)?.to_string();
        let caller = match authenticate_session(state.operations(), &token).await {
            Ok(caller) => caller,
            Err(error) if error.kind == ErrorKind::Unauthenticated => return Err(ConsoleRejection::NotSignedIn),
            Err(error) => return Err(ConsoleRejection::Internal(language, error)),
        };
        // The API refuses disabled RAM users with every credential; so does the console.
        if is_disabled(&caller) {
            return Err(ConsoleRejection::NotSignedIn);
        }
        let region = match requested_region(state, language, parts.uri.query()) {
            Ok(region) => region.unwrap_or_else(|| state.listener_region.clone()),
            // A page asked for with an unknown region falls back to this listener's; a form
            // sent to one is refused (it must not act on another region than it says).
            Err(rejection) if parts.method == axum::http::Method::POST => return Err(rejection),
            Err(_) => state.listener_region.clone(),
        };
        let csrf_token = session_csrf_token(state, &token);
        let origin = RequestOrigin::of(&parts.headers, &parts.extensions);
        Ok(Console {
            auth: Authenticated { caller, region, context },
            csrf_token,
            origin,
            language,
            session_digest: session_token_digest(&token),
        })
    }
}

/// Reads a form body: `application/x-www-form-urlencoded`, at most [`MAX_FORM_BYTES`].
/// Like every body, it is read under a deadline, so that a slow sender cannot hold the
/// connection.
pub async fn read_form(state: &AppState, request: Request) -> Result<(Parts, FormFields), ConsoleRejection> {
    let (parts, body) = request.into_parts();
    let language = Language::of_request(&parts.headers);
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    if !content_type.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(ConsoleRejection::BadRequest(language, language.text("error.form_type").into()));
    }
    let settings = &state.shared.settings;
    let bytes = read_body((&parts.headers).into(), body, MAX_FORM_BYTES, settings.body_read_timeout()).await.map_err(|error| {
        let request_id = parts.extensions.get::<RequestContext>().map_or_else(new_request_id, |context| context.request_id.clone());
        let (status, code, message) = match error {
            BodyReadError::TooLarge { limit } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", format!("The form is larger than {limit} bytes."))
            }
            BodyReadError::TimedOut { seconds } => {
                (StatusCode::REQUEST_TIMEOUT, "RequestTimeout", format!("The form did not arrive within {seconds} seconds."))
            }
            BodyReadError::Broken => (StatusCode::BAD_REQUEST, "InvalidParameter", "The form could not be read.".to_string()),
        };
        let path = parts.uri.path();
        ConsoleRejection::Refused(Box::new(crate::planes::refusal_for_path(&parts.headers, path, status, code, &message, &request_id)))
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ConsoleRejection::BadRequest(language, language.text("error.form_utf8").into()))?;
    let fields = FormFields::parse(text, "form").map_err(|error| ConsoleRejection::BadRequest(language, error.message))?;
    Ok((parts, fields))
}

/// A POST from a signed-in caller whose form carried its session's CSRF token.
#[derive(Debug)]
pub struct ConsoleForm {
    pub console: Console,
    pub fields: FormFields,
}

impl FromRequest<AppState> for ConsoleForm {
    type Rejection = ConsoleRejection;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let console = Console::from_request_parts(&mut parts, state).await?;
        let (_, fields) = read_form(state, Request::from_parts(parts, body)).await?;
        if !csrf_token_matches(&console.csrf_token, fields.get(CSRF_FIELD).unwrap_or("")) {
            tracing::warn!(request_id = %console.auth.context.request_id, "console form refused: CSRF token missing or wrong");
            return Err(ConsoleRejection::CsrfRefused(console.language));
        }
        Ok(ConsoleForm { console, fields })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_empty_ones_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; keygate_session=kgs-abc ; keygate_login="));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("kgs-abc"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), None);
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn session_cookies_carry_every_flag_and_secure_over_https() {
        let mut headers = HeaderMap::new();
        let mut extensions = axum::http::Extensions::new();
        let plain = BrowserTransport::of(&headers, &extensions);
        assert_eq!(
            cookie_header(plain, SESSION_COOKIE, "kgs-x", 60).to_str().unwrap(),
            "keygate_session=kgs-x; HttpOnly; SameSite=Strict; Path=/console; Max-Age=60"
        );
        // Over a TLS listener.
        extensions.insert(ServedOverTls);
        let over_tls = BrowserTransport::of(&headers, &extensions);
        assert!(cookie_header(over_tls, SESSION_COOKIE, "kgs-x", 60).to_str().unwrap().ends_with("; Max-Age=60; Secure"));
        // Behind a proxy that speaks HTTPS to the browser.
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let behind_proxy = BrowserTransport::of(&headers, &axum::http::Extensions::new());
        assert!(cookie_header(behind_proxy, SESSION_COOKIE, "kgs-x", 60).to_str().unwrap().ends_with("; Secure"));
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        assert!(csrf_token_matches("abcd", "abcd"));
        assert!(!csrf_token_matches("abcd", "abce"));
        assert!(!csrf_token_matches("abcd", "abc"));
        assert!(!csrf_token_matches("abcd", ""));
    }
}
