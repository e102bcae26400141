//! `keygate password`: the logged-in account or RAM user changes its own password through
//! keygate's API (`PUT /keygate/v1/password`), giving the current one. The saved session
//! stays signed in; every other session of the same account or user ends.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use keygate_wire::keygate_api::{ChangePasswordRequest, ChangePasswordResponse};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};

use super::client::{self, print_json, Client, ClientOptions, RequestBody};

#[derive(Debug, Args)]
pub struct PasswordArgs {
    #[command(flatten)]
    pub options: ClientOptions,
}

/// A secret from the environment variable `variable` when it is set and not empty, else
/// one line of stdin (prompted on a terminal).
fn from_environment_or_stdin(variable: &str, prompt: &str) -> anyhow::Result<SecretString> {
    match std::env::var(variable) {
        Ok(value) if !value.is_empty() => Ok(SecretString::from(value)),
        _ => client::read_secret_line(prompt),
    }
}

/// The current password and the new one. On a terminal the new one is asked twice and
/// must match; from a script, the current one comes from `KEYGATE_PASSWORD` (as for
/// `keygate login`) and the new one from `KEYGATE_NEW_PASSWORD`, each else one line of
/// stdin, in that order.
fn passwords() -> anyhow::Result<(SecretString, SecretString)> {
    let current = from_environment_or_stdin("KEYGATE_PASSWORD", "Current password: ")?;
    let new = from_environment_or_stdin("KEYGATE_NEW_PASSWORD", "New password: ")?;
    let asked_for_new = std::env::var("KEYGATE_NEW_PASSWORD").ok().filter(|value| !value.is_empty()).is_none();
    if asked_for_new && std::io::stdin().is_terminal() {
        let repeated = client::read_secret_line("Repeat the new password: ")?;
        if repeated.expose_secret() != new.expose_secret() {
            bail!("the two new passwords differ; nothing was changed");
        }
    }
    Ok((current, new))
}

pub async fn run(arguments: PasswordArgs) -> anyhow::Result<ExitCode> {
    let (client, session) = Client::from_session(&arguments.options)?;
    let (current, new) = passwords()?;
    let request =
        ChangePasswordRequest { current_password: current.expose_secret().to_string(), new_password: new.expose_secret().to_string() };
    let body = RequestBody::json(&request)?;
    drop(request);
    let answer = client.call::<ChangePasswordResponse, _>(Method::PUT, &["keygate", "v1", "password"], &[], body).await?;
    if arguments.options.json {
        print_json(&answer.json)?;
    } else {
        let ended = answer.body.sessions_ended;
        let sessions = if ended == 1 { "session" } else { "sessions" };
        println!("password of {} changed; {ended} other {sessions} signed out, this one stays", session.principal());
    }
    Ok(ExitCode::SUCCESS)
}
