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
use super::i18n::Language;
use super::layout::{csrf_field, time};
use super::session::Console;
use crate::management::form::FormFields;
use crate::operations::keys::LimitsSent;

/// The form's count fields: form name, the message keys of its label, the field's name
/// under `keygateLimits` (in the rules' messages), its largest value, and the message key
/// of its hint.
const COUNT_FIELDS: [(&str, &str, &str, u64, &str); 3] = [
    ("requests_per_minute", "limits.requests_per_minute", "requestsPerMinute", MAX_COUNT, "limits.requests_per_minute_hint"),
    ("tokens_per_minute", "limits.tokens_per_minute", "tokensPerMinute", MAX_COUNT, "limits.tokens_per_minute_hint"),
    ("max_in_flight", "limits.in_flight", "maxInFlight", MAX_IN_FLIGHT, "limits.in_flight_hint"),
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

/// The message key `day` for a day's budget, `month` for a month's.
fn per_period(period: BudgetPeriod, day: &'static str, month: &'static str) -> &'static str {
    match period {
        BudgetPeriod::Day => day,
        BudgetPeriod::Month => month,
    }
}

/// When the period holding `now` ends (Unix seconds), as a `<time>`.
fn period_end(period: BudgetPeriod, now: i64) -> Markup {
    time(period.bounds(now).1.saturating_mul(1000))
}

/// The banner of a key's page for its `warnings` at `now`: an alert when calls are refused
/// already, else a status; nothing without warnings.
pub fn warning_banner(language: Language, warnings: &[KeyWarning], now: i64) -> Markup {
    if warnings.is_empty() {
        return html! {};
    }
    let refused = warnings.iter().any(|warning| warning.refuses_calls());
    let text = |key| language.text(key);
    html! {
        div.banner.banner-danger[refused].banner-warning[!refused] #key-warnings role=(if refused { "alert" } else { "status" }) {
            @for warning in warnings {
                p {
                    @match warning {
                        KeyWarning::BudgetUsedUp(period) => {
                            strong { (text(per_period(*period, "warning.used_up_day", "warning.used_up_month"))) }
                            (text(per_period(*period, "warning.used_up_day_text", "warning.used_up_month_text"))) (period_end(*period, now)) (text("warning.budget_end"))
                        }
                        KeyWarning::BudgetNearlyUsed(period) => {
                            strong { (language.fill(per_period(*period, "warning.nearly_day", "warning.nearly_month"), &[&BUDGET_WARNING_PERCENT])) }
                            (text(per_period(*period, "warning.nearly_day_text", "warning.nearly_month_text"))) (period_end(*period, now)) (text("warning.budget_end"))
                        }
                        KeyWarning::Expired(at) => {
                            strong { (text("warning.expired")) }
                            (text("warning.expired_before")) (time(at.saturating_mul(1000))) (text("warning.expired_after"))
                        }
                        KeyWarning::ExpiresSoon(at) => {
                            strong { (text("warning.expires_soon")) }
                            (text("warning.expires_soon_before")) (time(at.saturating_mul(1000))) (text("warning.expires_soon_after"))
                        }
                    }
                }
            }
        }
    }
}

/// The short badges of a key list row for its `warnings` (an expired key says so in its
/// status already).
pub fn warning_badges(language: Language, warnings: &[KeyWarning]) -> Markup {
    html! {
        @for warning in warnings {
            @match warning {
                KeyWarning::BudgetUsedUp(_) => { br; span.badge.danger.key-warning { (language.text("warning.badge_used_up")) } }
                KeyWarning::BudgetNearlyUsed(_) => { br; span.badge.warning.key-warning { (language.fill("warning.badge_nearly", &[&BUDGET_WARNING_PERCENT])) } }
                KeyWarning::ExpiresSoon(_) => { br; span.badge.warning.key-warning { (language.text("warning.badge_expires_soon")) } }
                KeyWarning::Expired(_) => {}
            }
        }
    }
}

