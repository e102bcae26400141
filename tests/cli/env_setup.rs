//! `keygate env setup` in a temporary home: the line is written once (a second run leaves
//! one line), a new shell of each kind sees the variable, the file keeps its mode, and the
//! key is never on the command line (checked in /proc while the command waits for stdin).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{file_mode, keygate_binary, run_command, unknown_secure_key, user_command, CliOutput};

const MARKER: &str = "# added by keygate env setup";

/// `keygate env setup` with the key in a file outside the home; the command line it is
/// given is checked not to hold the key.
fn setup_from_file(home: &Path, shell_path: &str, key: &str, extra: &[&str]) -> CliOutput {
    let key_directory = tempfile::tempdir().expect("a directory for the key file");
    let key_file = key_directory.path().join("key.txt");
    std::fs::write(&key_file, format!("{key}\n")).expect("write the key file");
    let key_file_text = key_file.to_str().expect("utf-8 path").to_string();
    let mut arguments = vec!["env", "setup", "--key-file", key_file_text.as_str()];
    arguments.extend_from_slice(extra);
    assert!(!arguments.join(" ").contains(key), "the test itself put the key on the command line");
    let mut command = user_command(keygate_binary(), home, &[("SHELL", shell_path)]);
    command.args(&arguments);
    run_command(command, &format!("keygate {}", arguments.join(" ")), "")
}

fn setup_from_stdin(home: &Path, shell_path: &str, key: &str) -> CliOutput {
    let mut command = user_command(keygate_binary(), home, &[("SHELL", shell_path)]);
    command.args(["env", "setup", "--stdin"]);
    run_command(command, "keygate env setup --stdin", &format!("{key}\n"))
}

/// Lines of `file` that keygate wrote.
fn keygate_lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file).unwrap_or_default().lines().filter(|line| line.ends_with(MARKER)).map(str::to_string).collect()
}

/// The command each shell runs: the value between markers, so that whatever the system's
/// startup files print does not matter.
const PRINT_VARIABLE: &str = "printf '<<%s>>' \"$DASHSCOPE_API_KEY\"";

