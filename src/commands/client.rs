//! What every client command shares: where the server is, the saved login session
//! (`session.json`, mode 0600), HTTP calls to the Model Studio and keygate APIs with the
//! session token (answers read into their `keygate_wire` types, or as text for a CSV
//! answer), the error envelope turned into `<code>: <message> (request id ...)`, and
//! the output helpers (aligned tables, JSON, confirmations, secrets read from stdin).

use std::fmt;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use keygate_wire::envelope::{Empty, ErrorEnvelope, Success};
use reqwest::{Method, RequestBuilder, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where the CLI talks to when neither `--server`, `KEYGATE_SERVER` nor a session says.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Options of every client command.
#[derive(Debug, Clone, Args)]
pub struct ClientOptions {
    /// The keygate server [default: the saved session's server, else http://127.0.0.1:8080].
    #[arg(long, env = "KEYGATE_SERVER", value_name = "URL", global = true)]
    pub server: Option<String>,
    /// Print the server's JSON instead of a table (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
}

/// A failure answered by the server in the management envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub http_status: u16,
    pub code: String,
    pub message: String,
    pub request_id: String,
    /// The whole error envelope, when the server answered one (some errors carry more
    /// fields, e.g. an import's `badLines`).
    pub envelope: Option<ErrorEnvelope>,
}

/// A successful answer: the operation's fields read into their `keygate_wire` type, the
/// request id, and the JSON as the server sent it (what `--json` prints).
#[derive(Debug)]
pub struct Answer<Body> {
    pub body: Body,
    pub request_id: String,
    pub json: Value,
}

/// A request body in the form its API takes.
pub enum RequestBody<'a> {
    None,
    /// Model Studio: form fields.
    Form(&'a [(String, String)]),
    /// keygate's API: a JSON body.
    Json(Value),
}

impl RequestBody<'_> {
    /// `request` (a `keygate_wire` request type) as a JSON body.
    pub fn json<Request: Serialize>(request: &Request) -> anyhow::Result<RequestBody<'static>> {
        Ok(RequestBody::Json(serde_json::to_value(request).context("encoding the request")?))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.code, self.message)?;
        if !self.request_id.is_empty() {
            write!(formatter, " (request id {})", self.request_id)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

// ---------------------------------------------------------------------------------------
// The session file
// ---------------------------------------------------------------------------------------

/// A login: the server it belongs to and the token that proves it.
pub struct Session {
    pub server: String,
    pub token: SecretString,
    pub account: String,
    pub user: Option<String>,
    pub role: Option<String>,
    /// Epoch milliseconds.
    pub expires_at: Option<i64>,
}

impl fmt::Debug for Session {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Session")
            .field("server", &self.server)
            .field("account", &self.account)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// `alice@root`, or `root` for the account itself.
    pub fn principal(&self) -> String {
        match &self.user {
            Some(user) => format!("{user}@{}", self.account),
            None => self.account.clone(),
        }
    }
}

/// The file's shape (the token in the clear: the file is readable by its owner only).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionFile {
    server: String,
    token: String,
    account: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    expires_at: Option<i64>,
}

/// `$KEYGATE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/keygate`, else `~/.config/keygate`.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty()).map(PathBuf::from);
    if let Some(directory) = non_empty("KEYGATE_CONFIG_DIR") {
        return Ok(directory);
    }
    if let Some(directory) = non_empty("XDG_CONFIG_HOME") {
        return Ok(directory.join("keygate"));
    }
    let home = non_empty("HOME")
        .or_else(|| non_empty("USERPROFILE"))
        .context("cannot find the configuration directory: set KEYGATE_CONFIG_DIR or HOME")?;
    Ok(home.join(".config").join("keygate"))
}

pub fn session_path() -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join("session.json"))
}

