//! `keygate audit`: the account's audit log (who changed what, when, from where, through
//! which AccessKey or session), newest first, through keygate's own API.

use std::process::ExitCode;

use clap::Args;
use reqwest::Method;

use keygate_wire::keygate_api::ListAuditResponse;

use super::client::{print_json, shorten, text, time, Client, ClientOptions, RequestBody, Table};

/// Options of `keygate audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub options: ClientOptions,
    /// How many entries to show.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Only entries older than this audit id (the `nextBefore` of a previous page).
    #[arg(long, value_name = "AUDIT_ID")]
    pub before: Option<String>,
}

pub async fn run(arguments: AuditArgs) -> anyhow::Result<ExitCode> {
    let (client, _session) = Client::from_session(&arguments.options)?;
    let mut query = vec![("limit".to_string(), arguments.limit.to_string())];
    if let Some(before) = arguments.before {
        query.push(("before".into(), before));
    }
    let answer = client.call::<ListAuditResponse, _>(Method::GET, &["keygate", "v1", "audit"], &query, RequestBody::None).await?;
    if arguments.options.json {
        print_json(&answer.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["ID", "AT", "ACTOR", "ACTION", "TARGET", "DETAIL", "ADDRESS", "CREDENTIAL", "REGION"]);
    for entry in &answer.body.entries {
        table.row(vec![
            entry.audit_id.to_string(),
            time(Some(entry.at)),
            text(&entry.actor),
            text(&entry.action),
            text(&entry.target),
            shorten(&text(&entry.detail), 48),
            text(&entry.client_address),
            // accessKey:<id> or session:<label>; "-" for `keygate admin` on the database.
            text(&entry.credential),
            text(&entry.region),
        ]);
    }
    table.print_or("no audit entries");
    if let Some(before) = answer.body.next_before {
        eprintln!("older entries: keygate audit --before {before}");
    }
    Ok(ExitCode::SUCCESS)
}
