//! Token accounting as data (docs/CONTRACT.md#usage): the tokens one call used, their sum
//! over many calls, and what they cost at a model's price. No IO.

/// Tokens one call used, or a sum of calls. `input` counts every prompt token (cached ones
/// too: `cached` is the part of `input` the provider read from its cache), `output` every
/// generated token (reasoning too: `reasoning` is the part of `output` spent thinking).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TokenUsage {
    pub input: i64,
    pub output: i64,
    pub cached: i64,
    pub reasoning: i64,
}

impl TokenUsage {
    /// Adds `other` to this sum (saturating: a hostile provider cannot wrap a counter).
    pub fn add(&mut self, other: &TokenUsage) {
        self.input = self.input.saturating_add(other.input);
        self.output = self.output.saturating_add(other.output);
        self.cached = self.cached.saturating_add(other.cached);
        self.reasoning = self.reasoning.saturating_add(other.reasoning);
    }

    /// `input + output`.
    pub fn total(&self) -> i64 {
        self.input.saturating_add(self.output)
    }
}

/// Calls and their tokens: one row of usage, or the total of many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct UsageTotals {
    pub requests: i64,
    pub tokens: TokenUsage,
}

impl UsageTotals {
    pub fn add(&mut self, other: &UsageTotals) {
        self.requests = self.requests.saturating_add(other.requests);
        self.tokens.add(&other.tokens);
    }

    /// No call and no token.
    pub fn is_zero(&self) -> bool {
        *self == UsageTotals::default()
    }
}

/// Millionths of a currency unit: prices and costs are exact integers, never floats.
pub const MICROS_PER_UNIT: i64 = 1_000_000;

/// A model's price: per million input and output tokens, in millionths of `currency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPrice {
    pub input_micros_per_million: i64,
    pub output_micros_per_million: i64,
    pub currency: String,
}

/// A decimal price text (`"0.8"`, `"12"`, `"0.000125"`) in millionths; at most six decimals,
/// never negative.
pub fn parse_price(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 6 || whole.len() > 12 {
        return Err(format!("'{text}' is not a price: a decimal number with at most 6 decimals, like 0.8"));
    }
    let whole: i64 = whole.parse().map_err(|_| format!("'{text}' is too large"))?;
    let fraction_micros: i64 = if fraction.is_empty() { 0 } else { format!("{fraction:0<6}").parse().unwrap_or(0) };
    Ok(whole * MICROS_PER_UNIT + fraction_micros)
}

/// What `tokens` cost at `price`, in millionths of its currency, rounded half up once over
/// the whole sum (cost a sum of tokens, not a sum of per-call costs, so that rounding does
/// not grow with the number of calls).
pub fn cost_micros(tokens: &TokenUsage, price: &ModelPrice) -> i64 {
    let scaled = i128::from(tokens.input.max(0)) * i128::from(price.input_micros_per_million)
        + i128::from(tokens.output.max(0)) * i128::from(price.output_micros_per_million);
    let rounded = (scaled + 500_000) / 1_000_000;
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

/// An amount in millionths as a decimal text with `decimals` places (at most 6), rounded
/// half up: `format_amount(1_234_567, 2)` is `"1.23"`.
pub fn format_amount(micros: i64, decimals: u32) -> String {
    let decimals = decimals.min(6);
    let step = 10_i64.pow(6 - decimals);
    let negative = micros < 0;
    let rounded = (micros.unsigned_abs() as i128 + i128::from(step) / 2) / i128::from(step);
    let scale = 10_i128.pow(decimals);
    let (whole, fraction) = (rounded / scale, rounded % scale);
    let sign = if negative && rounded != 0 { "-" } else { "" };
    if decimals == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction:0width$}", width = decimals as usize)
    }
}

/// A group of usage: its key, its amount (in millionths) and its totals.
pub type AmountGroup<K> = (K, i64, UsageTotals);

/// Keeps the `top` largest groups by `amount` (ties by key, so the answer is stable) and
/// folds the rest into one "others" total, returned apart (`None` when nothing was left
/// out). With `drop_zero`, groups whose amount is zero are dropped first (and are not
/// part of "others"). The billing views' top N and their "others" group.
pub fn top_groups<K: Ord + Clone>(
    mut groups: Vec<AmountGroup<K>>,
    top: usize,
    drop_zero: bool,
) -> (Vec<AmountGroup<K>>, Option<(i64, UsageTotals)>) {
    if drop_zero {
        groups.retain(|(_, amount, _)| *amount != 0);
    }
    groups.sort_by(|left, right| right.1.cmp(&left.1).then_with(|| left.0.cmp(&right.0)));
    if groups.len() <= top {
        return (groups, None);
    }
    let rest = groups.split_off(top);
    let mut others = (0_i64, UsageTotals::default());
    for (_, amount, totals) in &rest {
        others.0 = others.0.saturating_add(*amount);
        others.1.add(totals);
    }
    (groups, Some(others))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(input: &str, output: &str) -> ModelPrice {
        ModelPrice {
            input_micros_per_million: parse_price(input).unwrap(),
            output_micros_per_million: parse_price(output).unwrap(),
            currency: "USD".into(),
        }
    }

    #[test]
    fn prices_are_exact_decimals() {
        assert_eq!(parse_price("0.8"), Ok(800_000));
        assert_eq!(parse_price("12"), Ok(12_000_000));
        assert_eq!(parse_price("0.000125"), Ok(125));
        for bad in ["", "-1", "1.2345678", "abc", ".5", "1e3"] {
            assert!(parse_price(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cost_is_tokens_times_price_per_million() {
        let tokens = TokenUsage { input: 1_000_000, output: 500_000, cached: 0, reasoning: 0 };
        // 1M input at 0.8 + 0.5M output at 2 = 0.8 + 1.0
        assert_eq!(cost_micros(&tokens, &price("0.8", "2")), 1_800_000);
        assert_eq!(format_amount(cost_micros(&tokens, &price("0.8", "2")), 2), "1.80");
        // One token at 0.8 per million is 0.8 millionths: rounded to 1.
        assert_eq!(cost_micros(&TokenUsage { input: 1, ..Default::default() }, &price("0.8", "0")), 1);
        assert_eq!(cost_micros(&tokens, &price("0", "0")), 0);
    }

    #[test]
    fn amounts_are_formatted_with_rounding() {
        assert_eq!(format_amount(1_234_567, 2), "1.23");
        assert_eq!(format_amount(1_235_000, 2), "1.24");
        assert_eq!(format_amount(0, 2), "0.00");
        assert_eq!(format_amount(5, 6), "0.000005");
        assert_eq!(format_amount(2_500_000, 0), "3");
    }

    #[test]
    fn top_groups_fold_the_rest_into_others() {
        let totals = |requests| UsageTotals { requests, tokens: TokenUsage::default() };
        let groups = vec![("a", 5, totals(1)), ("b", 9, totals(2)), ("c", 0, totals(3)), ("d", 1, totals(4))];
        let (top, others) = top_groups(groups.clone(), 2, true);
        assert_eq!(top.iter().map(|group| group.0).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(others, Some((1, totals(4))));
        let (top, others) = top_groups(groups, 4, false);
        assert_eq!(top.len(), 4);
        assert_eq!(others, None);
    }
}
