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
//! `https://` endpoints go through ureq's rustls support.

use core::time::Duration;
use std::io::ErrorKind;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use crate::boundary::Sender;
use crate::config::{Config, ConfigError};
use crate::export::{classify_response, SendOutcome, MAX_RESPONSE_BODY_BYTES};

/// POSTs batches to `{endpoint}/events` with ureq (blocking).
#[derive(Debug, Clone)]
pub struct UreqSender {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(&'static str, String)>,
}

impl UreqSender {
    /// A sender for `config` (endpoint, key, timeouts). Fails on a bad endpoint or key, and
    /// on an `https://` endpoint when the crate is built without its `rustls` feature.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        config.validate(cfg!(feature = "rustls"))?;
        let url = config
            .events_url()
            .ok_or_else(|| ConfigError::InvalidEndpoint(String::new()))?;
        if url.parse::<http::Uri>().is_err() {
            return Err(ConfigError::InvalidEndpoint(url));
        }
        let mut headers = vec![("content-type", "application/json".to_string())];
        for (name, value) in config.auth_headers() {
            if http::HeaderValue::from_str(&value).is_err() {
                return Err(ConfigError::InvalidApiKey);
            }
            headers.push((name, value));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(config.request_timeout))
            .timeout_connect(Some(config.connect_timeout))
            .max_redirects(0)
            .max_idle_connections_per_host(2)
            .max_idle_age(Duration::from_secs(30))
            .user_agent(concat!("raceway-rust/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self { agent, url, headers })
    }

    /// The URL batches go to.
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
            Err(e) => outcome_of(&e),
        }
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
