//! The doctor's look at a service manager: a systemd unit (`--unit-file`, or
//! `systemctl cat NAME` for `--unit`) or supervisord programs (`--supervisor-conf`,
//! `--program`). Services do not read shell startup files, so a key exported in ~/.bashrc
//! never reaches them; the unit or program section has to pass it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::doctor_environment::Subject;
use super::findings::Report;
use super::services::{parse_supervisor_config, parse_systemd_unit, value_in_environment_file, SupervisorSection, SupervisorValue};
use super::shells::VARIABLE;

/// The unit's text, a name for messages, and the unit's name for systemctl.
fn unit_text(unit: Option<&str>, unit_file: Option<&Path>) -> anyhow::Result<(String, String, String)> {
    if let Some(path) = unit_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the unit file {}", path.display()))?;
        let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_else(|| "NAME.service".into());
        return Ok((text, path.display().to_string(), name));
    }
    let name = unit.context("no unit given")?;
    let output = std::process::Command::new("systemctl").args(["cat", "--no-pager", "--", name]).output();
    match output {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            bail!("systemctl is not available here; pass the unit's file with --unit-file PATH")
        }
        Err(error) => Err(error).context("running systemctl cat"),
        Ok(output) if !output.status.success() => {
            bail!("systemctl cat {name} failed: {}", String::from_utf8_lossy(&output.stderr).trim())
        }
        Ok(output) => Ok((String::from_utf8_lossy(&output.stdout).into_owned(), format!("unit {name}"), name.to_string())),
    }
}

/// What the unit's `EnvironmentFile=`s say, in order (later files win).
enum FileReading {
    Value(String),
    WithoutVariable,
    Missing,
    Unreadable(std::io::Error),
}

fn read_environment_file(path: &Path) -> FileReading {
    match std::fs::read_to_string(path) {
        Ok(text) => value_in_environment_file(&text).map_or(FileReading::WithoutVariable, FileReading::Value),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => FileReading::Missing,
        Err(error) => FileReading::Unreadable(error),
    }
}

fn systemd_fix(name: &str) -> String {
    format!(
        "sudo systemctl edit {name}   and add:\n  [Service]\n  EnvironmentFile=/etc/keygate/app.env\n\
         with /etc/keygate/app.env (mode 600, owned by root) holding: {VARIABLE}=sk-...\n\
         then: sudo systemctl daemon-reload && sudo systemctl restart {name}"
    )
}

/// A systemd unit: does it pass the variable, and with what value.
pub fn examine_systemd(report: &mut Report, unit: Option<&str>, unit_file: Option<&Path>) -> anyhow::Result<Option<Subject>> {
    let (text, unit_name, systemctl_name) = unit_text(unit, unit_file)?;
    let parsed = parse_systemd_unit(&text);
    if !parsed.has_service_section {
        report.warning("unit_without_service_section", format!("{unit_name} has no [Service] section."), None);
    }
    let mut file_value: Option<(String, PathBuf)> = None;
    let mut unreadable = false;
    for (path, optional) in &parsed.environment_files {
        match read_environment_file(path) {
            FileReading::Value(value) => file_value = Some((value, path.clone())),
            FileReading::WithoutVariable => {}
            FileReading::Missing if *optional => {
                report.note("environment_file_missing", format!("EnvironmentFile {} (optional) does not exist.", path.display()))
            }
            FileReading::Missing => report.problem(
                "environment_file_missing",
                format!(
                    "{unit_name} names EnvironmentFile={}, which does not exist: systemd will refuse to start the service.",
                    path.display()
                ),
                format!(
                    "create {} (mode 600) with the line {VARIABLE}=sk-..., or prefix the path with - to make it optional",
                    path.display()
                ),
            ),
            FileReading::Unreadable(error) => {
                unreadable = true;
                report.warning(
                    "environment_file_unreadable",
                    format!("Cannot read EnvironmentFile {} ({error}), so whether it sets {VARIABLE} is unknown.", path.display()),
                    Some("run the doctor as root: sudo keygate env doctor ...".to_string()),
                );
            }
        }
    }
    // systemd applies EnvironmentFile= after Environment=, so a file's value wins.
    if let Some((value, path)) = file_value {
        return Ok(Some(Subject {
            value,
            source: format!("{unit_name} (EnvironmentFile {})", path.display()),
            where_to_fix: format!("fix the line in {}, then restart the service", path.display()),
        }));
    }
    if let Some(value) = parsed.value {
        report.warning(
            "key_in_unit_file",
            format!("{unit_name} holds the key in Environment=, which any local user can read with `systemctl show`."),
            Some(systemd_fix(&systemctl_name)),
        );
        return Ok(Some(Subject {
            value,
            source: format!("{unit_name} (Environment=)"),
            where_to_fix: format!("fix Environment= in {unit_name}, then daemon-reload and restart"),
        }));
    }
    if unreadable {
        return Ok(None);
    }
    let passed = if parsed.passed_from_manager {
        " PassEnvironment= takes it from systemd's own environment, which does not read shell files either."
    } else {
        ""
    };
    report.problem(
        "service_unit_missing_variable",
        format!(
            "{unit_name} does not give its program {VARIABLE} (no Environment={VARIABLE}=... and no EnvironmentFile= that sets it). Services started by systemd do not read your shell files, so a key in ~/.bashrc never reaches them.{passed}"
        ),
        systemd_fix(&systemctl_name),
    );
    Ok(None)
}

