//! The doctor's look at this process: is `DASHSCOPE_API_KEY` set here; if not, does a
//! shell startup file set it (then this terminal or program started before, or is a shell
//! that does not read that file), is this `sudo` without `-E`; if so, does a startup file
//! hold a different key that the next terminal will get.

use std::path::{Path, PathBuf};

use super::findings::Report;
use super::key_checks::{masked_value, value_damage};
use super::shells::{find_assignments, Assignment, Home, Shell, VARIABLE};

/// A line of a startup file that sets the variable.
#[derive(Debug, Clone)]
pub struct FileSetting {
    pub path: PathBuf,
    /// The shell that reads the file (`None`: any POSIX login shell, `~/.profile`).
    pub read_by: Option<Shell>,
    pub assignment: Assignment,
}

/// What the doctor examines next: a value and where it came from.
#[derive(Debug, Clone)]
pub struct Subject {
    pub value: String,
    pub source: String,
    /// Where to fix the value ("run `keygate env setup` again", "edit the unit").
    pub where_to_fix: String,
}

/// Every startup file setting of `home`, in the order the files are listed.
pub fn file_settings(home: &Home) -> Vec<FileSetting> {
    let mut settings = Vec::new();
    for (path, read_by) in home.candidate_files() {
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        for assignment in find_assignments(&text) {
            settings.push(FileSetting { path: path.clone(), read_by, assignment });
        }
    }
    settings
}

/// The home directory of `user` from /etc/passwd (the user who ran `sudo`).
fn home_of_user(user: &str) -> Option<PathBuf> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 6 && fields[0] == user).then(|| PathBuf::from(fields[5]))
    })
}

fn non_empty_variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// `source FILE` in the syntax of the shell that reads it.
fn reload_command(home: &Home, setting: &FileSetting) -> String {
    format!("source {}", home.display(&setting.path))
}

/// True when `shell` reads the file of `setting` when it starts.
fn read_by_shell(setting: &FileSetting, shell: Shell) -> bool {
    match setting.read_by {
        Some(reader) => reader == shell,
        // ~/.profile: bash login shells (when there is no ~/.bash_profile) and sh.
        None => shell == Shell::Bash,
    }
}

/// `~/.bashrc` stops early for non-interactive shells (Debian's and Ubuntu's does), before
/// line `line_number`: scripts, cron and `ssh host command` never reach the setting.
fn interactive_guard_before(path: &Path, line_number: usize) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .take(line_number.saturating_sub(1))
        .position(|line| line.contains("return") && (line.contains("$-") || line.contains("PS1")))
        .map(|index| index + 1)
}

/// Login shells read the first of ~/.bash_profile, ~/.bash_login and ~/.profile; true
/// when that file loads ~/.bashrc.
fn login_shells_load_bashrc(home: &Home) -> bool {
    let first = [".bash_profile", ".bash_login", ".profile"].map(|name| home.directory.join(name)).into_iter().find(|path| path.exists());
    first.and_then(|path| std::fs::read_to_string(path).ok()).is_some_and(|text| text.contains(".bashrc"))
}

fn describe(home: &Home, setting: &FileSetting) -> String {
    let by = if setting.assignment.written_by_keygate { ", written by keygate env setup" } else { "" };
    format!("{} (line {}{by})", home.display(&setting.path), setting.assignment.line_number)
}

