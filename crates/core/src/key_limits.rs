//! Per-key limits (docs/CONTRACT.md#per-key-limits): requests and tokens per minute, calls
//! in flight, and a budget of tokens and/or cost per UTC day or month. The rules a limit
//! must meet to be stored (each message names its field under `keygateLimits`), the
//! calendar periods a budget counts in, and when a key deserves a warning (a budget nearly
//! used, an expiry near). No IO: the gateway counts, the store keeps, this decides.

use crate::civil_time::month_start;
use crate::usage::{format_amount, parse_price};
use crate::verification::has_expired;

/// The wire name of a key's limits, which every message starts its field's path with.
pub const LIMITS_FIELD: &str = "keygateLimits";
/// The largest request or token count a limit may have (a trillion: more is a typo).
pub const MAX_COUNT: u64 = 1_000_000_000_000;
/// The largest number of calls in flight a key may be allowed.
pub const MAX_IN_FLIGHT: u64 = 1_000_000;
/// The largest cost budget, in millionths of the currency (a trillion units).
pub const MAX_COST_MICROS: i64 = 1_000_000_000_000 * 1_000_000;
/// A budget is "nearly used" from this share of it on, in percent: the console's banner
/// and `keygate keys list`'s warning line.
pub const BUDGET_WARNING_PERCENT: u64 = 80;
/// An expiry is "near" within this many seconds (7 days): the same warnings.
pub const EXPIRY_WARNING_SECONDS: i64 = 7 * 86_400;

const DAY_SECONDS: i64 = 86_400;

/// A key's limits; every part is optional and `KeyLimits::default()` limits nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyLimits {
    pub requests_per_minute: Option<u64>,
    /// Input plus output tokens, as providers report them, per minute.
    pub tokens_per_minute: Option<u64>,
    pub max_in_flight: Option<u64>,
    pub budget: Option<Budget>,
}

impl KeyLimits {
    pub fn is_empty(&self) -> bool {
        *self == KeyLimits::default()
    }
}

/// What a key may spend in each UTC day or month: tokens (input plus output), cost (in
/// millionths of the price table's currency), or both; at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub period: BudgetPeriod,
    pub tokens: Option<u64>,
    pub cost_micros: Option<i64>,
}

/// The calendar period a budget renews in (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetPeriod {
    Day,
    Month,
}

impl BudgetPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetPeriod::Day => "day",
            BudgetPeriod::Month => "month",
        }
    }

    /// `day` or `month`, in any case.
    pub fn parse(text: &str) -> Option<BudgetPeriod> {
        match text.trim().to_ascii_lowercase().as_str() {
            "day" => Some(BudgetPeriod::Day),
            "month" => Some(BudgetPeriod::Month),
            _ => None,
        }
    }

    /// The period that holds `now` (Unix seconds): its first second and the first second
    /// of the next one.
    pub fn bounds(self, now: i64) -> (i64, i64) {
        match self {
            BudgetPeriod::Day => {
                let start = now.div_euclid(DAY_SECONDS) * DAY_SECONDS;
                (start, start + DAY_SECONDS)
            }
            BudgetPeriod::Month => {
                let start = month_start(now);
                // 32 days after the first of any month is inside the next one.
                (start, month_start(start + 32 * DAY_SECONDS))
            }
        }
    }

    /// Seconds from `now` until the period ends and the budget renews (at least 1): a
    /// refusal's `Retry-After`.
    pub fn seconds_until_renewal(self, now: i64) -> u64 {
        u64::try_from(self.bounds(now).1 - now).unwrap_or(1).max(1)
    }
}

/// What a key spent in one period: tokens (input plus output) and cost in millionths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spend {
    pub tokens: u64,
    pub cost_micros: i64,
}

impl Spend {
    pub fn add(&mut self, other: Spend) {
        self.tokens = self.tokens.saturating_add(other.tokens);
        self.cost_micros = self.cost_micros.saturating_add(other.cost_micros);
    }

