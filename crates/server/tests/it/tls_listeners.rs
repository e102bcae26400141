//! HTTPS listeners: a listener with a certificate answers over TLS to a client that trusts
//! the test CA, refuses plain HTTP without answering it, takes a new certificate when its
//! files are read again (what SIGHUP does) while the connections already open go on, drops
//! a client that stalls its handshake (at its deadline, or at the connection cap for a new
//! client), and makes the console's cookies `Secure`.
//!
//! The test CA and its certificates are made here, at test time, with the `openssl`
//! command, in the test's temporary directory: no private key is in the repository.
//! Deadlines are set to a second; each wait here is a guard against hanging, never a
//! timing assertion.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use keygate_server::settings::{ListenerSettings, Settings};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::console::{set_cookies, sign_in_at};
use crate::helpers::{spawn_app_with, TestApp};

/// Long enough for any of these answers on a loaded machine; none of them should take it.
const GUARD: Duration = Duration::from_secs(20);

const HEALTH_CHECK: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// A certificate authority made for one test, and the certificates it issues for
/// `localhost` and 127.0.0.1.
struct TestCa {
    directory: tempfile::TempDir,
}

/// Runs `openssl` with `arguments` (split at spaces) in `directory`.
fn openssl(directory: &Path, arguments: &str) {
    let arguments: Vec<&str> = arguments.split_whitespace().collect();
    let output = Command::new("openssl").args(&arguments).current_dir(directory).output().expect("the openssl command runs");
    assert!(output.status.success(), "openssl {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// What a server certificate of the test CA says: for localhost and 127.0.0.1, for a server.
const SERVER_EXTENSIONS: &str = "subjectAltName=DNS:localhost,IP:127.0.0.1
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
";

impl TestCa {
    fn new() -> TestCa {
        let directory = tempfile::tempdir().expect("temporary directory");
        openssl(
            directory.path(),
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=keygate-test-CA \
             -keyout ca.key -out ca.pem -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
        );
        TestCa { directory }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }

    /// The CA's certificate (what clients trust), PEM.
    fn certificate_pem(&self) -> Vec<u8> {
        std::fs::read(self.path("ca.pem")).unwrap()
    }

    /// Issues a server certificate for `localhost` and 127.0.0.1 into `<name>.pem` and
    /// `<name>.key`.
    fn issue(&self, name: &str) -> (PathBuf, PathBuf) {
        let directory = self.directory.path();
        std::fs::write(directory.join(format!("{name}.ext")), SERVER_EXTENSIONS).unwrap();
        openssl(
            directory,
            &format!("req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout {name}.key -out {name}.csr"),
        );
        openssl(
            directory,
            &format!("x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile {name}.ext -out {name}.pem"),
        );
        (self.path(&format!("{name}.pem")), self.path(&format!("{name}.key")))
    }

    /// A client that trusts this CA only and shows redirects instead of following them.
    fn https_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&self.certificate_pem()).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// A TLS connector that trusts this CA only (for looking at the certificate served).
    fn connector(&self) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(&self.certificate_pem()).unwrap()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// The DER of the first certificate of a PEM file.
fn certificate_der(path: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(path).unwrap().as_ref().to_vec()
}

/// A server whose `ap-southeast-1` listener speaks HTTPS with `certificate` and whose
/// `us-east-1` listener plain HTTP.
async fn spawn_https_app(certificate: &(PathBuf, PathBuf), adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let (certificate_file, key_file) = certificate.clone();
    spawn_app_with(move |settings| {
        settings.listeners[0] = ListenerSettings {
            tls_certificate_file: Some(certificate_file),
            tls_key_file: Some(key_file),
            ..ListenerSettings::plain("127.0.0.1:0".parse().unwrap(), "ap-southeast-1")
        };
        adjust(settings);
    })
    .await
}

/// A TLS connection to `address` as `localhost`; the certificate it was served.
async fn connect_tls(ca: &TestCa, address: SocketAddr) -> (tokio_rustls::client::TlsStream<TcpStream>, Vec<u8>) {
    let tcp = TcpStream::connect(address).await.unwrap();
    let stream = tokio::time::timeout(GUARD, ca.connector().connect(ServerName::try_from("localhost").unwrap(), tcp))
        .await
        .expect("the handshake ends")
        .expect("the handshake succeeds");
    let served = stream.get_ref().1.peer_certificates().expect("a certificate")[0].as_ref().to_vec();
    (stream, served)
}

/// Sends a health check on `stream` and reads the answer's head.
async fn health_check<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(stream: &mut S) -> String {
    stream.write_all(HEALTH_CHECK).await.unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    while !String::from_utf8_lossy(&received).contains("\r\n\r\n") {
        let read = tokio::time::timeout(GUARD, stream.read(&mut buffer)).await.expect("an answer").unwrap();
        assert!(read > 0, "closed before answering");
        received.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&received).to_string()
}

/// Reads until the server closes the connection; what it sent before.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    tokio::time::timeout(GUARD, stream.read_to_end(&mut received)).await.expect("the server closes the connection").ok();
    received
}

#[tokio::test]
async fn an_https_listener_answers_over_tls_and_refuses_plain_http_without_answering() {
    let ca = TestCa::new();
    let app = spawn_https_app(&ca.issue("server"), |_| {}).await;
    let https = ca.https_client();
    for host in ["localhost", "127.0.0.1"] {
        let answer = https.get(format!("https://{host}:{}/healthz", app.address.port())).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{host}");
        assert_eq!(answer.version(), reqwest::Version::HTTP_11);
    }
    // The other listener stays plain HTTP.
    let answer = app.http.get(format!("http://{}/healthz", app.us_address)).send().await.unwrap();
    assert_eq!(answer.status(), 200);

    // Plain HTTP to the HTTPS port: no HTTP answer, the connection closed.
    let mut plain = TcpStream::connect(app.address).await.unwrap();
    plain.write_all(HEALTH_CHECK).await.unwrap();
    let received = read_until_closed(&mut plain).await;
    assert!(!received.starts_with(b"HTTP/"), "plain HTTP was answered: {}", String::from_utf8_lossy(&received));
    assert!(app.http.get(format!("http://{}/healthz", app.address)).send().await.is_err(), "a plain HTTP client gets an error");
    // A client that does not trust the certificate is refused by its own TLS.
    assert!(reqwest::Client::new().get(format!("https://localhost:{}/healthz", app.address.port())).send().await.is_err());

    // The listener serves on.
    let answer = https.get(format!("https://localhost:{}/healthz", app.address.port())).send().await.unwrap();
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_to_new_connections_and_keeps_the_open_ones() {
    let ca = TestCa::new();
    let first = ca.issue("first");
    let app = spawn_https_app(&first, |_| {}).await;
    let (mut open, served) = connect_tls(&ca, app.address).await;
    assert_eq!(served, certificate_der(&first.0));
    assert!(health_check(&mut open).await.starts_with("HTTP/1.1 200"));

    // New files in place of the old, then what SIGHUP does.
    let second = ca.issue("second");
    std::fs::copy(&second.0, &first.0).unwrap();
    std::fs::copy(&second.1, &first.1).unwrap();
    app.tls_certificates.reload().expect("the new files load");
    let (mut fresh, served) = connect_tls(&ca, app.address).await;
    assert_eq!(served, certificate_der(&second.0), "a new connection gets the new certificate");
    assert!(health_check(&mut fresh).await.starts_with("HTTP/1.1 200"));
    // The connection made before the reload is still served.
    assert!(health_check(&mut open).await.starts_with("HTTP/1.1 200"));

    // Files that do not load (a key of another certificate) leave the certificate in force.
    let third = ca.issue("third");
    std::fs::copy(&third.1, &first.1).unwrap();
    let error = app.tls_certificates.reload().expect_err("a key that does not go with the certificate");
    assert!(format!("{error:#}").contains("does not serve the certificate"), "{error:#}");
    std::fs::write(&first.0, "not a certificate\n").unwrap();
    let error = app.tls_certificates.reload().expect_err("no certificate in the file");
    assert!(format!("{error:#}").contains("holds no certificate"), "{error:#}");
    let (_, served) = connect_tls(&ca, app.address).await;
    assert_eq!(served, certificate_der(&second.0), "the certificate in force stays");
}

#[tokio::test]
async fn a_client_that_stalls_its_handshake_is_dropped_after_the_handshake_deadline() {
    let ca = TestCa::new();
    let app = spawn_https_app(&ca.issue("server"), |settings| {
        settings.tls_handshake_timeout_seconds = 1;
        // Well past the guard: only the handshake's deadline can close these connections.
        settings.header_read_timeout_seconds = 600;
        settings.idle_timeout_seconds = 600;
    })
    .await;
    let mut silent = TcpStream::connect(app.address).await.unwrap();
    let mut stalled = TcpStream::connect(app.address).await.unwrap();
    // The head of a handshake record that announces 512 bytes, and nothing more.
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await, b"", "closed without a word");
    assert_eq!(read_until_closed(&mut stalled).await, b"");
    // A client that finishes its handshake is served, and then has the header deadline.
    let (mut served, _) = connect_tls(&ca, app.address).await;
    assert!(health_check(&mut served).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn at_the_connection_cap_a_client_stalling_its_handshake_is_shed_for_a_new_one() {
    let ca = TestCa::new();
    let app = spawn_https_app(&ca.issue("server"), |settings| {
        settings.max_connections = Some(1);
        settings.tls_handshake_timeout_seconds = 600;
        settings.header_read_timeout_seconds = 600;
    })
    .await;
    let mut stalled = TcpStream::connect(app.address).await.unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The only place is held by a handshake that goes nowhere: a new client takes it.
    let (mut served, _) = connect_tls(&ca, app.address).await;
    assert!(health_check(&mut served).await.starts_with("HTTP/1.1 200"));
    assert_eq!(read_until_closed(&mut stalled).await, b"", "the stalled handshake was shed");
}

#[tokio::test]
async fn the_console_cookies_are_secure_over_https_and_not_over_plain_http() {
    let ca = TestCa::new();
    let app = spawn_https_app(&ca.issue("server"), |_| {}).await;
    let (session, headers) = sign_in_at(ca.https_client(), format!("https://localhost:{}", app.address.port()), None).await;
    let session_cookie = set_cookies(&headers).into_iter().find(|line| line.starts_with("keygate_session=")).unwrap();
    assert_eq!(
        session_cookie,
        format!("keygate_session={}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={}; Secure", session.cookie, 12 * 3600)
    );
    assert!(set_cookies(&headers).contains(&"keygate_login=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0; Secure".to_string()));
    let login_page = ca.https_client().get(format!("https://localhost:{}/console/login", app.address.port())).send().await.unwrap();
    assert!(set_cookies(login_page.headers())[0].ends_with("; Secure"));
    // The empty key list's "how to call" panel names the base URLs the browser reached:
    // https, this listener.
    let keys_page = ca
        .https_client()
        .get(format!("https://localhost:{}/console/keys", app.address.port()))
        .header("cookie", format!("keygate_session={}", session.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(keys_page.status(), 200);
    let keys_page = keys_page.text().await.unwrap();
    let openai_base = format!("https://localhost:{}/compatible-mode/v1", app.address.port());
    assert!(keys_page.contains(&openai_base), "no {openai_base} in the key list");

    // The same server's plain listener on localhost: no `Secure`, which a browser would
    // refuse to send back over http.
    let (_, headers) = sign_in_at(
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        format!("http://{}", app.us_address),
        None,
    )
    .await;
    let session_cookie = set_cookies(&headers).into_iter().find(|line| line.starts_with("keygate_session=")).unwrap();
    assert!(!session_cookie.contains("Secure"), "{session_cookie}");
}
