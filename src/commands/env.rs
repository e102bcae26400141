//! `keygate env setup` and `keygate env doctor`: putting `DASHSCOPE_API_KEY` where the
//! user's shell reads it, and finding out why a program does not see it.

mod atomic_write;
mod doctor;
mod doctor_environment;
mod doctor_server;
mod doctor_services;
mod findings;
mod key_checks;
mod services;
mod setup;
mod shells;

use std::process::ExitCode;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct EnvArgs {
    #[command(subcommand)]
    pub command: EnvCommand,
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Set DASHSCOPE_API_KEY permanently for your shell
    ///
    /// Writes `export DASHSCOPE_API_KEY='...'` (fish: `set -gx`) to the file your shell reads
    /// at start: ~/.bashrc (bash on Linux), ~/.bash_profile (bash on macOS), ~/.zshrc, or
    /// ~/.config/fish/config.fish. For PowerShell and cmd it prints the command to run.
    /// A second run replaces keygate's line instead of adding another. The file is replaced
    /// atomically and keeps its mode (a new file gets 0600).
    ///
    /// The key is never an argument (it would stay in your shell history and be visible in
    /// the process list): it comes from --key-file, --stdin, or a prompt that does not echo.
    /// A secure key (sk-ws-) whose checksum fails is refused.
    ///
    /// Examples:
    ///   keygate env setup                       # asks for the key, shell from $SHELL
    ///   keygate env setup --key-file ~/Downloads/key.txt
    ///   pass show dashscope | keygate env setup --stdin --shell zsh
    ///   keygate env setup --shell powershell --key-file key.txt
    ///   keygate env setup --print --key-file key.txt   # show the line, write nothing
    #[command(verbatim_doc_comment)]
    Setup(setup::SetupArgs),
    /// Find out why a program cannot see or use DASHSCOPE_API_KEY
    ///
    /// Detects, and says how to fix: the variable missing here but set in a shell file (open
    /// a new terminal or `source` it), a shell that does not read that file, sudo without -E,
    /// a systemd unit or supervisord program that does not pass it, stray quotes, spaces or
    /// a line break in the value, a bad checksum or unknown format, a temporary key, and,
    /// with a server, its verdict (valid with workspace and region, disabled, expired,
    /// unknown in that region, address not whitelisted).
    ///
    /// Exit status: 0 when the key is usable, 1 otherwise.
    ///
    /// Examples:
    ///   keygate env doctor
    ///   keygate env doctor --server http://127.0.0.1:8080
    ///   sudo keygate env doctor --unit myapp.service --server https://keygate.example.com
    ///   keygate env doctor --unit-file /etc/systemd/system/myapp.service
    ///   keygate env doctor --program web --supervisor-conf /etc/supervisor/conf.d/web.conf
    ///   keygate env doctor --json
    #[command(verbatim_doc_comment)]
    Doctor(doctor::DoctorArgs),
}

pub async fn run(arguments: EnvArgs) -> anyhow::Result<ExitCode> {
    match arguments.command {
        EnvCommand::Setup(arguments) => setup::run(arguments),
        EnvCommand::Doctor(arguments) => doctor::run(arguments).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use crate::commands::Cli;

    #[test]
    fn setup_takes_no_key_as_an_argument() {
        let command = Cli::command();
        let setup = command.find_subcommand("env").and_then(|env| env.find_subcommand("setup")).expect("env setup");
        let positional: Vec<String> = setup.get_positionals().map(|argument| argument.get_id().to_string()).collect();
        assert!(positional.is_empty(), "env setup has positional arguments: {positional:?}");
        let takes_values: Vec<String> = setup
            .get_arguments()
            .filter(|argument| argument.get_action().takes_values())
            .map(|argument| argument.get_id().to_string())
            .collect();
        assert_eq!(takes_values, ["shell", "key_file"]);
        let key = "sk-ws-Ab3xMIDDLEPARTMIDDLEPARTMIDDLEPART9xYz";
        assert!(Cli::try_parse_from(["keygate", "env", "setup", key]).is_err());
        assert!(Cli::try_parse_from(["keygate", "env", "setup", "--key", key]).is_err());
    }

    #[test]
    fn doctor_checks_one_service_manager_at_a_time() {
        assert!(Cli::try_parse_from(["keygate", "env", "doctor", "--unit", "a.service", "--program", "web"]).is_err());
        assert!(Cli::try_parse_from(["keygate", "env", "doctor", "--program", "web", "--supervisor-conf", "/etc/x.conf"]).is_ok());
    }
}
