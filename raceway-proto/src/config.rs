//! Client configuration, from code and from `RACEWAY_*` environment variables.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `RACEWAY_ENDPOINT` | server URL; unset = keep events for the local analyser | unset |
//! | `RACEWAY_API_KEY` | key sent as `Authorization: Bearer` and `X-Raceway-Key` (never printed: `Debug`, `Display` and errors show `<redacted>`) | unset |
//! | `RACEWAY_CA_FILE` | PEM file of the CA certificate(s) that `https://` endpoints are checked against, instead of the default roots (see "TLS" below) | unset: Mozilla's roots |
//! | `RACEWAY_SERVICE_NAME` | service name | the name given in code, else `unknown-service` |
//! | `RACEWAY_INSTANCE_ID` | instance id | `$HOSTNAME-pid`, else `instance-pid` |
//! | `RACEWAY_ENVIRONMENT` | environment tag | `development` |
//! | `RACEWAY_DISABLED` | `true`/`1` turns the SDK off: nothing recorded or sent | `false` |
//! | `RACEWAY_LOCAL_ANALYSIS` | also analyse locally while exporting (`true`/`false`) | `false` |
//! | `RACEWAY_QUEUE_SIZE` | events held while the server is slow (about 96 bytes each with small values), beyond it drops are counted | 65536 |
//! | `RACEWAY_BATCH_SIZE` | most events in one POST | 512 |
//! | `RACEWAY_MAX_BODY_BYTES` | most bytes in one POST (server limit is 2 MiB) | 1048576 |
//! | `RACEWAY_FLUSH_INTERVAL_MS` | longest time an event waits to be sent | 1000 |
//! | `RACEWAY_TIMEOUT_MS` | HTTP request timeout | 10000 |
//! | `RACEWAY_SHUTDOWN_TIMEOUT_MS` | how long drop and `shutdown()` wait to drain | 5000 |
//! | `RACEWAY_CAUSAL_DELIVERY` | send a flow's events before it crosses a service boundary (`true`/`false`) | `true` |
//! | `RACEWAY_CAUSAL_TIMEOUT_MS` | the longest one crossing waits for that | 1000 |
//! | `RACEWAY_SAMPLE_RATIO` | share of new traces recorded, `0` to `1`; a caller's `traceparent` decision wins (parent-based) | `1` |
//! | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | OpenTelemetry's sampler names (`parentbased_traceidratio`, ...), read when `RACEWAY_SAMPLE_RATIO` is unset | `parentbased_always_on` |
//! | `RACEWAY_SERVER_BUFFER` | events the server's capture buffer holds (its `buffer_size`); `0` turns pacing off | 10000 |
//! | `RACEWAY_SERVER_EVENTS_PER_SEC` | events a second the server analyses (its `batch_size` per `flush_interval_ms`) | 1000 |
//!
//! Values given in code win over the environment, except `RACEWAY_DISABLED`, which always
//! applies (a kill switch for operators). An unusable value is an error that names the
//! variable, never its value ([`ConfigError::InvalidVar`]).
//!
//! # TLS
//!
//! `https://` endpoints need the `rustls` feature (ureq's rustls with the *ring* provider).
//! By default the server's certificate is checked against Mozilla's root certificates,
//! built into the binary (the `webpki-roots` crate, ureq's default), not the operating
//! system's store: the same roots on every machine and in every container image, with no
//! system CA bundle needed, and no trust in roots an administrator or a proxy added.
//! A collector with a certificate from a private CA is trusted with
//! [`Config::ca_file`] (`RACEWAY_CA_FILE`): a PEM file with one or more `CERTIFICATE`
//! blocks, which then *replace* the default roots (as `curl --cacert` does), so only that
//! CA is trusted. It is read when the client is built; a file that cannot be read or holds
//! no certificate is [`ConfigError::InvalidCaFile`]. A certificate that is not trusted or
//! not valid for the endpoint's host name fails the send: the events are kept and retried
//! with backoff (counted in `stats().export.retried`, and dropped and counted at shutdown
//! if it never works), and the first such failure is reported once through the `log`
//! facade, with the reason.
//!
//! # Secrets
//!
//! `Debug` and `Display` of [`Config`], [`ConfigError`], the clients and the sender never
//! show the API key, nor the user name, password, query or fragment of the endpoint
//! ([`redact_url`]).