/// A count limit's value, or "None".
fn count_markup(language: Language, value: Option<u64>) -> Markup {
    match value {
        Some(value) => html! { (grouped(i64::try_from(value).unwrap_or(i64::MAX))) },
        None => html! { span.muted { (language.text("limits.none")) } },
    }
}

/// A budget's amounts: `1,000 tokens and 5.00 USD per day (UTC)`.
fn budget_text(language: Language, budget: &Budget, currency: &str) -> String {
    let mut parts = Vec::new();
    if let Some(tokens) = budget.tokens {
        parts.push(language.fill("limits.budget_tokens", &[&grouped(i64::try_from(tokens).unwrap_or(i64::MAX))]));
    }
    if let Some(cost) = budget.cost_micros {
        parts.push(format!("{} {currency}", format_cost(cost)));
    }
    language.fill(per_period(budget.period, "limits.per_day", "limits.per_month"), &[&parts.join(language.text("limits.and"))])
}

/// The figures of a budget in its current period: what is used and what is left of each
/// part it sets.
fn budget_figures(language: Language, standing: &BudgetStanding<'_>) -> Markup {
    let BudgetStanding { budget, spent, currency } = standing;
    let (remaining_tokens, remaining_cost) = budget.remaining(*spent);
    let tokens = |value: u64| grouped(i64::try_from(value).unwrap_or(i64::MAX));
    let cost_with_currency = |value: i64| format!("{} {currency}", format_cost(value));
    html! {
        dl.figures #key-budget {
            @if let (Some(limit), Some(left)) = (budget.tokens, remaining_tokens) {
                div { dt { (language.text("limits.tokens_used")) } dd { (tokens(spent.tokens)) " " span.of { (language.fill("limits.of", &[&tokens(limit)])) } } }
                div { dt { (language.text("limits.tokens_left")) } dd { (tokens(left)) } }
            }
            @if let (Some(limit), Some(left)) = (budget.cost_micros, remaining_cost) {
                div { dt { (language.text("limits.cost_used")) } dd { (format_cost(spent.cost_micros)) " " span.of { (language.fill("limits.of", &[&cost_with_currency(limit)])) } } }
                div { dt { (language.text("limits.cost_left")) } dd { (cost_with_currency(left)) } }
            }
        }
    }
}

/// One count field of the form.
fn count_field(language: Language, name: &str, label: &str, hint: &str, value: &str, invalid: bool) -> Markup {
    let id = format!("limits-{name}");
    let described_by = if invalid { format!("{id}-hint limits-form-error") } else { format!("{id}-hint") };
    html! {
        div.field {
            label for=(id) { (label) " " span.optional { (language.text("limits.optional")) } }
            input type="text" inputmode="numeric" id=(id) name=(name) value=(value) autocomplete="off"
                aria-invalid=[invalid.then_some("true")] aria-describedby=(described_by);
            p.hint id={ (id) "-hint" } { (language.fill("limits.field_hint", &[&hint])) }
        }
    }
}

