//! The test bench: each [`TestEnv`] has its own data directory, CLI configuration
//! directory, log directory and free port; [`TestEnv::start_server`] runs the real binary's
//! `serve` (stopped on drop, even when the test panics), [`TestEnv::spawn_server`] more of
//! them on ports of their own; [`TestEnv::run`] runs a client command and returns what it
//! printed.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const ROOT_PASSWORD: &str = "root-password-cli-tests-7Qz";
pub const ALICE_PASSWORD: &str = "alice-password-cli-tests-9Wx";
/// The log of the server that [`TestEnv::start_server`] runs, in the log directory.
const SERVER_LOG_FILE_NAME: &str = "serve.log";

/// The binary under test.
pub fn keygate_binary() -> &'static str {
    env!("CARGO_BIN_EXE_keygate")
}

/// A `keygate serve` child process, stopped when dropped.
pub struct ServerProcess {
    child: Child,
}

impl ServerProcess {
    /// SIGTERM (a graceful shutdown), then a kill if it has not exited within 10 s.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).stdout(Stdio::null()).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// What a command printed, and how it ended.
#[derive(Debug)]
pub struct CliOutput {
    pub description: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// Asserts exit code 0 and returns the output.
    #[track_caller]
    pub fn success(self) -> CliOutput {
        assert_eq!(self.code, Some(0), "`{}` failed\nstdout:\n{}\nstderr:\n{}", self.description, self.stdout, self.stderr);
        self
    }

    /// Asserts exit code 1 and returns the output.
    #[track_caller]
    pub fn failure(self) -> CliOutput {
        assert_eq!(
            self.code,
            Some(1),
            "`{}` should have failed with exit code 1\nstdout:\n{}\nstderr:\n{}",
            self.description,
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("`{}` did not print JSON ({error}):\n{}", self.description, self.stdout))
    }

