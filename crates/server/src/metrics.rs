//! Prometheus metrics at `/metrics`: gateway outcomes, verification latency, the size of the
//! in-memory key registry and the change feed's position. Counters are atomics, so the
//! request path pays a few nanoseconds and takes no lock.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::management::errors::ManagementError;
use crate::request_context::{peer_of, RequestContext};
use crate::state::AppState;

/// Upper bounds (microseconds) of the verification latency histogram.
const LATENCY_BUCKETS_MICROSECONDS: [u64; 8] = [1, 2, 5, 10, 50, 100, 1_000, 10_000];

/// Outcomes of gateway requests, by the code a client sees.
pub const OUTCOMES: [&str; 12] = [
    "ok",
    "InvalidApiKey",
    "AccessDenied",
    "Workspace.AccessDenied",
    "Model.AccessDenied",
    "App.AccessDenied",
    "ModelNotFound",
    "Throttling",
    "InvalidParameter",
    "InternalError",
    "ServiceUnavailable",
    "other",
];

#[derive(Debug, Default)]
pub struct Metrics {
    outcomes: [AtomicU64; OUTCOMES.len()],
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_MICROSECONDS.len()],
    latency_count: AtomicU64,
    latency_sum_nanoseconds: AtomicU64,
}

impl Metrics {
    /// Counts one gateway answer by its code (`"ok"` for success).
    pub fn record_outcome(&self, code: &str) {
        let index = OUTCOMES.iter().position(|outcome| *outcome == code).unwrap_or(OUTCOMES.len() - 1);
        self.outcomes[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Records how long one key verification took.
    pub fn record_verification(&self, elapsed: Duration) {
        let nanoseconds = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_nanoseconds.fetch_add(nanoseconds, Ordering::Relaxed);
        // One counter per request (the smallest bucket that holds it); `render` adds them up
        // into Prometheus's cumulative buckets. Every atomic here is shared by all workers,
        // so each one costs a cache-line transfer under load.
        let microseconds = nanoseconds.div_ceil(1000);
        if let Some(index) = LATENCY_BUCKETS_MICROSECONDS.iter().position(|bound| microseconds <= *bound) {
            self.latency_buckets[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, live_keys: usize, applied_version: u64, feed_lag_seconds: f64) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "# HELP keygate_gateway_requests_total Gateway answers by outcome.");
        let _ = writeln!(text, "# TYPE keygate_gateway_requests_total counter");
        for (outcome, counter) in OUTCOMES.iter().zip(&self.outcomes) {
            let _ = writeln!(text, "keygate_gateway_requests_total{{outcome=\"{outcome}\"}} {}", counter.load(Ordering::Relaxed));
        }
        let _ = writeln!(text, "# HELP keygate_verification_seconds Time to authenticate a presented key from memory.");
        let _ = writeln!(text, "# TYPE keygate_verification_seconds histogram");
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS_MICROSECONDS.iter().zip(&self.latency_buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(text, "keygate_verification_seconds_bucket{{le=\"{}\"}} {cumulative}", *bound as f64 / 1e6);
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(text, "keygate_verification_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(text, "keygate_verification_seconds_sum {}", self.latency_sum_nanoseconds.load(Ordering::Relaxed) as f64 / 1e9);
        let _ = writeln!(text, "keygate_verification_seconds_count {count}");
        let _ = writeln!(text, "# HELP keygate_registry_live_keys Keys held in the in-memory verification registry.");
        let _ = writeln!(text, "# TYPE keygate_registry_live_keys gauge");
        let _ = writeln!(text, "keygate_registry_live_keys {live_keys}");
        let _ = writeln!(text, "# HELP keygate_change_feed_applied_version Highest change-feed version applied to the registry.");
        let _ = writeln!(text, "# TYPE keygate_change_feed_applied_version gauge");
        let _ = writeln!(text, "keygate_change_feed_applied_version {applied_version}");
        let _ = writeln!(
            text,
            "# HELP keygate_change_feed_lag_seconds Time since this node last confirmed its registry against the change feed."
        );
        let _ = writeln!(text, "# TYPE keygate_change_feed_lag_seconds gauge");
        let _ = writeln!(text, "keygate_change_feed_lag_seconds {feed_lag_seconds}");
        text
    }
}

/// `GET /metrics`.
async fn metrics_endpoint(State(state): State<AppState>) -> Response {
    let registry = state.store().registry();
    let lag_seconds = state.shared.feed_health.staleness_milliseconds(state.shared.clock.now_milliseconds()) as f64 / 1000.0;
    let body = state.shared.metrics.render(registry.live_key_count(), registry.applied_version(), lag_seconds);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Headers by which a proxy says whose request it relays.
const FORWARDING_HEADERS: [header::HeaderName; 3] =
    [header::FORWARDED, header::HeaderName::from_static("x-forwarded-for"), header::HeaderName::from_static("x-real-ip")];

/// Whether a request without a metrics token may read `/metrics`: its TCP peer is this
/// machine (`::ffff:127.0.0.1` too, as a dual-stack listener sees an IPv4 client), and it
/// relays nobody else's request. A proxy on the same machine connects from loopback on
/// behalf of clients anywhere, so a request that carries a forwarding header is never
/// exempt, whatever address the header names and whether or not the proxy is trusted:
/// the exemption belongs to the socket peer alone.
pub fn is_local_unforwarded<B>(request: &axum::http::Request<B>) -> bool {
    peer_of(request).to_canonical().is_loopback() && !FORWARDING_HEADERS.iter().any(|name| request.headers().contains_key(name))
}

/// `/metrics` on an ordinary listener, which may face the internet: with a
/// `metrics_token` (`KEYGATE_METRICS_TOKEN`), only for `Authorization: Bearer <token>`;
/// without one, only for a client on this machine that no proxy relays
/// ([`is_local_unforwarded`]). `metrics_listen` serves it on a listener of its own instead,
/// and ordinary listeners do not serve it at all.
pub async fn guarded_metrics_endpoint(state: State<AppState>, context: RequestContext, request: Request) -> Response {
    let refuse =
        |status, code, message: &str| ManagementError::new(status, code, message).with_request_id(&context.request_id).into_response();
    match &state.shared.settings.metrics_token {
        Some(token) => {
            let presented = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or("");
            let matches: bool = Sha256::digest(presented.as_bytes()).ct_eq(&Sha256::digest(token.expose_secret().as_bytes())).into();
            if !matches {
                return refuse(StatusCode::UNAUTHORIZED, "InvalidMetricsToken", "/metrics needs Authorization: Bearer <metrics token>.");
            }
        }
        None if !is_local_unforwarded(&request) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "/metrics answers only clients on this machine, not through a proxy, on this listener; set a metrics token or a metrics listener.",
            );
        }
        None => {}
    }
    metrics_endpoint(state).await
}

/// The router of a `metrics_listen` listener: `/metrics` and nothing else. Its refusals
/// are the management plane's, with a request id and an access-log line, like any other
/// listener's.
pub fn metrics_listener_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_endpoint))
        .fallback(|context: RequestContext| async move {
            ManagementError::new(StatusCode::NOT_FOUND, "NotFound", "Only /metrics is served on this listener.")
                .with_request_id(&context.request_id)
                .into_response()
        })
        .method_not_allowed_fallback(crate::planes::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::request_context::attach_request_context))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let metrics = Metrics::default();
        metrics.record_outcome("ok");
        metrics.record_outcome("InvalidApiKey");
        metrics.record_outcome("something-new");
        metrics.record_verification(Duration::from_nanos(800));
        metrics.record_verification(Duration::from_micros(40));
        let text = metrics.render(3, 9, 0.5);
        assert!(text.contains("keygate_gateway_requests_total{outcome=\"ok\"} 1"));
        assert!(text.contains("keygate_gateway_requests_total{outcome=\"InvalidApiKey\"} 1"));
        assert!(text.contains("keygate_gateway_requests_total{outcome=\"other\"} 1"));
        assert!(text.contains("keygate_verification_seconds_bucket{le=\"0.000001\"} 1"));
        assert!(text.contains("keygate_verification_seconds_bucket{le=\"0.00005\"} 2"));
        assert!(text.contains("keygate_verification_seconds_count 2"));
        assert!(text.contains("keygate_registry_live_keys 3"));
        assert!(text.contains("keygate_change_feed_applied_version 9"));
        assert!(text.contains("keygate_change_feed_lag_seconds 0.5"));
    }
}