    pub fn plus(mut self, other: Spend) -> Spend {
        self.add(other);
        self
    }
}

/// The part of a budget a spend has used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetPart {
    Tokens,
    Cost,
}

impl Budget {
    /// The part of this budget that `spent` has reached, if any (tokens first): a call is
    /// refused while one is.
    pub fn used_up(&self, spent: Spend) -> Option<BudgetPart> {
        if self.tokens.is_some_and(|tokens| spent.tokens >= tokens) {
            return Some(BudgetPart::Tokens);
        }
        if self.cost_micros.is_some_and(|cost| spent.cost_micros >= cost) {
            return Some(BudgetPart::Cost);
        }
        None
    }

    /// Whether `spent` is at least [`BUDGET_WARNING_PERCENT`] of either part.
    pub fn nearly_used(&self, spent: Spend) -> bool {
        let at_least = |spent: u128, limit: u128| spent * 100 >= limit * u128::from(BUDGET_WARNING_PERCENT);
        self.tokens.is_some_and(|tokens| at_least(u128::from(spent.tokens), u128::from(tokens)))
            || self.cost_micros.is_some_and(|cost| {
                at_least(u128::try_from(spent.cost_micros.max(0)).unwrap_or(0), u128::try_from(cost.max(0)).unwrap_or(0))
            })
    }

    /// What is left of each part (never below 0).
    pub fn remaining(&self, spent: Spend) -> (Option<u64>, Option<i64>) {
        (
            self.tokens.map(|tokens| tokens.saturating_sub(spent.tokens)),
            self.cost_micros.map(|cost| cost.saturating_sub(spent.cost_micros).max(0)),
        )
    }
}

/// Whether a key expiring at `expires_at` (Unix seconds) deserves a warning at `now`: it
/// has not expired yet and will within [`EXPIRY_WARNING_SECONDS`].
pub fn expires_soon(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_some_and(|at| at > now && at - now <= EXPIRY_WARNING_SECONDS)
}

/// Why a key deserves a warning: the console's banner on its page and badge in the key
/// list (docs/CONTRACT.md#console).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyWarning {
    /// A part of its budget is reached: calls are refused until the period ends.
    BudgetUsedUp(BudgetPeriod),
    /// Its budget is at least [`BUDGET_WARNING_PERCENT`] used.
    BudgetNearlyUsed(BudgetPeriod),
    /// It expired at these Unix seconds: calls are refused.
    Expired(i64),
    /// It expires at these Unix seconds, within [`EXPIRY_WARNING_SECONDS`].
    ExpiresSoon(i64),
}

impl KeyWarning {
    /// Whether the key is refused already (rather than about to be).
    pub fn refuses_calls(self) -> bool {
        matches!(self, KeyWarning::BudgetUsedUp(_) | KeyWarning::Expired(_))
    }
}

/// The warnings a key deserves at `now` (Unix seconds): its budget (if it has one) after
/// `spent` in the current period, then its expiry. Empty: nothing to warn of.
pub fn key_warnings(budget: Option<&Budget>, spent: Spend, expires_at: Option<i64>, now: i64) -> Vec<KeyWarning> {
    let mut warnings = Vec::new();
    if let Some(budget) = budget {
        if budget.used_up(spent).is_some() {
            warnings.push(KeyWarning::BudgetUsedUp(budget.period));
        } else if budget.nearly_used(spent) {
            warnings.push(KeyWarning::BudgetNearlyUsed(budget.period));
        }
    }
    if let Some(at) = expires_at {
        if has_expired(expires_at, now) {
            warnings.push(KeyWarning::Expired(at));
        } else if expires_soon(expires_at, now) {
            warnings.push(KeyWarning::ExpiresSoon(at));
        }
    }
    warnings
}

