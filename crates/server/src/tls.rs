//! HTTPS on a listener: its certificate chain and private key read from PEM files and
//! served with rustls (the ring provider, TLS 1.2 and 1.3, HTTP/1.1 by ALPN), and read again
//! without dropping the listener when the process gets SIGHUP ([`TlsCertificates::reload`]).
//!
//! Every handshake asks the listener's [`ReloadableCertificate`] for the certificate in
//! force, so a reload reaches the next handshake; connections already open keep the
//! certificate they were made with. A reload that fails (a file missing or unreadable, no
//! certificate in it, a key that does not go with the certificate) keeps the certificate in
//! force and says why in the log; so does a start, which refuses to run instead.
//!
//! The handshake itself is bounded by `tls_handshake_timeout_seconds`, and the connection
//! counts against the connection cap and may be shed meanwhile like any connection waiting
//! for its client (`app::serve_listener`, `crate::connections`).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};

use anyhow::Context as _;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Set on every request that reached keygate over TLS, so that what depends on it (the
/// console's `Secure` cookies) need not guess from headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedOverTls;

/// A listener's certificate and key files and the certificate read from them last.
#[derive(Debug)]
pub struct ReloadableCertificate {
    certificate_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    in_force: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCertificate {
    fn load(certificate_file: &Path, key_file: &Path, provider: Arc<CryptoProvider>) -> anyhow::Result<ReloadableCertificate> {
        let certified = read_certified_key(certificate_file, key_file, &provider)?;
        Ok(ReloadableCertificate {
            certificate_file: certificate_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            provider,
            in_force: RwLock::new(Arc::new(certified)),
        })
    }

    /// Reads the files again and puts what they hold in force; on an error the certificate
    /// in force stays.
    fn reload(&self) -> anyhow::Result<()> {
        let certified = read_certified_key(&self.certificate_file, &self.key_file, &self.provider)?;
        *self.in_force.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
        Ok(())
    }
}

impl ResolvesServerCert for ReloadableCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.in_force.read().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

/// The certificate chain of `certificate_file` with the private key of `key_file`, checked
/// to go together. Errors name the files, never what is in them.
fn read_certified_key(certificate_file: &Path, key_file: &Path, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(certificate_file)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the TLS certificates in {}", certificate_file.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{} holds no certificate (a PEM block `BEGIN CERTIFICATE`)", certificate_file.display());
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .with_context(|| format!("reading the TLS private key in {} (PEM: PKCS#8, PKCS#1 or SEC1)", key_file.display()))?;
    CertifiedKey::from_der(chain, key, provider).with_context(|| {
        format!("the private key in {} does not serve the certificate in {}", key_file.display(), certificate_file.display())
    })
}

/// What a TLS listener needs: the acceptor its connections' handshakes go through, and its
/// reloadable certificate.
#[derive(Clone)]
pub struct ListenerTls {
    acceptor: tokio_rustls::TlsAcceptor,
    certificate: Arc<ReloadableCertificate>,
}

impl std::fmt::Debug for ListenerTls {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ListenerTls").field("certificate_file", &self.certificate.certificate_file).finish_non_exhaustive()
    }
}

impl ListenerTls {
    /// Reads the files (an error names the one at fault) and makes the listener's TLS
    /// configuration.
    pub fn load(certificate_file: &Path, key_file: &Path) -> anyhow::Result<ListenerTls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certificate = Arc::new(ReloadableCertificate::load(certificate_file, key_file, provider.clone())?);
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("the TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(certificate.clone());
        // keygate's listeners speak HTTP/1.1 only (`app::serve_listener`).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ListenerTls { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), certificate })
    }

    /// The acceptor a connection's handshake goes through.
    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }
}

/// Every TLS listener's certificate, for a reload of them all (on SIGHUP).
#[derive(Debug, Clone, Default)]
pub struct TlsCertificates {
    listeners: Vec<(SocketAddr, ListenerTls)>,
}

impl TlsCertificates {
    pub fn new(listeners: Vec<(SocketAddr, ListenerTls)>) -> TlsCertificates {
        TlsCertificates { listeners }
    }

    /// No listener speaks TLS.
    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty()
    }

    /// Reads every TLS listener's files again. Each outcome is logged; a listener whose
    /// files fail keeps its certificate, and the error names the first of them.
    pub fn reload(&self) -> anyhow::Result<()> {
        let mut first_failure = None;
        for (address, tls) in &self.listeners {
            let certificate_file = tls.certificate.certificate_file.display().to_string();
            match tls.certificate.reload() {
                Ok(()) => tracing::info!(%address, certificate_file, "TLS certificate reloaded"),
                Err(error) => {
                    tracing::warn!(%address, certificate_file, error = format!("{error:#}"), "TLS certificate not reloaded; the one in force stays");
                    first_failure.get_or_insert(error.context(format!("listener {address}")));
                }
            }
        }
        first_failure.map_or(Ok(()), Err)
    }

    /// Reloads every certificate on each SIGHUP until `stop`.
    #[cfg(unix)]
    pub async fn reload_on_hangup(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP; TLS certificates are read only at start");
                return;
            }
        };
        loop {
            tokio::select! {
                received = hangups.recv() => {
                    if received.is_none() {
                        return;
                    }
                    tracing::info!("SIGHUP: reading the TLS certificates again");
                    // Each failure has been logged; the certificates in force stay.
                    let _ = self.reload();
                }
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }
}

/// A TCP connection, plain or with TLS over it once its handshake is done: a listener's
/// client (`S` the server side's TLS stream) or an upstream connection of the forwarding
/// client (`S` the client side's), read and written alike either way.
#[derive(Debug)]
pub enum PlainOrTls<S> {
    Plain(TcpStream),
    Tls(Box<S>),
}

/// A client's connection to a listener.
pub type ClientStream = PlainOrTls<tokio_rustls::server::TlsStream<TcpStream>>;

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PlainOrTls<S> {
    fn poll_read(self: Pin<&mut Self>, context: &mut Context<'_>, buffer: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PlainOrTls::Plain(stream) => Pin::new(stream).poll_read(context, buffer),
            PlainOrTls::Tls(stream) => Pin::new(stream.as_mut()).poll_read(context, buffer),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PlainOrTls<S> {
    fn poll_write(self: Pin<&mut Self>, context: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PlainOrTls::Plain(stream) => Pin::new(stream).poll_write(context, bytes),
            PlainOrTls::Tls(stream) => Pin::new(stream.as_mut()).poll_write(context, bytes),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PlainOrTls::Plain(stream) => Pin::new(stream).poll_flush(context),
            PlainOrTls::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PlainOrTls::Plain(stream) => Pin::new(stream).poll_shutdown(context),
            PlainOrTls::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(context),
        }
    }

    fn poll_write_vectored(self: Pin<&mut Self>, context: &mut Context<'_>, buffers: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PlainOrTls::Plain(stream) => Pin::new(stream).poll_write_vectored(context, buffers),
            PlainOrTls::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(context, buffers),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            PlainOrTls::Plain(stream) => stream.is_write_vectored(),
            PlainOrTls::Tls(stream) => stream.is_write_vectored(),
        }
    }
}
