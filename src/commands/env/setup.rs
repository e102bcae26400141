//! `keygate env setup`: makes `DASHSCOPE_API_KEY` permanent for the user's shell, as Model
//! Studio's guide describes, without the key ever being a command-line argument (it comes
//! from `--key-file`, `--stdin` or a prompt that does not echo). The key is checked first
//! (a secure key with a bad checksum is refused), quoted for the shell, and written as one
//! marked line that a second run replaces instead of duplicating.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use super::atomic_write::{mode_of, replace_file};
use super::key_checks::{has_checksum_prefix, key_shape, masked_value, value_damage, KeyShape, ValueDamage};
use super::shells::{find_assignments, setting_line, with_setting_line, FileChange, Home, OperatingSystem, Shell, VARIABLE};
use crate::commands::client::read_named_secret_line;
use keygate_core::civil_time::format_utc_timestamp;

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The shell to set it up for [default: the one $SHELL names].
    #[arg(long, value_enum)]
    pub shell: Option<Shell>,
    /// Read the key from this file (its only line).
    #[arg(long, value_name = "FILE", conflicts_with = "stdin")]
    pub key_file: Option<PathBuf>,
    /// Read the key from standard input (its only line; on a terminal, asked without echo).
    #[arg(long)]
    pub stdin: bool,
    /// Print the line (or command) instead of writing the shell's file.
    #[arg(long)]
    pub print: bool,
}

/// Longest input taken as a key (anything longer is not one).
const MAX_KEY_INPUT_BYTES: u64 = 4096;