/// A cost in millionths as a decimal text: at least two decimals, more only where they
/// matter (`12.50`, `0.000125`).
pub fn format_cost(micros: i64) -> String {
    let full = format_amount(micros, 6);
    let trimmed = full.trim_end_matches('0');
    let decimals = trimmed.split_once('.').map_or(0, |(_, fraction)| fraction.len());
    if decimals <= 2 {
        format_amount(micros, 2)
    } else {
        trimmed.to_string()
    }
}

/// Limits as a client sent them, before the rules: numbers as sent (a negative one is
/// refused here, not by the parser, so that the message names the field), texts as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLimitsInput {
    pub requests_per_minute: Option<i64>,
    pub tokens_per_minute: Option<i64>,
    pub max_in_flight: Option<i64>,
    pub budget: Option<BudgetInput>,
}

/// A budget as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BudgetInput {
    pub period: Option<String>,
    pub tokens: Option<i64>,
    pub cost: Option<String>,
}

/// Limits that cannot be stored, with the message that says why (naming the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyLimitsError(pub String);

fn count(field: &str, value: Option<i64>, max: u64) -> Result<Option<u64>, KeyLimitsError> {
    let Some(value) = value else { return Ok(None) };
    u64::try_from(value)
        .ok()
        .filter(|value| (1..=max).contains(value))
        .map(Some)
        .ok_or_else(|| count_refused(field, &value.to_string(), max))
}

fn count_refused(field: &str, got: &str, max: u64) -> KeyLimitsError {
    KeyLimitsError(format!("{LIMITS_FIELD}.{field} must be an integer from 1 to {max}, got {got}."))
}

/// A count as a person typed it into a form: empty (or blank) is none, an integer goes to
/// [`parse_key_limits`] as sent, anything else is refused in the words the rules use for a
/// count out of range (`field` its name under `keygateLimits`, `max` its largest value).
pub fn typed_count(field: &str, text: &str, max: u64) -> Result<Option<i64>, KeyLimitsError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>().map(Some).map_err(|_| count_refused(field, &format!("'{}'", shown(text)), max))
}

/// Checks limits as sent: every count from 1 to its maximum (0 would refuse every call: a
/// key that should not be used is disabled instead), a budget with a period (`day` or
/// `month`) and at least one of `tokens` and `cost`, a cost a decimal above 0 with at most
/// six decimals. An empty input is no limit at all.
pub fn parse_key_limits(input: &KeyLimitsInput) -> Result<KeyLimits, KeyLimitsError> {
    let budget = match &input.budget {
        None => None,
        Some(budget) => {
            let period = match budget.period.as_deref() {
                None => return Err(KeyLimitsError(format!("{LIMITS_FIELD}.budget.period is required: day or month."))),
                Some(text) => BudgetPeriod::parse(text)
                    .ok_or_else(|| KeyLimitsError(format!("{LIMITS_FIELD}.budget.period must be day or month, got '{}'.", shown(text))))?,
            };
            let tokens = count("budget.tokens", budget.tokens, MAX_COUNT)?;
            let cost_micros = match budget.cost.as_deref() {
                None => None,
                Some(text) => Some(parse_price(text).ok().filter(|micros| *micros > 0 && *micros <= MAX_COST_MICROS).ok_or_else(|| {
                    KeyLimitsError(format!(
                        "{LIMITS_FIELD}.budget.cost must be a decimal text above 0 with at most 6 decimals (\"12.50\"), got '{}'.",
                        shown(text)
                    ))
                })?),
            };
            if tokens.is_none() && cost_micros.is_none() {
                return Err(KeyLimitsError(format!("{LIMITS_FIELD}.budget needs tokens, cost or both.")));
            }
            Some(Budget { period, tokens, cost_micros })
        }
    };
    Ok(KeyLimits {
        requests_per_minute: count("requestsPerMinute", input.requests_per_minute, MAX_COUNT)?,
        tokens_per_minute: count("tokensPerMinute", input.tokens_per_minute, MAX_COUNT)?,
        max_in_flight: count("maxInFlight", input.max_in_flight, MAX_IN_FLIGHT)?,
        budget,
    })
}

