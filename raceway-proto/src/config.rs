//! Client configuration, from code and from `RACEWAY_*` environment variables.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `RACEWAY_ENDPOINT` | server URL; unset = keep events for the local analyser | unset |
//! | `RACEWAY_API_KEY` | key sent as `Authorization: Bearer` and `X-Raceway-Key` | unset |
//! | `RACEWAY_SERVICE_NAME` | service name | the name given in code, else `unknown-service` |
//! | `RACEWAY_INSTANCE_ID` | instance id | `$HOSTNAME-pid`, else `instance-pid` |
//! | `RACEWAY_ENVIRONMENT` | environment tag | `development` |
//! | `RACEWAY_DISABLED` | `true`/`1` turns the SDK off: nothing recorded or sent | `false` |
//! | `RACEWAY_LOCAL_ANALYSIS` | also analyse locally while exporting (`true`/`false`) | `false` |
//! | `RACEWAY_QUEUE_SIZE` | events held while the server is slow, beyond it drops are counted | 8192 |
//! | `RACEWAY_BATCH_SIZE` | most events in one POST | 512 |
//! | `RACEWAY_MAX_BODY_BYTES` | most bytes in one POST (server limit is 2 MiB) | 1048576 |
//! | `RACEWAY_FLUSH_INTERVAL_MS` | longest time an event waits to be sent | 1000 |
//! | `RACEWAY_TIMEOUT_MS` | HTTP request timeout | 10000 |
//! | `RACEWAY_SHUTDOWN_TIMEOUT_MS` | how long drop and `shutdown()` wait to drain | 5000 |
//! | `RACEWAY_CAUSAL_DELIVERY` | send a flow's events before it crosses a service boundary (`true`/`false`) | `true` |
//! | `RACEWAY_CAUSAL_TIMEOUT_MS` | the longest one crossing waits for that | 1000 |
//! | `RACEWAY_SERVER_BUFFER` | events the server's capture buffer holds (its `buffer_size`); `0` turns pacing off | 10000 |
//! | `RACEWAY_SERVER_EVENTS_PER_SEC` | events a second the server analyses (its `batch_size` per `flush_interval_ms`) | 1000 |
//!
//! Values given in code win over the environment, except `RACEWAY_DISABLED`, which always
//! applies (a kill switch for operators).

use core::fmt;
use core::time::Duration;
use std::string::{String, ToString};

use crate::export::{ExportConfig, ServerCapacity};

/// Everything a client needs to know.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Server URL (`http://host:port`); `None` keeps events for the local analyser.
    pub endpoint: Option<String>,
    /// API key for the server.
    pub api_key: Option<String>,
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
}

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidVar { name, expected } => {
                write!(f, "environment variable {name} must be {expected}")
            }
            ConfigError::InvalidEndpoint(e) => write!(f, "endpoint {e:?} is not an http:// or https:// URL"),
            ConfigError::InvalidApiKey => {
                f.write_str("api key holds characters that cannot go in an HTTP header")
            }
            ConfigError::TlsNotEnabled => {
                f.write_str("https endpoint needs the `rustls` feature of this crate")
            }
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
        if let Some(v) = var("RACEWAY_ENDPOINT") {
            if override_code || self.endpoint.is_none() {
                self.endpoint = Some(v);
            }
        }
        if let Some(v) = var("RACEWAY_API_KEY") {
            if override_code || self.api_key.is_none() {
                self.api_key = Some(v);
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
        let buffer = num_var("RACEWAY_SERVER_BUFFER")?;
        let rate = num_var("RACEWAY_SERVER_EVENTS_PER_SEC")?;
        if buffer.is_some() || rate.is_some() {
            let base = self.export.server_capacity.unwrap_or(ServerCapacity::RACEWAY_DEFAULT);
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
            let lower = e.to_ascii_lowercase();
            let rest = if let Some(r) = lower.strip_prefix("http://") {
                r
            } else if let Some(r) = lower.strip_prefix("https://") {
                if !tls {
                    return Err(ConfigError::TlsNotEnabled);
                }
                r
            } else {
                return Err(ConfigError::InvalidEndpoint(e.clone()));
            };
            if rest.is_empty()
                || rest.starts_with('/')
                || e.bytes().any(|b| b.is_ascii_control() || b == b' ')
            {
                return Err(ConfigError::InvalidEndpoint(e.clone()));
            }
        }
        if let Some(k) = &self.api_key {
            if k.is_empty() || !k.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
                return Err(ConfigError::InvalidApiKey);
            }
        }
        Ok(())
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
