//! Model limits per workspace and model (docs/CONTRACT.md#model-limits): requests per
//! period and tokens per period, the rules of UpdateModelLimits (`OVERLAY` merges, `DELETE`
//! removes, limits at least 0, periods from 1 second to a day), the limit that applies to a
//! call (the workspace's own where it sets one, else the platform default of the catalog),
//! and the arithmetic of the fixed windows the gateway counts them in.

/// The longest period a limit may count over: one day, in seconds.
pub const MAX_PERIOD_SECONDS: u64 = 86_400;

/// The unit of a token limit on the wire (`usageLimitField`): input plus output tokens.
pub const USAGE_LIMIT_FIELD: &str = "total_tokens";

/// At most `limit` requests or tokens in each window of `period_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    pub limit: u64,
    pub period_seconds: u64,
}

/// The values of one limit as stored and sent: each may be absent. A workspace's limit is
/// merged into field by field (`OVERLAY`); a platform default is written in the settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitValues {
    pub request_limit: Option<u64>,
    pub request_limit_period: Option<u64>,
    pub usage_limit: Option<u64>,
    pub usage_limit_period: Option<u64>,
}

impl LimitValues {
    /// The request limit, when both its count and its period are set.
    pub fn requests(&self) -> Option<RateLimit> {
        Some(RateLimit { limit: self.request_limit?, period_seconds: self.request_limit_period? })
    }

    /// The token limit, when both its count and its period are set.
    pub fn tokens(&self) -> Option<RateLimit> {
        Some(RateLimit { limit: self.usage_limit?, period_seconds: self.usage_limit_period? })
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == LimitValues::default()
    }

    /// Checks a complete limit: each period from 1 to [`MAX_PERIOD_SECONDS`], and a count
    /// never without its period (nor a period without its count).
    pub fn check(&self) -> Result<(), LimitError> {
        for (name, period) in [("requestLimitPeriod", self.request_limit_period), ("usageLimitPeriod", self.usage_limit_period)] {
            if let Some(period) = period {
                if period == 0 || period > MAX_PERIOD_SECONDS {
                    return Err(LimitError(format!("{name} must be from 1 to {MAX_PERIOD_SECONDS} seconds.")));
                }
            }
        }
        let pairs = [
            ("requestLimit", self.request_limit.is_some(), "requestLimitPeriod", self.request_limit_period.is_some()),
            ("usageLimit", self.usage_limit.is_some(), "usageLimitPeriod", self.usage_limit_period.is_some()),
        ];
        for (limit_name, has_limit, period_name, has_period) in pairs {
            if has_limit != has_period {
                return Err(LimitError(format!("{limit_name} and {period_name} go together: set both or neither.")));
            }
        }
        Ok(())
    }
}

/// A limit that cannot be stored, with the message that says why (naming the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LimitError(pub String);

/// One item of UpdateModelLimits' `workspaceLimits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitChange {
    /// Merge the given fields into the workspace's limit (creating it).
    Overlay(LimitValues),
    /// Remove the workspace's limit: the platform default applies again.
    Delete,
}

impl LimitChange {
    /// An item of the wire: `operationType` `OVERLAY` (the default) or `DELETE` in any case,
    /// and its values; a `DELETE` must send no value.
    pub fn parse(operation_type: Option<&str>, values: LimitValues) -> Result<LimitChange, LimitError> {
        match operation_type.map(str::to_ascii_uppercase).as_deref() {
            None | Some("OVERLAY") => Ok(LimitChange::Overlay(values)),
            Some("DELETE") if values.is_empty() => Ok(LimitChange::Delete),
            Some("DELETE") => Err(LimitError("operationType DELETE takes no limit or period.".into())),
            Some(_) => Err(LimitError("operationType must be OVERLAY or DELETE.".into())),
        }
    }
}

/// The workspace's limit of a model after `change`: `None` when it has none left.
pub fn apply_change(existing: Option<LimitValues>, change: &LimitChange) -> Result<Option<LimitValues>, LimitError> {
    match change {
        LimitChange::Delete => Ok(None),
        LimitChange::Overlay(given) => {
            let mut merged = existing.unwrap_or_default();
            let fields = [
                (&mut merged.request_limit, given.request_limit),
                (&mut merged.request_limit_period, given.request_limit_period),
                (&mut merged.usage_limit, given.usage_limit),
                (&mut merged.usage_limit_period, given.usage_limit_period),
            ];
            for (field, value) in fields {
                if value.is_some() {
                    *field = value;
                }
            }
            merged.check()?;
            Ok((!merged.is_empty()).then_some(merged))
        }
    }
}