/// The variable is not set here: find out why.
fn examine_unset(
    report: &mut Report,
    home: Option<&Home>,
    settings: &[FileSetting],
    shell: Option<Shell>,
    sudo_user: Option<&str>,
) -> Option<Subject> {
    let read_by_this_shell = |setting: &FileSetting| match shell {
        Some(shell) => read_by_shell(setting, shell),
        None => true,
    };
    let chosen = settings.iter().find(|setting| read_by_this_shell(setting)).or_else(|| settings.first());
    if let Some(user) = sudo_user {
        let where_set = match (home, chosen) {
            (Some(home), Some(setting)) => format!(" ({user}'s {} sets it)", describe(home, setting)),
            _ => String::new(),
        };
        report.problem(
            "sudo_without_preserve_env",
            format!("{VARIABLE} is not set in this process, which runs under sudo (started by {user}){where_set}: sudo starts programs with a clean environment, so {user}'s variables do not reach them."),
            format!("sudo -E <your command>   (or: sudo --preserve-env={VARIABLE} <your command>)\nor run the command without sudo if you may"),
        );
    }
    let (Some(home), Some(setting)) = (home, chosen) else {
        if sudo_user.is_none() {
            report.problem(
                "not_set",
                format!("{VARIABLE} is not set in this process, and none of your shell startup files (~/.bashrc, ~/.bash_profile, ~/.profile, ~/.zshrc, fish's config.fish) sets it."),
                "keygate env setup --key-file FILE   (or run `keygate env setup` and paste the key when asked)",
            );
        }
        return None;
    };
    let shell_reads_a_setting = settings.iter().any(read_by_this_shell);
    match shell {
        Some(shell) if !shell_reads_a_setting => report.problem(
            "shell_does_not_read_file",
            format!(
                "{VARIABLE} is not set in this process; {} sets it, but your shell is {} ($SHELL), which does not read that file.",
                describe(home, setting),
                shell.name()
            ),
            format!("keygate env setup --shell {} --key-file FILE   (then open a new terminal)", shell.name()),
        ),
        _ if sudo_user.is_some() => {}
        _ => report.problem(
            "set_in_shell_file_only",
            format!(
                "{VARIABLE} is not set in this process, but {} sets it. Startup files are read when a shell starts: this terminal (or the IDE or program that started this command) was opened before the line was added, or is not a shell that reads that file.",
                describe(home, setting)
            ),
            format!("{}   (or open a new terminal; restart IDEs and programs started before)", reload_command(home, setting)),
        ),
    }
    let bash_user = matches!(shell, None | Some(Shell::Bash));
    let only_in_bashrc = settings.iter().all(|setting| setting.path.file_name().is_some_and(|name| name == ".bashrc"));
    if bash_user && only_in_bashrc && !login_shells_load_bashrc(home) {
        report.warning(
            "bashrc_not_read_by_login_shells",
            "Login shells (ssh sessions, `bash -l`, macOS terminals) do not read ~/.bashrc, and your ~/.bash_profile or ~/.profile does not load it.",
            Some("echo '[ -f ~/.bashrc ] && . ~/.bashrc' >> ~/.profile".to_string()),
        );
    }
    if let Some(guard_line) = interactive_guard_before(&setting.path, setting.assignment.line_number).filter(|_| bash_user) {
        report.warning(
            "bashrc_stops_for_non_interactive_shells",
            format!(
                "{} stops at line {guard_line} for non-interactive shells, before the setting: scripts, cron jobs and `ssh host command` do not get the key.",
                home.display(&setting.path)
            ),
            Some(format!("move the {VARIABLE} line above line {guard_line}, or put it in ~/.profile")),
        );
    }
    let value = setting.assignment.value.clone()?;
    Some(Subject {
        value,
        source: describe(home, setting),
        where_to_fix: format!("run `keygate env setup` again (it replaces the line in {})", home.display(&setting.path)),
    })
}

/// Looks at this process's environment and the user's startup files.
pub fn examine_process(report: &mut Report) -> Option<Subject> {
    let sudo_user = non_empty_variable("SUDO_USER");
    let home = match &sudo_user {
        Some(user) => home_of_user(user).map(Home::of_directory).or_else(Home::from_environment),
        None => Home::from_environment(),
    };
    let settings = home.as_ref().map(file_settings).unwrap_or_default();
    let shell = non_empty_variable("SHELL").and_then(|path| Shell::from_program_path(&path));
    let Some(value) = std::env::var_os(VARIABLE).filter(|value| !value.is_empty()) else {
        if std::env::var_os(VARIABLE).is_some() {
            report.note("set_but_empty", format!("{VARIABLE} is set in this process, but empty."));
        }
        return examine_unset(report, home.as_ref(), &settings, shell, sudo_user.as_deref());
    };
    let value = value.to_string_lossy().into_owned();
    if let Some(home) = &home {
        let (_, clean) = value_damage(&value);
        for setting in &settings {
            let Some(file_value) = &setting.assignment.value else { continue };
            if value_damage(file_value).1 != clean {
                report.warning(
                    "environment_differs_from_shell_file",
                    format!(
                        "This process has {} but {} sets {}: the next terminal gets the file's key.",
                        masked_value(&clean),
                        describe(home, setting),
                        masked_value(file_value)
                    ),
                    Some(format!("{}   (or run `keygate env setup` again with the key you want)", reload_command(home, setting))),
                );
            }
        }
    }
    Some(Subject {
        value,
        source: "this process's environment".into(),
        where_to_fix: "run `keygate env setup` and open a new terminal".into(),
    })
}
