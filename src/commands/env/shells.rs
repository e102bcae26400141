//! Shells and their startup files: which shell a user runs, which file makes a variable
//! permanent for it (as Model Studio's guide says: `~/.bashrc` for bash on Linux,
//! `~/.bash_profile` for bash on macOS, `~/.zshrc`, fish's `config.fish`; a command for
//! PowerShell and cmd), the line that sets `DASHSCOPE_API_KEY` quoted for that shell, and
//! reading such lines back out of a file. Pure text work; the callers do the IO.

use std::path::{Path, PathBuf};

/// The variable every DashScope SDK reads.
pub const VARIABLE: &str = "DASHSCOPE_API_KEY";
/// Ends every line that `keygate env setup` writes, so that it can find and replace it.
pub const MARKER: &str = "# added by keygate env setup";

/// The shells `keygate env setup` knows (`PowerShell` is the product's name, hence the
/// allowed lint).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    #[value(name = "powershell")]
    PowerShell,
    Cmd,
}

impl Shell {
    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
            Shell::PowerShell => "powershell",
            Shell::Cmd => "cmd",
        }
    }

    /// The shell named by a path such as `$SHELL` (`/usr/bin/zsh`, `pwsh.exe`).
    pub fn from_program_path(path: &str) -> Option<Shell> {
        let file_name = path.rsplit(['/', '\\']).next().unwrap_or(path).to_ascii_lowercase();
        let program = file_name.strip_suffix(".exe").unwrap_or(&file_name);
        match program {
            "bash" => Some(Shell::Bash),
            "zsh" => Some(Shell::Zsh),
            "fish" => Some(Shell::Fish),
            "pwsh" | "powershell" => Some(Shell::PowerShell),
            "cmd" => Some(Shell::Cmd),
            _ => None,
        }
    }
}

/// The operating system, which decides bash's file (macOS terminals start login shells).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatingSystem {
    Linux,
    MacOs,
    Windows,
}

impl OperatingSystem {
    pub fn current() -> OperatingSystem {
        if cfg!(target_os = "macos") {
            OperatingSystem::MacOs
        } else if cfg!(windows) {
            OperatingSystem::Windows
        } else {
            OperatingSystem::Linux
        }
    }
}

/// Where a user's startup files are: the home directory and the variables that move them.
#[derive(Debug, Clone)]
pub struct Home {
    pub directory: PathBuf,
    /// `$ZDOTDIR`: where zsh reads its files, when set.
    pub zsh_directory: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`, when set (fish's configuration lives under it).
    pub config_directory: Option<PathBuf>,
}

impl Home {
    /// This process's home and variables.
    pub fn from_environment() -> Option<Home> {
        let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty()).map(PathBuf::from);
        Some(Home {
            directory: non_empty("HOME").or_else(|| non_empty("USERPROFILE"))?,
            zsh_directory: non_empty("ZDOTDIR"),
            config_directory: non_empty("XDG_CONFIG_HOME"),
        })
    }

    /// Another user's home (e.g. the one who ran `sudo`), without this process's variables.
    pub fn of_directory(directory: PathBuf) -> Home {
        Home { directory, zsh_directory: None, config_directory: None }
    }

    pub fn fish_config(&self) -> PathBuf {
        self.config_directory.clone().unwrap_or_else(|| self.directory.join(".config")).join("fish").join("config.fish")
    }

    fn zsh_file(&self, name: &str) -> PathBuf {
        self.zsh_directory.as_ref().unwrap_or(&self.directory).join(name)
    }

    /// The file that `keygate env setup` writes for `shell`; `None` for PowerShell and cmd,
    /// which keep user variables in the registry (a command sets them).
    pub fn startup_file(&self, shell: Shell, system: OperatingSystem) -> Option<PathBuf> {
        match shell {
            Shell::Bash if system == OperatingSystem::MacOs => Some(self.directory.join(".bash_profile")),
            Shell::Bash => Some(self.directory.join(".bashrc")),
            Shell::Zsh => Some(self.zsh_file(".zshrc")),
            Shell::Fish => Some(self.fish_config()),
            Shell::PowerShell | Shell::Cmd => None,
        }
    }

    /// Every file a shell may read at start that could set the variable, with the shell
    /// that reads it (`None`: any POSIX login shell).
    pub fn candidate_files(&self) -> Vec<(PathBuf, Option<Shell>)> {
        vec![
            (self.directory.join(".bashrc"), Some(Shell::Bash)),
            (self.directory.join(".bash_profile"), Some(Shell::Bash)),
            (self.directory.join(".bash_login"), Some(Shell::Bash)),
            (self.directory.join(".profile"), None),
            (self.zsh_file(".zshenv"), Some(Shell::Zsh)),
            (self.zsh_file(".zprofile"), Some(Shell::Zsh)),
            (self.zsh_file(".zshrc"), Some(Shell::Zsh)),
            (self.fish_config(), Some(Shell::Fish)),
        ]
    }

    /// `~/...` for a path under the home directory, for messages a user can paste.
    pub fn display(&self, path: &Path) -> String {
        match path.strip_prefix(&self.directory) {
            Ok(relative) => format!("~/{}", relative.display()),
            Err(_) => path.display().to_string(),
        }
    }
}

/// `'text'` for POSIX shells: nothing inside single quotes is special but the quote itself.
pub fn posix_single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `'text'` for fish, where `\` and `'` are escaped with a backslash inside single quotes.
pub fn fish_single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\\', r"\\").replace('\'', r"\'"))
}

