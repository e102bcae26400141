//! The data plane's one error table (docs/CONTRACT.md#data-plane-errors): each refusal maps to an HTTP status and
//! to its code in the native DashScope, OpenAI-compatible and Anthropic shapes. Every body
//! carries the request id (Anthropic: the `request-id` header).

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use keygate_core::key_limits::{format_cost, BudgetPeriod};
use keygate_core::limits::{LimitKind, WindowStanding};
use keygate_core::verification::{AuthenticationFailure, AuthorizationFailure, ModelDenial};
use serde_json::json;

/// The wire protocol a call arrived in; errors answer in its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// DashScope native (`/api/v1/...`) and `/auth/verify`.
    Native,
    /// OpenAI-compatible (`/compatible-mode/v1/...`).
    OpenAi,
    /// Anthropic-compatible (`/apps/anthropic/...`).
    Anthropic,
}

/// Why a model call was not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayRefusal {
    Authentication(AuthenticationFailure),
    Authorization(AuthorizationFailure),
    /// A model the catalog knows that the key may not call: which model, the key's
    /// workspace, and why (`Model.AccessDenied`, like `Authorization(ModelNotAllowed)`).
    ModelDenied {
        model: String,
        workspace_id: String,
        denial: ModelDenial,
    },
    /// Too many failed authentications from this address; seconds to wait.
    Throttled {
        retry_after_seconds: u64,
    },
    /// This API key minted more temporary keys this minute than `temporary_keys_per_minute`.
    MintThrottled {
        retry_after_seconds: u64,
    },
    /// The workspace's limit of the model (requests or tokens per period) is used up until
    /// its window ends; where both windows stand, for the rate-limit headers.
    ModelLimited {
        kind: LimitKind,
        retry_after_seconds: u64,
        requests: Option<WindowStanding>,
        tokens: Option<WindowStanding>,
    },
    /// One of the key's own limits is reached (docs/CONTRACT.md#per-key-limits); where its
    /// minute windows stand, when it was refused per minute.
    KeyLimited {
        limit: KeyLimitReached,
        retry_after_seconds: u64,
        requests: Option<WindowStanding>,
        tokens: Option<WindowStanding>,
    },
    /// The limits' shared counter (Redis) cannot be asked and `limits_fail_closed` is set:
    /// a call under a limit is refused rather than let through uncounted.
    LimitsUnavailable,
    /// Body not JSON, too large, no model, bad parameter.
    BadRequest(String),
    /// A path that reaches the provider account's own state (files, batches, fine-tunes...),
    /// never forwarded: the message names it.
    ProviderState(String),
    /// A model asked for by id (`GET .../models/{id}`) that is not in the catalog or that
    /// this key may not call: the same answer for both.
    ModelNotListed(String),
    /// The body did not arrive within `body_read_timeout_seconds`.
    BodyTimedOut {
        seconds: u64,
    },
    /// A temporary key tried to mint another.
    TemporaryKeyCannotMint,
    UpstreamUnreachable,
    /// keygate itself failed (e.g. it could not write an audit row): the detail is in the
    /// server log.
    Internal,
    /// No handler takes the request (unknown path, wrong method, target too long): the
    /// status and native code are the router's, the shape the protocol's.
    Unrouted {
        status: StatusCode,
        native_code: &'static str,
        message: String,
    },
    /// This node cannot confirm its keys (the database or its change feed is unreachable for
    /// longer than `max_staleness_seconds`): fail closed.
    RegistryStale,
}

/// What a refused model call says: the model, and what would let the key call it. The
/// model is one the catalog knows (an unknown one is `ModelNotFound` before this), so
/// repeating it repeats nothing a client made up.
pub fn model_denied_message(model: &str, workspace_id: &str, denial: ModelDenial) -> String {
    let grant = format!(
        "the account or an admin grants it on the workspace's page in the console or with `keygate workspaces grant {workspace_id} {model}`"
    );
    match denial {
        ModelDenial::NotGranted => {
            format!("Model access denied: the workspace {workspace_id} of this API key has not been granted the model '{model}'; {grant}.")
        }
        ModelDenial::NotInKeyScope => format!(
            "Model access denied: this API key's custom permissions do not include the model '{model}'; whoever manages the key may add it to the key's model access."
        ),
        ModelDenial::NeitherGrantedNorInScope => format!(
            "Model access denied: the workspace {workspace_id} of this API key has not been granted the model '{model}' ({grant}), and the key's custom permissions do not include it."
        ),
    }
}

