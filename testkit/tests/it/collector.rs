//! The collector itself, over real HTTP (ureq).

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use raceway_testkit::{Collector, Reply, BODY_LIMIT, HUGE_CONTENT_LENGTH};
use serde_json::Value;

const ACCEPTED: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/accepted-batch.json"
));
const REJECTED: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rejected.json"));

/// A fresh agent (no pooled connection survives a collector restart) that returns 4xx/5xx
/// as responses.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// POSTs `body` as JSON and returns the status and the `retry-after` header.
fn post(c: &Collector, body: &[u8], extra: &[(&str, &str)]) -> (u16, Option<String>) {
    let mut req = agent(Duration::from_secs(10))
        .post(c.events_url())
        .header("content-type", "application/json");
    for (n, v) in extra {
        req = req.header(*n, *v);
    }
    let resp = req.send(body).expect("request failed");
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status().as_u16(), retry)
}

fn accepted_events() -> Vec<Value> {
    let v: Value = serde_json::from_str(ACCEPTED).unwrap();
    v["events"].as_array().unwrap().clone()
}

#[test]
fn health_answers_json() {
    let c = Collector::start();
    let mut resp = agent(Duration::from_secs(5))
        .get(format!("{}/health", c.url()))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert!(body.is_object());
    assert_eq!(c.health_checks(), 1);
    assert_eq!(c.post_count(), 0);
    assert!(c.url().starts_with("http://127.0.0.1:"));
    assert_eq!(c.url(), format!("http://127.0.0.1:{}", c.port()));
}

#[test]
fn accepted_batch_is_recorded() {
    let c = Collector::start();
    let (status, _) = post(&c, ACCEPTED.as_bytes(), &[]);
    assert_eq!(status, 200);
    let expected = accepted_events();
    assert!(expected.len() >= 13, "one event of every kind");
    assert_eq!(c.event_count(), expected.len());
    assert_eq!(c.events_json(), expected);
    let kinds: Vec<&str> = c.events().iter().map(|e| e.kind.name()).collect();
    assert!(kinds.contains(&"StateChange") && kinds.contains(&"Custom"));
    let p = c.last_post().unwrap();
    assert_eq!(p.status, Some(200));
    assert_eq!(p.accepted, expected.len());
    assert_eq!(p.body_size, ACCEPTED.len());
    assert_eq!(c.body_sizes(), vec![ACCEPTED.len()]);
    assert_eq!(p.header("Content-Type"), Some("application/json"));
    assert_eq!(
        p.body_json().unwrap()["events"].as_array().unwrap().len(),
        expected.len()
    );
    assert!(c.wait_for_events(expected.len(), Duration::ZERO));
}

#[test]
fn rejected_fixtures_get_their_status_and_record_nothing() {
    let c = Collector::start();
    let cases: Vec<Value> = serde_json::from_str(REJECTED).unwrap();
    let mut expected = Vec::new();
    for case in &cases {
        if case["body"].is_null() {
            continue; // the 413 entry: see over_limit_body_is_413
        }
        let want = case["status"].as_u64().unwrap() as u16;
        let body = serde_json::to_vec(&case["body"]).unwrap();
        let (status, _) = post(&c, &body, &[]);
        assert_eq!(status, want, "{}", case["what"]);
        expected.push(Some(want));
    }
    assert!(expected.len() >= 8);
    assert_eq!(c.statuses(), expected);
    assert_eq!(c.event_count(), 0);
    assert!(c.events_json().is_empty());
}

#[test]
fn one_bad_event_rejects_the_whole_batch() {
    let c = Collector::start();
    let mut events = accepted_events();
    events[3]["metadata"]["process_id"] = Value::from(-1);
    let body = serde_json::to_vec(&serde_json::json!({ "events": events })).unwrap();
    assert_eq!(post(&c, &body, &[]).0, 422);
    assert_eq!(c.event_count(), 0);
}

