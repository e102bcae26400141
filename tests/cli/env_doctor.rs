//! `keygate env doctor` names the right cause, each scenario set up for real: a key only in
//! a shell file, sudo without -E, a systemd unit and a supervisord program without the
//! variable, a value with quotes, a bad checksum, and with a running server an expired
//! temporary key, a disabled key, an unknown key and a valid one. Exit 0 only when usable.

use std::path::Path;

use crate::harness::{create_key, keygate_binary, run_command, unknown_secure_key, user_command, CliOutput, TestEnv};

/// `keygate env doctor --json <arguments>` as a user with `home`, bash as the shell.
fn doctor(home: &Path, arguments: &[&str], variables: &[(&str, &str)]) -> CliOutput {
    let mut all_variables = vec![("SHELL", "/bin/bash")];
    all_variables.extend_from_slice(variables);
    let mut command = user_command(keygate_binary(), home, &all_variables);
    command.args(["env", "doctor", "--json"]).args(arguments);
    run_command(command, &format!("keygate env doctor --json {}", arguments.join(" ")), "")
}

/// The findings of a report with `severity` as (cause, message, fix).
fn findings(output: &CliOutput, severity: &str) -> Vec<(String, String, String)> {
    let report = output.json();
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|finding| finding["severity"] == severity)
        .map(|finding| {
            let text = |name: &str| finding[name].as_str().unwrap_or("").to_string();
            (text("cause"), text("message"), text("fix"))
        })
        .collect()
}

fn problem_causes(output: &CliOutput) -> Vec<String> {
    findings(output, "problem").into_iter().map(|(cause, _, _)| cause).collect()
}

#[track_caller]
fn assert_only_problem(output: &CliOutput, cause: &str) -> (String, String) {
    assert_eq!(output.code, Some(1), "{}\n{}", output.stdout, output.stderr);
    assert_eq!(problem_causes(output), [cause], "{}", output.stdout);
    assert_eq!(output.json()["usable"], false);
    let (_, message, fix) = findings(output, "problem").remove(0);
    (message, fix)
}

fn bad_checksum_key() -> String {
    let mut key = unknown_secure_key();
    let last = key.pop().unwrap();
    key.push(if last == 'a' { 'b' } else { 'a' });
    key
}

#[test]
fn a_key_only_in_a_shell_file_means_open_a_new_terminal_or_source_it() {
    let home = tempfile::tempdir().unwrap();
    let key = unknown_secure_key();
    let mut setup = user_command(keygate_binary(), home.path(), &[("SHELL", "/bin/bash")]);
    setup.args(["env", "setup", "--stdin"]);
    run_command(setup, "keygate env setup --stdin", &format!("{key}\n")).success();

    let output = doctor(home.path(), &[], &[]);
    let (message, fix) = assert_only_problem(&output, "set_in_shell_file_only");
    assert!(message.contains("~/.bashrc (line 1, written by keygate env setup)"), "{message}");
    assert!(fix.starts_with("source ~/.bashrc") && fix.contains("open a new terminal"), "{fix}");
    assert!(!output.stdout.contains(&key), "the doctor printed the key");

    // zsh does not read ~/.bashrc: that is the cause then.
    let zsh = doctor(home.path(), &[], &[("SHELL", "/usr/bin/zsh")]);
    let (_, fix) = assert_only_problem(&zsh, "shell_does_not_read_file");
    assert!(fix.starts_with("keygate env setup --shell zsh"), "{fix}");

    // Set here too: usable, and the text form says so.
    let mut text = user_command(keygate_binary(), home.path(), &[("SHELL", "/bin/bash"), ("DASHSCOPE_API_KEY", &key)]);
    text.args(["env", "doctor"]);
    let usable = run_command(text, "keygate env doctor", "").success();
    assert!(usable.stdout.contains("Verdict: the key is usable."), "{}", usable.stdout);
}

#[test]
fn sudo_without_dash_e_is_named() {
    let home = tempfile::tempdir().unwrap();
    let output = doctor(home.path(), &[], &[("SUDO_USER", "keygate-test-nobody")]);
    let (message, fix) = assert_only_problem(&output, "sudo_without_preserve_env");
    assert!(message.contains("sudo"), "{message}");
    assert!(fix.contains("sudo -E") && fix.contains("--preserve-env=DASHSCOPE_API_KEY"), "{fix}");
    let nothing = doctor(home.path(), &[], &[]);
    assert_only_problem(&nothing, "not_set");
}

