//! A key's own limits in the console (docs/CONTRACT.md#console): what they are and where
//! its budget stands, on the key's page; the warnings of `keygate_core::key_limits` (a
//! budget nearly or wholly used, an expiry near or past) as a banner there and as badges
//! in the key list; and the form that sets, changes and removes the limits. The form's
//! values go to the same edit operation as the API's `keygateLimits`
//! ([`crate::operations::keys::edit_key`]), which judges them with the same rules, so a
//! refusal carries the API's message and changes nothing.

use keygate_core::key_limits::{
    format_cost, typed_count, Budget, BudgetInput, BudgetPeriod, KeyLimits, KeyLimitsInput, KeyWarning, Spend, BUDGET_WARNING_PERCENT,
    MAX_COUNT, MAX_IN_FLIGHT,
};
use maud::{html, Markup};

use super::charts::grouped;
use super::layout::{csrf_field, time};
use super::session::Console;
use crate::management::form::FormFields;
use crate::operations::keys::LimitsSent;

/// The form's count fields: form name, label, the field's name under `keygateLimits` (in
/// the rules' messages), its largest value, and its hint.
const COUNT_FIELDS: [(&str, &str, &str, u64, &str); 3] = [
    (
        "requests_per_minute",
        "Requests per minute",
        "requestsPerMinute",
        MAX_COUNT,
        "Model calls per minute (a fixed window on the minute).",
    ),
    ("tokens_per_minute", "Tokens per minute", "tokensPerMinute", MAX_COUNT, "Input plus output tokens per minute."),
    ("max_in_flight", "Calls in flight", "maxInFlight", MAX_IN_FLIGHT, "Model calls running at once."),
];

/// What the limits form holds, as typed; every field empty is no limit at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitsFormValues {
    /// The three counts of [`COUNT_FIELDS`], in that order.
    counts: [String; 3],
    /// `day`, `month`, or empty: no budget.
    budget_period: String,
    budget_tokens: String,
    budget_cost: String,
}

impl LimitsFormValues {
    /// The form filled with a key's limits.
    pub fn from_limits(limits: Option<&KeyLimits>) -> LimitsFormValues {
        let text = |value: Option<u64>| value.map(|value| value.to_string()).unwrap_or_default();
        let Some(limits) = limits else { return LimitsFormValues::default() };
        let budget = limits.budget.as_ref();
        LimitsFormValues {
            counts: [text(limits.requests_per_minute), text(limits.tokens_per_minute), text(limits.max_in_flight)],
            budget_period: budget.map(|budget| budget.period.as_str().to_string()).unwrap_or_default(),
            budget_tokens: text(budget.and_then(|budget| budget.tokens)),
            budget_cost: budget.and_then(|budget| budget.cost_micros).map(format_cost).unwrap_or_default(),
        }
    }

    /// The values a submitted form carries; its "Remove all limits" button empties them.
    pub fn from_fields(fields: &FormFields) -> LimitsFormValues {
        if fields.get_non_empty("clear").is_some() {
            return LimitsFormValues::default();
        }
        let field = |name: &str| fields.get(name).unwrap_or("").trim().to_string();
        LimitsFormValues {
            counts: COUNT_FIELDS.map(|(name, ..)| field(name)),
            budget_period: field("budget_period"),
            budget_tokens: field("budget_tokens"),
            budget_cost: field("budget_cost"),
        }
    }

    /// The limits as the edit operation takes them: counts as typed (a text that is not an
    /// integer refused in the rules' words), a budget when any of its fields is filled in.
    pub fn to_sent(&self) -> LimitsSent {
        let count = |index: usize| {
            let (_, _, field, max, _) = COUNT_FIELDS[index];
            typed_count(field, &self.counts[index], max).map_err(|error| error.0)
        };
        let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_string());
        let has_budget = !(self.budget_period.is_empty() && self.budget_tokens.is_empty() && self.budget_cost.is_empty());
        let budget = match has_budget {
            false => None,
            true => Some(BudgetInput {
                period: non_empty(&self.budget_period),
                tokens: typed_count("budget.tokens", &self.budget_tokens, MAX_COUNT).map_err(|error| error.0)?,
                cost: non_empty(&self.budget_cost),
            }),
        };
        Ok(KeyLimitsInput { requests_per_minute: count(0)?, tokens_per_minute: count(1)?, max_in_flight: count(2)?, budget })
    }

    /// Whether the form removes every limit.
    pub fn is_empty(&self) -> bool {
        *self == LimitsFormValues::default()
    }
}

