//! What a service manager passes to its program: `Environment=`, `EnvironmentFile=` and
//! `PassEnvironment=` of a systemd unit's `[Service]` section, and `environment=` of a
//! supervisord `[program:NAME]` (or `[supervisord]`) section. Pure parsing; the doctor
//! reads the files (or `systemctl cat`).

use std::path::PathBuf;

use super::shells::VARIABLE;

/// The environment-related settings of a systemd unit (all of its files, drop-ins
/// included, as `systemctl cat` prints them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitEnvironment {
    /// The value `Environment=` gives the variable (the last assignment wins).
    pub value: Option<String>,
    /// `EnvironmentFile=` paths, and whether each is optional (`-` prefix).
    pub environment_files: Vec<(PathBuf, bool)>,
    /// The variable is named in `PassEnvironment=` (taken from the manager's environment).
    pub passed_from_manager: bool,
    pub has_service_section: bool,
}

/// Splits `Environment=` text into assignments: space-separated, each optionally in
/// double or single quotes (`"A=b c" D=e`).
fn environment_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        match (quote, character) {
            (Some(open), c) if c == open => quote = None,
            (Some(_), '\\') => {
                if let Some(next) = characters.next() {
                    current.push(next);
                }
            }
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(character);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

/// Joins lines that end with a backslash, as systemd does.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        if let Some(continued) = line.strip_suffix('\\') {
            pending.push_str(continued);
            pending.push(' ');
        } else {
            pending.push_str(line);
            lines.push(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        lines.push(pending);
    }
    lines
}

pub fn parse_systemd_unit(text: &str) -> UnitEnvironment {
    let mut found = UnitEnvironment::default();
    let mut in_service = false;
    for line in logical_lines(text) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            in_service = line == "[Service]";
            found.has_service_section |= in_service;
            continue;
        }
        let Some((name, value)) = line.split_once('=') else { continue };
        if !in_service {
            continue;
        }
        match name.trim() {
            "Environment" if value.trim().is_empty() => found.value = None,
            "Environment" => {
                for word in environment_words(value) {
                    if let Some(assigned) = word.strip_prefix(VARIABLE).and_then(|rest| rest.strip_prefix('=')) {
                        found.value = Some(assigned.to_string());
                    }
                }
            }
            "EnvironmentFile" if value.trim().is_empty() => found.environment_files.clear(),
            "EnvironmentFile" => {
                let value = value.trim();
                let (optional, path) = match value.strip_prefix('-') {
                    Some(path) => (true, path),
                    None => (false, value),
                };
                found.environment_files.push((PathBuf::from(path), optional));
            }
            "PassEnvironment" => found.passed_from_manager |= value.split_whitespace().any(|word| word == VARIABLE),
            _ => {}
        }
    }
    found
}

/// The variable's value in an environment file (`NAME=value`, `export NAME=value`,
/// comments with `#` or `;`, quotes removed): the last assignment wins.
pub fn value_in_environment_file(text: &str) -> Option<String> {
    let mut value = None;
    for line in logical_lines(text) {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        if let Some(assigned) = line.strip_prefix(VARIABLE).and_then(|rest| rest.trim_start().strip_prefix('=')) {
            let assigned = assigned.trim();
            let unquoted = environment_words(assigned).into_iter().next().unwrap_or_default();
            value = Some(if assigned.starts_with(['"', '\'']) { unquoted } else { assigned.to_string() });
        }
    }
    value
}

/// How a supervisord section gives the variable to its program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisorValue {
    /// `environment=DASHSCOPE_API_KEY="..."`.
    Literal(String),
    /// `%(ENV_DASHSCOPE_API_KEY)s`: whatever supervisord itself was started with.
    FromSupervisorEnvironment,
}

/// One section of a supervisord configuration: `program:web`, `supervisord`, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorSection {
    pub name: String,
    pub value: Option<SupervisorValue>,
}

/// Splits supervisord's `KEY="value",KEY2=value2` at the commas outside quotes.
fn supervisor_pairs(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let push = |entry: &str, pairs: &mut Vec<(String, String)>| {
        if let Some((name, value)) = entry.split_once('=') {
            let value = value.trim();
            let unquoted = if value.len() >= 2
                && (value.starts_with('"') && value.ends_with('"') || value.starts_with('\'') && value.ends_with('\''))
            {
                &value[1..value.len() - 1]
            } else {
                value
            };
            pairs.push((name.trim().to_string(), unquoted.to_string()));
        }
    };
    for character in text.chars() {
        match (quote, character) {
            (Some(open), c) if c == open => {
                quote = None;
                current.push(c);
            }
            (None, '"' | '\'') => {
                quote = Some(character);
                current.push(character);
            }
            (None, ',') => push(&std::mem::take(&mut current), &mut pairs),
            (_, c) => current.push(c),
        }
    }
    push(&current, &mut pairs);
    pairs
}