#[test]
fn other_malformed_bodies() {
    let c = Collector::start();
    assert_eq!(post(&c, b"not json at all", &[]).0, 400);
    assert_eq!(post(&c, br#"{"events": [}"#, &[]).0, 400);
    assert_eq!(post(&c, br#"{"evts": []}"#, &[]).0, 422);
    assert_eq!(post(&c, br#"{"events": []}"#, &[]).0, 200);
    // axum's Json extractor wants a JSON content-type
    let resp = agent(Duration::from_secs(5))
        .post(c.events_url())
        .header("content-type", "text/plain")
        .send(ACCEPTED)
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    assert_eq!(
        c.statuses(),
        vec![Some(400), Some(400), Some(422), Some(200), Some(415)]
    );
    assert_eq!(c.event_count(), 0);
}

#[test]
fn over_limit_body_is_413() {
    let c = Collector::start();
    let size = BODY_LIMIT * 5 / 4; // 2.5 MiB
    let mut body = br#"{"events":[],"pad":""#.to_vec();
    body.resize(size - 2, b'x');
    body.extend_from_slice(br#""}"#);
    assert_eq!(body.len(), size);
    serde_json::from_slice::<Value>(&body).expect("valid JSON, only too large");
    assert_eq!(post(&c, &body, &[]).0, 413);
    let p = c.last_post().unwrap();
    assert_eq!((p.status, p.body_size, p.accepted), (Some(413), size, 0));
    // just under the limit is fine
    let mut body = br#"{"events":[],"pad":""#.to_vec();
    body.resize(BODY_LIMIT - 2, b'x');
    body.extend_from_slice(br#""}"#);
    assert_eq!(post(&c, &body, &[]).0, 200);
}

#[test]
fn auth_by_bearer_or_api_key() {
    let c = Collector::start_with_key("s3cret");
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]).0, 401);
    assert_eq!(
        post(&c, ACCEPTED.as_bytes(), &[("authorization", "Bearer nope")]).0,
        401
    );
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[("x-raceway-key", "nope")]).0, 401);
    assert_eq!(c.event_count(), 0);
    assert_eq!(
        post(&c, ACCEPTED.as_bytes(), &[("authorization", "Bearer s3cret")]).0,
        200
    );
    assert_eq!(
        c.last_post().unwrap().header("authorization"),
        Some("Bearer s3cret")
    );
    assert_eq!(
        post(&c, ACCEPTED.as_bytes(), &[("X-Raceway-Key", "s3cret")]).0,
        200
    );
    let h = c.last_headers();
    assert!(h.contains(&("x-raceway-key".to_owned(), "s3cret".to_owned())));
    assert!(h.contains(&("content-type".to_owned(), "application/json".to_owned())));
    assert_eq!(c.event_count(), 2 * accepted_events().len());
    // health stays open
    let resp = agent(Duration::from_secs(5))
        .get(format!("{}/health", c.url()))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    c.set_key(None);
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]).0, 200);
}

#[test]
fn scripted_replies_then_normal() {
    let c = Collector::start();
    c.script(vec![
        Reply::StatusRetryAfter(429, 7),
        Reply::Status(503),
        Reply::Ok,
        Reply::Status(200),
    ]);
    assert_eq!(c.script_remaining(), 4);
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]), (429, Some("7".to_owned())));
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]), (503, None));
    assert_eq!(c.event_count(), 0, "failure replies ingest nothing");
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]).0, 200);
    let n = accepted_events().len();
    assert_eq!(c.event_count(), n);
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]).0, 200);
    assert_eq!(c.event_count(), n, "a scripted 200 is a lost batch");
    assert_eq!(c.script_remaining(), 0);
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]).0, 200);
    assert_eq!(c.event_count(), 2 * n);
    let posts = c.posts();
    assert_eq!(posts[0].injected, Some(Reply::StatusRetryAfter(429, 7)));
    assert_eq!(posts[2].injected, None);
    assert_eq!(
        c.statuses(),
        vec![Some(429), Some(503), Some(200), Some(200), Some(200)]
    );
    assert_eq!(c.body_sizes(), vec![ACCEPTED.len(); 5]);

    // always, with the script taking precedence
    c.set_always(Some(Reply::Status(500)));
    c.script(vec![Reply::Status(502)]);
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]).0, 502);
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]).0, 500);
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]).0, 500);
    c.set_always(None);
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]).0, 200);
    assert_eq!(c.event_count(), 3 * n);
}

#[test]
fn delay_then_normal() {
    let c = Collector::start();
    c.script(vec![Reply::Delay(Duration::from_millis(300))]);
    let t = Instant::now();
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]).0, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(c.event_count(), accepted_events().len());
}

#[test]
fn stop_and_restart_keep_port_and_events() {
    let c = Collector::start();
    let port = c.port();
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]).0, 200);
    let n = c.event_count();
    c.stop();
    assert!(!c.is_running());
    let err = agent(Duration::from_secs(2))
        .post(c.events_url())
        .header("content-type", "application/json")
        .send(ACCEPTED);
    assert!(err.is_err(), "nobody listens while stopped");
    assert_eq!(c.event_count(), n, "recorded state kept");
    c.restart().unwrap();
    assert!(c.is_running());
    assert_eq!(c.port(), port);
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]).0, 200);
    assert_eq!(c.event_count(), 2 * n);
    assert_eq!(c.statuses(), vec![Some(200), Some(200)]);
    // restart while running is stop + start
    c.restart().unwrap();
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]).0, 200);
}

