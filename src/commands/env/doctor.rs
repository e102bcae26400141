//! `keygate env doctor`: why a program cannot use its `DASHSCOPE_API_KEY`, each reason of
//! Model Studio's FAQ detected rather than listed: not set here but in a shell file, `sudo`
//! without `-E`, a systemd unit or supervisord program without the variable, a value
//! damaged by copying, a bad checksum or unknown format, an expired temporary key, and the
//! server's own verdict. Exit status 0 only when the key is usable.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use keygate_core::civil_time::format_utc_timestamp;

use super::doctor_environment::{examine_process, Subject};
use super::doctor_server::{ask_server, server_to_ask};
use super::doctor_services::{examine_supervisor, examine_systemd};
use super::findings::{ExaminedKey, Report};
use super::key_checks::{key_shape, masked_value, value_damage, KeyShape};
use crate::commands::client::print_json;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Ask this keygate server whether it accepts the key (through /auth/verify)
    /// [default: KEYGATE_SERVER, else DASHSCOPE_HTTP_BASE_URL without /api/v1; none: not asked].
    #[arg(long, env = "KEYGATE_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Check the key a systemd service gets (reads `systemctl cat NAME`).
    #[arg(long, value_name = "NAME.service", conflicts_with_all = ["unit_file", "program", "supervisor_conf"])]
    pub unit: Option<String>,
    /// Check the key a systemd unit file gives its service.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["program", "supervisor_conf"])]
    pub unit_file: Option<PathBuf>,
    /// Check the key a supervisord program gets ([program:NAME]; searched in /etc/supervisor*
    /// unless --supervisor-conf names the file).
    #[arg(long, value_name = "NAME")]
    pub program: Option<String>,
    /// The supervisord configuration file to read (every program in it, or --program's).
    #[arg(long, value_name = "PATH")]
    pub supervisor_conf: Option<PathBuf>,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

fn now_seconds() -> i64 {
    keygate_server::clock::now_millis().div_euclid(1000)
}

/// Checks one value; returns the clean key when a server may be asked about it.
fn examine_value(report: &mut Report, subject: &Subject, server_will_be_asked: bool) -> Option<String> {
    let (damage, clean) = value_damage(&subject.value);
    for found in &damage {
        report.problem(found.cause(), format!("In {}: {}.", subject.source, found.explanation()), subject.where_to_fix.clone());
    }
    let shape = key_shape(&clean);
    let masked = masked_value(&clean);
    report.keys.push(ExaminedKey { source: subject.source.clone(), masked: masked.clone(), format: shape.format_name() });
    let cleaned_note = if damage.is_empty() { "" } else { " once cleaned" };
    match shape {
        KeyShape::Permanent(_) => {
            report.passed("key_format_ok", format!("{masked} is a {}{cleaned_note}.", shape.description()));
            Some(clean)
        }
        KeyShape::BadChecksum => {
            report.problem(
                "bad_checksum",
                format!("{masked} looks like a secure key, but its checksum does not match: a character was changed or lost while copying. The gateway refuses it before looking it up."),
                format!("copy the key again from where you saved it (if it is lost, reset it: keygate keys reset ID), then {}", subject.where_to_fix),
            );
            None
        }
        KeyShape::Unknown => {
            let length_hint = if super::key_checks::has_checksum_prefix(&clean) {
                format!(
                    " It starts like a secure key but has {} characters where a secure key has 44: it was probably cut off.",
                    clean.len()
                )
            } else {
                String::new()
            };
            report.problem(
                "unknown_format",
                format!(
                    "{masked} is not a key of any format keygate issues (sk-ws-..., sk-sp-..., sk-... or a temporary st-...).{length_hint}"
                ),
                format!("put the API key itself in the variable (not an AccessKey, a file name or a URL): {}", subject.where_to_fix),
            );
            None
        }
        KeyShape::Temporary { expires_at } => {
            let expiry = expires_at.map(format_utc_timestamp).unwrap_or_else(|| "?".into());
            match expires_at {
                _ if server_will_be_asked => report.note(
                    "temporary_key",
                    format!("{masked} is a temporary key (they live at most 30 minutes); asking the server whether it is still valid."),
                ),
                Some(expires_at) if expires_at <= now_seconds() => report.problem(
                    "temporary_key_expired",
                    format!("{masked} is a temporary key that expired at {expiry} (as written in the token; only a server can verify it). Temporary keys live at most 30 minutes."),
                    "mint a new one from the permanent key: DASHSCOPE_API_KEY=<permanent key> keygate token\nor set the permanent key itself: keygate env setup",
                ),
                _ => report.warning(
                    "temporary_key",
                    format!("{masked} is a temporary key: it lives at most 30 minutes (it says it expires at {expiry}); a program that runs longer needs the permanent key."),
                    Some("set the permanent key with `keygate env setup` and mint temporary keys from it with `keygate token`".to_string()),
                ),
            }
            Some(clean)
        }
    }
}

/// The keys to examine: those of the service named, else this process's.
fn subjects(report: &mut Report, arguments: &DoctorArgs) -> anyhow::Result<Vec<Subject>> {
    if arguments.unit.is_some() || arguments.unit_file.is_some() {
        return Ok(examine_systemd(report, arguments.unit.as_deref(), arguments.unit_file.as_deref())?.into_iter().collect());
    }
    if arguments.program.is_some() || arguments.supervisor_conf.is_some() {
        return examine_supervisor(report, arguments.program.as_deref(), arguments.supervisor_conf.as_deref());
    }
    Ok(examine_process(report).into_iter().collect())
}

pub async fn run(arguments: DoctorArgs) -> anyhow::Result<ExitCode> {
    let mut report = Report::default();
    let server = server_to_ask(arguments.server.as_deref());
    for subject in subjects(&mut report, &arguments)? {
        let Some(key) = examine_value(&mut report, &subject, server.is_some()) else { continue };
        if let Some(server) = &server {
            ask_server(&mut report, server, &key, &masked_value(&key)).await;
        }
    }
    if server.is_none() && !report.keys.is_empty() {
        report.note(
            "server_not_asked",
            "No server was asked whether it accepts the key; pass --server URL (the listener your program calls) for its verdict.",
        );
    }
    if arguments.json {
        print_json(&report.to_json())?;
    } else {
        print!("{}", report.render());
    }
    Ok(if report.usable() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