/// `'text'` for PowerShell, where a quote inside is doubled.
pub fn powershell_single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Characters that cmd interprets even inside double quotes (or that end them).
const CMD_UNSAFE: &[char] = &['"', '%', '!', '^', '&', '|', '<', '>'];

/// Why a key cannot be written for a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    UnsafeForCmd(char),
}

impl std::fmt::Display for LineError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::UnsafeForCmd(character) => {
                write!(formatter, "the key contains a character that cmd would interpret ({character:?}); use --shell powershell instead")
            }
        }
    }
}

impl std::error::Error for LineError {}

/// The line (or command) that sets the variable to `key` for `shell`. Lines for files end
/// with [`MARKER`]; the PowerShell and cmd commands are typed, so they carry none.
pub fn setting_line(shell: Shell, key: &str) -> Result<String, LineError> {
    Ok(match shell {
        Shell::Bash | Shell::Zsh => format!("export {VARIABLE}={}  {MARKER}", posix_single_quoted(key)),
        Shell::Fish => format!("set -gx {VARIABLE} {}  {MARKER}", fish_single_quoted(key)),
        Shell::PowerShell => format!(
            "[Environment]::SetEnvironmentVariable(\"{VARIABLE}\", {}, [EnvironmentVariableTarget]::User)",
            powershell_single_quoted(key)
        ),
        Shell::Cmd => {
            if let Some(unsafe_character) = key.chars().find(|character| CMD_UNSAFE.contains(character)) {
                return Err(LineError::UnsafeForCmd(unsafe_character));
            }
            format!("setx {VARIABLE} \"{key}\"")
        }
    })
}

/// What [`with_setting_line`] did to a file's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChange {
    /// The line was appended.
    Added,
    /// An earlier keygate line was replaced (and any further ones removed).
    Replaced,
    /// The same line was there already.
    Unchanged,
    /// No keygate line, but a line of the user's own set the variable to a literal (the
    /// `export DASHSCOPE_API_KEY="..."` of Model Studio's guide): replaced in place.
    ReplacedExisting { line_number: usize },
    /// No keygate line, and a line of the user's own computes the value (`$(cat file)`):
    /// nothing is written, since a second line would silently win over it.
    LeftComputed { line_number: usize },
}

fn is_keygate_line(line: &str) -> bool {
    line.trim_end().ends_with(MARKER)
}

/// The file's text with `new_line` in place of the first keygate-written line (later ones
/// removed), or appended when there is none. Other lines, and the file's line endings, stay.
pub fn with_setting_line(existing: &str, new_line: &str) -> (String, FileChange) {
    let line_ending = if existing.contains("\r\n") { "\r\n" } else { "\n" };
    let mut output = String::with_capacity(existing.len() + new_line.len() + 2);
    let mut change = None;
    for line in existing.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        if !is_keygate_line(content) {
            output.push_str(line);
            continue;
        }
        if change.is_none() {
            change = Some(if content == new_line { FileChange::Unchanged } else { FileChange::Replaced });
            output.push_str(new_line);
            output.push_str(if line.ends_with('\n') { &line[content.len()..] } else { line_ending });
        } else {
            change = Some(FileChange::Replaced);
        }
    }
    if change.is_none() {
        if let Some(theirs) = find_assignments(existing).first() {
            return replacing_their_line(existing, theirs, new_line);
        }
    }
    match change {
        Some(change) => (output, change),
        None => {
            if !output.is_empty() && !output.ends_with('\n') {
                output.push_str(line_ending);
            }
            output.push_str(new_line);
            output.push_str(line_ending);
            (output, FileChange::Added)
        }
    }
}