/// The limits a call of a model in a workspace is counted against: each of the request and
/// token limits is the workspace's own when it sets it, else the platform default's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EffectiveLimits {
    pub requests: Option<RateLimit>,
    pub tokens: Option<RateLimit>,
}

impl EffectiveLimits {
    pub fn of(workspace: Option<&LimitValues>, platform_default: Option<&LimitValues>) -> EffectiveLimits {
        let pick = |read: fn(&LimitValues) -> Option<RateLimit>| workspace.and_then(read).or_else(|| platform_default.and_then(read));
        EffectiveLimits { requests: pick(LimitValues::requests), tokens: pick(LimitValues::tokens) }
    }

    pub fn is_unlimited(&self) -> bool {
        self.requests.is_none() && self.tokens.is_none()
    }
}

/// The fixed window of `period_seconds` that holds `now` (Unix seconds): its start, a
/// multiple of the period.
pub fn window_start(now: i64, period_seconds: u64) -> i64 {
    let period = i64::try_from(period_seconds.max(1)).unwrap_or(i64::MAX);
    now.div_euclid(period) * period
}

/// Seconds from `now` until the window that holds it ends (at least 1).
pub fn seconds_until_reset(now: i64, period_seconds: u64) -> u64 {
    let end = window_start(now, period_seconds).saturating_add(i64::try_from(period_seconds).unwrap_or(i64::MAX));
    u64::try_from(end.saturating_sub(now)).unwrap_or(0).max(1)
}

/// Which limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// `requestLimit` per `requestLimitPeriod`: answered `Throttling.RateQuota`.
    Requests,
    /// `usageLimit` tokens per `usageLimitPeriod`: answered `Throttling.AllocationQuota`.
    Tokens,
}

/// Where one window stands: its limit, what is left of it and seconds until it resets (the
/// `x-ratelimit-*` headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowStanding {
    pub limit: u64,
    pub remaining: u64,
    pub reset_seconds: u64,
}

/// The count of one fixed window: what was used since `start`. A count read or added to at
/// a time past its window starts again from 0 in the window of that time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCount {
    pub start: i64,
    pub used: u64,
}

impl WindowCount {
    /// Moves the count to the window of `now`, starting it at 0 when a newer window began.
    pub fn roll(&mut self, now: i64, period_seconds: u64) {
        let start = window_start(now, period_seconds);
        if self.start != start {
            *self = WindowCount { start, used: 0 };
        }
    }

    /// Where the window of `now` stands against `limit` (rolled first).
    pub fn standing(&mut self, limit: RateLimit, now: i64) -> WindowStanding {
        self.roll(now, limit.period_seconds);
        WindowStanding {
            limit: limit.limit,
            remaining: limit.limit.saturating_sub(self.used),
            reset_seconds: seconds_until_reset(now, limit.period_seconds),
        }
    }

    /// Counts one request when the window of `now` has room for it: its standing after,
    /// or `Err` with the standing that refused it (nothing counted).
    pub fn take_request(&mut self, limit: RateLimit, now: i64) -> Result<WindowStanding, WindowStanding> {
        let before = self.standing(limit, now);
        if before.remaining == 0 {
            return Err(before);
        }
        self.used = self.used.saturating_add(1);
        Ok(WindowStanding { remaining: before.remaining - 1, ..before })
    }

    /// Whether the window of `now` has tokens left: a call is admitted while any is left,
    /// and charged with what it used after it ends, which may take the window past its
    /// limit (the overshoot of docs/CONTRACT.md#model-limits).
    pub fn check_tokens(&mut self, limit: RateLimit, now: i64) -> Result<WindowStanding, WindowStanding> {
        let standing = self.standing(limit, now);
        if standing.remaining == 0 {
            Err(standing)
        } else {
            Ok(standing)
        }
    }

