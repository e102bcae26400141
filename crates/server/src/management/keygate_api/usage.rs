//! `GET /keygate/v1/usage` (docs/CONTRACT.md#usage-api): the caller's usage over a time
//! range, filtered by keys, models and workspaces, grouped by some of them and by a period,
//! answered as JSON or CSV. The query is read into `keygate_wire`'s `UsageRequest` in one
//! function and every parameter is checked before anything is asked of the store; the
//! range's defaults and limits, which keys a caller sees and what usage cost are
//! `operations::usage`'s, as they are for every surface that shows usage.

use crate::operations::usage::{Selection, UsageDimension, UsagePeriod, DAY};
use axum::extract::RawQuery;
use axum::http::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use keygate_core::civil_time::{format_utc_timestamp, parse_rfc3339, parse_utc_date};
use keygate_core::ids::WorkspaceId;
use keygate_core::usage::format_amount;
use keygate_wire::keygate_api::{UsageFigures, UsageFormat, UsageGranularity, UsageGroupBy, UsageRequest, UsageResponse, UsageRow};

use super::Result;
use crate::management::call::Call;
use crate::management::errors::ManagementError;
use crate::management::form::{shown, FormFields};
use crate::operations::usage::{self, CostedTotals};

/// Every query parameter the route takes; any other is refused, so that a misspelt filter
/// is not silently ignored.
const PARAMETERS: [&str; 11] = [
    "from",
    "to",
    "granularity",
    "groupBy",
    "keyId",
    "excludeKeyId",
    "model",
    "excludeModel",
    "workspaceId",
    "excludeWorkspaceId",
    "format",
];

/// The values of a list parameter: each time it is sent, comma-separated, blanks skipped.
fn comma_list<'a>(query: &'a FormFields, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    query.values(name).flat_map(|value| value.split(',')).map(str::trim).filter(|value| !value.is_empty())
}

fn key_ids(query: &FormFields, name: &str) -> Result<Vec<i64>> {
    comma_list(query, name)
        .map(|text| {
            text.parse::<i64>().ok().filter(|id| *id >= 1).ok_or_else(|| {
                ManagementError::invalid_parameter(format!("{name} must be API key ids (positive integers), got '{}'.", shown(text)))
            })
        })
        .collect()
}

fn workspace_ids(query: &FormFields, name: &str) -> Result<Vec<String>> {
    comma_list(query, name).map(|text| Ok(WorkspaceId::parse(text)?.as_str().to_string())).collect()
}

fn models(query: &FormFields, name: &str) -> Vec<String> {
    query.values(name).filter(|model| !model.trim().is_empty()).map(str::to_string).collect()
}

/// The request's query parameters, each checked (a range's times are read later, with its
/// defaults).
fn read_usage_request(query: Option<&str>) -> Result<UsageRequest> {
    let query = FormFields::parse(query.unwrap_or(""), "query string")?;
    if let Some(unknown) = query.keys().find(|name| !PARAMETERS.contains(name)) {
        return Err(ManagementError::invalid_parameter(format!(
            "Unknown query parameter '{}': the parameters are {}.",
            shown(unknown),
            PARAMETERS.join(", ")
        )));
    }
    let granularity = match query.get_non_empty("granularity") {
        None => None,
        Some(text) => Some(UsageGranularity::parse(text).ok_or_else(|| {
            ManagementError::invalid_parameter(format!("granularity must be minute, hour, day, month or none, got '{}'.", shown(text)))
        })?),
    };
    let mut group_by = Vec::new();
    for text in comma_list(&query, "groupBy") {
        let dimension = UsageGroupBy::parse(text).ok_or_else(|| {
            ManagementError::invalid_parameter(format!("groupBy must be a list of key, model and workspace, got '{}'.", shown(text)))
        })?;
        if !group_by.contains(&dimension) {
            group_by.push(dimension);
        }
    }
    let format = match query.get_non_empty("format") {
        None => None,
        Some(text) if text.eq_ignore_ascii_case("json") => Some(UsageFormat::Json),
        Some(text) if text.eq_ignore_ascii_case("csv") => Some(UsageFormat::Csv),
        Some(other) => return Err(ManagementError::invalid_parameter(format!("format must be json or csv, got '{}'.", shown(other)))),
    };
    Ok(UsageRequest {
        from: query.get_non_empty("from").map(str::to_string),
        to: query.get_non_empty("to").map(str::to_string),
        granularity,
        group_by,
        key_id: key_ids(&query, "keyId")?,
        exclude_key_id: key_ids(&query, "excludeKeyId")?,
        model: models(&query, "model"),
        exclude_model: models(&query, "excludeModel"),
        workspace_id: workspace_ids(&query, "workspaceId")?,
        exclude_workspace_id: workspace_ids(&query, "excludeWorkspaceId")?,
        format,
    })
}

