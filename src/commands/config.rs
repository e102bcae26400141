//! `keygate config check FILE`: a settings file read and checked as `keygate serve` would
//! (unknown keys, types, values, regions, upstreams, prices and limits), without starting
//! anything; a summary when it is good, the key (and line) at fault when it is not.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use keygate_server::settings::{Settings, SettingsFile, DEFAULT_DATA_DIR};

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a settings file as `keygate serve --config FILE` would, over the defaults (the
    /// environment and flags are not read); exit 0 with a summary, or 1 naming what is wrong
    ///
    /// Example: keygate config check /etc/keygate/keygate.toml
    #[command(verbatim_doc_comment)]
    Check {
        /// The TOML settings file (docs/CONFIG.md).
        file: PathBuf,
    },
}

pub fn run(arguments: ConfigArgs) -> anyhow::Result<ExitCode> {
    let ConfigCommand::Check { file } = arguments.command;
    let shown = file.display().to_string();
    let settings = checked(&file).with_context(|| format!("{shown} is not a valid keygate settings file"))?;
    println!("{shown}: valid");
    for line in summary(&settings) {
        println!("  {line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The file's settings over the defaults, validated.
fn checked(file: &std::path::Path) -> anyhow::Result<Settings> {
    let mut settings = Settings::with_data_dir(PathBuf::from(DEFAULT_DATA_DIR));
    settings.apply_file(SettingsFile::load(file)?)?;
    settings.validate()?;
    Ok(settings)
}

/// What the file makes of a node, one line each.
fn summary(settings: &Settings) -> Vec<String> {
    let storage = match &settings.database_url {
        Some(_) => "PostgreSQL (database_url)".to_string(),
        None => format!("SQLite in {}", settings.data_dir.display()),
    };
    let listeners: Vec<String> = settings
        .listeners
        .iter()
        .map(|listener| format!("{} {}{}", listener.addr, listener.region, if listener.plan { " (plan)" } else { "" }))
        .collect();
    let upstreams: Vec<&str> = settings.upstreams.iter().map(|upstream| upstream.name.as_str()).collect();
    let log_format = match settings.log_format {
        keygate_server::settings::LogFormat::Text => "text",
        keygate_server::settings::LogFormat::Json => "json",
    };
    vec![
        format!("storage: {storage}"),
        format!("listeners: {}", listeners.join(", ")),
        format!("demo models: {}", if settings.demo_upstream { "on (turn off with demo_upstream = false in production)" } else { "off" }),
        format!("upstreams: {}", if upstreams.is_empty() { "none".to_string() } else { upstreams.join(", ") }),
        format!("limits counted: {}", if settings.redis_url.is_some() { "in Redis" } else { "in memory" }),
        format!("log format: {log_format}"),
    ]
}