/// The form that sets and removes the key's limits, posting to `action`.
fn limits_form(console: &Console, action: &str, form: &LimitsForm, currency: &str) -> Markup {
    let language = console.language;
    let values = &form.values;
    let invalid = form.error.as_deref().and_then(field_in_error);
    let is_invalid = |name: &str| invalid == Some(name);
    let described = |name: &str, base: &str| if is_invalid(name) { format!("{base} limits-form-error") } else { base.to_string() };
    html! {
        form.limits-form #limits-form method="post" action=(action) novalidate aria-labelledby="limits-form-heading" {
            (csrf_field(console))
            h3 #limits-form-heading { (language.text("limits.change")) }
            @if let Some(message) = &form.error {
                p.form-error #limits-form-error role="alert" { (language.text("limits.nothing_changed")) (message) }
            }
            div.field-row {
                @for (index, (name, label, _, _, hint)) in COUNT_FIELDS.iter().enumerate() {
                    (count_field(language, name, language.text(label), language.text(hint), &values.counts[index], is_invalid(name)))
                }
            }
            fieldset.field.budget-fields {
                legend { (language.text("limits.budget")) " " span.optional { (language.text("limits.optional")) } }
                div.field-row {
                    div.field {
                        label for="limits-budget_period" { (language.text("limits.period")) }
                        select id="limits-budget_period" name="budget_period" aria-invalid=[is_invalid("budget_period").then_some("true")]
                            aria-describedby=(described("budget_period", "limits-budget_period-hint")) {
                            option value="" selected[values.budget_period.is_empty()] { (language.text("limits.no_budget")) }
                            @for period in [BudgetPeriod::Day, BudgetPeriod::Month] {
                                option value=(period.as_str()) selected[values.budget_period.eq_ignore_ascii_case(period.as_str())] {
                                    (language.text(per_period(period, "limits.option_day", "limits.option_month")))
                                }
                            }
                        }
                        p.hint id="limits-budget_period-hint" { (language.text("limits.period_hint")) }
                    }
                    div.field {
                        label for="limits-budget_tokens" { (language.text("limits.tokens")) }
                        input type="text" inputmode="numeric" id="limits-budget_tokens" name="budget_tokens" value=(values.budget_tokens) autocomplete="off"
                            aria-invalid=[is_invalid("budget_tokens").then_some("true")]
                            aria-describedby=(described("budget_tokens", "limits-budget_tokens-hint"));
                        p.hint id="limits-budget_tokens-hint" { (language.text("limits.tokens_hint")) }
                    }
                    div.field {
                        label for="limits-budget_cost" { (language.fill("limits.cost", &[&currency])) }
                        input type="text" inputmode="decimal" id="limits-budget_cost" name="budget_cost" value=(values.budget_cost) autocomplete="off"
                            aria-invalid=[is_invalid("budget_cost").then_some("true")]
                            aria-describedby=(described("budget_cost", "limits-budget_cost-hint"));
                        p.hint id="limits-budget_cost-hint" { (language.text("limits.cost_hint")) }
                    }
                }
                p.hint { (language.text("limits.budget_hint")) }
            }
            div.actions {
                button type="submit" { (language.text("limits.save")) }
                button.secondary type="submit" name="clear" value="1" { (language.text("limits.remove_all")) }
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
    let language = console.language;
    let limits = panel.limits.copied().unwrap_or_default();
    let counts = [limits.requests_per_minute, limits.tokens_per_minute, limits.max_in_flight];
    html! {
        section.panel #limits aria-labelledby="key-limits-heading" {
            h2 #key-limits-heading { (language.text("limits.heading")) }
            @if let Some(done) = panel.done {
                p.notice.notice-success role="status" { (done) }
            }
            dl.details #key-limits {
                @for ((_, label, ..), value) in COUNT_FIELDS.iter().zip(counts) {
                    div { dt { (language.text(label)) } dd { (count_markup(language, value)) } }
                }
                div { dt { (language.text("limits.budget")) } dd {
                    @match &panel.budget {
                        Some(standing) => { (budget_text(language, standing.budget, standing.currency)) }
                        None => { span.muted { (language.text("limits.none")) } }
                    }
                } }
            }
            @if let Some(standing) = &panel.budget {
                h3 { (language.text(per_period(standing.budget.period, "limits.this_day", "limits.this_month"))) }
                (budget_figures(language, standing))
                p.hint { (language.text("limits.renews_before")) (period_end(standing.budget.period, panel.now)) (language.text("limits.renews_after")) }
            }
            @match &panel.form {
                Some((form, action)) => { (limits_form(console, action, form, panel.currency)) }
                None => { p.hint { (language.text("limits.may_not")) } }
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