/// The file's text with the user's own line `theirs` replaced by `new_line` when it sets a
/// literal; unchanged when it computes the value.
fn replacing_their_line(existing: &str, theirs: &Assignment, new_line: &str) -> (String, FileChange) {
    if theirs.value.is_none() {
        return (existing.to_string(), FileChange::LeftComputed { line_number: theirs.line_number });
    }
    let mut output = String::with_capacity(existing.len() + new_line.len());
    for (index, line) in existing.split_inclusive('\n').enumerate() {
        if index + 1 == theirs.line_number {
            let content = line.trim_end_matches(['\n', '\r']);
            output.push_str(new_line);
            output.push_str(&line[content.len()..]);
        } else {
            output.push_str(line);
        }
    }
    if !output.ends_with('\n') {
        output.push('\n');
    }
    (output, FileChange::ReplacedExisting { line_number: theirs.line_number })
}

/// A line of a startup file that sets the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// 1-based.
    pub line_number: usize,
    pub written_by_keygate: bool,
    /// The value when it is a literal (quoted or not); `None` when it is computed
    /// (`$(cat file)`, `$OTHER`).
    pub value: Option<String>,
}

/// The literal at the start of `text`: `'...'`, `"..."` or a bare word, and whether it is
/// a plain literal (no expansion inside).
fn leading_literal(text: &str) -> Option<String> {
    let text = text.trim_start();
    let (value, rest) = if let Some(inside) = text.strip_prefix('\'') {
        let end = inside.find('\'')?;
        (inside[..end].to_string(), &inside[end + 1..])
    } else if let Some(inside) = text.strip_prefix('"') {
        let end = inside.find('"')?;
        let value = &inside[..end];
        if value.contains(['$', '`', '\\']) {
            return None;
        }
        (value.to_string(), &inside[end + 1..])
    } else {
        let end = text.find(|character: char| character.is_whitespace() || character == ';').unwrap_or(text.len());
        let value = &text[..end];
        if value.contains(['$', '`', '\\', '\'', '"']) {
            return None;
        }
        (value.to_string(), &text[end..])
    };
    // Something glued to the literal (`'a'"b"`, `'a'$X`) is not a plain literal.
    if rest.starts_with(|character: char| !character.is_whitespace() && character != ';') {
        return None;
    }
    Some(value)
}

/// The value part of a line that sets the variable, in POSIX (`export NAME=...`,
/// `NAME=...`, `declare -x NAME=...`) or fish (`set -gx NAME ...`) syntax.
fn assigned_text(line: &str) -> Option<&str> {
    let line = line.trim_start();
    if line.starts_with('#') {
        return None;
    }
    let mut words = line.split_whitespace();
    let first = words.next()?;
    if first == "set" {
        // fish: set [flags] NAME VALUE...
        let after_set = line["set".len()..].trim_start();
        let mut rest = after_set;
        loop {
            let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let word = &rest[..word_end];
            if word.starts_with('-') {
                rest = rest[word_end..].trim_start();
                continue;
            }
            return (word == VARIABLE).then(|| &rest[word_end..]);
        }
    }
    let start = line.find(VARIABLE)?;
    let before = line[..start].trim();
    let allowed_before = before.is_empty() || matches!(before, "export" | "declare -x" | "typeset -x");
    if !allowed_before {
        return None;
    }
    line[start + VARIABLE.len()..].strip_prefix('=')
}