/// supervisord's usual configuration files, when `--supervisor-conf` is not given.
fn default_supervisor_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["/etc/supervisor/supervisord.conf", "/etc/supervisord.conf"].iter().map(PathBuf::from).collect();
    for (directory, extension) in [("/etc/supervisor/conf.d", "conf"), ("/etc/supervisord.d", "ini")] {
        if let Ok(entries) = std::fs::read_dir(directory) {
            let mut found: Vec<PathBuf> = entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|found| found == extension))
                .collect();
            found.sort();
            files.extend(found);
        }
    }
    files.into_iter().filter(|path| path.is_file()).collect()
}

fn supervisor_fix(program: &str, file: &Path) -> String {
    format!(
        "add to [program:{program}] in {}:\n  environment={VARIABLE}=\"sk-...\"\n(keep that file readable by root only), then: sudo supervisorctl reread && sudo supervisorctl update {program}",
        file.display()
    )
}

/// supervisord programs: does each pass the variable, and with what value.
pub fn examine_supervisor(report: &mut Report, program: Option<&str>, configuration: Option<&Path>) -> anyhow::Result<Vec<Subject>> {
    let files = match configuration {
        Some(path) => vec![path.to_path_buf()],
        None => default_supervisor_files(),
    };
    if files.is_empty() {
        bail!("no supervisord configuration found in /etc/supervisor or /etc/supervisord*; pass it with --supervisor-conf PATH");
    }
    let mut sections: Vec<(SupervisorSection, PathBuf)> = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        sections.extend(parse_supervisor_config(&text).into_iter().map(|section| (section, file.clone())));
    }
    let global = sections.iter().find(|(section, _)| section.name == "supervisord").and_then(|(section, _)| section.value.clone());
    let wanted = |name: &str| match program {
        Some(program) => name == format!("program:{program}"),
        None => name.starts_with("program:"),
    };
    let programs: Vec<&(SupervisorSection, PathBuf)> = sections.iter().filter(|(section, _)| wanted(&section.name)).collect();
    if programs.is_empty() {
        let shown: Vec<String> = files.iter().map(|file| file.display().to_string()).collect();
        match program {
            Some(program) => bail!("no [program:{program}] section in {}", shown.join(", ")),
            None => bail!("no [program:...] section in {}", shown.join(", ")),
        }
    }
    let mut subjects = Vec::new();
    for (section, file) in programs {
        let name = section.name.trim_start_matches("program:");
        match section.value.clone().or_else(|| global.clone()) {
            Some(SupervisorValue::Literal(value)) => subjects.push(Subject {
                value,
                source: format!("[program:{name}] in {}", file.display()),
                where_to_fix: format!("fix environment= of [program:{name}], then supervisorctl reread && supervisorctl update {name}"),
            }),
            Some(SupervisorValue::FromSupervisorEnvironment) => report.warning(
                "supervisor_takes_variable_from_its_own_environment",
                format!(
                    "[program:{name}] takes {VARIABLE} from supervisord's own environment (%(ENV_{VARIABLE})s), which comes from how supervisord was started (usually its systemd unit), not from your shell."
                ),
                Some("keygate env doctor --unit supervisor.service   (or supervisord.service)".to_string()),
            ),
            None => report.problem(
                "supervisor_program_missing_variable",
                format!(
                    "[program:{name}] in {} does not give its program {VARIABLE}: supervisord does not read your shell files, so a key in ~/.bashrc never reaches the program.",
                    file.display()
                ),
                supervisor_fix(name, file),
            ),
        }
    }
    Ok(subjects)
}
