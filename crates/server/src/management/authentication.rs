//! Who is calling the management plane: an ACS3-HMAC-SHA256 signature made with an
//! AccessKey, or a session token in `x-acs-bearer-token`. A middleware proves it once and
//! leaves an [`Authenticated`] in the request; handlers take that extractor, so none can
//! run without the check.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keygate_core::access::Caller;
use keygate_core::acs3;
use keygate_core::civil_time::parse_utc_timestamp;
use secrecy::ExposeSecret;

use super::errors::ManagementError;
use crate::operations::access_keys::{signing_key, SigningKey};
use crate::operations::sessions::is_disabled;
use crate::operations::{sessions, Actor, Operations};
use crate::request_body::read_body;
use crate::request_context::RequestContext;
use crate::state::AppState;

/// Largest management request body (form bodies are small); a route group that needs
/// more (key import) says so when it puts this middleware in front of its routes.
pub const MAX_MANAGEMENT_BODY_BYTES: usize = 1024 * 1024;

/// The largest body the authentication middleware reads for the routes behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// Proof that the request was authenticated, with the caller and the request's region.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub caller: Caller,
    pub region: String,
    pub context: RequestContext,
}

impl Authenticated {
    /// This caller as the actor of an operation: in the request's region, audited with the
    /// request's client address.
    pub fn actor(&self, operations: &Operations<'_>) -> Actor {
        operations.actor(self.caller.clone(), &self.region, self.context.client_address_text())
    }

    pub fn request_id(&self) -> &str {
        &self.context.request_id
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ManagementError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        set_by_middleware(parts, "a management handler ran without the authentication middleware")
    }
}

/// The per-request context for handlers that need no authentication.
impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ManagementError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        set_by_middleware(parts, "the request context middleware did not run")
    }
}

/// What a middleware left in the request, or an internal failure (`missing` says which
/// middleware did not run: a routing mistake, not the caller's).
fn set_by_middleware<T: Clone + Send + Sync + 'static>(parts: &Parts, missing: &str) -> Result<T, ManagementError> {
    parts.extensions.get::<T>().cloned().ok_or_else(|| ManagementError::internal(missing))
}

/// The region of a management call: the listener's, unless the Host name carries another
/// region this process serves as one of its dot-separated labels
/// (`modelstudio.us-east-1.example.com`).
pub fn management_region(state: &AppState, host: Option<&str>) -> String {
    if let Some(host) = host {
        let name = host.rsplit_once(':').map(|(name, _)| name).unwrap_or(host);
        for label in name.split('.') {
            if label != state.listener_region && state.shared.served_regions.iter().any(|region| region == label) {
                return label.to_string();
            }
        }
    }
    state.listener_region.clone()
}

/// Middleware: authenticates from the request's headers alone, and only then reads the
/// body (under `limit` and the body-read deadline), checks it against the hash the
/// signature covers, and hands the handler the same body. A caller without credentials
/// is answered before a byte of its body is read.
pub async fn require_authentication(State((state, limit)): State<(AppState, BodyLimit)>, request: Request, next: Next) -> Response {
    let context = request
        .extensions()
        .get::<RequestContext>()
        .cloned()
        .unwrap_or_else(|| RequestContext { request_id: crate::request_context::new_request_id(), client_address: None });
    let (mut parts, body) = request.into_parts();
    let (caller, body_bytes) = match authenticate(&state, limit, &parts, body).await {
        Ok(authenticated) => authenticated,
        // Rendered by the boundary outside, in the envelope of the path.
        Err(error) => return error.into_response(),
    };
    let host = parts.headers.get("host").and_then(|value| value.to_str().ok()).map(str::to_string);
    let region = management_region(&state, host.as_deref());
    parts.extensions.insert(Authenticated { caller, region, context });
    next.run(Request::from_parts(parts, Body::from(body_bytes))).await
}

/// The caller, proved from the headers first and then from the body read into `limit`,
/// and that body.
async fn authenticate(state: &AppState, limit: BodyLimit, parts: &Parts, body: Body) -> Result<(Caller, Bytes), ManagementError> {
    let proof = authenticate_headers(state, parts).await?;
    let body_bytes = read_body((&parts.headers).into(), body, limit.0, state.shared.settings.body_read_timeout()).await?;
    let caller = finish_authentication(state, proof, &body_bytes).await?;
    Ok((caller, body_bytes))
}

/// What the headers proved: a session's caller, or a signature that holds for the body
/// hash it declares (the body is checked against that hash, and the nonce spent, once it
/// has been read).
enum HeaderProof {
    Session(Caller),
    Signature { declared_payload_hash: String, nonce: String, now: i64, key: SigningKey },
}