use core::fmt;
use core::time::Duration;
use std::string::{String, ToString};

use crate::export::{ExportConfig, ServerCapacity};
use crate::sampling::{parse_ratio, Sampler, SamplerError};

/// Everything a client needs to know.
///
/// Its `Debug` shows neither the API key nor the user name and password of the endpoint.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// Server URL (`http://host:port`); `None` keeps events for the local analyser.
    pub endpoint: Option<String>,
    /// API key for the server.
    pub api_key: Option<String>,
    /// A PEM file of CA certificates that `https://` endpoints are checked against instead
    /// of the default roots (Mozilla's); `RACEWAY_CA_FILE`. See the [module docs](self),
    /// "TLS". Not used for `http://` endpoints.
    pub ca_file: Option<std::path::PathBuf>,
    /// Service name.
    pub service_name: String,
    /// Instance id; `None` picks `$HOSTNAME-pid`.
    pub instance_id: Option<String>,
    /// Environment tag.
    pub environment: String,
    /// Module name on function-call events.
    pub module: String,
    /// False turns the SDK off.
    pub enabled: bool,
    /// Feed the local analyser too while exporting.
    pub local_analysis: bool,
    /// Batching and retry settings.
    pub export: ExportConfig,
    /// HTTP request timeout (whole request).
    pub request_timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// How long `shutdown()` and drop wait to drain.
    pub shutdown_timeout: Duration,
    /// Causal delivery (on by default): when a flow crosses a service boundary (an outgoing
    /// call, a response to a caller that propagated its context), what it recorded is on
    /// the server before the other side can record anything that follows. The server
    /// orders services by arrival (see the README, "How races are decided"), so without it
    /// cross-service verdicts depend on timing.
    pub causal_delivery: bool,
    /// The longest a boundary crossing waits for that delivery; a server that is down or
    /// slow costs at most this per crossing (and nothing once a send has failed, until one
    /// succeeds again).
    pub causal_timeout: Duration,
    /// A local analyser shared with other clients; when set, this client feeds it (in
    /// addition to exporting, when an endpoint is set).
    pub analyzer: Option<crate::client::SharedAnalyzer>,
    /// Which traces are recorded (default: parent-based, always on; see
    /// [`crate::sampling`]). `RACEWAY_SAMPLE_RATIO`, else `OTEL_TRACES_SAMPLER` and
    /// `OTEL_TRACES_SAMPLER_ARG`.
    pub sampler: Sampler,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every field named, so that a new one needs a decision about what it may show.
        let Config {
            endpoint,
            api_key,
            ca_file,
            service_name,
            instance_id,
            environment,
            module,
            enabled,
            local_analysis,
            export,
            request_timeout,
            connect_timeout,
            shutdown_timeout,
            causal_delivery,
            causal_timeout,
            analyzer,
            sampler,
        } = self;
        f.debug_struct("Config")
            .field("endpoint", &endpoint.as_deref().map(redact_url))
            .field("api_key", &api_key.as_ref().map(|_| Redacted))
            .field("ca_file", ca_file)
            .field("service_name", service_name)
            .field("instance_id", instance_id)
            .field("environment", environment)
            .field("module", module)
            .field("enabled", enabled)
            .field("local_analysis", local_analysis)
            .field("export", export)
            .field("request_timeout", request_timeout)
            .field("connect_timeout", connect_timeout)
            .field("shutdown_timeout", shutdown_timeout)
            .field("causal_delivery", causal_delivery)
            .field("causal_timeout", causal_timeout)
            .field("analyzer", analyzer)
            .field("sampler", sampler)
            .finish()
    }
}

