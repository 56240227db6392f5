//! A hyper 1 `Service` wrapper: every request served through it is its own flow.
//!
//! hyper 1 is well kept and owns no runtime: its server runs on async-std or smol through
//! a `futures-io` adapter (`smol-hyper`'s `FuturesIo`), so this wrapper works with any
//! executor. It is behind the `hyper` feature, so users of other servers compile nothing
//! of hyper; they use [`RacewayClient::serve_request`] directly.

use crate::serve::{ResponseHeaders, ResponseStatus, ServeHttp};
use crate::RacewayClient;

/// A hyper service that runs each request of `S` as its own flow (see
/// [`RacewayClient::hyper_service`]).
#[derive(Debug, Clone)]
pub struct RacewayHyperService<S> {
    inner: S,
    client: RacewayClient,
}

impl<S, B> hyper::service::Service<http::Request<B>> for RacewayHyperService<S>
where
    S: hyper::service::Service<http::Request<B>>,
    Result<S::Response, S::Error>: ResponseStatus + ResponseHeaders,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ServeHttp<S::Future>;

    fn call(&self, request: http::Request<B>) -> Self::Future {
        self.client
            .serve_http(request, |request| self.inner.call(request))
    }
}

impl RacewayClient {
    /// Wraps a hyper 1 service so that each request runs as its own flow: the caller's
    /// trace is continued from its headers, the request and response are recorded, and
    /// the response carries `raceway-clock` when the caller propagated its context.
    ///
    /// ```no_run
    /// # async fn serve(client: raceway_rt_async_std::RacewayClient) -> std::io::Result<()> {
    /// use hyper::service::service_fn;
    ///
    /// let listener = async_std::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// loop {
    ///     let (stream, _) = listener.accept().await?;
    ///     let svc = client.hyper_service(service_fn(|_req| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
    ///     }));
    ///     async_std::task::spawn(async move {
    ///         let io = smol_hyper::rt::FuturesIo::new(stream);
    ///         let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
    ///     });
    /// }
    /// # }
    /// ```
    pub fn hyper_service<S>(&self, inner: S) -> RacewayHyperService<S> {
        RacewayHyperService {
            inner,
            client: self.clone(),
        }
    }
}
