//! `keygate login` and `keygate logout`: a session with a keygate server, saved in
//! `session.json` (mode 0600) for the other client commands.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::client::{self, print_fields, print_json, Client, ClientOptions, Session};

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub options: ClientOptions,
    /// The account to log in to.
    #[arg(long, default_value = "root")]
    pub account: String,
    /// A RAM user of the account; the account itself when omitted.
    #[arg(long)]
    pub user: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    pub options: ClientOptions,
}

fn password() -> anyhow::Result<SecretString> {
    match std::env::var("KEYGATE_PASSWORD") {
        Ok(password) if !password.is_empty() => Ok(SecretString::from(password)),
        _ => client::read_secret_line("Password: "),
    }
}

pub async fn login(arguments: LoginArgs) -> anyhow::Result<ExitCode> {
    let client = Client::anonymous(&arguments.options)?;
    let password = password()?;
    let request = json!({"account": arguments.account, "user": arguments.user, "password": password.expose_secret()});
    let response = client.keygate(Method::POST, &["keygate", "v1", "sessions"], &[], Some(&request)).await?;
    let token = response
        .get("token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .context("the server's login answer has no token")?;
    let text = |name: &str| response.get(name).and_then(Value::as_str).map(str::to_string);
    let session = Session {
        server: client::server_text(client.server()),
        token: SecretString::from(token.to_string()),
        account: text("account").unwrap_or_else(|| arguments.account.clone()),
        user: text("user").or(arguments.user.clone()),
        role: text("role"),
        expires_at: response.get("expiresAt").and_then(Value::as_i64),
    };
    let path = client::save_session(&session)?;
    if arguments.options.json {
        // The token stays in the session file: stdout often ends up in a CI log.
        print_json(&json!({
            "server": session.server,
            "account": session.account,
            "user": session.user,
            "role": session.role,
            "expiresAt": session.expires_at,
            "sessionFile": path.display().to_string(),
            "requestId": response.get("requestId"),
        }))?;
    } else {
        let expires = session
            .expires_at
            .map(|milliseconds| keygate_core::civil_time::format_utc_timestamp(milliseconds.div_euclid(1000)))
            .unwrap_or_else(|| "-".into());
        print_fields(&[
            ("Logged in to", session.server.clone()),
            ("As", session.principal()),
            ("Role", session.role.clone().unwrap_or_else(|| "-".into())),
            ("Expires", expires),
            ("Session file", path.display().to_string()),
        ]);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn logout(arguments: LogoutArgs) -> anyhow::Result<ExitCode> {
    if client::load_session()?.is_none() {
        eprintln!("not logged in; nothing to do");
        return Ok(ExitCode::SUCCESS);
    }
    let (client, session) = Client::from_session(&arguments.options)?;
    // The server forgets the token; the file goes even when the server cannot be reached
    // or the session has already expired.
    let outcome = client.keygate(Method::DELETE, &["keygate", "v1", "sessions", "current"], &[], None).await;
    client::remove_session()?;
    match outcome {
        Ok(response) if arguments.options.json => print_json(&response)?,
        Ok(_) => println!("logged out of {} ({})", session.server, session.principal()),
        Err(error) => {
            eprintln!("warning: the server did not end the session: {error:#}");
            println!("removed the local session for {} ({})", session.server, session.principal());
        }
    }
    Ok(ExitCode::SUCCESS)
}
