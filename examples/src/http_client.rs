//! A small HTTP client for the examples (hyper-util's pooled client).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// The client type the examples use.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A new pooled client.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// POSTs `body` as JSON to `url` with extra `headers`; returns the status, the response
/// headers and the body text.
pub async fn post_json(
    client: &HttpClient,
    url: &str,
    headers: &http::HeaderMap,
    body: &serde_json::Value,
) -> Result<(u16, http::HeaderMap, String), Box<dyn std::error::Error + Send + Sync>> {
    let mut req = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
    req.headers_mut().extend(headers.clone());
    let resp = client.request(req).await?;
    let status = resp.status().as_u16();
    let resp_headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, resp_headers, String::from_utf8_lossy(&bytes).into_owned()))
}
