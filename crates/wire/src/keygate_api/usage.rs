//! keygate's usage API (`GET /keygate/v1/usage`, docs/CONTRACT.md#usage-api): the query
//! parameters of a request, its JSON answer and the CSV form of that answer, and the usage
//! figures that the Model Studio key answers carry as `keygateUsage`. The server reads the
//! parameters and writes the answers with these types; `keygate usage` writes the
//! parameters ([`UsageRequest::query_pairs`]) and reads the answers with them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The periods a usage view is grouped by (UTC); `none` sums the whole range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UsageGranularity {
    Minute,
    Hour,
    Day,
    Month,
    None,
}

impl UsageGranularity {
    pub const ALL: [UsageGranularity; 5] =
        [UsageGranularity::Minute, UsageGranularity::Hour, UsageGranularity::Day, UsageGranularity::Month, UsageGranularity::None];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            UsageGranularity::Minute => "minute",
            UsageGranularity::Hour => "hour",
            UsageGranularity::Day => "day",
            UsageGranularity::Month => "month",
            UsageGranularity::None => "none",
        }
    }

    /// A name of the wire in any case; `total` is another name of `none`.
    pub fn parse(text: &str) -> Option<UsageGranularity> {
        if text.eq_ignore_ascii_case("total") {
            return Some(UsageGranularity::None);
        }
        UsageGranularity::ALL.into_iter().find(|granularity| text.eq_ignore_ascii_case(granularity.as_str()))
    }
}

/// The dimensions a usage view is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UsageGroupBy {
    Key,
    Model,
    Workspace,
}

impl UsageGroupBy {
    pub const ALL: [UsageGroupBy; 3] = [UsageGroupBy::Key, UsageGroupBy::Model, UsageGroupBy::Workspace];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            UsageGroupBy::Key => "key",
            UsageGroupBy::Model => "model",
            UsageGroupBy::Workspace => "workspace",
        }
    }

    /// A name of the wire, in any case.
    pub fn parse(text: &str) -> Option<UsageGroupBy> {
        UsageGroupBy::ALL.into_iter().find(|dimension| text.eq_ignore_ascii_case(dimension.as_str()))
    }
}

/// What a usage answer is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UsageFormat {
    Json,
    Csv,
}

impl UsageFormat {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            UsageFormat::Json => "json",
            UsageFormat::Csv => "csv",
        }
    }
}

/// `GET /keygate/v1/usage`: its query parameters. Every one is optional. `groupBy`, `keyId`,
/// `excludeKeyId`, `workspaceId` and `excludeWorkspaceId` take a comma-separated list and
/// may be repeated; `model` and `excludeModel` take one model name each (a name may hold a
/// comma) and may be repeated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageRequest {
    /// The start of the range, included: an RFC 3339 time (`2026-08-01T00:00:00Z`,
    /// `2026-08-01T08:00:00+08:00`) or a day `YYYY-MM-DD` (UTC, from its start). Default:
    /// the last 60 minutes, 24 hours, 7 days or 12 months before `to` by granularity
    /// (7 days for `none`), whole periods, the one `to` falls in included.
    pub from: Option<String>,
    /// The end of the range, excluded: an RFC 3339 time, or a day `YYYY-MM-DD` (UTC), which
    /// is included whole. Default: the end of the current minute.
    pub to: Option<String>,
    /// `day` when absent; `total` is accepted for `none`.
    pub granularity: Option<UsageGranularity>,
    /// Not grouped by any dimension when empty.
    #[serde(default)]
    pub group_by: Vec<UsageGroupBy>,
    /// Only these keys (`IN`).
    #[serde(default)]
    pub key_id: Vec<i64>,
    /// Never these keys (`NOT`).
    #[serde(default)]
    pub exclude_key_id: Vec<i64>,
    /// Only these models (`app:<app id>` for application calls).
    #[serde(default)]
    pub model: Vec<String>,
    /// Never these models.
    #[serde(default)]
    pub exclude_model: Vec<String>,
    /// Only these workspaces.
    #[serde(default)]
    pub workspace_id: Vec<String>,
    /// Never these workspaces.
    #[serde(default)]
    pub exclude_workspace_id: Vec<String>,
    /// `json` (the default) or `csv`; without it, `Accept: text/csv` asks for CSV.
    pub format: Option<UsageFormat>,
}