/// The form's element id of the field a refusal's message names (`keygateLimits.<field>`).
fn field_in_error(message: &str) -> Option<&'static str> {
    let named = |field: &str| message.contains(&format!(".{field} ")) || message.contains(&format!(".{field}."));
    if let Some((name, ..)) = COUNT_FIELDS.iter().find(|(_, _, field, ..)| named(field)) {
        return Some(name);
    }
    [("budget.period", "budget_period"), ("budget.tokens", "budget_tokens"), ("budget.cost", "budget_cost"), ("budget", "budget_period")]
        .into_iter()
        .find(|(field, _)| named(field))
        .map(|(_, name)| name)
}

/// The limits form as the page shows it: its values, and a refusal's message.
#[derive(Debug, Clone, Default)]
pub struct LimitsForm {
    pub values: LimitsFormValues,
    pub error: Option<String>,
}

/// Where a key's budget stands: the budget, what was spent in its current period, the
/// currency of costs.
pub struct BudgetStanding<'a> {
    pub budget: &'a Budget,
    pub spent: Spend,
    pub currency: &'a str,
}

fn period_adjective(period: BudgetPeriod) -> &'static str {
    match period {
        BudgetPeriod::Day => "daily",
        BudgetPeriod::Month => "monthly",
    }
}

/// When the period holding `now` ends (Unix seconds), as a `<time>`.
fn period_end(period: BudgetPeriod, now: i64) -> Markup {
    time(period.bounds(now).1.saturating_mul(1000))
}

/// The banner of a key's page for its `warnings` at `now`: an alert when calls are refused
/// already, else a status; nothing without warnings.
pub fn warning_banner(warnings: &[KeyWarning], now: i64) -> Markup {
    if warnings.is_empty() {
        return html! {};
    }
    let refused = warnings.iter().any(|warning| warning.refuses_calls());
    html! {
        div.banner.banner-danger[refused].banner-warning[!refused] #key-warnings role=(if refused { "alert" } else { "status" }) {
            @for warning in warnings {
                p {
                    @match warning {
                        KeyWarning::BudgetUsedUp(period) => {
                            strong { "The " (period_adjective(*period)) " budget is used up: " }
                            "calls with this key are refused until the " (period.as_str()) " ends (UTC), at " (period_end(*period, now)) "."
                        }
                        KeyWarning::BudgetNearlyUsed(period) => {
                            strong { "The " (period_adjective(*period)) " budget is at least " (BUDGET_WARNING_PERCENT) "% used: " }
                            "calls with this key will be refused once it is used up, until the " (period.as_str()) " ends at " (period_end(*period, now)) "."
                        }
                        KeyWarning::Expired(at) => {
                            strong { "This key has expired: " }
                            "calls with it have been refused since " (time(at.saturating_mul(1000))) ". Edit it with a later expiry, or none, to use it again."
                        }
                        KeyWarning::ExpiresSoon(at) => {
                            strong { "This key expires within 7 days: " }
                            "calls with it will be refused from " (time(at.saturating_mul(1000))) "."
                        }
                    }
                }
            }
        }
    }
}

/// The short badges of a key list row for its `warnings` (an expired key says so in its
/// status already).
pub fn warning_badges(warnings: &[KeyWarning]) -> Markup {
    html! {
        @for warning in warnings {
            @match warning {
                KeyWarning::BudgetUsedUp(_) => { br; span.badge.danger.key-warning { "Budget used up" } }
                KeyWarning::BudgetNearlyUsed(_) => { br; span.badge.warning.key-warning { "Budget " (BUDGET_WARNING_PERCENT) "%+ used" } }
                KeyWarning::ExpiresSoon(_) => { br; span.badge.warning.key-warning { "Expires soon" } }
                KeyWarning::Expired(_) => {}
            }
        }
    }
}

/// A count limit's value, or "None".
fn count_markup(value: Option<u64>) -> Markup {
    match value {
        Some(value) => html! { (grouped(i64::try_from(value).unwrap_or(i64::MAX))) },
        None => html! { span.muted { "None" } },
    }
}

/// A budget's amounts: `1,000 tokens and 5.00 USD per day`.
fn budget_text(budget: &Budget, currency: &str) -> String {
    let mut parts = Vec::new();
    if let Some(tokens) = budget.tokens {
        parts.push(format!("{} tokens", grouped(i64::try_from(tokens).unwrap_or(i64::MAX))));
    }
    if let Some(cost) = budget.cost_micros {
        parts.push(format!("{} {currency}", format_cost(cost)));
    }
    format!("{} per {} (UTC)", parts.join(" and "), budget.period.as_str())
}

