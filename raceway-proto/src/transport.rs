//! The blocking HTTP sender: ureq 3 through one shared `Agent`.
//!
//! It runs on the exporter's own thread ([`crate::background::ExporterThread`]), so
//! blocking there costs the application nothing and needs no executor: the same sender
//! serves every adapter (tokio, async-std and smol, plain threads).
//! Keep-alive comes from the agent's connection pool; the connect and whole-request
//! timeouts from [`Config`]; authentication from [`Config::auth_headers`]. 4xx and 5xx
//! answers are outcomes, not errors (`http_status_as_error(false)`); the status, `Retry-After`
//! and at most [`MAX_RESPONSE_BODY_BYTES`] of the body go to [`classify_response`] (a `206`'s
//! body says how many events the server took), so a
//! collector that announces a huge body costs nothing. Redirects are not followed (a POST
//! of events is never redirected by a Raceway server). With the `rustls` feature,
//! `https://` endpoints go through ureq's rustls support, checked against Mozilla's roots
//! (`webpki-roots`) or, when [`Config::ca_file`] is set, against the CA certificates of
//! that PEM file only (see [`crate::config`], "TLS"). A TLS failure (an untrusted
//! certificate, one for another host name) is a [`SendOutcome::ConnectionError`]: retried
//! with backoff, and reported once through the `log` facade with its reason.
//!
//! Its `Debug` shows the URL through [`crate::config::redact_url`] and no header values.
//!
//! The endpoint's host is looked up once per [`RESOLVED_TTL`] ([`CachingResolver`]), not
//! once per POST: ureq 3 looks the host up before it looks in its pool, and with a timeout
//! set its own resolver does each lookup on a thread of its own.

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::io::ErrorKind;
use std::string::{String, ToString};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use std::vec;
use std::vec::Vec;

use crate::boundary::Sender;
use crate::config::{redact_url, Config, ConfigError};
use crate::export::{classify_response, SendOutcome, MAX_RESPONSE_BODY_BYTES};

/// POSTs batches to `{endpoint}/events` with ureq (blocking).
#[derive(Clone)]
pub struct UreqSender {
    agent: ureq::Agent,
    url: String,
    /// `content-type` and the two auth headers, whose values hold the key.
    headers: Vec<(&'static str, String)>,
    /// True once a TLS failure was reported (shared by clones: one report per client).
    warned_tls: Arc<AtomicBool>,
}

impl core::fmt::Debug for UreqSender {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| *name).collect();
        f.debug_struct("UreqSender")
            .field("url", &redact_url(&self.url))
            .field("headers", &names)
            .finish_non_exhaustive()
    }
}

impl UreqSender {
    /// A sender for `config` (endpoint, key, timeouts, CA file). Fails on a bad endpoint or
    /// key, on an `https://` endpoint when the crate is built without its `rustls` feature,
    /// and on a [`Config::ca_file`] that cannot be read or holds no certificate (read only
    /// for an `https://` endpoint).
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        config.validate(cfg!(feature = "rustls"))?;
        let url = config
            .events_url()
            .ok_or_else(|| ConfigError::InvalidEndpoint(String::new()))?;
        if url.parse::<http::Uri>().is_err() {
            return Err(ConfigError::InvalidEndpoint(redact_url(&url).into_owned()));
        }
        let mut headers = vec![("content-type", "application/json".to_string())];
        for (name, value) in config.auth_headers() {
            if http::HeaderValue::from_str(&value).is_err() {
                return Err(ConfigError::InvalidApiKey);
            }
            headers.push((name, value));
        }
        let builder = ureq::Agent::config_builder();
        #[cfg(feature = "rustls")]
        let builder = match &config.ca_file {
            Some(path) if url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) => {
                builder.tls_config(private_roots(path)?)
            }
            _ => builder,
        };
        let config = builder
            .http_status_as_error(false)
            .timeout_global(Some(config.request_timeout))
            .timeout_connect(Some(config.connect_timeout))
            .max_redirects(0)
            .max_idle_connections_per_host(2)
            .max_idle_age(Duration::from_secs(30))
            .user_agent(concat!("raceway-rust/", env!("CARGO_PKG_VERSION")))
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::new(),
            CachingResolver::default(),
        );
        Ok(Self {
            agent,
            url,
            headers,
            warned_tls: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The URL batches go to, as configured: it may hold a user name and password, so
    /// print it through [`redact_url`].
    pub fn url(&self) -> &str {
        &self.url
    }

    fn post(&self, body: &[u8]) -> SendOutcome {
        let mut request = self.agent.post(&self.url);
        for (name, value) in &self.headers {
            request = request.header(*name, value.as_str());
        }
        match request.send(body) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(ToString::to_string);
                // A bounded amount of the body: it holds a 206's counts, and reading it
                // lets the connection be reused. Unreadable is empty, never guessed.
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_RESPONSE_BODY_BYTES as u64)
                    .read_to_vec()
                    .unwrap_or_default();
                classify_response(status, retry_after.as_deref(), &body)
            }
            Err(e) => {
                let https = self
                    .url
                    .get(..8)
                    .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
                if https && is_tls_failure(&e) && !self.warned_tls.swap(true, Ordering::Relaxed) {
                    crate::diag::warn(format_args!(
                        "https to {}: the TLS connection failed: {e}. The server's certificate \
                         is not trusted or not valid for this host name (a private CA is trusted with \
                         RACEWAY_CA_FILE or Config::ca_file). Events are kept and retried with backoff \
                         (stats().export.retried), and dropped and counted at shutdown if it never \
                         works; this is reported once",
                        redact_url(&self.url)
                    ));
                }
                outcome_of(&e)
            }
        }
    }
}