/// Shown in place of a secret.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `url` fit to print: the user name and password (`https://user:secret@host`), the query
/// and the fragment are replaced by `***`; the scheme, host, port and path stay.
///
/// Anything before the last `@` that precedes the query counts as user information, so a
/// password holding `/` or `@` is hidden too. A string without `://` is read as starting
/// with the host. Borrowed when there is nothing to hide.
///
/// ```
/// use raceway_proto::config::redact_url;
///
/// assert_eq!(redact_url("https://user:s3cr3t@raceway.example:8443/x"), "https://***@raceway.example:8443/x");
/// assert_eq!(redact_url("http://127.0.0.1:8080?key=s3cr3t"), "http://127.0.0.1:8080?***");
/// assert_eq!(redact_url("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
/// ```
pub fn redact_url(url: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let (before_query, query) = rest.split_at(end);
    let at = before_query.rfind('@');
    if at.is_none() && query.is_empty() {
        return Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..start]);
    match at {
        Some(at) => {
            out.push_str("***");
            out.push_str(&before_query[at..]);
        }
        None => out.push_str(before_query),
    }
    if let Some(sep) = query.chars().next() {
        out.push(sep);
        out.push_str("***");
    }
    Cow::Owned(out)
}

/// A configuration value that cannot be used.
///
/// `Debug` and `Display` show an endpoint through [`redact_url`], and never a key.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable holds something that is not what it should be.
    InvalidVar {
        /// The variable.
        name: &'static str,
        /// What it should hold.
        expected: &'static str,
    },
    /// The endpoint is not an `http://` or `https://` URL.
    InvalidEndpoint(String),
    /// The API key cannot go in an HTTP header (control characters, non-ASCII).
    InvalidApiKey,
    /// `https://` was asked for but the crate was built without its `rustls` feature.
    TlsNotEnabled,
    /// The CA file ([`Config::ca_file`], `RACEWAY_CA_FILE`) cannot be read or holds no
    /// PEM certificate.
    InvalidCaFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidVar { name, expected } => f
                .debug_struct("InvalidVar")
                .field("name", name)
                .field("expected", expected)
                .finish(),
            ConfigError::InvalidEndpoint(e) => {
                f.debug_tuple("InvalidEndpoint").field(&redact_url(e)).finish()
            }
            ConfigError::InvalidApiKey => f.write_str("InvalidApiKey"),
            ConfigError::TlsNotEnabled => f.write_str("TlsNotEnabled"),
            ConfigError::InvalidCaFile { path, reason } => f
                .debug_struct("InvalidCaFile")
                .field("path", path)
                .field("reason", reason)
                .finish(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidVar { name, expected } => {
                write!(f, "environment variable {name} must be {expected}")
            }
            ConfigError::InvalidEndpoint(e) => {
                write!(
                    f,
                    "endpoint {:?} is not an http:// or https:// URL",
                    redact_url(e)
                )
            }
            ConfigError::InvalidApiKey => {
                f.write_str("api key holds characters that cannot go in an HTTP header")
            }
            ConfigError::TlsNotEnabled => {
                f.write_str("https endpoint needs the `rustls` feature of this crate")
            }
            ConfigError::InvalidCaFile { path, reason } => write!(
                f,
                "CA file {} (Config::ca_file, RACEWAY_CA_FILE) cannot be used: {reason}",
                path.display()
            ),
        }
    }
}

impl core::error::Error for ConfigError {}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn bool_var(name: &'static str) -> Result<Option<bool>, ConfigError> {
    match var(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(None),
        Some("1" | "true" | "yes" | "on") => Ok(Some(true)),
        Some("0" | "false" | "no" | "off") => Ok(Some(false)),
        Some(_) => Err(ConfigError::InvalidVar {
            name,
            expected: "true or false",
        }),
    }
}