    /// The value of a `Label:  value` line on stdout.
    #[track_caller]
    pub fn labelled(&self, label: &str) -> String {
        let prefix = format!("{label}:");
        self.stdout
            .lines()
            .find_map(|line| line.strip_prefix(&prefix).map(|value| value.trim().to_string()))
            .unwrap_or_else(|| panic!("`{}` printed no `{label}:` line:\n{}", self.description, self.stdout))
    }
}

/// One isolated installation: data, CLI configuration, logs and a port of its own.
pub struct TestEnv {
    // Declared first so that it is dropped (the server stopped) before the directories go.
    server: Option<ServerProcess>,
    pub data_dir: tempfile::TempDir,
    pub config_dir: tempfile::TempDir,
    pub logs_dir: tempfile::TempDir,
    pub port: u16,
    /// Every stderr a client command printed, for the canary scan.
    pub client_stderr: std::cell::RefCell<Vec<String>>,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            server: None,
            data_dir: tempfile::tempdir().expect("data dir"),
            config_dir: tempfile::tempdir().expect("config dir"),
            logs_dir: tempfile::tempdir().expect("logs dir"),
            port: free_port(),
            client_stderr: std::cell::RefCell::new(Vec::new()),
        }
    }

    pub fn server_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn server_log_path(&self) -> PathBuf {
        self.logs_dir.path().join(SERVER_LOG_FILE_NAME)
    }

    pub fn session_path(&self) -> PathBuf {
        self.config_dir.path().join("session.json")
    }

    /// The binary with a clean environment: no inherited `KEYGATE_*` or `RUST_LOG`, this
    /// environment's directories and server.
    pub fn command(&self) -> Command {
        self.command_running(keygate_binary())
    }

    /// [`TestEnv::command`] for another program (which may run the binary itself).
    fn command_running(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(|name| name.starts_with("KEYGATE_") || name == "RUST_LOG") {
                command.env_remove(&name);
            }
        }
        command
            .env("KEYGATE_CONFIG_DIR", self.config_dir.path())
            .env("KEYGATE_DATA_DIR", self.data_dir.path())
            .env("KEYGATE_SERVER", self.server_url());
        command
    }

    /// Runs `keygate <arguments>` with `stdin` (closed after writing) and extra variables.
    pub fn run_with(&self, arguments: &[&str], stdin: &str, variables: &[(&str, &str)]) -> CliOutput {
        let mut command = self.command();
        command.args(arguments).envs(variables.iter().copied()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn keygate");
        let mut input = child.stdin.take().expect("stdin");
        // A command that does not read stdin may exit first: a broken pipe is fine.
        let _ = input.write_all(stdin.as_bytes());
        drop(input);
        let output = child.wait_with_output().expect("wait for keygate");
        let result = CliOutput {
            description: format!("keygate {}", arguments.join(" ")),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        self.client_stderr.borrow_mut().push(result.stderr.clone());
        result
    }

    pub fn run(&self, arguments: &[&str]) -> CliOutput {
        self.run_with(arguments, "", &[])
    }

    /// Starts `keygate serve` on this environment's port, its stdout and stderr going to
    /// [`TestEnv::server_log_path`], and waits until `/healthz` answers.
    pub fn start_server(&mut self, variables: &[(&str, &str)]) {
        assert!(self.server.is_none(), "the server is already running");
        let listen = format!("127.0.0.1:{}=ap-southeast-1", self.port);
        let data_dir = self.data_dir.path().to_str().expect("utf-8 path").to_string();
        let server = self.spawn_server(self.port, SERVER_LOG_FILE_NAME, &["--data-dir", &data_dir, "--listen", &listen], variables);
        self.server = Some(server);
    }

    /// Starts `keygate serve <arguments>` with `variables` (and `KEYGATE_ROOT_PASSWORD`), its
    /// output going to `log_name` in the log directory, and waits until `/healthz` answers on
    /// `port`, which `arguments` must make it listen on. For several servers in one test.
    pub fn spawn_server(&self, port: u16, log_name: &str, arguments: &[&str], variables: &[(&str, &str)]) -> ServerProcess {
        self.spawn_server_with(self.command(), port, log_name, arguments, variables)
    }

    /// Starts the server on `data_dir` (created by the server when missing) with the file
    /// mode creation mask `umask` (octal, as the shell's `umask` takes it), in place of the
    /// one [`TestEnv::start_server`] would run.
    pub fn start_server_with_umask(&mut self, data_dir: &Path, umask: &str) {
        assert!(self.server.is_none(), "the server is already running");
        let listen = format!("127.0.0.1:{}=ap-southeast-1", self.port);
        let data_dir = data_dir.to_str().expect("utf-8 path");
        // The shell sets the mask and then becomes keygate (`$0`), with keygate's arguments.
        let mut command = self.command_running("sh");
        command.args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\""), keygate_binary()]);
        let server = self.spawn_server_with(command, self.port, SERVER_LOG_FILE_NAME, &["--data-dir", data_dir, "--listen", &listen], &[]);
        self.server = Some(server);
    }

    fn spawn_server_with(
        &self,
        mut command: Command,
        port: u16,
        log_name: &str,
        arguments: &[&str],
        variables: &[(&str, &str)],
    ) -> ServerProcess {
        let log_path = self.logs_dir.path().join(log_name);
        let log = File::create(&log_path).expect("create the server log");
        let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        command
            .arg("serve")
            .args(arguments)
            .env("KEYGATE_ROOT_PASSWORD", ROOT_PASSWORD)
            .envs(variables.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log);
        let child = command.spawn().expect("spawn keygate serve");
        let mut server = ServerProcess { child };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("keygate serve exited with {status}:\n{}", read_log());
            }
            if healthz(port) {
                return server;
            }
            assert!(Instant::now() < deadline, "keygate serve did not answer /healthz on port {port} within 60 s:\n{}", read_log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM, then kill).
    pub fn stop_server(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.server_log_path()).unwrap_or_default()
    }

    /// Logs in as the account root, the password on stdin.
    pub fn login_root(&self) -> CliOutput {
        self.run_with(&["login", "--account", "root"], &format!("{ROOT_PASSWORD}\n"), &[]).success()
    }

    /// Logs in as the RAM user `user` of root, the password on stdin.
    pub fn login_user(&self, user: &str, password: &str) -> CliOutput {
        self.run_with(&["login", "--account", "root", "--user", user], &format!("{password}\n"), &[]).success()
    }

    /// The saved session as JSON.
    pub fn session(&self) -> Value {
        let text = std::fs::read_to_string(self.session_path()).expect("session.json exists");
        serde_json::from_str(&text).expect("session.json is JSON")
    }
}

