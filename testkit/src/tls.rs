//! TLS for tests: a private CA made at test time ([`TestCa`], with `rcgen`) and a proxy
//! that terminates TLS on `127.0.0.1` in front of a plain-HTTP server ([`TlsProxy`], with
//! rustls through `tokio-rustls`), such as a [`Collector`](crate::Collector).
//!
//! ```no_run
//! use raceway_testkit::tls::{TestCa, TlsProxy};
//! use raceway_testkit::Collector;
//!
//! let collector = Collector::start();
//! let ca = TestCa::new("raceway test CA");
//! let proxy = TlsProxy::in_front_of(&collector, &ca.issue(&["127.0.0.1"])).unwrap();
//! let ca_file = ca.write_pem().unwrap();
//! // point the SDK at proxy.url() (https://127.0.0.1:PORT) with ca_file.path() as its CA ...
//! assert_eq!(proxy.handshakes_failed(), 0);
//! ```
//!
//! The proxy forwards the decrypted bytes to the server and back, so every request the SDK
//! makes over https reaches the collector as it was sent. It counts the handshakes that
//! succeeded and failed, and keeps the reason of each failure as the server saw it (a client
//! that refuses the certificate aborts the handshake with an alert).

use std::fmt;
use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// A certificate authority made at test time: an ECDSA P-256 key and a self-signed CA
/// certificate, valid from 1975 to 4096 (rcgen's defaults).
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A server certificate chain (leaf, then the CA) and its private key, for [`TlsProxy`].
#[derive(Clone)]
pub struct ServerCert {
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

impl fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCert")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new CA whose certificate's common name is `name`.
    ///
    /// # Panics
    /// If rcgen cannot make a key or sign (it does not, for these parameters).
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names to parse");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("raceway-testkit: rcgen makes a P-256 key");
        let cert = params
            .self_signed(&key)
            .expect("raceway-testkit: rcgen signs the CA certificate");
        TestCa { cert, key }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes [`TestCa::pem`] to a new file in the temporary folder; the file is removed
    /// when the returned guard drops.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write_pem(&self) -> io::Result<PemFile> {
        PemFile::write(self.pem().as_bytes())
    }

    /// A server certificate for `names` (IP addresses such as `127.0.0.1` become IP
    /// subject alternative names, anything else DNS names), signed by this CA.
    ///
    /// # Panics
    /// A name that is neither an IP address nor a valid DNS name.
    pub fn issue(&self, names: &[&str]) -> ServerCert {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone())
            .unwrap_or_else(|e| panic!("raceway-testkit: bad certificate names {names:?}: {e}"));
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, first.as_str());
        }
        params.use_authority_key_identifier_extension = true;
        params.key_usages.push(KeyUsagePurpose::DigitalSignature);
        params
            .extended_key_usages
            .push(rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        let key = KeyPair::generate().expect("raceway-testkit: rcgen makes a P-256 key");
        let leaf = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("raceway-testkit: rcgen signs the server certificate");
        ServerCert {
            chain: vec![leaf.der().clone(), self.cert.der().clone()],
            key: key.serialize_der(),
        }
    }
}

/// A PEM file in the temporary folder, removed on drop.
#[derive(Debug)]
pub struct PemFile {
    path: PathBuf,
}

impl PemFile {
    /// Writes `contents` to a new file (`raceway-testkit-<pid>-<n>.pem`).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(contents: &[u8]) -> io::Result<PemFile> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("raceway-testkit-{}-{n}.pem", std::process::id()));
        fs::write(&path, contents)?;
        Ok(PemFile { path })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PemFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[derive(Default)]
struct Counts {
    ok: AtomicUsize,
    failed: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

/// Terminates TLS on `127.0.0.1:PORT` and forwards each connection's plaintext to a
/// server on `127.0.0.1:upstream`; see the [module docs](self). Runs on its own thread
/// with its own tokio runtime; dropping it stops it.
pub struct TlsProxy {
    port: u16,
    counts: Arc<Counts>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for TlsProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsProxy")
            .field("url", &self.url())
            .field("handshakes_ok", &self.handshakes_ok())
            .field("handshakes_failed", &self.handshakes_failed())
            .finish()
    }
}

impl TlsProxy {
    /// A proxy with `cert` in front of `collector`.
    ///
    /// # Errors
    /// As [`TlsProxy::start`].
    pub fn in_front_of(collector: &crate::Collector, cert: &ServerCert) -> io::Result<TlsProxy> {
        Self::start(collector.port(), cert)
    }

    /// A proxy with `cert` on a free port of `127.0.0.1`, forwarding to
    /// `127.0.0.1:upstream`.
    ///
    /// # Errors
    /// No port, an unusable certificate or key, or no runtime or thread.
    pub fn start(upstream: u16, cert: &ServerCert) -> io::Result<TlsProxy> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key.clone()));
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(cert.chain.clone(), key)
            .map_err(io::Error::other)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = StdListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let counts = Arc::new(Counts::default());
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let in_thread = counts.clone();
        let upstream = SocketAddr::from(([127, 0, 0, 1], upstream));
        let thread = std::thread::Builder::new()
            .name("testkit-tls-proxy".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = stop => {}
                        () = accept_loop(listener, acceptor, upstream, in_thread) => {}
                    }
                });
            })?;
        Ok(TlsProxy {
            port,
            counts,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `https://127.0.0.1:PORT`: the endpoint to configure an SDK with.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Handshakes that completed.
    pub fn handshakes_ok(&self) -> usize {
        self.counts.ok.load(Ordering::SeqCst)
    }

    /// Handshakes that failed (the client refused the certificate, or spoke no TLS).
    pub fn handshakes_failed(&self) -> usize {
        self.counts.failed.load(Ordering::SeqCst)
    }

    /// Why each failed handshake failed, as the server saw it (for example
    /// `received fatal alert: UnknownCA`).
    pub fn handshake_errors(&self) -> Vec<String> {
        self.counts
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    upstream: SocketAddr,
    counts: Arc<Counts>,
) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let counts = counts.clone();
        tokio::spawn(async move {
            let mut tls = match acceptor.accept(socket).await {
                Ok(tls) => {
                    counts.ok.fetch_add(1, Ordering::SeqCst);
                    tls
                }
                Err(e) => {
                    counts.failed.fetch_add(1, Ordering::SeqCst);
                    counts
                        .errors
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(e.to_string());
                    return;
                }
            };
            if let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            }
        });
    }
}