fn num_var(name: &'static str) -> Result<Option<u64>, ConfigError> {
    match var(name) {
        None => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| ConfigError::InvalidVar {
            name,
            expected: "a whole number",
        }),
    }
}

impl Config {
    /// Defaults for `service_name`, with no endpoint (local analysis).
    pub fn new(service_name: &str) -> Self {
        Self {
            endpoint: None,
            api_key: None,
            ca_file: None,
            service_name: service_name.to_string(),
            instance_id: None,
            environment: "development".into(),
            module: "app".into(),
            enabled: true,
            local_analysis: false,
            export: ExportConfig::default(),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            shutdown_timeout: Duration::from_secs(5),
            causal_delivery: true,
            causal_timeout: Duration::from_secs(1),
            analyzer: None,
            sampler: Sampler::default(),
        }
    }

    /// Everything from the environment (see the module docs), on top of defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new("unknown-service").fill_from_env(true)
    }

    /// Fills what code left unset from the environment. With `override_code`, environment
    /// values replace code values too (used by [`Config::from_env`]).
    pub fn fill_from_env(mut self, override_code: bool) -> Result<Self, ConfigError> {
        let code_service_is_default = self.service_name.is_empty() || self.service_name == "unknown-service";
        if let Some(v) = var("RACEWAY_SERVICE_NAME") {
            if override_code || code_service_is_default {
                self.service_name = v;
            }
        }
        // The endpoint and key are checked here, so that the error names the variable:
        // its value may hold a secret and is never quoted.
        if let Some(v) = var("RACEWAY_ENDPOINT") {
            if override_code || self.endpoint.is_none() {
                check_endpoint(&v, true).map_err(|_| ConfigError::InvalidVar {
                    name: "RACEWAY_ENDPOINT",
                    expected: "an http:// or https:// URL",
                })?;
                self.endpoint = Some(v);
            }
        }
        if let Some(v) = var("RACEWAY_API_KEY") {
            if override_code || self.api_key.is_none() {
                if !is_header_safe_key(&v) {
                    return Err(ConfigError::InvalidVar {
                        name: "RACEWAY_API_KEY",
                        expected: "visible ASCII characters only (no spaces or control characters)",
                    });
                }
                self.api_key = Some(v);
            }
        }
        if let Some(v) = var("RACEWAY_CA_FILE") {
            if override_code || self.ca_file.is_none() {
                self.ca_file = Some(std::path::PathBuf::from(v));
            }
        }
        if let Some(v) = var("RACEWAY_INSTANCE_ID") {
            if override_code || self.instance_id.is_none() {
                self.instance_id = Some(v);
            }
        }
        if let Some(v) = var("RACEWAY_ENVIRONMENT") {
            self.environment = v;
        }
        if bool_var("RACEWAY_DISABLED")? == Some(true) {
            self.enabled = false;
        }
        if let Some(b) = bool_var("RACEWAY_LOCAL_ANALYSIS")? {
            self.local_analysis = b;
        }
        if let Some(n) = num_var("RACEWAY_QUEUE_SIZE")? {
            self.export.queue_capacity = usize::try_from(n.max(1)).unwrap_or(usize::MAX);
        }
        if let Some(n) = num_var("RACEWAY_BATCH_SIZE")? {
            self.export.max_batch_events = usize::try_from(n.max(1)).unwrap_or(usize::MAX);
        }
        if let Some(n) = num_var("RACEWAY_MAX_BODY_BYTES")? {
            self.export.max_body_bytes =
                usize::try_from(n.clamp(1024, 2 * 1024 * 1024 - 4096)).unwrap_or(1 << 20);
        }
        if let Some(n) = num_var("RACEWAY_FLUSH_INTERVAL_MS")? {
            self.export.flush_interval = Duration::from_millis(n.max(1));
        }
        if let Some(n) = num_var("RACEWAY_TIMEOUT_MS")? {
            self.request_timeout = Duration::from_millis(n.max(1));
        }
        if let Some(n) = num_var("RACEWAY_SHUTDOWN_TIMEOUT_MS")? {
            self.shutdown_timeout = Duration::from_millis(n);
        }
        if let Some(b) = bool_var("RACEWAY_CAUSAL_DELIVERY")? {
            self.causal_delivery = b;
        }
        if let Some(n) = num_var("RACEWAY_CAUSAL_TIMEOUT_MS")? {
            self.causal_timeout = Duration::from_millis(n);
        }
        if let Some(v) = var("RACEWAY_SAMPLE_RATIO") {
            let ratio = parse_ratio(&v).map_err(|_| ConfigError::InvalidVar {
                name: "RACEWAY_SAMPLE_RATIO",
                expected: "a number from 0 to 1",
            })?;
            self.sampler = Sampler::ratio(ratio).parent_based();
        } else if let Some(name) = var("OTEL_TRACES_SAMPLER") {
            let arg = var("OTEL_TRACES_SAMPLER_ARG");
            self.sampler = Sampler::from_otel(&name, arg.as_deref()).map_err(|e| match e {
                SamplerError::InvalidRatio => ConfigError::InvalidVar {
                    name: "OTEL_TRACES_SAMPLER_ARG",
                    expected: "a number from 0 to 1",
                },
                _ => ConfigError::InvalidVar {
                    name: "OTEL_TRACES_SAMPLER",
                    expected: "always_on, always_off, traceidratio, parentbased_always_on, \
                               parentbased_always_off or parentbased_traceidratio",
                },
            })?;
        }
        let buffer = num_var("RACEWAY_SERVER_BUFFER")?;
        let rate = num_var("RACEWAY_SERVER_EVENTS_PER_SEC")?;
        if buffer.is_some() || rate.is_some() {
            let base = self
                .export
                .server_capacity
                .unwrap_or(ServerCapacity::RACEWAY_DEFAULT);
            let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
            self.export.server_capacity = match buffer {
                Some(0) => None,
                b => Some(ServerCapacity {
                    buffer_events: b.map_or(base.buffer_events, clamp),
                    events_per_sec: rate.map_or(base.events_per_sec, |r| clamp(r.max(1))),
                }),
            };
        }
        Ok(self)
    }

    /// The configuration the client constructors of every adapter describe
    /// (`RacewayClient::new(endpoint, service)` and friends): the given values, the
    /// environment for what they leave unset, and a check of the endpoint and key. An
    /// empty endpoint means local analysis. When the check fails the endpoint is dropped
    /// (events go to the local analyser) and the error is returned beside the config, so
    /// a constructor that cannot fail can still say what went wrong.
    pub fn for_client(
        endpoint: &str,
        service_name: &str,
        api_key: Option<&str>,
        module: Option<&str>,
        tls: bool,
    ) -> (Self, Option<ConfigError>) {
        let mut config = Config::new(service_name);
        if !endpoint.trim().is_empty() {
            config.endpoint = Some(endpoint.trim().to_string());
        }
        config.api_key = api_key.map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
        if let Some(m) = module {
            config.module = m.to_string();
        }
        let mut config = match config.clone().fill_from_env(false) {
            Ok(c) => c,
            Err(e) => {
                crate::diag::warn(format_args!("ignoring the environment: {e}"));
                config
            }
        };
        match config.validate(tls) {
            Ok(()) => (config, None),
            Err(e) => {
                crate::diag::warn(format_args!(
                    "{e}; events are kept for the local analyser instead"
                ));
                config.endpoint = None;
                (config, Some(e))
            }
        }
    }

    /// [`Config::for_client`] plus the adapter's sender, made by `make_sender` when the
    /// configuration sends anywhere. When the sender cannot be made, the endpoint is
    /// dropped (events go to the local analyser) and its error returned, as for an
    /// invalid endpoint. The body of every adapter's infallible constructors.
    pub fn for_client_with<T>(
        endpoint: &str,
        service_name: &str,
        api_key: Option<&str>,
        module: Option<&str>,
        tls: bool,
        make_sender: impl FnOnce(&Config) -> Result<T, ConfigError>,
    ) -> (Self, Option<T>, Option<ConfigError>) {
        let (mut config, error) = Self::for_client(endpoint, service_name, api_key, module, tls);
        match config.make_sender(make_sender) {
            Ok(sender) => (config, sender, error),
            Err(e) => {
                crate::diag::warn(format_args!(
                    "{e}; events are kept for the local analyser instead"
                ));
                config.endpoint = None;
                (config, None, Some(e))
            }
        }
    }

    /// The sender `make_sender` makes for this configuration, or `None` when it sends
    /// nowhere (no endpoint, or disabled). The body of every adapter's `from_config`.
    pub fn make_sender<T>(
        &self,
        make_sender: impl FnOnce(&Config) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        match &self.endpoint {
            Some(_) if self.enabled => make_sender(self).map(Some),
            _ => Ok(None),
        }
    }

    /// Checks the endpoint and API key. `tls` says whether the adapter can do https.
    pub fn validate(&self, tls: bool) -> Result<(), ConfigError> {
        if let Some(e) = &self.endpoint {
            check_endpoint(e, tls)?;
        }
        if let Some(k) = &self.api_key {
            if !is_header_safe_key(k) {
                return Err(ConfigError::InvalidApiKey);
            }
        }
        Ok(())
    }

    /// The endpoint fit to print ([`redact_url`]): no user name, password or query.
    pub fn redacted_endpoint(&self) -> Option<String> {
        self.endpoint.as_deref().map(|e| redact_url(e).into_owned())
    }

    /// The URL events are POSTed to: `{endpoint}/events`.
    pub fn events_url(&self) -> Option<String> {
        self.endpoint
            .as_deref()
            .map(|e| std::format!("{}/events", e.trim_end_matches('/')))
    }

    /// The instance id to use: configured, else `$HOSTNAME-pid`, else `instance-pid`.
    pub fn resolved_instance_id(&self) -> String {
        if let Some(i) = &self.instance_id {
            return i.clone();
        }
        let pid = std::process::id();
        match var("HOSTNAME").or_else(|| var("COMPUTERNAME")) {
            Some(h) => std::format!("{h}-{pid}"),
            None => std::format!("instance-{pid}"),
        }
    }
}