/// The saved session, if any.
pub fn load_session() -> anyhow::Result<Option<Session>> {
    let path = session_path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    warn_if_readable_by_others(&path);
    let file: SessionFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a keygate session file; run `keygate login` again", path.display()))?;
    Ok(Some(Session {
        server: file.server,
        token: SecretString::from(file.token),
        account: file.account,
        user: file.user,
        role: file.role,
        expires_at: file.expires_at,
    }))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!("warning: {} is readable by others (mode {mode:o}); run `chmod 600 {}`", path.display(), path.display());
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Writes the session with mode 0600 (through a temporary file and a rename, so a reader
/// never sees half a file and the token never sits in a file with wider permissions).
pub fn save_session(session: &Session) -> anyhow::Result<PathBuf> {
    let path = session_path()?;
    let directory = path.parent().context("the session path has no directory")?;
    create_private_dir(directory).with_context(|| format!("creating {}", directory.display()))?;
    let file = SessionFile {
        server: session.server.clone(),
        token: session.token.expose_secret().to_string(),
        account: session.account.clone(),
        user: session.user.clone(),
        role: session.role.clone(),
        expires_at: session.expires_at,
    };
    let mut text = serde_json::to_string_pretty(&file)?;
    text.push('\n');
    let temporary = directory.join(format!(".session.json.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let written = write_private_file(&temporary, text.as_bytes()).and_then(|()| std::fs::rename(&temporary, &path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(error).with_context(|| format!("writing {}", path.display()));
    }
    Ok(path)
}

/// Removes the saved session; `false` when there was none.
pub fn remove_session() -> anyhow::Result<bool> {
    let path = session_path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error).with_context(|| format!("removing {}", path.display())),
    }
}

#[cfg(unix)]
fn create_private_dir(directory: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(directory)
}

#[cfg(not(unix))]
fn create_private_dir(directory: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(directory)
}

#[cfg(unix)]
fn write_private_file(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(content)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private_file(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(content)?;
    file.sync_all()
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

/// Parses a server URL (`http://host:port`, optionally with a base path).
pub fn parse_server_url(text: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text.trim()).with_context(|| format!("'{text}' is not a server URL; expected e.g. {DEFAULT_SERVER}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("'{text}' is not a server URL; expected e.g. {DEFAULT_SERVER}");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("the server URL '{text}' must not have a query or fragment");
    }
    Ok(url)
}

/// The server's URL in the form saved in the session (no trailing slash).
pub fn server_text(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

/// A connection to one keygate server, with or without a session token.
pub struct Client {
    http: reqwest::Client,
    server: Url,
    token: Option<SecretString>,
}

impl fmt::Debug for Client {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("Client").field("server", &self.server.as_str()).finish_non_exhaustive()
    }
}

impl ClientOptions {
    /// `--server` or `KEYGATE_SERVER`, unless empty.
    fn requested_server(&self) -> Option<&str> {
        self.server.as_deref().map(str::trim).filter(|server| !server.is_empty())
    }
}

impl Client {
    /// A client without a session (for logging in): `--server`, else the default.
    pub fn anonymous(options: &ClientOptions) -> anyhow::Result<Client> {
        let server = parse_server_url(options.requested_server().unwrap_or(DEFAULT_SERVER))?;
        Client::build(server, None)
    }

    /// A client with the saved session's token. `--server`, when given, must name the
    /// session's server: the token is never sent to another one.
    pub fn from_session(options: &ClientOptions) -> anyhow::Result<(Client, Session)> {
        let path = session_path()?;
        let session =
            load_session()?.with_context(|| format!("not logged in (no session in {}): run `keygate login` first", path.display()))?;
        let session_server = parse_server_url(&session.server)?;
        if let Some(requested) = options.requested_server() {
            let requested = parse_server_url(requested)?;
            if server_text(&requested) != server_text(&session_server) {
                bail!(
                    "the saved session is for {}, not {}: run `keygate login --server {}` (the session token is only sent to the server that issued it)",
                    server_text(&session_server),
                    server_text(&requested),
                    server_text(&requested)
                );
            }
        }
        let client = Client::build(session_server, Some(session.token.clone()))?;
        Ok((client, session))
    }

    fn build(server: Url, token: Option<SecretString>) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("keygate-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            // A redirect would carry the session header to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?;
        Ok(Client { http, server, token })
    }

    pub fn server(&self) -> &Url {
        &self.server
    }

    /// The URL of a path given as segments (each one percent-encoded).
    pub fn url<S: AsRef<str>>(&self, segments: &[S]) -> Url {
        let mut url = self.server.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request<S: AsRef<str>>(&self, method: Method, segments: &[S]) -> RequestBuilder {
        self.request_accepting(method, segments, "application/json")
    }

    fn request_accepting<S: AsRef<str>>(&self, method: Method, segments: &[S], accept: &str) -> RequestBuilder {
        let mut request = self.http.request(method, self.url(segments)).header("accept", accept);
        if let Some(token) = &self.token {
            request = request.header("x-acs-bearer-token", token.expose_secret());
        }
        request
    }

    /// A call to either management API: query parameters and a form or JSON body; the
    /// answer is read into `Body`, a `keygate_wire` response type.
    pub async fn call<Body: DeserializeOwned, S: AsRef<str>>(
        &self,
        method: Method,
        segments: &[S],
        query: &[(String, String)],
        body: RequestBody<'_>,
    ) -> anyhow::Result<Answer<Body>> {
        let mut request = self.request(method.clone(), segments);
        if !query.is_empty() {
            request = request.query(query);
        }
        request = match body {
            RequestBody::None => request,
            RequestBody::Form(form) => request.form(form),
            RequestBody::Json(json) => request.json(&json),
        };
        self.send(method, segments, request).await
    }

    /// `GET` of an answer that is text of `media_type` (CSV), not JSON: the text as sent. A
    /// refusal comes in the error envelope and is read like any other.
    pub async fn get_text<S: AsRef<str>>(&self, segments: &[S], query: &[(String, String)], media_type: &str) -> anyhow::Result<String> {
        let request = self.request_accepting(Method::GET, segments, media_type).query(query);
        let reply = self.exchange(request).await?;
        if reply.status.is_success() && reply.content_type.starts_with(media_type) {
            return String::from_utf8(reply.bytes).context("the server's answer is not UTF-8 text");
        }
        let path = path_text(segments);
        let answer: Answer<Empty> = read_answer(Method::GET, &path, reply)?;
        bail!("GET {path}: the server answered JSON, not {media_type} (request id {}); is it an older keygate?", answer.request_id)
    }

    async fn send<Body: DeserializeOwned, S: AsRef<str>>(
        &self,
        method: Method,
        segments: &[S],
        request: RequestBuilder,
    ) -> anyhow::Result<Answer<Body>> {
        let reply = self.exchange(request).await?;
        read_answer(method, &path_text(segments), reply)
    }

    /// Sends `request` and reads the whole answer.
    async fn exchange(&self, request: RequestBuilder) -> anyhow::Result<Reply> {
        let server = server_text(&self.server);
        let response = request.send().await.map_err(|error| {
            // The innermost cause says why ("Connection refused"); no header is in it.
            let mut innermost: &dyn std::error::Error = &error;
            while let Some(source) = innermost.source() {
                innermost = source;
            }
            let cause = format!(": {innermost}");
            anyhow::anyhow!(
                "cannot reach the keygate server at {server}{cause} (is `keygate serve` running? see --server / KEYGATE_SERVER)"
            )
        })?;
        let status = response.status();
        let header = |name: &str| response.headers().get(name).and_then(|value| value.to_str().ok()).unwrap_or("").to_string();
        let (header_request_id, content_type) = (header("x-acs-request-id"), header("content-type"));
        let bytes = response.bytes().await.with_context(|| format!("reading the answer of {server}"))?.to_vec();
        Ok(Reply { status, header_request_id, content_type, bytes })
    }
}

/// What the server answered to one request.
struct Reply {
    status: reqwest::StatusCode,
    /// `x-acs-request-id`, for an answer without an envelope.
    header_request_id: String,
    content_type: String,
    bytes: Vec<u8>,
}

/// `/a/b` of a path given as segments, for messages.
fn path_text<S: AsRef<str>>(segments: &[S]) -> String {
    segments.iter().map(|segment| format!("/{}", segment.as_ref())).collect()
}

/// A reply to `method path` read as the success envelope around `Body`, or as the refusal it
/// is.
fn read_answer<Body: DeserializeOwned>(method: Method, path: &str, reply: Reply) -> anyhow::Result<Answer<Body>> {
    let Reply { status, header_request_id, bytes, .. } = reply;
    let json: Option<Value> = serde_json::from_slice(&bytes).ok();
    let Some(json) = json.filter(Value::is_object) else {
        if status.is_success() {
            bail!("{method} {path}: the server's answer is not a JSON object (HTTP {})", status.as_u16());
        }
        let message = if status.as_u16() == 404 || status.as_u16() == 405 {
            format!("the server has no endpoint {method} {path}; is it an older keygate?")
        } else {
            format!("{method} {path} failed with HTTP {}", status.as_u16())
        };
        return Err(ApiError {
            http_status: status.as_u16(),
            code: format!("HTTP{}", status.as_u16()),
            message,
            request_id: header_request_id,
            envelope: None,
        }
        .into());
    };
    // A refusal may come with HTTP 200 and `success: false`.
    let envelope: Option<Success<Empty>> = serde_json::from_value(json.clone()).ok();
    if status.is_success() && envelope.is_some_and(|answer| answer.envelope.success) {
        let answer: Success<Body> = serde_json::from_value(json.clone())
            .with_context(|| format!("{method} {path}: the server's answer is not what this keygate expects"))?;
        return Ok(Answer { body: answer.body, request_id: answer.envelope.request_id, json });
    }
    let refusal: ErrorEnvelope = serde_json::from_value(json).unwrap_or_default();
    let or_else = |text: &str, otherwise: String| if text.is_empty() { otherwise } else { text.to_string() };
    Err(ApiError {
        http_status: status.as_u16(),
        code: or_else(&refusal.code, format!("HTTP{}", status.as_u16())),
        message: or_else(&refusal.message, format!("{method} {path} failed")),
        request_id: or_else(&refusal.request_id, header_request_id),
        envelope: Some(refusal),
    }
    .into())
}

// ---------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------

/// Prints a JSON value, pretty, on stdout.
pub fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A table whose columns are as wide as their widest cell, two spaces apart.
#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table { headers: headers.to_vec(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, no trailing spaces.
    pub fn render(&self) -> String {
        let width = |text: &str| text.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|header| width(header)).collect();
        for row in &self.rows {
            for (column, cell) in row.iter().enumerate() {
                if column < widths.len() {
                    widths[column] = widths[column].max(width(cell));
                }
            }
        }
        let mut output = String::new();
        let header_cells: Vec<String> = self.headers.iter().map(|header| header.to_string()).collect();
        for row in std::iter::once(&header_cells).chain(self.rows.iter()) {
            let mut line = String::new();
            for (column, cell) in row.iter().enumerate() {
                if column > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let padding = widths.get(column).copied().unwrap_or(0).saturating_sub(width(cell));
                line.push_str(&" ".repeat(padding));
            }
            output.push_str(line.trim_end());
            output.push('\n');
        }
        output
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }

    /// The table, or `empty` (e.g. `no RAM users`) when it has no rows.
    pub fn print_or(&self, empty: &str) {
        if self.rows.is_empty() {
            println!("{empty}");
        } else {
            self.print();
        }
    }
}

/// Aligned `label: value` lines.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0) + 1;
    for (label, value) in fields {
        println!("{:width$}  {value}", format!("{label}:"));
    }
}

/// Text as a table or field shows it: empty as `-`.
pub fn text(value: &str) -> String {
    if value.is_empty() {
        "-".into()
    } else {
        value.to_string()
    }
}

/// An optional value as display text: missing (or empty) as `-`.
pub fn optional<Shown: fmt::Display>(value: Option<Shown>) -> String {
    value.map_or_else(|| "-".into(), |value| text(&value.to_string()))
}

/// A list as `a,b`, an empty one as `-`.
pub fn list(values: &[String]) -> String {
    text(&values.join(","))
}

/// Epoch milliseconds as `2026-11-27T10:16:45Z`, or `-`.
pub fn time(milliseconds: Option<i64>) -> String {
    optional(milliseconds.map(|milliseconds| keygate_core::civil_time::format_utc_timestamp(milliseconds.div_euclid(1000))))
}

/// At most `limit` characters, with `…` when cut.
pub fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut shortened: String = text.chars().take(limit.saturating_sub(1)).collect();
    shortened.push('…');
    shortened
}