/// Which of a key's own limits refused a call, with its value for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLimitReached {
    RequestsPerMinute { limit: u64 },
    TokensPerMinute { limit: u64 },
    InFlight { max: u64 },
    TokenBudget { period: BudgetPeriod, tokens: u64 },
    CostBudget { period: BudgetPeriod, cost_micros: i64 },
}

struct Row {
    status: StatusCode,
    native_code: &'static str,
    openai_code: &'static str,
    openai_type: &'static str,
    anthropic_type: &'static str,
}

const fn row(
    status: StatusCode,
    native_code: &'static str,
    openai_code: &'static str,
    openai_type: &'static str,
    anthropic_type: &'static str,
) -> Row {
    Row { status, native_code, openai_code, openai_type, anthropic_type }
}

impl GatewayRefusal {
    fn row(&self) -> Row {
        use AuthorizationFailure as Denied;
        match self {
            GatewayRefusal::Authentication(_) => {
                row(StatusCode::UNAUTHORIZED, "InvalidApiKey", "invalid_api_key", "invalid_request_error", "authentication_error")
            }
            GatewayRefusal::Authorization(Denied::AddressNotAllowed) => {
                row(StatusCode::FORBIDDEN, "AccessDenied", "access_denied", "access_denied", "permission_error")
            }
            GatewayRefusal::Authorization(Denied::WorkspaceMismatch) => {
                row(StatusCode::FORBIDDEN, "Workspace.AccessDenied", "access_denied", "access_denied", "permission_error")
            }
            GatewayRefusal::Authorization(Denied::ModelNotAllowed(_) | Denied::TargetNotNamed) | GatewayRefusal::ModelDenied { .. } => {
                row(StatusCode::FORBIDDEN, "Model.AccessDenied", "model_access_denied", "access_denied", "permission_error")
            }
            GatewayRefusal::Authorization(Denied::AppNotAllowed) => {
                row(StatusCode::FORBIDDEN, "App.AccessDenied", "access_denied", "access_denied", "permission_error")
            }
            GatewayRefusal::Authorization(Denied::UnknownModel) => {
                row(StatusCode::NOT_FOUND, "ModelNotFound", "model_not_found", "invalid_request_error", "not_found_error")
            }
            GatewayRefusal::Throttled { .. } | GatewayRefusal::MintThrottled { .. } => {
                row(StatusCode::TOO_MANY_REQUESTS, "Throttling", "limit_requests", "limit_requests", "rate_limit_error")
            }
            GatewayRefusal::ModelLimited { kind: LimitKind::Requests, .. } => {
                row(StatusCode::TOO_MANY_REQUESTS, "Throttling.RateQuota", "limit_requests", "limit_requests", "rate_limit_error")
            }
            GatewayRefusal::ModelLimited { kind: LimitKind::Tokens, .. } => row(
                StatusCode::TOO_MANY_REQUESTS,
                "Throttling.AllocationQuota",
                "insufficient_quota",
                "insufficient_quota",
                "rate_limit_error",
            ),
            GatewayRefusal::ProviderState(_) => {
                row(StatusCode::FORBIDDEN, "AccessDenied", "access_denied", "access_denied", "permission_error")
            }
            GatewayRefusal::ModelNotListed(_) => {
                row(StatusCode::NOT_FOUND, "ModelNotFound", "model_not_found", "invalid_request_error", "not_found_error")
            }
            GatewayRefusal::KeyLimited { limit: KeyLimitReached::RequestsPerMinute { .. }, .. } => {
                row(StatusCode::TOO_MANY_REQUESTS, "Throttling.RateQuota", "limit_requests", "limit_requests", "rate_limit_error")
            }
            GatewayRefusal::KeyLimited { limit: KeyLimitReached::InFlight { .. }, .. } => {
                row(StatusCode::TOO_MANY_REQUESTS, "Throttling", "limit_requests", "limit_requests", "rate_limit_error")
            }
            GatewayRefusal::KeyLimited { .. } => row(
                StatusCode::TOO_MANY_REQUESTS,
                "Throttling.AllocationQuota",
                "insufficient_quota",
                "insufficient_quota",
                "rate_limit_error",
            ),
            GatewayRefusal::BadRequest(_) => {
                row(StatusCode::BAD_REQUEST, "InvalidParameter", "invalid_request_error", "invalid_request_error", "invalid_request_error")
            }
            GatewayRefusal::BodyTimedOut { .. } => {
                row(StatusCode::REQUEST_TIMEOUT, "RequestTimeOut", "request_timeout", "invalid_request_error", "invalid_request_error")
            }
            GatewayRefusal::TemporaryKeyCannotMint => {
                row(StatusCode::FORBIDDEN, "AccessDenied", "access_denied", "access_denied", "permission_error")
            }
            GatewayRefusal::UpstreamUnreachable => {
                row(StatusCode::BAD_GATEWAY, "InternalError", "upstream_error", "upstream_error", "api_error")
            }
            GatewayRefusal::Internal => row(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "internal_error", "api_error", "api_error"),
            GatewayRefusal::Unrouted { status, native_code, .. } => match *status {
                StatusCode::NOT_FOUND => row(*status, native_code, "not_found", "invalid_request_error", "not_found_error"),
                StatusCode::METHOD_NOT_ALLOWED => {
                    row(*status, native_code, "method_not_allowed", "invalid_request_error", "invalid_request_error")
                }
                _ => row(*status, native_code, "invalid_request_error", "invalid_request_error", "invalid_request_error"),
            },
            GatewayRefusal::RegistryStale | GatewayRefusal::LimitsUnavailable => {
                row(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "service_unavailable", "service_unavailable", "api_error")
            }
        }
    }