/// The figures of a budget in its current period: what is used and what is left of each
/// part it sets.
fn budget_figures(standing: &BudgetStanding<'_>) -> Markup {
    let BudgetStanding { budget, spent, currency } = standing;
    let (remaining_tokens, remaining_cost) = budget.remaining(*spent);
    let tokens = |value: u64| grouped(i64::try_from(value).unwrap_or(i64::MAX));
    html! {
        dl.figures #key-budget {
            @if let (Some(limit), Some(left)) = (budget.tokens, remaining_tokens) {
                div { dt { "Tokens used" } dd { (tokens(spent.tokens)) " " span.of { "of " (tokens(limit)) } } }
                div { dt { "Tokens left" } dd { (tokens(left)) } }
            }
            @if let (Some(limit), Some(left)) = (budget.cost_micros, remaining_cost) {
                div { dt { "Cost used" } dd { (format_cost(spent.cost_micros)) " " span.of { "of " (format_cost(limit)) " " (currency) } } }
                div { dt { "Cost left" } dd { (format_cost(left)) " " (currency) } }
            }
        }
    }
}

/// One count field of the form.
fn count_field(name: &str, label: &str, hint: &str, value: &str, invalid: bool) -> Markup {
    let id = format!("limits-{name}");
    let described_by = if invalid { format!("{id}-hint limits-form-error") } else { format!("{id}-hint") };
    html! {
        div.field {
            label for=(id) { (label) " " span.optional { "(optional)" } }
            input type="text" inputmode="numeric" id=(id) name=(name) value=(value) autocomplete="off"
                aria-invalid=[invalid.then_some("true")] aria-describedby=(described_by);
            p.hint id={ (id) "-hint" } { (hint) " Empty: no limit." }
        }
    }
}

/// The form that sets and removes the key's limits, posting to `action`.
fn limits_form(console: &Console, action: &str, form: &LimitsForm, currency: &str) -> Markup {
    let values = &form.values;
    let invalid = form.error.as_deref().and_then(field_in_error);
    let is_invalid = |name: &str| invalid == Some(name);
    let described = |name: &str, base: &str| if is_invalid(name) { format!("{base} limits-form-error") } else { base.to_string() };
    html! {
        form.limits-form #limits-form method="post" action=(action) novalidate aria-labelledby="limits-form-heading" {
            (csrf_field(console))
            h3 #limits-form-heading { "Change the limits" }
            @if let Some(message) = &form.error {
                p.form-error #limits-form-error role="alert" { "Nothing was changed: " (message) }
            }
            div.field-row {
                @for (index, (name, label, _, _, hint)) in COUNT_FIELDS.iter().enumerate() {
                    (count_field(name, label, hint, &values.counts[index], is_invalid(name)))
                }
            }
            fieldset.field.budget-fields {
                legend { "Budget " span.optional { "(optional)" } }
                div.field-row {
                    div.field {
                        label for="limits-budget_period" { "Period" }
                        select id="limits-budget_period" name="budget_period" aria-invalid=[is_invalid("budget_period").then_some("true")]
                            aria-describedby=(described("budget_period", "limits-budget_period-hint")) {
                            option value="" selected[values.budget_period.is_empty()] { "No budget" }
                            @for period in [BudgetPeriod::Day, BudgetPeriod::Month] {
                                option value=(period.as_str()) selected[values.budget_period.eq_ignore_ascii_case(period.as_str())] {
                                    "Per " (period.as_str()) " (UTC)"
                                }
                            }
                        }
                        p.hint id="limits-budget_period-hint" { "The budget renews at the start of each UTC day or month." }
                    }
                    div.field {
                        label for="limits-budget_tokens" { "Tokens" }
                        input type="text" inputmode="numeric" id="limits-budget_tokens" name="budget_tokens" value=(values.budget_tokens) autocomplete="off"
                            aria-invalid=[is_invalid("budget_tokens").then_some("true")]
                            aria-describedby=(described("budget_tokens", "limits-budget_tokens-hint"));
                        p.hint id="limits-budget_tokens-hint" { "Input plus output tokens per period." }
                    }
                    div.field {
                        label for="limits-budget_cost" { "Cost (" (currency) ")" }
                        input type="text" inputmode="decimal" id="limits-budget_cost" name="budget_cost" value=(values.budget_cost) autocomplete="off"
                            aria-invalid=[is_invalid("budget_cost").then_some("true")]
                            aria-describedby=(described("budget_cost", "limits-budget_cost-hint"));
                        p.hint id="limits-budget_cost-hint" { "At the price table's prices, e.g. 12.50; at most 6 decimals." }
                    }
                }
                p.hint { "A budget needs a period and tokens, a cost or both; calls are refused once either is used up." }
            }
            div.actions {
                button type="submit" { "Save limits" }
                button.secondary type="submit" name="clear" value="1" { "Remove all limits" }
            }
        }
    }
}