/// Checks that `e` is an `http://` (or, with `tls`, `https://`) URL with a host and no
/// control characters or spaces. The error holds the endpoint with its secrets redacted.
fn check_endpoint(e: &str, tls: bool) -> Result<(), ConfigError> {
    let invalid = || ConfigError::InvalidEndpoint(redact_url(e).into_owned());
    let lower = e.to_ascii_lowercase();
    let rest = if let Some(r) = lower.strip_prefix("http://") {
        r
    } else if let Some(r) = lower.strip_prefix("https://") {
        if !tls {
            return Err(ConfigError::TlsNotEnabled);
        }
        r
    } else {
        return Err(invalid());
    };
    if rest.is_empty() || rest.starts_with('/') || e.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(invalid());
    }
    Ok(())
}

/// True when `k` can be an HTTP header value as it is: visible ASCII, not empty.
fn is_header_safe_key(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

impl Config {
    /// The authentication headers every POST carries: `Authorization: Bearer <key>` and
    /// `X-Raceway-Key: <key>` (the server accepts either).
    pub fn auth_headers(&self) -> std::vec::Vec<(&'static str, String)> {
        match &self.api_key {
            Some(k) => std::vec![
                ("authorization", std::format!("Bearer {k}")),
                ("x-raceway-key", k.clone())
            ],
            None => std::vec::Vec::new(),
        }
    }
}
