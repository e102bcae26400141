//! Command-line grammar (clap) and dispatch to each command.

mod admin;
mod audit;
mod client;
mod config;
mod env;
mod keys;
mod login;
mod pages;
mod password;
mod scan;
mod serve;
mod token;
mod usage;
mod users;
mod workspaces;

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
    /// Run the server: gateway, management API and keygate API.
    ///
    /// Examples:
    ///   keygate serve
    ///   keygate serve --data-dir /var/lib/keygate --listen 0.0.0.0:8080=ap-southeast-1 --listen 0.0.0.0:8081=us-east-1
    #[command(verbatim_doc_comment)]
    Serve(serve::ServeArgs),
    /// Act on the database directly, for bootstrap and recovery (the server may be running).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Check a settings file before serving with it
    ///
    /// Example: keygate config check keygate.toml
    #[command(verbatim_doc_comment)]
    Config(config::ConfigArgs),
    /// Log in to a keygate server; the session is saved for the other client commands
    ///
    /// The password comes from KEYGATE_PASSWORD, else one line of stdin (never an argument).
    /// The session goes to $KEYGATE_CONFIG_DIR/session.json (default ~/.config/keygate/), mode 0600.
    ///
    /// Examples:
    ///   keygate login
    ///   keygate login --server https://keygate.example.com --user alice
    ///   keygate login --user alice < alice-password.txt
    #[command(verbatim_doc_comment)]
    Login(login::LoginArgs),
    /// End the session on the server and remove the saved session
    ///
    /// Example: keygate logout
    #[command(verbatim_doc_comment)]
    Logout(login::LogoutArgs),
    /// Change your own password (the account's or your RAM user's); the current one is required
    ///
    /// On a terminal it asks for the current password and the new one twice. From a script,
    /// the current password comes from KEYGATE_PASSWORD and the new one from
    /// KEYGATE_NEW_PASSWORD, each else one line of stdin (current first), never an argument.
    /// The new password has 8 to 256 characters. Your other sessions (the CLI elsewhere, the
    /// console) are signed out; this one stays. A wrong current password counts as a failed
    /// login.
    ///
    /// Examples:
    ///   keygate password
    ///   printf '%s\n%s\n' "$OLD" "$NEW" | keygate password
    ///   KEYGATE_PASSWORD=... KEYGATE_NEW_PASSWORD=... keygate password --json
    #[command(verbatim_doc_comment)]
    Password(password::PasswordArgs),
    /// API keys: create, list, get, edit, disable, enable, reset, delete, import
    ///
    /// Examples:
    ///   keygate keys create --description "CI pipeline"
    ///   keygate keys list
    ///   keygate keys delete 42 --yes
    ///   keygate keys import --file old-keys.csv
    #[command(verbatim_doc_comment)]
    Keys(keys::KeysArgs),
    /// RAM users of the account and AccessKeys
    ///
    /// Examples:
    ///   keygate users list
    ///   keygate users create alice --role key-manager --password-stdin < password.txt
    ///   keygate users access-keys create --user alice
    #[command(verbatim_doc_comment)]
    Users(users::UsersArgs),
    /// Workspaces, their members and the models they may call
    ///
    /// Examples:
    ///   keygate workspaces list
    ///   keygate workspaces create team-search
    ///   keygate workspaces grant llm-0123456789abcdef qwen-plus
    #[command(verbatim_doc_comment)]
    Workspaces(workspaces::WorkspacesArgs),
    /// Show the account's audit log, newest first: who changed what, when, from where
    ///
    /// Examples:
    ///   keygate audit
    ///   keygate audit --limit 200
    ///   keygate audit --before 1234 --json
    #[command(verbatim_doc_comment)]
    Audit(audit::AuditArgs),
    /// Show usage: calls, tokens and cost per period, key, model or workspace
    ///
    /// The account sees the usage of all its keys, a RAM user that of its own. Usage is
    /// written by the server every few seconds (usage_flush_interval_milliseconds), so the
    /// latest calls may take that long to show.
    ///
    /// Examples:
    ///   keygate usage
    ///   keygate usage --from 2026-08-01 --to 2026-08-31 --group-by key,model
    ///   keygate usage --granularity hour --from 2026-08-01T00:00:00Z --key 42 --exclude-model demo-echo
    ///   keygate usage --granularity month --from 2026-01-01 --csv > usage.csv
    #[command(verbatim_doc_comment)]
    Usage(usage::UsageArgs),
    /// Mint a temporary key (st-...) from the key in DASHSCOPE_API_KEY
    ///
    /// The temporary key inherits every restriction of its parent and expires by itself.
    ///
    /// Examples:
    ///   keygate token
    ///   keygate token --ttl 600 --json
    ///   DASHSCOPE_API_KEY=$(cat key.txt) keygate token --server https://keygate.example.com
    #[command(verbatim_doc_comment)]
    Token(token::TokenArgs),
    /// Set DASHSCOPE_API_KEY for your shell, or find out why a program does not see it
    ///
    /// Examples:
    ///   keygate env setup --key-file key.txt
    ///   keygate env doctor --server http://127.0.0.1:8080
    ///   sudo keygate env doctor --unit myapp.service
    #[command(verbatim_doc_comment)]
    Env(env::EnvArgs),
    /// Find keygate keys in files and git history (masked); --revoke disables the live ones
    ///
    /// Secure (sk-ws-) and plan (sk-sp-) keys are confirmed by their checksum; classic keys
    /// (sk- + 32 hex) have none and are reported as possible matches. .git directories,
    /// symbolic links, files over 10 MiB and binary files (unless --include-binary) are
    /// skipped. --git also reads every blob reachable from any ref and names the commit
    /// that added the key. --revoke sends the confirmed keys to the server, which disables
    /// those of your account that are live (needs `keygate login` as the account or an admin).
    ///
    /// Exit status: 0 nothing found, 1 keys found, 2 error.
    ///
    /// Examples:
    ///   keygate scan
    ///   keygate scan src/ config/ --json
    ///   keygate scan --git .
    ///   keygate scan --git --revoke ~/projects/app
    #[command(verbatim_doc_comment)]
    Scan(scan::ScanArgs),
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(arguments) => serve::run(arguments).await,
        Command::Admin(command) => admin::run(command).await,
        Command::Config(arguments) => config::run(arguments),
        Command::Login(arguments) => login::login(arguments).await,
        Command::Logout(arguments) => login::logout(arguments).await,
        Command::Password(arguments) => password::run(arguments).await,
        Command::Keys(arguments) => keys::run(arguments).await,
        Command::Users(arguments) => users::run(arguments).await,
        Command::Workspaces(arguments) => workspaces::run(arguments).await,
        Command::Audit(arguments) => audit::run(arguments).await,
        Command::Usage(arguments) => usage::run(arguments).await,
        Command::Token(arguments) => token::run(arguments).await,
        Command::Env(arguments) => env::run(arguments).await,
        Command::Scan(arguments) => scan::run(arguments).await,
    }
}
