//! The README's install and first-start steps, run as a new user would in a clean
//! directory, read from the README itself so that the two cannot drift apart; and the
//! systemd unit in `deploy/`, checked by `systemd-analyze`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{free_port, keygate_binary};

const README: &str = include_str!("../../README.md");
const SYSTEMD_UNIT: &str = include_str!("../../deploy/keygate.service");

/// The command lines of the first `sh` block after the heading `heading`.
fn readme_commands(heading: &str) -> Vec<String> {
    let section = README.split(&format!("\n{heading}\n")).nth(1).unwrap_or_else(|| panic!("README.md has no `{heading}`"));
    let block = section.split("```sh\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a sh block");
    block.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')).map(str::to_string).collect()
}

/// A command of the README run by `sh` in `directory`, with `keygate` from `bin`.
fn shell(line: &str, directory: &Path, bin: &Path, home: &Path) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(line)
        .current_dir(directory)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("HOME", home);
    command
}

struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The status line and headers of `GET path`.
fn http_head_of(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.split("\r\n\r\n").next().unwrap_or_default().to_string()
}

#[test]
fn the_readmes_install_and_first_start_work_in_a_clean_directory() {
    let root = tempfile::tempdir().expect("temporary directory");
    let (home, work) = (root.path().join("home"), root.path().join("work"));
    std::fs::create_dir_all(&work).expect("work directory");
    let bin = home.join(".cargo/bin");
    std::fs::create_dir_all(&bin).expect("cargo's bin directory");

    // Install: what `cargo install --path . --locked` leaves is the release build of this
    // binary in ~/.cargo/bin; the test build stands in for it.
    assert_eq!(readme_commands("## Install"), ["cargo install --path . --locked"]);
    assert!(README.contains("`~/.cargo/bin/keygate`"), "the README says where the binary goes");
    std::fs::copy(keygate_binary(), bin.join("keygate")).expect("install the binary");

    // First start, as the README has it, on a free port (8080 may be taken on this machine).
    let first_start = readme_commands("## Run it");
    assert_eq!(first_start, ["keygate serve"]);
    let port = free_port();
    let serve = format!("exec {} --listen 127.0.0.1:{port}=ap-southeast-1", first_start[0]);
    let mut child = shell(&serve, &work, &bin, &home).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("keygate serve");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let server = Stopped(child);
    let mut printed = Vec::new();
    for line in stdout.lines() {
        let line = line.expect("a line of stdout");
        let done = line.starts_with("keygate: console on");
        printed.push(line);
        if done {
            break;
        }
    }
    let printed = printed.join("\n");
    let root_password = printed
        .lines()
        .find_map(|line| line.strip_prefix("keygate: created account 'root' with password: "))
        .unwrap_or_else(|| panic!("the first start prints root's password:\n{printed}"))
        .to_string();
    assert!(printed.contains(&format!("keygate: console on http://127.0.0.1:{port}/console")), "{printed}");
    assert!(work.join("keygate-data/keygate.db").is_file() && work.join("keygate-data/master.key").is_file());

    // The printed address's root leads to the console.
    let head = http_head_of(port, "/");
    assert!(head.starts_with("HTTP/1.1 303"), "{head}");
    assert!(head.to_ascii_lowercase().contains("\r\nlocation: /console"), "{head}");

    // The first user example, in the same directory: alice is made and can log in.
    let alice_password = "alice-password-from-the-readme";
    std::fs::write(work.join("alice-password.txt"), format!("{alice_password}\n")).expect("alice's password file");
    let use_it = readme_commands("## Use it");
    assert!(use_it[0].starts_with("keygate admin create-user ") && use_it[2].starts_with("keygate login --user alice"), "{use_it:?}");
    for line in &use_it[..3] {
        let output = shell(line, &work, &bin, &home)
            .env("KEYGATE_SERVER", format!("http://127.0.0.1:{port}"))
            .env("KEYGATE_CONFIG_DIR", root.path().join("cli"))
            .output()
            .expect("run a README command");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "`{line}` failed:\n{}\n{stderr}", String::from_utf8_lossy(&output.stdout));
        assert!(!stderr.contains("no password"), "`{line}`: {stderr}");
    }
    // The root password printed at the first start works too.
    let root_login = shell("keygate login", &work, &bin, &home)
        .env("KEYGATE_SERVER", format!("http://127.0.0.1:{port}"))
        .env("KEYGATE_CONFIG_DIR", root.path().join("cli-root"))
        .env("KEYGATE_PASSWORD", &root_password)
        .output()
        .expect("keygate login");
    assert!(root_login.status.success(), "{}", String::from_utf8_lossy(&root_login.stderr));
    drop(server);
}

/// `systemd-analyze`, which CI has (`.ci/run` sets `KEYGATE_REQUIRE_SYSTEMD_ANALYZE`); a
/// machine without it skips the unit's check and says so.
fn systemd_analyze() -> Option<&'static str> {
    let path = "/usr/bin/systemd-analyze";
    if Path::new(path).exists() {
        return Some(path);
    }
    assert!(std::env::var_os("KEYGATE_REQUIRE_SYSTEMD_ANALYZE").is_none(), "{path} is missing");
    eprintln!("SKIPPED: {path} is not installed");
    None
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let Some(systemd_analyze) = systemd_analyze() else { return };
    assert!(SYSTEMD_UNIT.contains("ExecStart=/usr/local/bin/keygate serve "), "the unit runs the binary where the README installs it");
    // verify wants the binary to exist: the same unit, with this build in its place.
    let directory = tempfile::tempdir().expect("temporary directory");
    let unit = directory.path().join("keygate.service");
    std::fs::write(&unit, SYSTEMD_UNIT.replace("/usr/local/bin/keygate", keygate_binary())).expect("write the unit");
    let verify = Command::new(systemd_analyze).arg("verify").arg(&unit).output().expect("systemd-analyze verify");
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && complaints.trim().is_empty(), "systemd-analyze verify: {complaints}");
    // Its exposure, out of 10, is at most 2 (the threshold counts tenths).
    let security = Command::new(systemd_analyze)
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze security");
    let report = String::from_utf8_lossy(&security.stdout);
    assert!(security.status.success(), "the unit is not hardened enough:\n{report}{}", String::from_utf8_lossy(&security.stderr));
}
