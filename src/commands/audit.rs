//! `keygate audit`: the account's audit log (who changed what, when, from where, through
//! which AccessKey or session), newest first, through keygate's own API.

use std::process::ExitCode;

use clap::Args;
use reqwest::Method;

use super::client::{field, items, print_json, shorten, time_field, Client, ClientOptions, Table};

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
    let response = client.keygate(Method::GET, &["keygate", "v1", "audit"], &query, None).await?;
    if arguments.options.json {
        print_json(&response)?;
        return Ok(ExitCode::SUCCESS);
    }
    let entries = items(&response, "entries");
    if entries.is_empty() {
        println!("no audit entries");
    } else {
        let mut table = Table::new(&["ID", "AT", "ACTOR", "ACTION", "TARGET", "DETAIL", "ADDRESS", "CREDENTIAL", "REGION"]);
        for entry in entries {
            table.row(vec![
                field(entry, "auditId"),
                time_field(entry, "at"),
                field(entry, "actor"),
                field(entry, "action"),
                field(entry, "target"),
                shorten(&field(entry, "detail"), 48),
                field(entry, "clientAddress"),
                // accessKey:<id> or session:<label>; "-" for `keygate admin` on the database.
                field(entry, "credential"),
                field(entry, "region"),
            ]);
        }
        table.print();
    }
    if let Some(before) = response.get("nextBefore").filter(|value| !value.is_null()) {
        let before = before.as_str().map(str::to_string).unwrap_or_else(|| before.to_string());
        eprintln!("older entries: keygate audit --before {before}");
    }
    Ok(ExitCode::SUCCESS)
}