/// `from` or `to` (the parameter `name`) in Unix seconds: an RFC 3339 time, or a day's
/// start, or with `day_to_its_end` (`to`) the day's end, so that the day named is included.
fn read_time(text: &str, name: &str, day_to_its_end: bool) -> Result<i64> {
    if let Some(day_start) = parse_utc_date(text) {
        return Ok(if day_to_its_end { day_start + DAY } else { day_start });
    }
    parse_rfc3339(text).ok_or_else(|| {
        ManagementError::invalid_parameter(format!(
            "{name} must be an RFC 3339 time (2026-08-01T00:00:00Z) or a day YYYY-MM-DD (UTC), got '{}'.",
            shown(text)
        ))
    })
}

fn period_of(granularity: UsageGranularity) -> Option<UsagePeriod> {
    match granularity {
        UsageGranularity::Minute => Some(UsagePeriod::Minute),
        UsageGranularity::Hour => Some(UsagePeriod::Hour),
        UsageGranularity::Day => Some(UsagePeriod::Day),
        UsageGranularity::Month => Some(UsagePeriod::Month),
        UsageGranularity::None => None,
    }
}

fn dimension_of(group_by: UsageGroupBy) -> UsageDimension {
    match group_by {
        UsageGroupBy::Key => UsageDimension::Key,
        UsageGroupBy::Model => UsageDimension::Model,
        UsageGroupBy::Workspace => UsageDimension::Workspace,
    }
}

fn selection<T: Clone>(include: &[T], exclude: &[T]) -> Selection<T> {
    Selection { include: (!include.is_empty()).then(|| include.to_vec()), exclude: exclude.to_vec() }
}

/// The wire figures of `usage`: its cost with six decimals, in its currency, else in
/// `fallback_currency` (a cost of nothing). Also the `keygateUsage` of the key answers.
pub fn usage_figures(usage: &CostedTotals, fallback_currency: &str) -> UsageFigures {
    let tokens = &usage.totals.tokens;
    UsageFigures {
        requests: usage.totals.requests,
        input_tokens: tokens.input,
        output_tokens: tokens.output,
        cached_tokens: tokens.cached,
        reasoning_tokens: tokens.reasoning,
        total_tokens: tokens.total(),
        cost: format_amount(usage.cost_micros, 6),
        currency: usage.currency.clone().unwrap_or_else(|| fallback_currency.to_string()),
        unpriced: usage.unpriced,
    }
}

/// The highest quality an `Accept` header gives `media_type` (0 when it is not named;
/// wildcards do not count).
fn accepted_quality(headers: &HeaderMap, media_type: &str) -> f32 {
    let ranges = headers.get_all(ACCEPT).into_iter().filter_map(|value| value.to_str().ok()).flat_map(|value| value.split(','));
    ranges
        .filter_map(|range| {
            let mut parameters = range.split(';');
            if !parameters.next()?.trim().eq_ignore_ascii_case(media_type) {
                return None;
            }
            let quality =
                parameters.find_map(|parameter| parameter.trim().strip_prefix("q=").map(|value| value.trim().parse::<f32>().ok()));
            quality.unwrap_or(Some(1.0))
        })
        .fold(0.0, f32::max)
}

/// CSV when `format` says so, or, without `format`, when the `Accept` header prefers
/// `text/csv` to `application/json`.
fn answers_csv(format: Option<UsageFormat>, headers: &HeaderMap) -> bool {
    match format {
        Some(format) => format == UsageFormat::Csv,
        None => {
            let csv = accepted_quality(headers, "text/csv");
            csv > 0.0 && csv > accepted_quality(headers, "application/json")
        }
    }
}