#[test]
fn taken_port_is_an_error_not_a_panic() {
    let c = Collector::start();
    let again = Collector::start_on(c.port());
    assert!(again.is_err());
    // after stop the port is free for anyone
    let port = c.port();
    c.stop();
    let other = Collector::start_on(port).unwrap();
    assert_eq!(other.port(), port);
    assert!(c.restart().is_err(), "taken meanwhile");
    drop(other);
    c.restart().unwrap();
}

#[test]
fn hang_times_out_client_side_and_others_are_served() {
    let c = Arc::new(Collector::start());
    c.script(vec![Reply::Hang]);
    let hung = {
        let c = c.clone();
        thread::spawn(move || {
            let t = Instant::now();
            let r = agent(Duration::from_millis(700))
                .post(c.events_url())
                .header("content-type", "application/json")
                .send(ACCEPTED);
            (r.map(|r| r.status().as_u16()), t.elapsed())
        })
    };
    assert!(c.wait_for_posts(1, Duration::from_secs(5)));
    // the hung request does not block others
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]).0, 200);
    let (result, elapsed) = hung.join().unwrap();
    assert!(matches!(result, Err(ureq::Error::Timeout(_))), "{result:?}");
    assert!(elapsed >= Duration::from_millis(600));
    assert_eq!(c.statuses(), vec![None, Some(200)]);
    assert_eq!(c.event_count(), accepted_events().len());
    let posts = c.posts();
    assert_eq!(posts[0].injected, Some(Reply::Hang));
    assert_eq!(posts[0].accepted, 0);
}

#[test]
fn stop_ends_hanging_requests() {
    let c = Arc::new(Collector::start());
    c.set_always(Some(Reply::Hang));
    let hung = {
        let url = c.events_url();
        thread::spawn(move || {
            agent(Duration::from_secs(30))
                .post(url)
                .header("content-type", "application/json")
                .send(ACCEPTED)
                .map(|r| r.status().as_u16())
        })
    };
    assert!(c.wait_for_posts(1, Duration::from_secs(5)));
    let t = Instant::now();
    c.stop();
    let r = hung.join().unwrap();
    assert!(r.is_err(), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn huge_content_length_never_completes() {
    let c = Collector::start();
    c.script(vec![Reply::HugeContentLength]);
    let mut resp = agent(Duration::from_millis(800))
        .post(c.events_url())
        .header("content-type", "application/json")
        .send(ACCEPTED)
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers().get("content-length").unwrap().to_str().unwrap(),
        HUGE_CONTENT_LENGTH.to_string()
    );
    assert!(resp.headers().get("transfer-encoding").is_none());
    let mut buf = Vec::new();
    let read = std::io::Read::read_to_end(&mut resp.body_mut().as_reader(), &mut buf);
    assert!(read.is_err(), "the body never ends: {read:?}");
    assert!(buf.len() < 100);
    assert_eq!(c.event_count(), 0);
    assert_eq!(c.statuses(), vec![Some(200)]);
    // normal afterwards
    assert_eq!(post(&c, ACCEPTED.as_bytes(), &[]).0, 200);
}

#[test]
fn waits_from_other_threads() {
    let c = Arc::new(Collector::start());
    assert!(!c.wait_for_events(1, Duration::from_millis(50)));
    let sender = {
        let c = c.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            post(&c, ACCEPTED.as_bytes(), &[]).0
        })
    };
    assert!(c.wait_for_events(3, Duration::from_secs(5)));
    assert_eq!(sender.join().unwrap(), 200);
    c.clear();
    assert_eq!((c.event_count(), c.post_count()), (0, 0));
}

struct Unpark(thread::Thread);
impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

#[test]
fn until_events_is_a_runtime_agnostic_future() {
    let c = Arc::new(Collector::start());
    let sender = {
        let c = c.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            post(&c, ACCEPTED.as_bytes(), &[]).0
        })
    };
    let mut fut = std::pin::pin!(c.until_events(2));
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let deadline = Instant::now() + Duration::from_secs(5);
    while fut.as_mut().poll(&mut cx) == Poll::Pending {
        assert!(Instant::now() < deadline);
        thread::park_timeout(Duration::from_millis(500));
    }
    assert_eq!(sender.join().unwrap(), 200);
}
