//! `keygate login` and `keygate logout`: a session with a keygate server, saved in
//! `session.json` (mode 0600) for the other client commands.

use std::process::ExitCode;

use clap::Args;
use keygate_wire::keygate_api::{LoginRequest, LoginResponse, LogoutResponse};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::client::{self, print_fields, print_json, Client, ClientOptions, RequestBody, Session};

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
    let request =
        LoginRequest { account: arguments.account.clone(), user: arguments.user.clone(), password: password.expose_secret().to_string() };
    let answer = client.call::<LoginResponse, _>(Method::POST, &["keygate", "v1", "sessions"], &[], RequestBody::json(&request)?).await?;
    drop(request);
    let login = answer.body;
    if login.token.is_empty() {
        anyhow::bail!("the server's login answer has no token");
    }
    let session = Session {
        server: client::server_text(client.server()),
        token: SecretString::from(login.token),
        account: login.account,
        user: login.user.or(arguments.user.clone()),
        role: Some(login.role),
        expires_at: Some(login.expires_at),
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
            "requestId": answer.request_id,
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
    let outcome = client.call::<LogoutResponse, _>(Method::DELETE, &["keygate", "v1", "sessions", "current"], &[], RequestBody::None).await;
    client::remove_session()?;
    match outcome {
        Ok(answer) if arguments.options.json => print_json(&answer.json)?,
        Ok(_) => println!("logged out of {} ({})", session.server, session.principal()),
        Err(error) => {
            eprintln!("warning: the server did not end the session: {error:#}");
            println!("removed the local session for {} ({})", session.server, session.principal());
        }
    }
    Ok(ExitCode::SUCCESS)
}