impl UsageRequest {
    /// The query parameters of this request, as the server reads them.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let mut one = |name: &str, value: Option<&str>| {
            if let Some(value) = value {
                pairs.push((name.to_string(), value.to_string()));
            }
        };
        one("from", self.from.as_deref());
        one("to", self.to.as_deref());
        one("granularity", self.granularity.map(UsageGranularity::as_str));
        let joined = |values: Vec<String>| (!values.is_empty()).then(|| values.join(","));
        one("groupBy", joined(self.group_by.iter().map(|dimension| dimension.as_str().to_string()).collect()).as_deref());
        one("keyId", joined(self.key_id.iter().map(i64::to_string).collect()).as_deref());
        one("excludeKeyId", joined(self.exclude_key_id.iter().map(i64::to_string).collect()).as_deref());
        one("workspaceId", joined(self.workspace_id.clone()).as_deref());
        one("excludeWorkspaceId", joined(self.exclude_workspace_id.clone()).as_deref());
        one("format", self.format.map(UsageFormat::as_str));
        for model in &self.model {
            pairs.push(("model".to_string(), model.clone()));
        }
        for model in &self.exclude_model {
            pairs.push(("excludeModel".to_string(), model.clone()));
        }
        pairs
    }
}

/// Calls, tokens and their cost: one row of a usage answer, its total, or a key's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageFigures {
    pub requests: i64,
    /// Every prompt token, cached ones included.
    pub input_tokens: i64,
    /// Every generated token, reasoning ones included.
    pub output_tokens: i64,
    /// The part of `inputTokens` the provider read from its cache.
    pub cached_tokens: i64,
    /// The part of `outputTokens` spent reasoning.
    pub reasoning_tokens: i64,
    /// `inputTokens + outputTokens`.
    pub total_tokens: i64,
    /// What the tokens of priced models cost at the `[[prices]]` of the settings: a decimal
    /// text with six decimals (`"2.500000"`).
    pub cost: String,
    /// The currency of `cost`.
    pub currency: String,
    /// Some of the tokens were of a model without a price: their cost is not in `cost`.
    pub unpriced: bool,
}

impl UsageFigures {
    /// The calls and the token counts, in the order of the CSV's columns: `requests`,
    /// `inputTokens`, `outputTokens`, `cachedTokens`, `reasoningTokens`, `totalTokens`.
    pub fn counts(&self) -> [i64; 6] {
        [self.requests, self.input_tokens, self.output_tokens, self.cached_tokens, self.reasoning_tokens, self.total_tokens]
    }
}

/// One group of a usage answer: the dimensions it was not grouped by are `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageRow {
    /// The start of the period (RFC 3339, UTC); `null` with granularity `none`.
    pub period_start: Option<String>,
    pub key_id: Option<i64>,
    pub model: Option<String>,
    pub workspace_id: Option<String>,
    #[serde(flatten)]
    pub figures: UsageFigures,
}

/// `GET /keygate/v1/usage`: the range and grouping the answer was made with, the total and
/// the groups, in period, then key, model and workspace order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageResponse {
    /// The start of the range, included (RFC 3339, UTC).
    pub from: String,
    /// The end of the range, excluded (RFC 3339, UTC).
    pub to: String,
    pub granularity: UsageGranularity,
    pub group_by: Vec<UsageGroupBy>,
    pub total: UsageFigures,
    pub rows: Vec<UsageRow>,
}

/// The header row of the CSV form of a usage answer.
pub const USAGE_CSV_HEADER: [&str; 13] = [
    "period_start",
    "key_id",
    "model",
    "workspace_id",
    "requests",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost",
    "currency",
    "unpriced",
];

impl UsageResponse {
    /// The CSV form (RFC 4180, CRLF line ends): [`USAGE_CSV_HEADER`], then one line per row,
    /// a dimension the answer is not grouped by left empty; every cell written by
    /// [`csv_cell`]. The total is not a line of its own: it is the sum of the rows.
    pub fn to_csv(&self) -> String {
        let mut csv = String::new();
        let mut line = |cells: &[&str]| {
            let cells: Vec<String> = cells.iter().map(|cell| csv_cell(cell)).collect();
            csv.push_str(&cells.join(","));
            csv.push_str("\r\n");
        };
        line(&USAGE_CSV_HEADER);
        for row in &self.rows {
            let figures = &row.figures;
            let numbers = figures.counts().map(|number| number.to_string());
            let key_id = row.key_id.map(|key_id| key_id.to_string()).unwrap_or_default();
            let mut cells = vec![
                row.period_start.as_deref().unwrap_or(""),
                &key_id,
                row.model.as_deref().unwrap_or(""),
                row.workspace_id.as_deref().unwrap_or(""),
            ];
            cells.extend(numbers.iter().map(String::as_str));
            cells.extend([figures.cost.as_str(), figures.currency.as_str(), if figures.unpriced { "true" } else { "false" }]);
            line(&cells);
        }
        csv
    }
}