/// How long a looked-up address of the endpoint is used without a new lookup: the pool's
/// idle age, so a DNS change reaches new connections within that time.
pub const RESOLVED_TTL: Duration = Duration::from_secs(30);

/// ureq's [`DefaultResolver`](ureq::unversioned::resolver::DefaultResolver), keeping its
/// last answer for [`RESOLVED_TTL`].
///
/// ureq 3 resolves the host of every request before it looks for a pooled connection, and
/// with a timeout set (the SDK always sets one) its resolver runs each lookup on a new
/// thread, to give up on it at the timeout. Without this, every POST created and ended a
/// thread, even on a reused connection to `127.0.0.1`. Failed lookups are not kept.
#[derive(Debug, Default)]
struct CachingResolver {
    inner: ureq::unversioned::resolver::DefaultResolver,
    last: Mutex<Option<Resolved>>,
    /// Lookups handed to `inner` (for the tests).
    lookups: core::sync::atomic::AtomicUsize,
}

#[derive(Debug)]
struct Resolved {
    /// Scheme and authority of the URI that was looked up.
    key: String,
    at: Instant,
    addrs: ureq::unversioned::resolver::ResolvedSocketAddrs,
}

fn resolve_key(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("");
    let authority = uri.authority().map_or("", |a| a.as_str());
    let mut key = String::with_capacity(scheme.len() + 3 + authority.len());
    key.push_str(scheme);
    key.push_str("://");
    key.push_str(authority);
    key
}

impl ureq::unversioned::resolver::Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let key = resolve_key(uri);
        {
            let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(r) = last.as_ref() {
                if r.key == key && r.at.elapsed() < RESOLVED_TTL {
                    return Ok(r.addrs.clone());
                }
            }
        }
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let addrs = self.inner.resolve(uri, config, timeout)?;
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(Resolved {
            key,
            at: Instant::now(),
            addrs: addrs.clone(),
        });
        Ok(addrs)
    }
}

/// The TLS configuration that trusts the CA certificates of the PEM file `path` only.
#[cfg(feature = "rustls")]
fn private_roots(path: &std::path::Path) -> Result<ureq::tls::TlsConfig, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidCaFile {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| invalid(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {} // a private key or another block: not a root
            Err(e) => return Err(invalid(std::format!("not PEM: {e}"))),
        }
    }
    if certs.is_empty() {
        return Err(invalid("it holds no PEM CERTIFICATE block".to_string()));
    }
    Ok(ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build())
}

/// True for a failed TLS handshake: rustls reports a refused certificate as an I/O error of
/// kind `InvalidData` (ureq wraps it), or as a TLS error of ureq's own.
fn is_tls_failure(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Io(e) => e.kind() == ErrorKind::InvalidData,
        ureq::Error::Tls(_) => true,
        #[cfg(feature = "rustls")]
        ureq::Error::Rustls(_) | ureq::Error::Pem(_) => true,
        _ => false,
    }
}

fn outcome_of(error: &ureq::Error) -> SendOutcome {
    match error {
        ureq::Error::Timeout(_) => SendOutcome::Timeout,
        ureq::Error::Io(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            SendOutcome::Timeout
        }
        _ => SendOutcome::ConnectionError,
    }
}

impl Sender for UreqSender {
    fn send(&mut self, body: &[u8]) -> SendOutcome {
        self.post(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::unversioned::resolver::Resolver;

    fn resolve(r: &CachingResolver, uri: &str) -> Vec<core::net::SocketAddr> {
        let uri: http::Uri = uri.parse().unwrap();
        let config = ureq::config::Config::default();
        let timeout = ureq::unversioned::transport::NextTimeout {
            after: ureq::unversioned::transport::time::Duration::from_secs(5),
            ..Default::default()
        };
        r.resolve(&uri, &config, timeout)
            .unwrap()
            .iter()
            .copied()
            .collect()
    }

    #[test]
    fn the_endpoint_is_looked_up_once_per_ttl_not_once_per_post() {
        let r = CachingResolver::default();
        let first = resolve(&r, "http://127.0.0.1:9/events");
        assert_eq!(first, vec!["127.0.0.1:9".parse().unwrap()]);
        for _ in 0..10 {
            assert_eq!(resolve(&r, "http://127.0.0.1:9/events"), first);
        }
        assert_eq!(r.lookups.load(Ordering::Relaxed), 1);
        // another authority is looked up (and replaces the kept answer)
        assert_eq!(
            resolve(&r, "http://127.0.0.1:10/"),
            vec!["127.0.0.1:10".parse().unwrap()]
        );
        assert_eq!(r.lookups.load(Ordering::Relaxed), 2);
        // an answer older than the TTL is looked up again
        if let Some(old) = Instant::now().checked_sub(RESOLVED_TTL) {
            r.last.lock().unwrap().as_mut().unwrap().at = old;
            resolve(&r, "http://127.0.0.1:10/");
            assert_eq!(r.lookups.load(Ordering::Relaxed), 3);
        }
    }
}