/// Every line of `text` that sets the variable.
pub fn find_assignments(text: &str) -> Vec<Assignment> {
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let value_text = assigned_text(line)?;
            Some(Assignment { line_number: index + 1, written_by_keygate: is_keygate_line(line), value: leading_literal(value_text) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-ws-Ab3xMIDDLEPARTMIDDLEPARTMIDDLEPART9xYz";

    #[test]
    fn the_shell_is_read_from_its_program_path() {
        let cases = [
            ("/bin/bash", Some(Shell::Bash)),
            ("/usr/bin/zsh", Some(Shell::Zsh)),
            ("/opt/homebrew/bin/fish", Some(Shell::Fish)),
            ("C:\\Program Files\\PowerShell\\7\\pwsh.exe", Some(Shell::PowerShell)),
            ("cmd.exe", Some(Shell::Cmd)),
            ("/bin/dash", None),
        ];
        for (path, expected) in cases {
            assert_eq!(Shell::from_program_path(path), expected, "{path}");
        }
    }

    #[test]
    fn each_shell_gets_the_file_the_guide_names() {
        let home = Home { directory: "/home/u".into(), zsh_directory: None, config_directory: None };
        let file = |shell, system| home.startup_file(shell, system).map(|path| path.display().to_string());
        assert_eq!(file(Shell::Bash, OperatingSystem::Linux).as_deref(), Some("/home/u/.bashrc"));
        assert_eq!(file(Shell::Bash, OperatingSystem::MacOs).as_deref(), Some("/home/u/.bash_profile"));
        assert_eq!(file(Shell::Zsh, OperatingSystem::MacOs).as_deref(), Some("/home/u/.zshrc"));
        assert_eq!(file(Shell::Fish, OperatingSystem::Linux).as_deref(), Some("/home/u/.config/fish/config.fish"));
        assert_eq!(file(Shell::PowerShell, OperatingSystem::Windows), None);
        let moved = Home { directory: "/home/u".into(), zsh_directory: Some("/z".into()), config_directory: Some("/c".into()) };
        assert_eq!(moved.startup_file(Shell::Zsh, OperatingSystem::Linux), Some(PathBuf::from("/z/.zshrc")));
        assert_eq!(moved.startup_file(Shell::Fish, OperatingSystem::Linux), Some(PathBuf::from("/c/fish/config.fish")));
        assert_eq!(home.display(Path::new("/home/u/.bashrc")), "~/.bashrc");
        assert_eq!(home.display(Path::new("/etc/profile")), "/etc/profile");
    }

    #[test]
    fn lines_quote_the_key_for_their_shell() {
        assert_eq!(setting_line(Shell::Bash, KEY).unwrap(), format!("export DASHSCOPE_API_KEY='{KEY}'  # added by keygate env setup"));
        assert_eq!(setting_line(Shell::Fish, KEY).unwrap(), format!("set -gx DASHSCOPE_API_KEY '{KEY}'  # added by keygate env setup"));
        assert_eq!(
            setting_line(Shell::PowerShell, KEY).unwrap(),
            format!("[Environment]::SetEnvironmentVariable(\"DASHSCOPE_API_KEY\", '{KEY}', [EnvironmentVariableTarget]::User)")
        );
        assert_eq!(setting_line(Shell::Cmd, KEY).unwrap(), format!("setx DASHSCOPE_API_KEY \"{KEY}\""));
        assert_eq!(posix_single_quoted("it's $HOME"), r"'it'\''s $HOME'");
        assert_eq!(fish_single_quoted(r"a'b\c"), r"'a\'b\\c'");
        assert_eq!(powershell_single_quoted("a'b"), "'a''b'");
        assert_eq!(setting_line(Shell::Cmd, "sk-a%PATH%"), Err(LineError::UnsafeForCmd('%')));
    }

    #[test]
    fn the_line_is_appended_once_then_replaced_in_place() {
        let first = setting_line(Shell::Bash, KEY).unwrap();
        let (text, change) = with_setting_line("alias ll='ls -l'", &first);
        assert_eq!((text.as_str(), change), (format!("alias ll='ls -l'\n{first}\n").as_str(), FileChange::Added));
        let (again, change) = with_setting_line(&text, &first);
        assert_eq!((again.as_str(), change), (text.as_str(), FileChange::Unchanged));
        let second = setting_line(Shell::Bash, "sk-0123456789abcdef0123456789abcdef").unwrap();
        let (replaced, change) = with_setting_line(&format!("{text}# after\n{first}\n"), &second);
        assert_eq!((replaced.as_str(), change), (format!("alias ll='ls -l'\n{second}\n# after\n").as_str(), FileChange::Replaced));
        // The line Model Studio's guide has users write is replaced, not doubled; a computed one is left alone.
        let (theirs, change) = with_setting_line("a\nexport DASHSCOPE_API_KEY=\"sk-old\"\nb\n", &first);
        assert_eq!((theirs.as_str(), change), (format!("a\n{first}\nb\n").as_str(), FileChange::ReplacedExisting { line_number: 2 }));
        let computed = "export DASHSCOPE_API_KEY=$(cat ~/.key)\n";
        assert_eq!(with_setting_line(computed, &first), (computed.to_string(), FileChange::LeftComputed { line_number: 1 }));
        let (windows, _) = with_setting_line("a\r\n", &first);
        assert_eq!(windows, format!("a\r\n{first}\r\n"));
        assert_eq!(with_setting_line("", &first).0, format!("{first}\n"));
    }

    #[test]
    fn assignments_are_found_in_every_syntax_and_literals_read() {
        let text = format!(
            "# export DASHSCOPE_API_KEY=commented\nexport DASHSCOPE_API_KEY='{KEY}'  {MARKER}\nDASHSCOPE_API_KEY=\"sk-plain\"\n\
             export DASHSCOPE_API_KEY=$(cat ~/.key)\nset -gx DASHSCOPE_API_KEY 'sk-fish'\nset -x OTHER 1\nexport OTHER_DASHSCOPE_API_KEY=x\n\
             echo $DASHSCOPE_API_KEY\nexport DASHSCOPE_API_KEY=bare # comment\n"
        );
        let found = find_assignments(&text);
        let summary: Vec<(usize, bool, Option<&str>)> =
            found.iter().map(|assignment| (assignment.line_number, assignment.written_by_keygate, assignment.value.as_deref())).collect();
        assert_eq!(
            summary,
            [(2, true, Some(KEY)), (3, false, Some("sk-plain")), (4, false, None), (5, false, Some("sk-fish")), (9, false, Some("bare"))]
        );
    }
}