/// One CSV cell. A text a spreadsheet would take for a formula (it starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return: a model name is whatever the settings or a provider
/// call it) gets a `'` in front, so that it is shown as text and never evaluated; then a
/// cell with a comma, a double quote or a line break is quoted, its quotes doubled
/// (RFC 4180).
pub fn csv_cell(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_string() };
    if guarded.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn figures(requests: i64, cost: &str) -> UsageFigures {
        UsageFigures {
            requests,
            input_tokens: 10,
            output_tokens: 5,
            cached_tokens: 2,
            reasoning_tokens: 1,
            total_tokens: 15,
            cost: cost.into(),
            currency: "USD".into(),
            unpriced: false,
        }
    }

    #[test]
    fn names_parse_in_any_case_and_total_is_none() {
        assert_eq!(UsageGranularity::parse("HOUR"), Some(UsageGranularity::Hour));
        assert_eq!(UsageGranularity::parse("total"), Some(UsageGranularity::None));
        assert_eq!(UsageGranularity::parse("week"), None);
        assert_eq!(UsageGroupBy::parse("Workspace"), Some(UsageGroupBy::Workspace));
        assert_eq!(UsageGroupBy::parse("region"), None);
    }

    #[test]
    fn a_request_writes_lists_joined_and_models_one_by_one() {
        let request = UsageRequest {
            from: Some("2026-08-01".into()),
            granularity: Some(UsageGranularity::None),
            group_by: vec![UsageGroupBy::Key, UsageGroupBy::Model],
            key_id: vec![1, 2],
            model: vec!["a,b".into(), "c".into()],
            format: Some(UsageFormat::Csv),
            ..UsageRequest::default()
        };
        let pairs = request.query_pairs();
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("from", "2026-08-01"),
                ("granularity", "none"),
                ("groupBy", "key,model"),
                ("keyId", "1,2"),
                ("format", "csv"),
                ("model", "a,b"),
                ("model", "c"),
            ]
        );
    }

    #[test]
    fn the_answer_names_its_fields_in_camel_case_and_ungrouped_dimensions_null() {
        let row = UsageRow { period_start: None, key_id: Some(7), model: None, workspace_id: None, figures: figures(3, "0.000020") };
        let answer = UsageResponse {
            from: "2026-08-01T00:00:00Z".into(),
            to: "2026-08-08T00:00:00Z".into(),
            granularity: UsageGranularity::None,
            group_by: vec![UsageGroupBy::Key],
            total: figures(3, "0.000020"),
            rows: vec![row],
        };
        let value = serde_json::to_value(&answer).unwrap();
        assert_eq!(
            value["rows"][0],
            json!({"periodStart": null, "keyId": 7, "model": null, "workspaceId": null, "requests": 3, "inputTokens": 10, "outputTokens": 5,
                   "cachedTokens": 2, "reasoningTokens": 1, "totalTokens": 15, "cost": "0.000020", "currency": "USD", "unpriced": false})
        );
        assert_eq!((&value["granularity"], &value["groupBy"]), (&json!("none"), &json!(["key"])));
        assert_eq!(serde_json::from_value::<UsageResponse>(value).unwrap(), answer);
    }

    #[test]
    fn csv_cells_are_quoted_and_guarded_against_formulas() {
        assert_eq!(csv_cell("qwen-plus"), "qwen-plus");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for formula in ["+1", "-1", "@SUM(A1)", "\tx"] {
            assert_eq!(csv_cell(formula), format!("'{formula}"));
        }
        assert_eq!(csv_cell(""), "");
    }

    #[test]
    fn the_csv_has_a_header_and_a_line_per_row() {
        let row = |model: &str| UsageRow {
            period_start: Some("2026-08-01T00:00:00Z".into()),
            key_id: None,
            model: Some(model.into()),
            workspace_id: None,
            figures: figures(1, "1.500000"),
        };
        let answer = UsageResponse {
            from: "2026-08-01T00:00:00Z".into(),
            to: "2026-08-02T00:00:00Z".into(),
            granularity: UsageGranularity::Day,
            group_by: vec![UsageGroupBy::Model],
            total: figures(2, "3.000000"),
            rows: vec![row("demo-echo"), row("=cmd|x,y")],
        };
        assert_eq!(
            answer.to_csv(),
            "period_start,key_id,model,workspace_id,requests,input_tokens,output_tokens,cached_tokens,reasoning_tokens,total_tokens,cost,currency,unpriced\r\n\
             2026-08-01T00:00:00Z,,demo-echo,,1,10,5,2,1,15,1.500000,USD,false\r\n\
             2026-08-01T00:00:00Z,,\"'=cmd|x,y\",,1,10,5,2,1,15,1.500000,USD,false\r\n"
        );
    }
}
