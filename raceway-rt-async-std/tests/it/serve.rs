//! `serve_http`: the handler itself, not only the future it returns, runs in the request's
//! flow, and request headers are read with the core's one rule.

use raceway_rt_async_std::RacewayClient;

#[test]
fn serve_http_runs_the_handler_in_the_request_flow() {
    let client = RacewayClient::local("svc");
    let request = http::Request::builder()
        .uri("/touch")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(())
        .unwrap();
    let response = futures::executor::block_on(client.serve_http(request, |_req| {
        // Before the future: recorded only if the flow is installed around the call.
        client.track_state_change("before", None::<u8>, 1, "Write");
        async { http::Response::new(()) }
    }));
    assert!(response.headers().contains_key("raceway-clock"));
    let stats = client.stats();
    assert_eq!(
        stats.core.no_context, 0,
        "the handler ran outside the flow: {stats:?}"
    );
    // HttpRequest, the write, HttpResponse.
    assert_eq!(stats.core.recorded, 3, "{stats:?}");
}

#[test]
fn a_non_ascii_traceparent_beside_a_valid_one_starts_a_new_trace() {
    let client = RacewayClient::local("svc");
    let mut request = http::Request::builder().uri("/").body(()).unwrap();
    let headers = request.headers_mut();
    headers.append("traceparent", http::HeaderValue::from_bytes(b"00-\x80").unwrap());
    headers.append(
        "traceparent",
        http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    let response =
        futures::executor::block_on(client.serve_http(request, |_req| async { http::Response::new(()) }));
    // A new trace has no caller to answer with a clock.
    assert!(!response.headers().contains_key("raceway-clock"));
}