    /// Adds `amount` (a call's tokens) to the window of `now`.
    pub fn charge(&mut self, amount: u64, now: i64, period_seconds: u64) {
        self.roll(now, period_seconds);
        self.used = self.used.saturating_add(amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(request: Option<(u64, u64)>, usage: Option<(u64, u64)>) -> LimitValues {
        LimitValues {
            request_limit: request.map(|pair| pair.0),
            request_limit_period: request.map(|pair| pair.1),
            usage_limit: usage.map(|pair| pair.0),
            usage_limit_period: usage.map(|pair| pair.1),
        }
    }

    #[test]
    fn overlay_merges_field_by_field_and_delete_removes() {
        let existing = values(Some((60, 60)), Some((1000, 60)));
        let change = LimitChange::Overlay(LimitValues { request_limit: Some(5), ..LimitValues::default() });
        assert_eq!(apply_change(Some(existing), &change), Ok(Some(values(Some((5, 60)), Some((1000, 60))))));
        assert_eq!(apply_change(Some(existing), &LimitChange::Delete), Ok(None));
        assert_eq!(apply_change(None, &LimitChange::Overlay(LimitValues::default())), Ok(None));
    }

    #[test]
    fn delete_takes_no_values_and_the_operation_is_known() {
        assert_eq!(LimitChange::parse(None, LimitValues::default()), Ok(LimitChange::Overlay(LimitValues::default())));
        assert_eq!(LimitChange::parse(Some("delete"), LimitValues::default()), Ok(LimitChange::Delete));
        assert!(LimitChange::parse(Some("DELETE"), values(Some((1, 1)), None)).is_err());
        assert!(LimitChange::parse(Some("MERGE"), LimitValues::default()).is_err());
    }

    #[test]
    fn a_limit_needs_its_period_and_periods_are_bounded() {
        let lonely = LimitChange::Overlay(LimitValues { usage_limit: Some(5), ..LimitValues::default() });
        assert!(apply_change(None, &lonely).unwrap_err().0.contains("usageLimitPeriod"));
        for period in [0, MAX_PERIOD_SECONDS + 1] {
            let change = LimitChange::Overlay(values(Some((1, period)), None));
            assert!(apply_change(None, &change).unwrap_err().0.contains("requestLimitPeriod"));
        }
    }

    #[test]
    fn the_workspace_limit_wins_per_kind_over_the_default() {
        let workspace = values(Some((5, 1)), None);
        let default = values(Some((100, 60)), Some((1000, 60)));
        let effective = EffectiveLimits::of(Some(&workspace), Some(&default));
        assert_eq!(effective.requests, Some(RateLimit { limit: 5, period_seconds: 1 }));
        assert_eq!(effective.tokens, Some(RateLimit { limit: 1000, period_seconds: 60 }));
        assert!(EffectiveLimits::of(None, None).is_unlimited());
    }

    #[test]
    fn windows_are_aligned_to_their_period() {
        assert_eq!(window_start(125, 60), 120);
        assert_eq!(seconds_until_reset(125, 60), 55);
        assert_eq!(seconds_until_reset(120, 60), 60);
    }

    #[test]
    fn a_window_refuses_past_its_limit_and_starts_again_in_the_next() {
        let limit = RateLimit { limit: 2, period_seconds: 60 };
        let mut window = WindowCount::default();
        assert_eq!(window.take_request(limit, 125).map(|standing| standing.remaining), Ok(1));
        assert_eq!(window.take_request(limit, 126).map(|standing| standing.remaining), Ok(0));
        assert_eq!(window.take_request(limit, 127), Err(WindowStanding { limit: 2, remaining: 0, reset_seconds: 53 }));
        assert_eq!(window.take_request(limit, 180).map(|standing| standing.remaining), Ok(1));
    }

    #[test]
    fn tokens_are_checked_before_and_charged_after_with_overshoot() {
        let limit = RateLimit { limit: 100, period_seconds: 60 };
        let mut window = WindowCount::default();
        assert!(window.check_tokens(limit, 0).is_ok());
        window.charge(150, 1, 60);
        assert_eq!(window.used, 150);
        assert_eq!(window.check_tokens(limit, 2).unwrap_err().remaining, 0);
        assert_eq!(window.check_tokens(limit, 60).map(|standing| standing.remaining), Ok(100));
    }
}
