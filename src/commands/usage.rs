//! `keygate usage`: the caller's usage (calls, tokens, cost) through keygate's usage API
//! (`GET /keygate/v1/usage`), as an aligned table, the API's JSON (`--json`) or its CSV
//! (`--csv`). The flags are the API's query parameters, written by the wire type the
//! server reads them into (`keygate_wire::keygate_api::UsageRequest`).

use std::process::ExitCode;

use clap::Args;
use keygate_wire::keygate_api::{UsageFigures, UsageFormat, UsageGranularity, UsageGroupBy, UsageRequest, UsageResponse};
use reqwest::Method;

use super::client::{print_json, text, Client, ClientOptions, RequestBody, Table};

/// Options of `keygate usage`.
#[derive(Debug, Args)]
pub struct UsageArgs {
    #[command(flatten)]
    pub options: ClientOptions,
    /// The start of the range, included: a day YYYY-MM-DD (UTC) or an RFC 3339 time
    /// [default: the last 60 minutes, 24 hours, 7 days or 12 months, by --granularity].
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// The end of the range: a day YYYY-MM-DD (UTC, included) or an RFC 3339 time
    /// (excluded) [default: now].
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// One row per minute, hour, day or month (UTC), or none: one row per group for the
    /// whole range [default: day].
    #[arg(long, value_name = "PERIOD", value_parser = parse_granularity)]
    pub granularity: Option<UsageGranularity>,
    /// Group by key, model and/or workspace; repeat or separate with commas.
    #[arg(long = "group-by", value_name = "DIMENSION", value_delimiter = ',', value_parser = parse_group_by)]
    pub group_by: Vec<UsageGroupBy>,
    /// Only this API key; repeat or separate with commas.
    #[arg(long = "key", value_name = "ID", value_delimiter = ',')]
    pub keys: Vec<i64>,
    /// Leave out this API key; repeat or separate with commas.
    #[arg(long = "exclude-key", value_name = "ID", value_delimiter = ',')]
    pub exclude_keys: Vec<i64>,
    /// Only this model (app:<app id> for an application); repeat for more (a name is taken
    /// whole, commas included).
    #[arg(long = "model", value_name = "NAME")]
    pub models: Vec<String>,
    /// Leave out this model; repeat for more.
    #[arg(long = "exclude-model", value_name = "NAME")]
    pub exclude_models: Vec<String>,
    /// Only this workspace; repeat or separate with commas.
    #[arg(long = "workspace", value_name = "ID", value_delimiter = ',')]
    pub workspaces: Vec<String>,
    /// Leave out this workspace; repeat or separate with commas.
    #[arg(long = "exclude-workspace", value_name = "ID", value_delimiter = ',')]
    pub exclude_workspaces: Vec<String>,
    /// Print the server's CSV (RFC 4180, a header line, one line per row) instead of a
    /// table.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
}

fn parse_granularity(text: &str) -> Result<UsageGranularity, String> {
    UsageGranularity::parse(text).ok_or_else(|| "expected minute, hour, day, month or none".to_string())
}

fn parse_group_by(text: &str) -> Result<UsageGroupBy, String> {
    UsageGroupBy::parse(text).ok_or_else(|| "expected key, model or workspace".to_string())
}

impl UsageArgs {
    fn request(&self) -> UsageRequest {
        UsageRequest {
            from: self.from.clone(),
            to: self.to.clone(),
            granularity: self.granularity,
            group_by: self.group_by.clone(),
            key_id: self.keys.clone(),
            exclude_key_id: self.exclude_keys.clone(),
            model: self.models.clone(),
            exclude_model: self.exclude_models.clone(),
            workspace_id: self.workspaces.clone(),
            exclude_workspace_id: self.exclude_workspaces.clone(),
            format: self.csv.then_some(UsageFormat::Csv),
        }
    }
}

const PATH: [&str; 3] = ["keygate", "v1", "usage"];