#[test]
fn a_systemd_unit_and_a_supervisord_program_without_the_variable_are_named() {
    let directory = tempfile::tempdir().unwrap();
    let unit = directory.path().join("app.service");
    std::fs::write(&unit, "[Unit]\nDescription=app\n\n[Service]\nExecStart=/usr/bin/app\nEnvironment=PORT=8000\n").unwrap();
    let unit_text = unit.to_str().unwrap();
    let output = doctor(directory.path(), &["--unit-file", unit_text], &[]);
    let (message, fix) = assert_only_problem(&output, "service_unit_missing_variable");
    assert!(message.contains("do not read your shell files"), "{message}");
    assert!(fix.contains("systemctl edit app.service") && fix.contains("EnvironmentFile="), "{fix}");

    // With an EnvironmentFile that holds a good key, the unit is fine.
    let key = unknown_secure_key();
    let environment_file = directory.path().join("app.env");
    std::fs::write(&environment_file, format!("# app\nDASHSCOPE_API_KEY={key}\n")).unwrap();
    std::fs::write(&unit, format!("[Service]\nExecStart=/usr/bin/app\nEnvironmentFile={}\n", environment_file.display())).unwrap();
    let fixed = doctor(directory.path(), &["--unit-file", unit_text], &[]);
    assert_eq!((fixed.code, problem_causes(&fixed)), (Some(0), Vec::<String>::new()), "{}", fixed.stdout);
    assert!(fixed.json()["keys"][0]["source"].as_str().unwrap().contains("EnvironmentFile"), "{}", fixed.stdout);

    let supervisor = directory.path().join("web.conf");
    std::fs::write(&supervisor, "[program:web]\ncommand=/usr/bin/web\nautostart=true\n").unwrap();
    let output = doctor(directory.path(), &["--supervisor-conf", supervisor.to_str().unwrap(), "--program", "web"], &[]);
    let (_, fix) = assert_only_problem(&output, "supervisor_program_missing_variable");
    assert!(fix.contains("environment=DASHSCOPE_API_KEY=") && fix.contains("supervisorctl update web"), "{fix}");
}

#[test]
fn quotes_in_the_value_and_a_bad_checksum_are_named() {
    let home = tempfile::tempdir().unwrap();
    let key = unknown_secure_key();
    let quoted = format!("'{key}'");
    let output = doctor(home.path(), &[], &[("DASHSCOPE_API_KEY", &quoted)]);
    let (message, _) = assert_only_problem(&output, "value_has_quotes");
    assert!(message.contains("quote"), "{message}");
    assert!(!output.stdout.contains(&key));

    let damaged = bad_checksum_key();
    let output = doctor(home.path(), &[], &[("DASHSCOPE_API_KEY", &damaged)]);
    let (message, _) = assert_only_problem(&output, "bad_checksum");
    assert!(message.contains("checksum does not match"), "{message}");
    assert!(!output.stdout.contains(&damaged));
    assert_eq!(output.json()["keys"][0]["format"], "bad_checksum");

    let output = doctor(home.path(), &[], &[("DASHSCOPE_API_KEY", "not-a-key-at-all")]);
    assert_only_problem(&output, "unknown_format");
}

#[test]
fn the_servers_verdict_valid_expired_disabled_and_unknown() {
    let mut environment = TestEnv::new();
    environment.start_server(&[]);
    environment.login_root();
    let (key_id, key) = create_key(&environment);
    let home = tempfile::tempdir().unwrap();
    let server = environment.server_url();
    let ask = |value: &str| doctor(home.path(), &["--server", &server], &[("DASHSCOPE_API_KEY", value)]);

    let valid = ask(&key).success();
    let accepted = findings(&valid, "ok").into_iter().find(|(cause, _, _)| cause == "server_accepts_key").expect("the server's verdict");
    assert!(
        accepted.1.contains(&format!("key {key_id} "))
            && accepted.1.contains("workspace llm-")
            && accepted.1.contains("region ap-southeast-1"),
        "{}",
        accepted.1
    );
    assert_eq!(valid.json()["usable"], true);

    // A temporary key with a one-second life, asked about after it ran out.
    let minted = environment.run_with(&["token", "--ttl", "1", "--json"], "", &[("DASHSCOPE_API_KEY", &key)]).success();
    let token = minted.json()["token"].as_str().expect("token").to_string();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (message, fix) = assert_only_problem(&ask(&token), "temporary_key_expired");
    assert!(message.contains("The server at") && message.contains("expired"), "{message}");
    assert!(fix.contains("keygate token"), "{fix}");

    let (message, _) = assert_only_problem(&ask(&unknown_secure_key()), "key_unknown_to_server");
    assert!(message.contains("another region"), "{message}");

    environment.run(&["keys", "disable", &key_id]).success();
    let disabled = ask(&key);
    let (message, fix) = assert_only_problem(&disabled, "key_disabled");
    assert!(message.contains("disabled"), "{message}");
    assert!(fix.contains("keygate keys enable"), "{fix}");
    for output in [&valid, &disabled] {
        assert!(!output.stdout.contains(&key) && !output.stderr.contains(&key), "the doctor printed the key");
    }

    // No server answering: the key's usability is unknown, which is not "usable".
    environment.stop_server();
    assert_only_problem(&ask(&key), "server_unreachable");
}