    pub fn status(&self) -> StatusCode {
        self.row().status
    }

    /// Whether a client must not send the same request again: the key is bad, disabled,
    /// expired or out of scope, or the request itself is wrong, so a retry can only meet the
    /// same refusal. Answered with `x-should-retry: false`, which the `openai` and
    /// `anthropic` SDKs (and the clients built on them, such as Claude Code) read before
    /// their own rules, so the user sees keygate's message at once instead of after a
    /// round of back-offs. Limits, throttles and keygate's own failures say nothing: the
    /// SDKs retry those by status, after `Retry-After` where it is sent.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            GatewayRefusal::Authentication(_)
                | GatewayRefusal::Authorization(_)
                | GatewayRefusal::ModelDenied { .. }
                | GatewayRefusal::TemporaryKeyCannotMint
                | GatewayRefusal::BadRequest(_)
                | GatewayRefusal::ModelNotListed(_)
                | GatewayRefusal::ProviderState(_)
                | GatewayRefusal::Unrouted { .. }
        )
    }

    pub fn native_code(&self) -> &'static str {
        self.row().native_code
    }

    pub fn message(&self) -> String {
        match self {
            GatewayRefusal::Authentication(failure) => failure.to_string(),
            GatewayRefusal::Authorization(failure) => failure.to_string(),
            GatewayRefusal::ModelDenied { model, workspace_id, denial } => model_denied_message(model, workspace_id, *denial),
            GatewayRefusal::Throttled { .. } => "Requests throttling triggered: too many failed authentications from this address.".into(),
            GatewayRefusal::MintThrottled { .. } => {
                "Requests throttling triggered: this API key minted too many temporary keys this minute.".into()
            }
            GatewayRefusal::ModelLimited { kind: LimitKind::Requests, .. } => {
                "Requests rate limit exceeded, please try again later: the workspace's request limit for this model is used up.".into()
            }
            GatewayRefusal::ModelLimited { kind: LimitKind::Tokens, .. } => {
                "Allocated quota exceeded, please increase your quota limit: the workspace's token limit for this model is used up.".into()
            }
            GatewayRefusal::KeyLimited { limit, .. } => key_limit_message(*limit),
            GatewayRefusal::BadRequest(message) | GatewayRefusal::ModelNotListed(message) | GatewayRefusal::ProviderState(message) => {
                message.clone()
            }
            GatewayRefusal::BodyTimedOut { seconds } => format!("The request body did not arrive within {seconds} seconds."),
            GatewayRefusal::TemporaryKeyCannotMint => "Access denied: a temporary API key cannot create another temporary key.".into(),
            GatewayRefusal::UpstreamUnreachable => "The upstream model provider could not be reached.".into(),
            GatewayRefusal::Internal => "An internal error occurred in keygate; see the server log.".into(),
            GatewayRefusal::Unrouted { message, .. } => message.clone(),
            GatewayRefusal::RegistryStale => {
                "This gateway node cannot confirm API keys right now (its database is unreachable); retry on another node or later.".into()
            }
            GatewayRefusal::LimitsUnavailable => {
                "This gateway cannot count the limits that apply to this call right now (its rate-limit store is unreachable); retry later."
                    .into()
            }
        }
    }

    /// The whole error response in `protocol`'s shape.
    pub fn into_response_for(self, protocol: Protocol, request_id: &str) -> Response {
        let row = self.row();
        let message = self.message();
        let body = match protocol {
            Protocol::Native => json!({"request_id": request_id, "code": row.native_code, "message": message}),
            Protocol::OpenAi => json!({
                "error": {"message": message, "type": row.openai_type, "param": null, "code": row.openai_code},
                "request_id": request_id,
            }),
            Protocol::Anthropic => json!({"type": "error", "error": {"type": row.anthropic_type, "message": message}}),
        };
        let is_final = self.is_final();
        let mut response = (row.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if is_final {
            headers.insert("x-should-retry", HeaderValue::from_static("false"));
        }
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert("request-id", value.clone());
            headers.insert("x-request-id", value);
        }
        match self {
            GatewayRefusal::Throttled { retry_after_seconds } | GatewayRefusal::MintThrottled { retry_after_seconds } => {
                headers.insert("retry-after", HeaderValue::from(retry_after_seconds));
            }
            GatewayRefusal::ModelLimited { retry_after_seconds, requests, tokens, .. }
            | GatewayRefusal::KeyLimited { retry_after_seconds, requests, tokens, .. } => {
                headers.insert("retry-after", HeaderValue::from(retry_after_seconds));
                insert_rate_limit_headers(headers, requests, tokens);
            }
            // A node asks Redis again a second after it failed.
            GatewayRefusal::LimitsUnavailable => {
                headers.insert("retry-after", HeaderValue::from(1u64));
            }
            _ => {}
        }
        response
    }
}