pub async fn run(arguments: UsageArgs) -> anyhow::Result<ExitCode> {
    let (client, _session) = Client::from_session(&arguments.options)?;
    let query = arguments.request().query_pairs();
    if arguments.csv {
        print!("{}", client.get_text(&PATH, &query, "text/csv").await?);
        return Ok(ExitCode::SUCCESS);
    }
    let answer = client.call::<UsageResponse, _>(Method::GET, &PATH, &query, RequestBody::None).await?;
    if arguments.options.json {
        print_json(&answer.json)?;
    } else {
        print_usage(&answer.body);
    }
    Ok(ExitCode::SUCCESS)
}

/// A period's start as wide as its granularity: `2026-08-01 10:00`, `2026-08-01`, `2026-08`.
fn period(start: Option<&str>, granularity: UsageGranularity) -> String {
    let Some(start) = start else { return "-".into() };
    let shown = match granularity {
        UsageGranularity::Minute | UsageGranularity::Hour => {
            start.get(..10).zip(start.get(11..16)).map(|(day, time)| format!("{day} {time}"))
        }
        UsageGranularity::Day => start.get(..10).map(str::to_string),
        UsageGranularity::Month => start.get(..7).map(str::to_string),
        UsageGranularity::None => None,
    };
    shown.unwrap_or_else(|| start.to_string())
}

/// The figures' cells: calls, the four token counts and their total, and the cost with its
/// currency (`*` when some tokens had no price).
fn figure_cells(figures: &UsageFigures) -> Vec<String> {
    let mut cells: Vec<String> = figures.counts().iter().map(i64::to_string).collect();
    let unpriced = if figures.unpriced { " *" } else { "" };
    cells.push(format!("{} {}{unpriced}", figures.cost, figures.currency));
    cells
}

/// The answer as a heading, a table (a row per group, then the total when there is more
/// than one row) and a note when some usage had no price.
fn print_usage(answer: &UsageResponse) {
    let per = match answer.granularity {
        UsageGranularity::None => "in total".to_string(),
        other => format!("per {}", other.as_str()),
    };
    let by = if answer.group_by.is_empty() {
        String::new()
    } else {
        format!(", by {}", answer.group_by.iter().map(|dimension| dimension.as_str()).collect::<Vec<_>>().join(" and "))
    };
    println!("Usage from {} to {} (UTC), {per}{by}", answer.from, answer.to);
    let by_period = answer.granularity != UsageGranularity::None;
    let mut headers: Vec<&'static str> = Vec::new();
    if by_period {
        headers.push("PERIOD");
    }
    for dimension in &answer.group_by {
        headers.push(match dimension {
            UsageGroupBy::Key => "KEY",
            UsageGroupBy::Model => "MODEL",
            UsageGroupBy::Workspace => "WORKSPACE",
        });
    }
    let labels = headers.len();
    headers.extend(["REQUESTS", "INPUT", "OUTPUT", "CACHED", "REASONING", "TOKENS", "COST"]);
    let mut table = Table::new(&headers);
    for row in &answer.rows {
        let mut cells = Vec::new();
        if by_period {
            cells.push(period(row.period_start.as_deref(), answer.granularity));
        }
        for dimension in &answer.group_by {
            cells.push(match dimension {
                UsageGroupBy::Key => row.key_id.map_or_else(|| "-".into(), |key_id| key_id.to_string()),
                UsageGroupBy::Model => text(row.model.as_deref().unwrap_or("")),
                UsageGroupBy::Workspace => text(row.workspace_id.as_deref().unwrap_or("")),
            });
        }
        cells.extend(figure_cells(&row.figures));
        table.row(cells);
    }
    if answer.rows.len() > 1 && labels > 0 {
        let mut cells = vec!["TOTAL".to_string()];
        cells.resize(labels, String::new());
        cells.extend(figure_cells(&answer.total));
        table.row(cells);
    }
    table.print_or("no usage in this range");
    if answer.total.unpriced {
        println!("* some tokens were of models without a price: their cost is not included");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_shown_as_wide_as_their_granularity() {
        let start = Some("2026-08-01T10:30:00Z");
        assert_eq!(period(start, UsageGranularity::Minute), "2026-08-01 10:30");
        assert_eq!(period(start, UsageGranularity::Day), "2026-08-01");
        assert_eq!(period(start, UsageGranularity::Month), "2026-08");
        assert_eq!(period(None, UsageGranularity::Day), "-");
    }
}