/// A client's text as it may be repeated in a message: at most 40 characters, no control
/// characters.
fn shown(text: &str) -> String {
    text.chars().filter(|character| !character.is_control()).take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::civil_time::{format_utc_timestamp, parse_utc_timestamp};

    fn at(text: &str) -> i64 {
        parse_utc_timestamp(text).unwrap()
    }

    fn budget_input(period: Option<&str>, tokens: Option<i64>, cost: Option<&str>) -> KeyLimitsInput {
        KeyLimitsInput {
            budget: Some(BudgetInput { period: period.map(str::to_string), tokens, cost: cost.map(str::to_string) }),
            ..KeyLimitsInput::default()
        }
    }

    #[test]
    fn limits_are_checked_field_by_field_with_messages_that_name_the_field() {
        let all = KeyLimitsInput {
            requests_per_minute: Some(60),
            tokens_per_minute: Some(100_000),
            max_in_flight: Some(4),
            budget: Some(BudgetInput { period: Some("Month".into()), tokens: Some(1_000_000), cost: Some("12.5".into()) }),
        };
        let parsed = parse_key_limits(&all).unwrap();
        assert_eq!(parsed.budget, Some(Budget { period: BudgetPeriod::Month, tokens: Some(1_000_000), cost_micros: Some(12_500_000) }));
        assert_eq!((parsed.requests_per_minute, parsed.tokens_per_minute, parsed.max_in_flight), (Some(60), Some(100_000), Some(4)));
        assert!(parse_key_limits(&KeyLimitsInput::default()).unwrap().is_empty());

        let refused = |input: KeyLimitsInput| parse_key_limits(&input).unwrap_err().0;
        assert_eq!(
            refused(KeyLimitsInput { requests_per_minute: Some(0), ..KeyLimitsInput::default() }),
            "keygateLimits.requestsPerMinute must be an integer from 1 to 1000000000000, got 0."
        );
        assert_eq!(
            refused(KeyLimitsInput { max_in_flight: Some(-3), ..KeyLimitsInput::default() }),
            "keygateLimits.maxInFlight must be an integer from 1 to 1000000, got -3."
        );
        assert_eq!(refused(budget_input(None, Some(5), None)), "keygateLimits.budget.period is required: day or month.");
        assert_eq!(refused(budget_input(Some("week"), Some(5), None)), "keygateLimits.budget.period must be day or month, got 'week'.");
        assert_eq!(refused(budget_input(Some("day"), None, None)), "keygateLimits.budget needs tokens, cost or both.");
        for cost in ["0", "-1", "1.2345678", "ten", ""] {
            assert!(refused(budget_input(Some("day"), None, Some(cost))).starts_with("keygateLimits.budget.cost must be"), "{cost}");
        }
    }

    #[test]
    fn budget_periods_are_utc_days_and_calendar_months() {
        let now = at("2027-02-14T13:20:00Z");
        let (start, end) = BudgetPeriod::Day.bounds(now);
        assert_eq!(
            (format_utc_timestamp(start), format_utc_timestamp(end)),
            ("2027-02-14T00:00:00Z".into(), "2027-02-15T00:00:00Z".into())
        );
        let (start, end) = BudgetPeriod::Month.bounds(now);
        assert_eq!(
            (format_utc_timestamp(start), format_utc_timestamp(end)),
            ("2027-02-01T00:00:00Z".into(), "2027-03-01T00:00:00Z".into())
        );
        // December runs into the next year; the last second of a month is still in it.
        let (start, end) = BudgetPeriod::Month.bounds(at("2027-12-31T23:59:59Z"));
        assert_eq!(
            (format_utc_timestamp(start), format_utc_timestamp(end)),
            ("2027-12-01T00:00:00Z".into(), "2028-01-01T00:00:00Z".into())
        );
        assert_eq!(BudgetPeriod::Day.seconds_until_renewal(at("2027-02-14T23:59:59Z")), 1);
        assert_eq!(BudgetPeriod::Month.seconds_until_renewal(at("2028-02-29T00:00:00Z")), 86_400);
    }

    #[test]
    fn a_budget_is_used_up_at_its_limit_and_nearly_used_from_eighty_percent() {
        let budget = Budget { period: BudgetPeriod::Day, tokens: Some(1000), cost_micros: Some(2_000_000) };
        let spent = |tokens, cost_micros| Spend { tokens, cost_micros };
        assert_eq!(budget.used_up(spent(999, 1_999_999)), None);
        assert_eq!(budget.used_up(spent(1000, 0)), Some(BudgetPart::Tokens));
        assert_eq!(budget.used_up(spent(0, 2_000_000)), Some(BudgetPart::Cost));
        assert!(!budget.nearly_used(spent(799, 1_599_999)));
        assert!(budget.nearly_used(spent(800, 0)));
        assert!(budget.nearly_used(spent(0, 1_600_000)));
        assert_eq!(budget.remaining(spent(1200, 500_000)), (Some(0), Some(1_500_000)));
        assert!(expires_soon(Some(7 * 86_400), 0));
        assert!(!expires_soon(Some(7 * 86_400 + 1), 0));
        assert!(!expires_soon(Some(10), 10), "an expired key is not about to expire");
        assert_eq!((format_cost(12_500_000), format_cost(125), format_cost(0)), ("12.50".into(), "0.000125".into(), "0.00".into()));
    }

    #[test]
    fn warnings_name_a_budget_nearly_or_wholly_used_and_an_expiry_near_or_past() {
        let budget = Budget { period: BudgetPeriod::Month, tokens: Some(1000), cost_micros: None };
        let spent = |tokens| Spend { tokens, cost_micros: 0 };
        assert_eq!(key_warnings(Some(&budget), spent(799), None, 0), []);
        assert_eq!(key_warnings(Some(&budget), spent(800), None, 0), [KeyWarning::BudgetNearlyUsed(BudgetPeriod::Month)]);
        assert_eq!(key_warnings(Some(&budget), spent(1000), None, 0), [KeyWarning::BudgetUsedUp(BudgetPeriod::Month)]);
        assert_eq!(key_warnings(None, spent(5000), Some(EXPIRY_WARNING_SECONDS + 1), 0), []);
        assert_eq!(key_warnings(None, spent(0), Some(EXPIRY_WARNING_SECONDS), 0), [KeyWarning::ExpiresSoon(EXPIRY_WARNING_SECONDS)]);
        let both = key_warnings(Some(&budget), spent(2000), Some(10), 10);
        assert_eq!(both, [KeyWarning::BudgetUsedUp(BudgetPeriod::Month), KeyWarning::Expired(10)]);
        assert!(both.iter().all(|warning| warning.refuses_calls()));
        assert!(!KeyWarning::ExpiresSoon(10).refuses_calls());
    }

    #[test]
    fn typed_counts_are_integers_or_refused_in_the_rules_words() {
        assert_eq!(typed_count("requestsPerMinute", " ", MAX_COUNT), Ok(None));
        assert_eq!(typed_count("requestsPerMinute", " 60 ", MAX_COUNT), Ok(Some(60)));
        assert_eq!(typed_count("maxInFlight", "-1", MAX_IN_FLIGHT), Ok(Some(-1)), "the rules refuse it, naming the value");
        assert_eq!(
            typed_count("maxInFlight", "four", MAX_IN_FLIGHT).unwrap_err().0,
            "keygateLimits.maxInFlight must be an integer from 1 to 1000000, got 'four'."
        );
    }
}