fn read_all_limited(reader: impl Read, source: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    reader
        .take(MAX_KEY_INPUT_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading the key from {source} (is it text?)"))?;
    if text.len() as u64 > MAX_KEY_INPUT_BYTES {
        bail!("{source} holds more than {MAX_KEY_INPUT_BYTES} bytes; put only the key in it");
    }
    Ok(text)
}

/// The one non-empty line of `text`.
fn only_line(text: &str, source: &str) -> anyhow::Result<String> {
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    match lines.as_slice() {
        [] => bail!("{source} is empty; put the key in it"),
        [line] => Ok(line.to_string()),
        _ => bail!("{source} has {} lines; put only the key in it", lines.len()),
    }
}

/// The key from `--key-file`, `--stdin`, or a prompt without echo.
fn read_key(arguments: &SetupArgs) -> anyhow::Result<SecretString> {
    if let Some(path) = &arguments.key_file {
        let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let source = path.display().to_string();
        return Ok(SecretString::from(only_line(&read_all_limited(file, &source)?, &source)?));
    }
    let interactive = std::io::stdin().is_terminal();
    if arguments.stdin && !interactive {
        return Ok(SecretString::from(only_line(&read_all_limited(std::io::stdin().lock(), "stdin")?, "stdin")?));
    }
    if !interactive {
        bail!("stdin is not a terminal, so there is nobody to ask: pass --stdin to read the key from it, or --key-file FILE");
    }
    read_named_secret_line("DASHSCOPE_API_KEY (input hidden): ", "API key")
}

/// The key without copy damage, or why it is refused; warnings go to stderr.
fn checked_key(raw: &str) -> anyhow::Result<String> {
    let (damage, key) = value_damage(raw);
    for removed in damage.iter().filter(|damage| !matches!(damage, ValueDamage::Whitespace | ValueDamage::LineBreak)) {
        eprintln!("note: removed from the input: {}", removed.explanation());
    }
    if key.is_empty() {
        bail!("no key given");
    }
    if let Some(bad) = key.chars().find(|character| !character.is_ascii_graphic()) {
        bail!("the key contains {bad:?}, which no API key has; nothing was written");
    }
    match key_shape(&key) {
        KeyShape::Permanent(_) => {}
        KeyShape::BadChecksum => bail!(
            "{} looks like a secure key but its checksum does not match: a character was changed or lost while copying. \
             Copy the key again (it is shown only when it is created or reset; if it is lost, reset it or create a new one). Nothing was written.",
            masked_value(&key)
        ),
        KeyShape::Temporary { expires_at } => {
            let until = expires_at.map(|seconds| format!(" (it says it expires at {})", format_utc_timestamp(seconds))).unwrap_or_default();
            bail!(
                "this is a temporary key (st-){until}, which lives at most 30 minutes: set your permanent key instead, and mint temporary keys from it with `keygate token`. Nothing was written."
            )
        }
        KeyShape::Unknown if has_checksum_prefix(&key) => eprintln!(
            "warning: {} starts like a secure key but has {} characters where a secure key has 44: was it cut off while copying? Writing it anyway.",
            masked_value(&key),
            key.len()
        ),
        KeyShape::Unknown => eprintln!(
            "warning: {} does not look like a keygate or DashScope key (sk-ws-..., sk-sp-..., sk-...); writing it anyway.",
            masked_value(&key)
        ),
    }
    Ok(key)
}

/// `--shell`, else the shell `$SHELL` names.
fn chosen_shell(arguments: &SetupArgs) -> anyhow::Result<Shell> {
    if let Some(shell) = arguments.shell {
        return Ok(shell);
    }
    match std::env::var("SHELL") {
        Ok(path) if !path.is_empty() => Shell::from_program_path(&path)
            .with_context(|| format!("$SHELL is {path}, which keygate does not know; pass --shell bash|zsh|fish|powershell|cmd")),
        _ if cfg!(windows) => bail!("pass --shell powershell or --shell cmd"),
        _ => bail!("$SHELL is not set, so keygate cannot tell your shell; pass --shell bash|zsh|fish|powershell|cmd"),
    }
}

fn print_command_for_windows(shell: Shell, line: &str) {
    println!("{line}");
    let check = if shell == Shell::PowerShell { "echo $env:DASHSCOPE_API_KEY" } else { "echo %DASHSCOPE_API_KEY%" };
    let window = if shell == Shell::PowerShell { "Windows PowerShell" } else { "Command Prompt" };
    eprintln!("Run this command in {window}; it sets {VARIABLE} for your user permanently.");
    eprintln!("Then open a new {window} window (windows and IDEs already open keep their old environment) and check with: {check}");
    if shell == Shell::PowerShell {
        eprintln!("PowerShell saves typed commands in its history file: remove this line from it afterwards (see (Get-PSReadLineOption).HistorySavePath).");
    }
}

/// Warnings about other lines that set the variable and would win or confuse.
fn warn_about_other_settings(home: &Home, written: &Path, text: &str) {
    let assignments = find_assignments(text);
    let keygate_line = assignments.iter().find(|assignment| assignment.written_by_keygate).map(|assignment| assignment.line_number);
    for other in assignments.iter().filter(|assignment| !assignment.written_by_keygate) {
        let wins = keygate_line.is_some_and(|line| other.line_number > line);
        let consequence = if wins { "comes after keygate's line, so it wins" } else { "is overridden by keygate's line" };
        eprintln!(
            "warning: line {} of {} also sets {VARIABLE} and {consequence}; remove it to keep one setting",
            other.line_number,
            home.display(written)
        );
    }
}

/// On Linux, login shells (ssh, `bash -l`) read the first of ~/.bash_profile, ~/.bash_login
/// and ~/.profile, not ~/.bashrc: say so when that file does not load ~/.bashrc.
fn note_bash_login_files(home: &Home) {
    let login_files = [".bash_profile", ".bash_login", ".profile"].map(|name| home.directory.join(name));
    match login_files.iter().find(|path| path.exists()) {
        Some(login_file) => {
            let loads_bashrc = std::fs::read_to_string(login_file).is_ok_and(|text| text.contains(".bashrc"));
            if !loads_bashrc {
                eprintln!(
                    "note: login shells (ssh, `bash -l`) read {} instead, which does not load ~/.bashrc; add `[ -f ~/.bashrc ] && . ~/.bashrc` to it",
                    home.display(login_file)
                );
            }
        }
        None => eprintln!(
            "note: login shells (ssh, `bash -l`) read ~/.profile, which you do not have; to get the key there too, create it with: echo '[ -f ~/.bashrc ] && . ~/.bashrc' >> ~/.profile"
        ),
    }
}

fn write_line(shell: Shell, key: &str, line: &str) -> anyhow::Result<()> {
    let home = Home::from_environment().context("cannot find your home directory: HOME is not set")?;
    let system = OperatingSystem::current();
    let file = home.startup_file(shell, system).context("this shell keeps its variables elsewhere")?;
    let shown = home.display(&file);
    let existing = match std::fs::read(&file) {
        Ok(bytes) => {
            String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{shown} is not UTF-8 text; add the line by hand (see --print)"))?
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error).with_context(|| format!("reading {shown}")),
    };
    let (text, change) = with_setting_line(&existing, line);
    let masked = masked_value(key);
    match change {
        FileChange::Unchanged => eprintln!("{shown} already sets {VARIABLE} to {masked}; nothing changed."),
        FileChange::LeftComputed { line_number } => bail!(
            "line {line_number} of {shown} already sets {VARIABLE} from something else (not a plain value); nothing was written, \
             since a second line would silently win over it: edit that line, or remove it and run this again"
        ),
        FileChange::Added | FileChange::Replaced | FileChange::ReplacedExisting { .. } => {
            replace_file(&file, text.as_bytes())?;
            let how = match change {
                FileChange::Added => "added the line".to_string(),
                FileChange::ReplacedExisting { line_number } => format!("replaced your line {line_number} with keygate's line"),
                _ => "replaced keygate's earlier line".to_string(),
            };
            eprintln!("{shown}: {how} that sets {VARIABLE} to {masked}.");
        }
    }
    warn_about_other_settings(&home, &file, &text);
    if mode_of(&file).is_some_and(|mode| mode & 0o044 != 0) {
        eprintln!("warning: other users of this machine may read {shown}, which holds your key; to stop that: chmod 600 {shown}");
    }
    if shell == Shell::Bash && system == OperatingSystem::Linux {
        note_bash_login_files(&home);
    }
    eprintln!("To use it in this terminal now: source {shown}   (or open a new terminal)");
    eprintln!(
        "Programs already running (IDEs, services) keep their old environment until restarted; services started by systemd or supervisord do not read {shown}: see `keygate env doctor --help`."
    );
    Ok(())
}

pub fn run(arguments: SetupArgs) -> anyhow::Result<ExitCode> {
    let shell = chosen_shell(&arguments)?;
    let raw = read_key(&arguments)?;
    let key = SecretString::from(checked_key(raw.expose_secret())?);
    let line = setting_line(shell, key.expose_secret())?;
    if matches!(shell, Shell::PowerShell | Shell::Cmd) {
        print_command_for_windows(shell, &line);
        return Ok(ExitCode::SUCCESS);
    }
    if arguments.print {
        println!("{line}");
        if let Some(file) =
            Home::from_environment().and_then(|home| home.startup_file(shell, OperatingSystem::current()).map(|file| home.display(&file)))
        {
            eprintln!("Add this line to {file} (replacing any earlier one), then run `source {file}` or open a new terminal.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    write_line(shell, key.expose_secret(), &line)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keygate_core::keys::{expose, generate_key, KeyFormat};

    #[test]
    fn a_bad_checksum_and_a_temporary_key_are_refused_and_quotes_removed() {
        let key = expose(&generate_key(KeyFormat::Secure).plaintext).to_string();
        assert_eq!(checked_key(&format!("'{key}'\n")).unwrap(), key);
        let mut changed = key.clone();
        let last = changed.pop().unwrap();
        changed.push(if last == 'a' { 'b' } else { 'a' });
        let refused = checked_key(&changed).unwrap_err().to_string();
        assert!(refused.contains("checksum does not match") && !refused.contains(&changed), "{refused}");
        assert!(checked_key("sk-ws-has space").is_err());
        assert_eq!(checked_key("sk-something-unknown-but-plausible").unwrap(), "sk-something-unknown-but-plausible");
    }

    #[test]
    fn a_key_file_must_hold_one_line() {
        assert_eq!(only_line("\n  sk-abc  \n\n", "f").unwrap(), "  sk-abc  ");
        assert!(only_line("a\nb\n", "f").unwrap_err().to_string().contains("2 lines"));
        assert!(only_line("\n", "f").unwrap_err().to_string().contains("empty"));
    }
}