pub(super) async fn get_usage(call: Call, RawQuery(query): RawQuery, headers: HeaderMap) -> Result<Response> {
    let request = read_usage_request(query.as_deref())?;
    let granularity = request.granularity.unwrap_or(UsageGranularity::Day);
    let period = period_of(granularity);
    let from = request.from.as_deref().map(|text| read_time(text, "from", false)).transpose()?;
    let until = request.to.as_deref().map(|text| read_time(text, "to", true)).transpose()?;
    let until = until.unwrap_or_else(|| usage::default_until(call.operations()));
    let from = from.unwrap_or_else(|| usage::default_from(period, until));
    let selected = usage::UsageRequest {
        keys: selection(&request.key_id, &request.exclude_key_id),
        models: selection(&request.model, &request.exclude_model),
        workspaces: selection(&request.workspace_id, &request.exclude_workspace_id),
        from,
        until,
        group_by: request.group_by.iter().copied().map(dimension_of).collect(),
        period,
    };
    let view = usage::usage(call.operations(), &call.actor(), &selected).await?;
    let rows = view
        .rows
        .iter()
        .map(|row| UsageRow {
            period_start: row.period_start.map(format_utc_timestamp),
            key_id: row.key_id,
            model: row.model.clone(),
            workspace_id: row.workspace_id.clone(),
            figures: usage_figures(&row.usage, &view.currency),
        })
        .collect();
    let answer = UsageResponse {
        from: format_utc_timestamp(from),
        to: format_utc_timestamp(until),
        granularity,
        group_by: request.group_by.clone(),
        total: usage_figures(&view.total, &view.currency),
        rows,
    };
    if answers_csv(request.format, &headers) {
        let disposition = "attachment; filename=\"keygate-usage.csv\"";
        return Ok(([(CONTENT_TYPE, "text/csv; charset=utf-8"), (CONTENT_DISPOSITION, disposition)], answer.to_csv()).into_response());
    }
    call.answer(answer).map(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn read(query: &str) -> Result<UsageRequest> {
        read_usage_request(Some(query))
    }

    #[test]
    fn the_query_the_cli_writes_is_the_request_the_server_reads() {
        let request = UsageRequest {
            from: Some("2026-08-01".into()),
            to: Some("2026-08-07T12:00:00+08:00".into()),
            granularity: Some(UsageGranularity::Hour),
            group_by: vec![UsageGroupBy::Workspace, UsageGroupBy::Key],
            key_id: vec![3, 4],
            exclude_key_id: vec![5],
            model: vec!["demo-echo".into(), "odd,name".into()],
            exclude_model: vec!["app:0123456789abcdef0123456789abcdef".into()],
            workspace_id: vec!["llm-0123456789abcdef".into()],
            exclude_workspace_id: vec!["llm-abcdefghijklmnop".into()],
            format: Some(UsageFormat::Csv),
        };
        let url = reqwest::Url::parse_with_params("http://keygate/keygate/v1/usage", request.query_pairs()).unwrap();
        assert_eq!(read_usage_request(url.query()).unwrap(), request);
        assert_eq!(read("").unwrap(), UsageRequest::default());
    }

    #[test]
    fn lists_are_comma_separated_or_repeated_and_names_in_any_case() {
        let request = read("groupBy=KEY,model&groupBy=key&keyId=1,%202&keyId=3&granularity=Total&format=CSV").unwrap();
        assert_eq!(request.group_by, [UsageGroupBy::Key, UsageGroupBy::Model]);
        assert_eq!(request.key_id, [1, 2, 3]);
        assert_eq!((request.granularity, request.format), (Some(UsageGranularity::None), Some(UsageFormat::Csv)));
    }

    #[test]
    fn bad_parameters_are_refused_with_a_message_that_names_them() {
        for (query, named) in [
            ("granularity=week", "granularity"),
            ("groupBy=key,region", "groupBy"),
            ("keyId=abc", "keyId"),
            ("excludeKeyId=0", "excludeKeyId"),
            ("workspaceId=default", "default"),
            ("format=xml", "format"),
            ("group_by=key", "group_by"),
        ] {
            let error = read(query).unwrap_err();
            assert_eq!((error.status.as_u16(), error.code), (400, "InvalidParameter"), "{query}");
            assert!(error.message.contains(named), "{query}: {}", error.message);
        }
        for (text, name) in [("yesterday", "from"), ("2026-02-30", "to"), ("2026-08-01T00:00:00", "from")] {
            let error = read_time(text, name, name == "to").unwrap_err();
            assert!(error.message.starts_with(name), "{}", error.message);
        }
    }

    #[test]
    fn a_day_starts_the_range_from_its_start_and_ends_it_with_its_end() {
        assert_eq!(read_time("2026-08-01", "from", false).unwrap(), parse_rfc3339("2026-08-01T00:00:00Z").unwrap());
        assert_eq!(read_time("2026-08-01", "to", true).unwrap(), parse_rfc3339("2026-08-02T00:00:00Z").unwrap());
        assert_eq!(read_time("2026-08-01T08:00:00+08:00", "to", true).unwrap(), parse_rfc3339("2026-08-01T00:00:00Z").unwrap());
    }

    #[test]
    fn csv_is_chosen_by_format_or_by_an_accept_header_that_prefers_it() {
        let accept = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, HeaderValue::from_static(value));
            headers
        };
        assert!(answers_csv(None, &accept("text/csv")));
        assert!(answers_csv(None, &accept("text/csv, */*;q=0.1")));
        assert!(answers_csv(None, &accept("application/json;q=0.5, TEXT/CSV")));
        assert!(!answers_csv(None, &accept("application/json, text/csv")));
        assert!(!answers_csv(None, &accept("*/*")));
        assert!(!answers_csv(None, &accept("text/csv;q=0")));
        assert!(!answers_csv(None, &HeaderMap::new()));
        assert!(!answers_csv(Some(UsageFormat::Json), &accept("text/csv")));
        assert!(answers_csv(Some(UsageFormat::Csv), &HeaderMap::new()));
    }
}