/// The message of a refusal by a key's own limit: Model Studio's words for the kind of
/// refusal, then which limit of the key it was.
fn key_limit_message(limit: KeyLimitReached) -> String {
    let rate = "Requests rate limit exceeded, please try again later";
    let quota = "Allocated quota exceeded, please increase your quota limit";
    match limit {
        KeyLimitReached::RequestsPerMinute { limit } => {
            format!("{rate}: the API key's limit of {limit} requests per minute is used up.")
        }
        KeyLimitReached::TokensPerMinute { limit } => format!("{quota}: the API key's limit of {limit} tokens per minute is used up."),
        KeyLimitReached::InFlight { max } => {
            format!("Requests throttling triggered: the API key already has {max} calls in flight, its limit.")
        }
        KeyLimitReached::TokenBudget { period, tokens } => format!(
            "{quota}: the API key's {} budget of {tokens} tokens is used up until the {} ends (UTC).",
            period_adjective(period),
            period.as_str()
        ),
        KeyLimitReached::CostBudget { period, cost_micros } => format!(
            "{quota}: the API key's {} cost budget of {} is used up until the {} ends (UTC).",
            period_adjective(period),
            format_cost(cost_micros),
            period.as_str()
        ),
    }
}

fn period_adjective(period: BudgetPeriod) -> &'static str {
    match period {
        BudgetPeriod::Day => "daily",
        BudgetPeriod::Month => "monthly",
    }
}

/// The most rate-limit headers a call's answer gets: three per kind of window.
pub const RATE_LIMIT_HEADERS: usize = 6;

/// The `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` headers of the windows a call
/// was counted in (reset as OpenAI writes it: seconds with an `s`), on answers and refusals.
pub fn insert_rate_limit_headers(headers: &mut HeaderMap, requests: Option<WindowStanding>, tokens: Option<WindowStanding>) {
    let windows = usize::from(requests.is_some()) + usize::from(tokens.is_some());
    if windows == 0 {
        return;
    }
    // Room for all of them at once: the map grows once, not header by header. (Building a
    // map of the right size instead measured no cheaper: glibc's malloc serves a map of
    // more than six headers from outside its per-thread cache either way.)
    headers.reserve(3 * windows);
    for (names, standing) in [(&REQUEST_HEADERS, requests), (&TOKEN_HEADERS, tokens)] {
        if let Some(standing) = standing {
            headers.insert(names[0].clone(), limit_value(standing.limit));
            headers.insert(names[1].clone(), number_value(standing.remaining));
            headers.insert(names[2].clone(), seconds_value(standing.reset_seconds));
        }
    }
}

