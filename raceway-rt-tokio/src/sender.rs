//! The async HTTP sender: hyper 1 through hyper-util's pooled client.
//!
//! Keep-alive comes from the client's connection pool; the connect timeout from the
//! connector; the whole-request timeout from `tokio::time::timeout`. Response bodies are
//! read up to 64 KiB and then dropped, so a collector that announces a huge body costs
//! nothing. With the `rustls` feature, `https://` endpoints go through hyper-rustls with
//! the webpki root store.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use raceway_proto::boundary::{AsyncSender, SendFuture};
use raceway_proto::config::{Config, ConfigError};
use raceway_proto::export::{parse_retry_after, SendOutcome};

#[cfg(feature = "rustls")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "rustls"))]
type Connector = HttpConnector;

const MAX_RESPONSE_BODY: usize = 64 * 1024;
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// POSTs batches to `{endpoint}/events` with hyper.
#[derive(Debug, Clone)]
pub struct HyperSender {
    client: Client<Connector, Full<Bytes>>,
    uri: Uri,
    headers: HeaderMap,
    timeout: Duration,
}

impl HyperSender {
    /// A sender for `config` (endpoint, key, timeouts). Fails on a bad endpoint or key.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        config.validate(cfg!(feature = "rustls"))?;
        let url = config
            .events_url()
            .ok_or_else(|| ConfigError::InvalidEndpoint(String::new()))?;
        let uri: Uri = url
            .parse()
            .map_err(|_| ConfigError::InvalidEndpoint(url.clone()))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in config.auth_headers() {
            let value = HeaderValue::from_str(&value).map_err(|_| ConfigError::InvalidApiKey)?;
            headers.insert(HeaderName::from_static(name), value);
        }
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        #[cfg(feature = "rustls")]
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        #[cfg(not(feature = "rustls"))]
        let connector = http;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(2)
            .build(connector);
        Ok(Self {
            client,
            uri,
            headers,
            timeout: config.request_timeout,
        })
    }

    async fn post(&self, body: Vec<u8>) -> SendOutcome {
        let mut builder = Request::builder().method(Method::POST).uri(self.uri.clone());
        if let Some(h) = builder.headers_mut() {
            h.extend(self.headers.clone());
        }
        let request = match builder.body(Full::new(Bytes::from(body))) {
            Ok(r) => r,
            Err(_) => return SendOutcome::ConnectionError,
        };
        // The status is the answer: once it is in, the outcome is decided, whatever the
        // body then does (a 200 whose body never ends was still ingested; resending it
        // would duplicate events).
        let response = match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => return SendOutcome::ConnectionError,
            Err(_) => return SendOutcome::Timeout,
        };
        let outcome = SendOutcome::Status {
            status: response.status().as_u16(),
            retry_after: response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after),
        };
        // Read a bounded amount of the body, briefly, so the connection can be reused;
        // a body that is too big or too slow only costs the connection.
        let drain = Limited::new(response.into_body(), MAX_RESPONSE_BODY).collect();
        let _ = tokio::time::timeout(BODY_READ_TIMEOUT.min(self.timeout), drain).await;
        outcome
    }
}

impl AsyncSender for HyperSender {
    fn send(&self, body: Vec<u8>) -> SendFuture<'_> {
        Box::pin(self.post(body))
    }
}