async fn authenticate_headers(state: &AppState, parts: &Parts) -> Result<HeaderProof, ManagementError> {
    if let Some(token) = header(parts, "x-acs-bearer-token") {
        let caller = authenticate_session(state, token).await?;
        refuse_disabled(&caller)?;
        Ok(HeaderProof::Session(caller))
    } else if let Some(authorization) = header(parts, "authorization") {
        authenticate_signature_headers(state, parts, authorization).await
    } else {
        Err(ManagementError::unauthenticated(
            "MissingAuthorization",
            "Sign the request with ACS3-HMAC-SHA256 or send a session token in x-acs-bearer-token.",
        ))
    }
}

fn refuse_disabled(caller: &Caller) -> Result<(), ManagementError> {
    if is_disabled(caller) {
        return Err(ManagementError::forbidden("This RAM user is disabled."));
    }
    Ok(())
}

async fn finish_authentication(state: &AppState, proof: HeaderProof, body: &[u8]) -> Result<Caller, ManagementError> {
    let (declared_payload_hash, nonce, now, key) = match proof {
        HeaderProof::Session(caller) => return Ok(caller),
        HeaderProof::Signature { declared_payload_hash, nonce, now, key } => (declared_payload_hash, nonce, now, key),
    };
    let bad_request = |code: &'static str, message: &str| ManagementError::new(StatusCode::BAD_REQUEST, code, message.to_string());
    if !declared_payload_hash.eq_ignore_ascii_case(&acs3::payload_sha256(body)) {
        return Err(bad_request("ContentSHA256NotMatch", "x-acs-content-sha256 does not match the body."));
    }
    // Only a correctly signed request with the body it signed consumes its nonce, so
    // nobody can burn another's.
    let operations = state.operations();
    let forget_before = (now - 2 * acs3::CLOCK_WINDOW_SECONDS) * 1000;
    if !key.spend_nonce(operations, &nonce, forget_before).await? {
        return Err(bad_request("SignatureNonceUsed", "This x-acs-signature-nonce was already used; each request needs a new one."));
    }
    let caller = key.caller(operations).await?;
    refuse_disabled(&caller)?;
    Ok(caller)
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|value| value.to_str().ok())
}

/// Finds the caller behind a session token.
pub async fn authenticate_session(state: &AppState, token: &str) -> Result<Caller, ManagementError> {
    Ok(sessions::authenticate_session(state.operations(), token).await?)
}

/// Checks an ACS3-HMAC-SHA256 signature from the headers: the signature is computed over
/// the body hash the client declares in `x-acs-content-sha256` (which the protocol
/// requires), so it can be checked before the body is read.
async fn authenticate_signature_headers(state: &AppState, parts: &Parts, authorization: &str) -> Result<HeaderProof, ManagementError> {
    let bad_request = |code: &'static str, message: &str| ManagementError::new(StatusCode::BAD_REQUEST, code, message.to_string());
    let signature = acs3::parse_authorization(authorization).map_err(|error| bad_request("InvalidAuthorization", &error.to_string()))?;
    for required in ["x-acs-date", "x-acs-signature-nonce", "host"] {
        if !signature.signed_headers.iter().any(|name| name == required) {
            return Err(bad_request("IncompleteSignature", &format!("The signature must cover the {required} header.")));
        }
    }
    let key = signing_key(state.operations(), &signature.access_key_id).await?;
    let date_text = header(parts, "x-acs-date").ok_or_else(|| bad_request("MissingParameter", "The x-acs-date header is required."))?;
    let request_time = parse_utc_timestamp(date_text)
        .ok_or_else(|| bad_request("InvalidTimeStamp.Format", "x-acs-date must look like 2026-01-31T12:00:00Z."))?;
    let now = state.shared.clock.now_seconds();
    if !acs3::within_clock_window(request_time, now) {
        return Err(bad_request("InvalidTimeStamp.Expired", "x-acs-date is more than 15 minutes away from the server's clock."));
    }
    let nonce = header(parts, "x-acs-signature-nonce")
        .filter(|nonce| !nonce.is_empty() && nonce.len() <= 128)
        .ok_or_else(|| bad_request("MissingParameter", "The x-acs-signature-nonce header is required."))?;
    let declared_payload_hash = header(parts, "x-acs-content-sha256")
        .filter(|hash| hash.len() == 64 && hash.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .ok_or_else(|| bad_request("MissingParameter", "The x-acs-content-sha256 header (the hex SHA-256 of the body) is required."))?;
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| value.to_str().ok().map(|value| (name.as_str().to_string(), value.to_string())))
        .collect();
    let canonical = acs3::canonical_request(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &headers,
        &signature.signed_headers,
        &declared_payload_hash.to_ascii_lowercase(),
    );
    let secret = key.secret(state.operations())?;
    let expected = acs3::signature(secret.expose_secret(), &acs3::string_to_sign(&canonical));
    if !acs3::signatures_match(&expected, &signature.signature) {
        return Err(bad_request("SignatureDoesNotMatch", "The request signature does not match; check the AccessKey secret."));
    }
    Ok(HeaderProof::Signature { declared_payload_hash: declared_payload_hash.to_string(), nonce: nonce.to_string(), now, key })
}
