//! A key's own limits at the gateway (docs/CONTRACT.md#per-key-limits), checked after
//! authorization and after the model limits of its workspace, in this order: the budget of
//! the period (against the key's spend, [`crate::key_budgets`]), the calls in flight, then
//! requests and tokens per minute. Each check that can be undone comes before the one that
//! cannot: a call refused for its budget has entered nothing, and one refused per minute
//! leaves the calls in flight at once; only an admitted request is counted in the minute.
//!
//! A temporary key authenticates as its parent, so its calls count against the parent's
//! limits and budget. Everything goes through [`crate::limiter::LimitCounter`]: whether
//! the counts are this node's or shared does not matter here.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::response::Response;
use keygate_core::key_limits::{BudgetPart, KeyLimits};
use keygate_core::limits::{EffectiveLimits, LimitKind, RateLimit, WindowStanding};

use super::authorize::Authorized;
use super::errors::{GatewayRefusal, KeyLimitReached};
use crate::limiter::{Admission, LimitSubject};
use crate::state::{AppState, SharedState};

/// A call admitted under its key's limits: where its minute windows stand, the token
/// limit its tokens are charged to when it ends, and its place among the calls in flight.
pub struct KeyAdmitted {
    pub admission: Option<Admission>,
    /// The key's tokens per minute, charged with the call's tokens when it ends.
    pub token_charge: Option<RateLimit>,
    pub in_flight: Option<InFlightGuard>,
}

/// Counts a call against its key's limits: `None` for a key without any, a 429 when one
/// is reached.
pub async fn admit_to_key_limits(state: &AppState, authorized: &Authorized) -> Result<Option<KeyAdmitted>, GatewayRefusal> {
    let Some(limits) = authorized.key.limits.as_deref() else { return Ok(None) };
    let shared = &state.shared;
    let now = authorized.at_milliseconds.div_euclid(1000);
    let key_id = authorized.key.key_id;
    if let Some(budget) = limits.budget {
        let spent = match shared.key_budgets.spent_here(key_id, budget.period, now) {
            Some(spent) => spent,
            None => shared.key_budgets.spent(&shared.store, key_id, budget.period, now).await.map_err(|error| {
                tracing::error!(%error, key_id, "reading a key's budget spend failed");
                GatewayRefusal::Internal
            })?,
        };
        if let Some(part) = budget.used_up(spent) {
            let limit = match part {
                BudgetPart::Tokens => KeyLimitReached::TokenBudget { period: budget.period, tokens: budget.tokens.unwrap_or(0) },
                BudgetPart::Cost => KeyLimitReached::CostBudget { period: budget.period, cost_micros: budget.cost_micros.unwrap_or(0) },
            };
            return Err(refusal(limit, budget.period.seconds_until_renewal(now), None));
        }
    }
    let subject = LimitSubject::Key { key_id };
    let in_flight = match limits.max_in_flight {
        None => None,
        Some(max) => match entered(shared, subject, max).await {
            Ok(_) => Some(InFlightGuard { shared: shared.clone(), key_id }),
            Err(_) => return Err(refusal(KeyLimitReached::InFlight { max }, 1, None)),
        },
    };
    let minute = per_minute(limits);
    if minute.is_unlimited() {
        return Ok(Some(KeyAdmitted { admission: None, token_charge: None, in_flight }));
    }
    let admission = match shared.limiter.admit_at_once(subject, minute, now) {
        Some(admission) => admission,
        None => shared.limiter.admit(subject, minute, now).await,
    };
    if admission.unavailable {
        // Failing closed (`limits_fail_closed`): the shared counter cannot be asked.
        return Err(GatewayRefusal::LimitsUnavailable);
    }
    if let Some(kind) = admission.refused_by {
        let limit = match kind {
            LimitKind::Requests => KeyLimitReached::RequestsPerMinute { limit: limits.requests_per_minute.unwrap_or(0) },
            LimitKind::Tokens => KeyLimitReached::TokensPerMinute { limit: limits.tokens_per_minute.unwrap_or(0) },
        };
        // `in_flight` is dropped with this return: the refused call leaves at once.
        return Err(refusal(limit, admission.retry_after_seconds(), Some(admission)));
    }
    Ok(Some(KeyAdmitted { admission: Some(admission), token_charge: minute.tokens, in_flight }))
}

/// Enters `subject` among the calls in flight: at once when the counter can answer so.
async fn entered(shared: &SharedState, subject: LimitSubject<'_>, max: u64) -> Result<u64, u64> {
    match shared.limiter.enter_at_once(subject, max) {
        Some(entered) => entered,
        None => shared.limiter.enter(subject, max).await,
    }
}

/// The per-minute part of a key's limits, as the counter takes them.
fn per_minute(limits: &KeyLimits) -> EffectiveLimits {
    let minute = |limit: Option<u64>| limit.map(|limit| RateLimit { limit, period_seconds: 60 });
    EffectiveLimits { requests: minute(limits.requests_per_minute), tokens: minute(limits.tokens_per_minute) }
}

fn refusal(limit: KeyLimitReached, retry_after_seconds: u64, admission: Option<Admission>) -> GatewayRefusal {
    GatewayRefusal::KeyLimited {
        limit,
        retry_after_seconds,
        requests: admission.and_then(|admission| admission.requests),
        tokens: admission.and_then(|admission| admission.tokens),
    }
}

/// Of two windows a call was counted in, the one with less left: the rate-limit headers
/// report the limit the caller will meet first.
pub fn tightest(first: Option<WindowStanding>, second: Option<WindowStanding>) -> Option<WindowStanding> {
    match (first, second) {
        (Some(first), Some(second)) => Some(if second.remaining < first.remaining { second } else { first }),
        (first, second) => first.or(second),
    }
}

/// A call's place among its key's calls in flight: left when dropped, that is when the
/// answer's body has been sent or dropped (a client that goes away), or when the call
/// fails before it has one.
#[derive(Debug)]
pub struct InFlightGuard {
    shared: Arc<SharedState>,
    key_id: i64,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.shared.limiter.leave(LimitSubject::Key { key_id: self.key_id });
    }
}

/// Makes `response`'s body hold `guard` until the body is done with.
pub fn hold_until_sent(response: Response, guard: InFlightGuard) -> Response {
    response.map(|body| Body::new(HeldBody { inner: body, _guard: guard }))
}

/// A body that holds an [`InFlightGuard`]: hyper drops the body once it has sent it or the
/// connection is gone, and the guard goes with it.
struct HeldBody {
    inner: Body,
    _guard: InFlightGuard,
}

impl http_body::Body for HeldBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