/// What the key page's Limits panel shows.
pub struct LimitsPanel<'a> {
    pub limits: Option<&'a KeyLimits>,
    pub budget: Option<BudgetStanding<'a>>,
    pub now: i64,
    /// The form, when the caller may edit the key; it posts to `action`.
    pub form: Option<(&'a LimitsForm, String)>,
    /// What a finished change says, shown in the panel.
    pub done: Option<&'static str>,
    pub currency: &'a str,
}

/// The key page's Limits panel: the limits, the budget in its current period, and the form.
pub fn limits_panel(console: &Console, panel: &LimitsPanel<'_>) -> Markup {
    let limits = panel.limits.copied().unwrap_or_default();
    html! {
        section.panel #limits aria-labelledby="key-limits-heading" {
            h2 #key-limits-heading { "Limits" }
            @if let Some(done) = panel.done {
                p.notice.notice-success role="status" { (done) }
            }
            dl.details #key-limits {
                div { dt { "Requests per minute" } dd { (count_markup(limits.requests_per_minute)) } }
                div { dt { "Tokens per minute" } dd { (count_markup(limits.tokens_per_minute)) } }
                div { dt { "Calls in flight" } dd { (count_markup(limits.max_in_flight)) } }
                div { dt { "Budget" } dd {
                    @match &panel.budget {
                        Some(standing) => { (budget_text(standing.budget, standing.currency)) }
                        None => { span.muted { "None" } }
                    }
                } }
            }
            @if let Some(standing) = &panel.budget {
                h3 { "This " (standing.budget.period.as_str()) "'s budget" }
                (budget_figures(standing))
                p.hint { "The budget renews at " (period_end(standing.budget.period, panel.now)) ". Usage counts here once the nodes have written it (within seconds)." }
            }
            @match &panel.form {
                Some((form, action)) => { (limits_form(console, action, form, panel.currency)) }
                None => { p.hint { "You may not change this key's limits." } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keygate_core::key_limits::parse_key_limits;

    fn fields(text: &str) -> FormFields {
        FormFields::parse(text, "form").unwrap()
    }

    #[test]
    fn the_form_round_trips_limits_and_hands_typed_text_to_the_rules() {
        let limits = parse_key_limits(&KeyLimitsInput {
            requests_per_minute: Some(60),
            tokens_per_minute: None,
            max_in_flight: Some(4),
            budget: Some(BudgetInput { period: Some("day".into()), tokens: None, cost: Some("12.5".into()) }),
        })
        .unwrap();
        let values = LimitsFormValues::from_limits(Some(&limits));
        assert_eq!(values.budget_cost, "12.50");
        assert_eq!(parse_key_limits(&values.to_sent().unwrap()).unwrap(), limits);

        let sent = LimitsFormValues::from_fields(&fields("requests_per_minute=+60+&budget_period=&budget_tokens=&budget_cost=")).to_sent();
        assert_eq!(sent, Ok(KeyLimitsInput { requests_per_minute: Some(60), ..KeyLimitsInput::default() }));
        let refused = LimitsFormValues::from_fields(&fields("max_in_flight=four")).to_sent().unwrap_err();
        assert_eq!(refused, "keygateLimits.maxInFlight must be an integer from 1 to 1000000, got 'four'.");
        assert_eq!(field_in_error(&refused), Some("max_in_flight"));
        // A budget with tokens but no period goes to the rules, which ask for the period.
        let no_period = LimitsFormValues::from_fields(&fields("budget_tokens=500")).to_sent().unwrap();
        assert_eq!(parse_key_limits(&no_period).unwrap_err().0, "keygateLimits.budget.period is required: day or month.");
        assert_eq!(field_in_error("keygateLimits.budget needs tokens, cost or both."), Some("budget_period"));
        assert_eq!(field_in_error("keygateLimits.budget.cost must be a decimal"), Some("budget_cost"));

        let cleared = LimitsFormValues::from_fields(&fields("requests_per_minute=60&clear=1"));
        assert!(cleared.is_empty());
        assert_eq!(cleared.to_sent(), Ok(KeyLimitsInput::default()));
    }
}
