//! The thread-local context: guards restore, headers continue traces, requests are flows.

use std::time::Duration;

use http::HeaderMap;
use raceway_blocking::RacewayClient;
use raceway_proto::client::AdapterApi as _;

fn current_trace(client: &RacewayClient) -> Option<String> {
    let mut out = None;
    client.with_flow(&mut |f| out = Some(f.trace_id().to_string()));
    out
}

#[test]
fn guards_restore_the_previous_flow() {
    let client = RacewayClient::local("guards");
    let outer = current_trace(&client).unwrap(); // the thread's root flow
    {
        let _g = client.start_trace();
        let inner = current_trace(&client).unwrap();
        assert_ne!(inner, outer);
        let flow = client.new_flow();
        let third = flow.trace_id().to_string();
        client.in_flow(flow, || assert_eq!(current_trace(&client).unwrap(), third));
        assert_eq!(current_trace(&client).unwrap(), inner);
    }
    assert_eq!(current_trace(&client).unwrap(), outer);
    let g = client.start_trace();
    client.track_state_change("v", None::<u8>, 1, "Write");
    let flow = g.exit().unwrap();
    assert!(flow.last_event().is_some());
    assert_eq!(current_trace(&client).unwrap(), outer);
}

#[test]
fn a_trace_continues_from_propagated_headers() {
    let client = RacewayClient::local("svc");
    let _g = client.start_trace();
    let trace = current_trace(&client).unwrap();
    let headers = client.propagation_headers(None).unwrap();
    assert!(headers.contains_key("traceparent") && headers.contains_key("raceway-clock"));

    let callee = client.clone();
    std::thread::spawn(move || {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let _g = callee.continue_from_headers(pairs);
        assert_eq!(current_trace(&callee).unwrap(), trace);
    })
    .join()
    .unwrap();

    let mut map = HeaderMap::new();
    client.inject_headers(&mut map).unwrap();
    let trace = current_trace(&client).unwrap();
    let callee = client.clone();
    std::thread::spawn(move || {
        let _g = callee.continue_from_header_map(&map);
        assert_eq!(current_trace(&callee).unwrap(), trace);
    })
    .join()
    .unwrap();
}

/// RACES.md S5a within one process: the caller writes `total`, calls a handler (another
/// thread, as a blocking server would run it) with propagated headers, the handler reads
/// and writes `total` and answers with its `raceway-clock`, the caller merges it and reads
/// `total`. No race; without the merge, the caller's read races with the handler's write.
fn call_and_return(merge: bool) -> usize {
    let client = RacewayClient::local("s5a");
    let _g = client.start_trace();
    client.track_state_change("total", None::<i64>, 1, "Write");
    let headers = client.propagation_headers(None).unwrap();
    let server = client.clone();
    let answer = std::thread::spawn(move || {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        server.handle_request("POST", "/total", pairs, || {
            server.track_state_change("total", None::<i64>, 1, "Read");
            server.track_state_change("total", Some(1), 2, "Write");
            (200, "ok")
        })
    })
    .join()
    .unwrap();
    assert_eq!(answer.status, 200);
    let clock = answer
        .raceway_clock
        .clone()
        .expect("a continued request answers a clock");
    if merge {
        let mut response = HeaderMap::new();
        response.insert("raceway-clock", clock.parse().unwrap());
        assert!(client.merge_response(&response));
    }
    client.track_state_change("total", None::<i64>, 2, "Read");
    client.races().races_on("total").count()
}

#[test]
fn s5a_call_and_return_does_not_race() {
    assert_eq!(call_and_return(true), 0);
}

#[test]
fn s5a_without_the_response_clock_the_read_races() {
    assert_eq!(call_and_return(false), 1);
}

#[test]
fn handle_request_without_propagation_starts_a_trace_and_answers_no_clock() {
    let client = RacewayClient::local("server");
    let answer = client.handle_request("GET", "/health", [("accept", "*/*")], || {
        std::thread::sleep(Duration::from_millis(1));
        (204, ())
    });
    assert_eq!(answer.status, 204);
    assert!(answer.raceway_clock.is_none());
    assert!(answer.response_headers().is_empty());
    assert_eq!(client.stats().core.recorded, 2); // HttpRequest + HttpResponse
}