/// What `$DASHSCOPE_API_KEY` is in a new shell started as `program arguments...`.
fn variable_in_new_shell(program: &str, arguments: &[&str], home: &Path) -> String {
    let mut command = user_command(program, home, &[("SHELL", program)]);
    command.args(arguments).stdin(Stdio::null());
    let output = command.output().unwrap_or_else(|error| panic!("run {program}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = stdout.split_once("<<").and_then(|(_, rest)| rest.split_once(">>")).map(|(value, _)| value.to_string());
    value.unwrap_or_else(|| panic!("{program} {arguments:?} printed no value:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr)))
}

/// The full path of an installed shell, or `None` with a loud note (the test of that shell
/// is skipped, not failed: CI installs zsh and fish, a laptop may not have them).
fn installed_shell(name: &str) -> Option<PathBuf> {
    let path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|directory| directory.join(name))
        .find(|path| path.is_file());
    if path.is_none() {
        let note =
            format!("*** SKIPPED: {name} is not installed, so `keygate env setup --shell {name}` is not checked in a real {name} ***");
        // Straight to the process's stderr: libtest would swallow eprintln! of a passing test.
        let _ = writeln!(std::io::stderr(), "\n{note}\n    (apt-get install {name})\n");
    }
    path
}

#[test]
fn bash_gets_one_line_in_bashrc_that_new_shells_see() {
    let root = tempfile::tempdir().expect("temporary directory");
    let home = root.path().join("home");
    std::fs::create_dir(&home).unwrap();
    // As Debian's skeleton: login shells load ~/.bashrc through ~/.profile.
    std::fs::write(home.join(".profile"), "if [ -n \"$BASH_VERSION\" ] && [ -f \"$HOME/.bashrc\" ]; then . \"$HOME/.bashrc\"; fi\n")
        .unwrap();
    let key = unknown_secure_key();

    let first = setup_from_file(&home, "/bin/bash", &key, &[]).success();
    assert!(first.stderr.contains("~/.bashrc: added the line"), "{}", first.stderr);
    assert!(first.stderr.contains("source ~/.bashrc"), "{}", first.stderr);
    assert!(!first.stdout.contains(&key) && !first.stderr.contains(&key), "the key was printed");
    let bashrc = home.join(".bashrc");
    assert_eq!(keygate_lines(&bashrc), [format!("export DASHSCOPE_API_KEY='{key}'  {MARKER}")]);
    assert_eq!(file_mode(&bashrc), 0o600, "a new file holding a key is private");

    let again = setup_from_stdin(&home, "/bin/bash", &key).success();
    assert!(again.stderr.contains("nothing changed"), "{}", again.stderr);
    assert_eq!(keygate_lines(&bashrc).len(), 1);

    assert_eq!(variable_in_new_shell("bash", &["-lic", PRINT_VARIABLE], &home), key, "a new login shell");
    assert_eq!(variable_in_new_shell("bash", &["-ic", PRINT_VARIABLE], &home), key, "a new terminal");

    // Another key replaces the line; the file keeps the mode its owner chose.
    std::fs::write(&bashrc, format!("alias ll='ls -l'\n{}\n# mine\n", keygate_lines(&bashrc)[0])).unwrap();
    std::fs::set_permissions(&bashrc, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let replacement = unknown_secure_key();
    let replaced = setup_from_file(&home, "/bin/bash", &replacement, &[]).success();
    assert!(replaced.stderr.contains("replaced keygate's earlier line"), "{}", replaced.stderr);
    assert!(replaced.stderr.contains("chmod 600 ~/.bashrc"), "a readable file is pointed out: {}", replaced.stderr);
    assert_eq!(
        std::fs::read_to_string(&bashrc).unwrap(),
        format!("alias ll='ls -l'\nexport DASHSCOPE_API_KEY='{replacement}'  {MARKER}\n# mine\n")
    );
    assert_eq!(file_mode(&bashrc), 0o644);
    assert_eq!(variable_in_new_shell("bash", &["-lic", PRINT_VARIABLE], &home), replacement);
}

#[test]
fn zsh_gets_its_line_in_zshrc() {
    let Some(zsh) = installed_shell("zsh") else { return };
    let zsh = zsh.to_str().expect("utf-8 path").to_string();
    let root = tempfile::tempdir().expect("temporary directory");
    let home = root.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let key = unknown_secure_key();
    setup_from_file(&home, &zsh, &key, &[]).success();
    setup_from_stdin(&home, &zsh, &key).success();
    assert_eq!(keygate_lines(&home.join(".zshrc")), [format!("export DASHSCOPE_API_KEY='{key}'  {MARKER}")]);
    assert!(!home.join(".bashrc").exists());
    assert_eq!(variable_in_new_shell(&zsh, &["-ic", PRINT_VARIABLE], &home), key);
}

#[test]
fn fish_gets_set_gx_in_its_config() {
    let Some(fish) = installed_shell("fish") else { return };
    let fish = fish.to_str().expect("utf-8 path").to_string();
    let root = tempfile::tempdir().expect("temporary directory");
    let home = root.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let key = unknown_secure_key();
    setup_from_file(&home, &fish, &key, &[]).success();
    setup_from_stdin(&home, &fish, &key).success();
    let config = home.join(".config/fish/config.fish");
    assert_eq!(keygate_lines(&config), [format!("set -gx DASHSCOPE_API_KEY '{key}'  {MARKER}")]);
    assert_eq!(variable_in_new_shell(&fish, &["-c", PRINT_VARIABLE], &home), key);
}

#[test]
fn the_key_is_not_in_the_command_line_of_the_running_process() {
    let root = tempfile::tempdir().expect("temporary directory");
    let key = unknown_secure_key();
    let mut command = user_command(keygate_binary(), root.path(), &[("SHELL", "/bin/bash")]);
    command.args(["env", "setup", "--stdin"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn keygate env setup");
    // The process is running (waiting for stdin): read its arguments as `ps` would.
    let cmdline_path = format!("/proc/{}/cmdline", child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let cmdline = loop {
        let text = std::fs::read(&cmdline_path).map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " ")).unwrap_or_default();
        if text.contains("--stdin") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(cmdline.contains("env setup --stdin"), "could not read the running command line: {cmdline:?}");
    assert!(!cmdline.contains(&key));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(format!("{key}\n").as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(keygate_lines(&root.path().join(".bashrc")).len(), 1);
}

#[test]
fn a_bad_checksum_is_refused_and_nothing_is_written() {
    let root = tempfile::tempdir().expect("temporary directory");
    let home = root.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let mut changed = unknown_secure_key();
    let last = changed.pop().unwrap();
    changed.push(if last == 'a' { 'b' } else { 'a' });
    let refused = setup_from_file(&home, "/bin/bash", &changed, &[]).failure();
    assert!(refused.stderr.contains("checksum does not match"), "{}", refused.stderr);
    assert!(!refused.stderr.contains(&changed));
    assert!(!home.join(".bashrc").exists());

    let unknown_shape = setup_from_stdin(&home, "/bin/bash", "pk-live-a-key-from-elsewhere").success();
    assert!(unknown_shape.stderr.contains("does not look like a keygate or DashScope key"), "{}", unknown_shape.stderr);
}

#[test]
fn print_powershell_and_cmd_write_no_file() {
    let root = tempfile::tempdir().expect("temporary directory");
    let key = unknown_secure_key();
    let printed = setup_from_file(root.path(), "/bin/bash", &key, &["--print"]).success();
    assert_eq!(printed.stdout, format!("export DASHSCOPE_API_KEY='{key}'  {MARKER}\n"));
    let powershell = setup_from_file(root.path(), "/bin/bash", &key, &["--shell", "powershell"]).success();
    assert_eq!(
        powershell.stdout,
        format!("[Environment]::SetEnvironmentVariable(\"DASHSCOPE_API_KEY\", '{key}', [EnvironmentVariableTarget]::User)\n")
    );
    assert!(powershell.stderr.contains("open a new Windows PowerShell window"), "{}", powershell.stderr);
    let cmd = setup_from_file(root.path(), "/bin/bash", &key, &["--shell", "cmd"]).success();
    assert_eq!(cmd.stdout, format!("setx DASHSCOPE_API_KEY \"{key}\"\n"));
    assert!(!root.path().join(".bashrc").exists());
    // Without a terminal and without --stdin or --key-file, nobody is asked.
    let mut command = user_command(keygate_binary(), root.path(), &[("SHELL", "/bin/bash")]);
    command.args(["env", "setup"]);
    let refused = run_command(command, "keygate env setup", "").failure();
    assert!(refused.stderr.contains("pass --stdin"), "{}", refused.stderr);
}

#[test]
fn the_line_model_studios_guide_has_users_write_is_replaced_not_doubled() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path();
    let bashrc = home.join(".bashrc");
    std::fs::write(&bashrc, "alias ll='ls -l'\nexport DASHSCOPE_API_KEY=\"sk-0123456789abcdef0123456789abcdef\"\n# mine\n").unwrap();
    let key = unknown_secure_key();
    let replaced = setup_from_file(home, "/bin/bash", &key, &[]).success();
    assert!(replaced.stderr.contains("replaced your line 2"), "{}", replaced.stderr);
    assert_eq!(
        std::fs::read_to_string(&bashrc).unwrap(),
        format!("alias ll='ls -l'\nexport DASHSCOPE_API_KEY='{key}'  {MARKER}\n# mine\n"),
        "one line sets the variable"
    );
    assert_eq!(variable_in_new_shell("bash", &["-ic", PRINT_VARIABLE], home), key);

    // A line that computes the value is not overridden behind the user's back.
    let computed = "export DASHSCOPE_API_KEY=$(cat ~/.dashscope-key)\n";
    std::fs::write(&bashrc, computed).unwrap();
    let refused = setup_from_file(home, "/bin/bash", &key, &[]).failure();
    assert!(refused.stderr.contains("line 1 of ~/.bashrc already sets DASHSCOPE_API_KEY"), "{}", refused.stderr);
    assert_eq!(std::fs::read_to_string(&bashrc).unwrap(), computed);
}