/// A limit's value: the same on every call of a window, so the last few made on this
/// thread are kept (the usual numbers are made once for all, see [`number_value`]).
fn limit_value(value: u64) -> HeaderValue {
    if value < CACHED_NUMBERS as u64 {
        return number_value(value);
    }
    thread_local! {
        static RECENT: std::cell::RefCell<[(u64, Option<HeaderValue>); 2]> = const { std::cell::RefCell::new([(0, None), (0, None)]) };
    }
    RECENT.with_borrow_mut(|recent| {
        if let Some((_, Some(made))) = recent.iter().find(|(held, made)| *held == value && made.is_some()) {
            return made.clone();
        }
        let made = HeaderValue::from(value);
        // The older entry makes way: a call counts at most a request and a token limit.
        recent.swap(0, 1);
        recent[0] = (value, Some(made.clone()));
        made
    })
}

/// How many numbers and second counts have their header value made once, on first use:
/// the usual limits, what is left of them and the seconds to a window's end then cost no
/// allocation per call (a `HeaderValue` clone shares its bytes).
const CACHED_NUMBERS: usize = 4096;
const CACHED_SECONDS: usize = 3601;

fn number_value(value: u64) -> HeaderValue {
    static NUMBERS: std::sync::OnceLock<Vec<HeaderValue>> = std::sync::OnceLock::new();
    let numbers = NUMBERS.get_or_init(|| (0..CACHED_NUMBERS as u64).map(HeaderValue::from).collect());
    usize::try_from(value).ok().and_then(|index| numbers.get(index)).cloned().unwrap_or_else(|| HeaderValue::from(value))
}

/// `"{seconds}s"`, as OpenAI writes a reset.
fn seconds_value(seconds: u64) -> HeaderValue {
    fn made(seconds: u64) -> HeaderValue {
        HeaderValue::from_str(&format!("{seconds}s")).expect("digits and an s are a header value")
    }
    static SECONDS: std::sync::OnceLock<Vec<HeaderValue>> = std::sync::OnceLock::new();
    let cached = SECONDS.get_or_init(|| (0..CACHED_SECONDS as u64).map(made).collect());
    usize::try_from(seconds).ok().and_then(|index| cached.get(index)).cloned().unwrap_or_else(|| made(seconds))
}

static REQUEST_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-requests"),
    HeaderName::from_static("x-ratelimit-remaining-requests"),
    HeaderName::from_static("x-ratelimit-reset-requests"),
];
static TOKEN_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-tokens"),
    HeaderName::from_static("x-ratelimit-remaining-tokens"),
    HeaderName::from_static("x-ratelimit-reset-tokens"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_values_read_the_same_cached_or_made() {
        for value in [0, 1, 4095, 4096, 1_000_000] {
            assert_eq!(number_value(value).to_str().unwrap(), value.to_string());
            for _ in 0..2 {
                assert_eq!(limit_value(value).to_str().unwrap(), value.to_string());
            }
        }
        for seconds in [0, 59, 3600, 3601, 86_400] {
            assert_eq!(seconds_value(seconds).to_str().unwrap(), format!("{seconds}s"));
        }
    }

    #[test]
    fn an_answers_own_headers_survive_the_rate_limit_headers_repeated_ones_in_order() {
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.append("x-upstream-note", HeaderValue::from_static("first"));
        headers.append("x-upstream-note", HeaderValue::from_static("second"));
        let window = WindowStanding { limit: 1_000_000_000, remaining: 999_999_998, reset_seconds: 42 };
        insert_rate_limit_headers(&mut headers, Some(WindowStanding { limit: 60, ..window }), Some(window));
        assert_eq!(headers.len(), 9);
        assert_eq!(headers[axum::http::header::CONTENT_TYPE], "application/json");
        let notes: Vec<_> = headers.get_all("x-upstream-note").iter().collect();
        assert_eq!(notes, ["first", "second"]);
        assert_eq!(headers["x-ratelimit-limit-requests"], "60");
        assert_eq!(headers["x-ratelimit-limit-tokens"], "1000000000");
        assert_eq!(headers["x-ratelimit-remaining-tokens"], "999999998");
        assert_eq!(headers["x-ratelimit-reset-tokens"], "42s");
    }

    #[test]
    fn keygates_own_failure_is_a_500_in_every_shape_not_an_upstream_502() {
        for protocol in [Protocol::Native, Protocol::OpenAi, Protocol::Anthropic] {
            let response = GatewayRefusal::Internal.into_response_for(protocol, "req-1");
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR, "{protocol:?}");
        }
        assert_eq!(GatewayRefusal::Internal.native_code(), "InternalError");
        assert!(!GatewayRefusal::Internal.message().contains("upstream"));
    }
}
