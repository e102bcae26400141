//! Command-line grammar (clap) and dispatch to each command.

mod admin;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// keygate: API keys that behave like Alibaba Cloud Model Studio's, and the gateway that
/// checks them.
#[derive(Debug, Parser)]
#[command(name = "keygate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: management API, keygate API (and later gateway and console).
    ///
    /// Examples:
    ///   keygate serve
    ///   keygate serve --data-dir /var/lib/keygate --listen 0.0.0.0:8080=ap-southeast-1 --listen 0.0.0.0:8081=us-east-1
    Serve(serve::ServeArgs),
    /// Act on the database directly, for bootstrap and recovery (the server may be running).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(arguments) => serve::run(arguments).await,
        Command::Admin(command) => admin::run(command).await,
    }
}