/// `GET /healthz` answers 200.
fn healthz(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// Sends one raw HTTP request and returns the status code (0 when there was no answer).
pub fn raw_request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return 0 };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    if stream.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

/// The cells of column `header` in a table the CLI printed, one per row (columns are
/// aligned: each cell starts where its header does).
pub fn column(table: &str, header: &str) -> Vec<String> {
    let mut lines = table.lines();
    let headers = lines.next().expect("a header line");
    let start = headers.find(header).unwrap_or_else(|| panic!("no {header} column in:\n{table}"));
    lines
        .map(|line| {
            let rest: String = line.chars().skip(start).collect();
            rest.split("  ").next().unwrap_or("").trim().to_string()
        })
        .collect()
}

/// The masked form of a secure key: `sk-ws-` + the first 4 and last 4 body characters.
pub fn masked_form(plaintext: &str) -> String {
    let body = plaintext.strip_prefix("sk-ws-").expect("a secure key");
    format!("sk-ws-{}****{}", &body[..4], &body[body.len() - 4..])
}

/// Every regular file under `directory`.
pub fn files_under(directory: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[cfg(unix)]
pub fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// The binary as a user with home directory `home` would run it: an empty environment but
/// for `PATH`, `HOME` and `variables`, so that nothing of the test runner's (a
/// `DASHSCOPE_API_KEY`, `SUDO_USER`, `XDG_CONFIG_HOME`, `KEYGATE_SERVER`) leaks in.
pub fn user_command(program: &str, home: &Path, variables: &[(&str, &str)]) -> Command {
    let mut command = Command::new(program);
    command.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("HOME", home).envs(variables.iter().copied());
    command
}

/// Runs `command` with `stdin` and returns what it printed.
pub fn run_command(mut command: Command, description: &str, stdin: &str) -> CliOutput {
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|error| panic!("spawn {description}: {error}"));
    let mut input = child.stdin.take().expect("stdin");
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    let output = child.wait_with_output().expect("wait for the command");
    CliOutput {
        description: description.to_string(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A new secure key that no server knows (its checksum holds).
pub fn unknown_secure_key() -> String {
    keygate_core::keys::expose(&keygate_core::keys::generate_key(keygate_core::keys::KeyFormat::Secure).plaintext).to_string()
}

/// Creates an `All` key through the CLI (logged in) and returns (id, plaintext).
pub fn create_key(environment: &TestEnv) -> (String, String) {
    let created = environment.run(&["keys", "create", "--description", "test key", "--json"]).success().json();
    let plaintext = created.pointer("/apiKey/apiKeyValue").and_then(Value::as_str).expect("plaintext").to_string();
    let key_id = created.pointer("/apiKey/apiKeyId").and_then(Value::as_i64).expect("id").to_string();
    (key_id, plaintext)
}

/// The HTTP status of a demo chat call with `key` at the gateway.
pub fn chat_status(environment: &TestEnv, key: &str) -> u16 {
    let authorization = format!("Bearer {key}");
    raw_request(
        environment.port,
        "POST",
        "/compatible-mode/v1/chat/completions",
        &[("Authorization", &authorization), ("Content-Type", "application/json")],
        r#"{"model":"demo-echo","messages":[{"role":"user","content":"hi"}]}"#,
    )
}