/// Every section of a supervisord configuration, with how it sets the variable.
pub fn parse_supervisor_config(text: &str) -> Vec<SupervisorSection> {
    let mut sections: Vec<SupervisorSection> = Vec::new();
    let mut environment: Option<String> = None;
    let finish = |sections: &mut Vec<SupervisorSection>, environment: &mut Option<String>| {
        if let (Some(section), Some(text)) = (sections.last_mut(), environment.take()) {
            section.value =
                supervisor_pairs(&text).into_iter().filter(|(name, _)| name == VARIABLE).map(|(_, value)| value).next_back().map(|value| {
                    if value.contains(&format!("%(ENV_{VARIABLE})s")) {
                        SupervisorValue::FromSupervisorEnvironment
                    } else {
                        SupervisorValue::Literal(value)
                    }
                });
        }
    };
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            finish(&mut sections, &mut environment);
            sections.push(SupervisorSection { name: name.trim().to_string(), value: None });
            continue;
        }
        let is_continuation = line.starts_with([' ', '\t']) && !trimmed.is_empty();
        if is_continuation {
            if let Some(text) = environment.as_mut() {
                text.push(' ');
                text.push_str(trimmed.split(" ;").next().unwrap_or(trimmed).trim());
            }
            continue;
        }
        if environment.is_some() {
            finish(&mut sections, &mut environment);
        }
        if let Some((name, value)) = trimmed.split_once('=') {
            if name.trim() == "environment" {
                // An inline comment starts with " ;".
                let value = value.split(" ;").next().unwrap_or(value);
                environment = Some(value.trim().to_string());
            }
        }
    }
    finish(&mut sections, &mut environment);
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_with_environment_and_files_is_read() {
        let unit = "# /etc/systemd/system/app.service\n[Unit]\nEnvironment=DASHSCOPE_API_KEY=ignored-outside-service\n\
                    [Service]\nExecStart=/usr/bin/app\nEnvironment=\"A=1 2\" DASHSCOPE_API_KEY=sk-one\n\
                    EnvironmentFile=-/etc/app/env\nEnvironmentFile=/etc/app/secrets\n\n# /etc/systemd/system/app.service.d/override.conf\n\
                    [Service]\nEnvironment='DASHSCOPE_API_KEY=sk-two' \\\n  B=3\nPassEnvironment=HOME DASHSCOPE_API_KEY\n";
        let found = parse_systemd_unit(unit);
        assert_eq!(
            found,
            UnitEnvironment {
                value: Some("sk-two".into()),
                environment_files: vec![(PathBuf::from("/etc/app/env"), true), (PathBuf::from("/etc/app/secrets"), false)],
                passed_from_manager: true,
                has_service_section: true,
            }
        );
        let bare = parse_systemd_unit("[Service]\nExecStart=/usr/bin/app\nEnvironment=PATH=/bin\n");
        assert_eq!((bare.value, bare.environment_files.len(), bare.passed_from_manager), (None, 0, false));
        assert_eq!(environment_words(r#""A=1 2" B=3 'C=x y'"#), ["A=1 2", "B=3", "C=x y"]);
    }

    #[test]
    fn environment_files_are_read_like_systemd_reads_them() {
        assert_eq!(value_in_environment_file("# key\nDASHSCOPE_API_KEY=sk-a\n").as_deref(), Some("sk-a"));
        assert_eq!(value_in_environment_file("DASHSCOPE_API_KEY=\"sk-b\"\nOTHER=1\n").as_deref(), Some("sk-b"));
        assert_eq!(value_in_environment_file("export DASHSCOPE_API_KEY='sk-c'\n").as_deref(), Some("sk-c"));
        assert_eq!(value_in_environment_file("OTHER_DASHSCOPE_API_KEY=x\n"), None);
    }

    #[test]
    fn supervisor_sections_and_their_environment_are_read() {
        let config = "[supervisord]\nenvironment=DASHSCOPE_API_KEY=\"%(ENV_DASHSCOPE_API_KEY)s\"\n\n[program:web]\ncommand=/usr/bin/web\n\
                      environment=A=\"1,2\",\n    DASHSCOPE_API_KEY=\"sk-web\" ; the key\nautostart=true\n\n[program:worker]\ncommand=/usr/bin/worker\n";
        let sections = parse_supervisor_config(config);
        assert_eq!(
            sections,
            vec![
                SupervisorSection { name: "supervisord".into(), value: Some(SupervisorValue::FromSupervisorEnvironment) },
                SupervisorSection { name: "program:web".into(), value: Some(SupervisorValue::Literal("sk-web".into())) },
                SupervisorSection { name: "program:worker".into(), value: None },
            ]
        );
    }
}