// ---------------------------------------------------------------------------------------
// Terminal input
// ---------------------------------------------------------------------------------------

/// Asks before something that cannot be undone. `--yes` skips the question; without it,
/// a non-interactive run is refused rather than guessed.
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("refusing to {question} without confirmation: stdin is not a terminal; add --yes to confirm");
    }
    eprint!("{}? This cannot be undone. [y/N] ", capitalise(question));
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        bail!("cancelled; nothing was changed")
    }
}

fn capitalise(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// Reads a secret (a password) as one line of stdin. On a terminal it prompts on stderr
/// and turns echo off while typing.
pub fn read_secret_line(prompt: &str) -> anyhow::Result<SecretString> {
    read_named_secret_line(prompt, "password")
}

/// [`read_secret_line`] for any secret; `what` names it in errors ("password", "API key").
pub fn read_named_secret_line(prompt: &str, what: &str) -> anyhow::Result<SecretString> {
    let interactive = std::io::stdin().is_terminal();
    let mut line = String::new();
    if interactive {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
        let echo = EchoOff::new();
        let read = std::io::stdin().lock().read_line(&mut line);
        drop(echo);
        eprintln!();
        read.with_context(|| format!("reading the {what} from the terminal"))?;
    } else {
        std::io::stdin().lock().read_line(&mut line).with_context(|| format!("reading the {what} from stdin"))?;
    }
    let secret = line.strip_suffix('\n').map(|rest| rest.strip_suffix('\r').unwrap_or(rest)).unwrap_or(&line);
    if secret.is_empty() {
        bail!("no {what} given (an empty line on stdin)");
    }
    Ok(SecretString::from(secret.to_string()))
}

/// Terminal echo switched off with `stty` until dropped (best effort, Unix only).
struct EchoOff {
    active: bool,
}

impl EchoOff {
    fn new() -> EchoOff {
        EchoOff { active: cfg!(unix) && stty("-echo") }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if self.active {
            stty("echo");
        }
    }
}

fn stty(setting: &str) -> bool {
    std::process::Command::new("stty")
        .arg(setting)
        .stdin(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_trims_line_ends() {
        let mut table = Table::new(&["ID", "NAME", "NOTE"]);
        table.row(vec!["7".into(), "alice".into(), "".into()]);
        table.row(vec!["12".into(), "bob".into(), "x".into()]);
        assert_eq!(table.render(), "ID  NAME   NOTE\n7   alice\n12  bob    x\n");
    }

    #[test]
    fn api_error_reads_like_the_envelope() {
        let error = ApiError {
            http_status: 404,
            code: "ApiKey.NotFound".into(),
            message: "The API key does not exist.".into(),
            request_id: "ABC".into(),
            envelope: None,
        };
        assert_eq!(error.to_string(), "ApiKey.NotFound: The API key does not exist. (request id ABC)");
    }

    #[test]
    fn server_urls_are_checked_and_segments_encoded() {
        assert!(parse_server_url("127.0.0.1:8080").is_err());
        assert!(parse_server_url("ftp://example.com").is_err());
        let client = Client::build(parse_server_url("http://127.0.0.1:8080/base/").unwrap(), None).unwrap();
        assert_eq!(client.url(&["keygate", "v1", "users", "a b/c"]).as_str(), "http://127.0.0.1:8080/base/keygate/v1/users/a%20b%2Fc");
        assert_eq!(server_text(&parse_server_url("http://127.0.0.1:8080/").unwrap()), "http://127.0.0.1:8080");
    }

    #[test]
    fn display_of_answered_values() {
        assert_eq!([text("x"), text(""), optional(Some(3)), optional(None::<i64>), optional(Some(""))], ["x", "-", "3", "-", "-"]);
        assert_eq!([list(&[]), list(&["p".into(), "q".into()])], ["-", "p,q"]);
        assert_eq!([time(None), time(Some(0))], ["-", "1970-01-01T00:00:00Z"]);
        assert_eq!(shorten("abcdef", 4), "abc…");
    }
}
