//! RACES.md on the real Raceway server, with the threaded client: every scenario (S1 to
//! S8; S5a and S5b between two threaded services over HTTP on 127.0.0.1, each request
//! served with `handle_request` on a thread of its own), written with the public API, exported
//! to a fresh real server each time, and the server's race report compared with the truth
//! column exactly. S8's atomic counter is left out of the comparison: the server lists
//! `AtomicRMW` pairs by design (RACES.md).
//!
//! Without the server binary every test prints one line and passes; under CI
//! (`RACEWAY_REQUIRE_SERVER=1`) it fails.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use raceway_blocking::{Config, RacewayClient, TrackedMutex, TrackedRwLock};
use raceway_testkit::{RacePairs, RealServer};

const REPEAT: usize = 5;

fn client(server: &RealServer, service: &str) -> Arc<RacewayClient> {
    let mut config = Config::new(service);
    config.endpoint = Some(server.url());
    config.instance_id = Some("test".into());
    config.export.flush_interval = Duration::from_millis(50);
    Arc::new(RacewayClient::from_config(config).expect("config"))
}

fn verdict(server: &RealServer, client: &RacewayClient) -> RacePairs {
    client.flush(Duration::from_secs(10)).expect("flush");
    let s = client.stats();
    assert_eq!(s.export.dropped(), 0, "{s:?}");
    server.race_pairs_after(s.core.recorded)
}

/// Four threads each read `balance`, sleep and write it back, unprotected (RACES.md S1);
/// with `extra_in_odd`, the odd ones record two other events first (S2).
fn four_unprotected_transfers(rw: &Arc<RacewayClient>, extra_in_odd: bool) {
    let balance = Arc::new(AtomicI64::new(100));
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let (rw2, balance) = (rw.clone(), balance.clone());
            rw.spawn(move || {
                if extra_in_odd && i % 2 == 1 {
                    rw2.track_function_call("audit", i);
                    rw2.track_custom("extra", i);
                }
                let seen = balance.load(Ordering::SeqCst);
                rw2.track_state_change("balance", None::<i64>, seen, "Read");
                std::thread::sleep(Duration::from_millis(20));
                balance.store(seen - 10, Ordering::SeqCst);
                rw2.track_state_change("balance", Some(seen), seen - 10, "Write");
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
}

#[test]
fn s1_four_threads_read_sleep_write_race_pairwise() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "ledger");
        // Not joined into the main flow before the verdict: the four threads race pairwise.
        four_unprotected_transfers(&rw, false);
        let pairs = verdict(&server, &rw);
        assert_eq!(pairs.count("balance"), 6, "{pairs}");
        assert_eq!(pairs.total(), 6, "{pairs}");
    }
}

#[test]
fn s3_threads_holding_one_tracked_lock_do_not_race() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "ledger");
        let lock = Arc::new(TrackedMutex::new(100i64, rw.clone(), "balance-lock"));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (rw2, lock) = (rw.clone(), lock.clone());
                rw.spawn(move || {
                    let mut guard = lock.lock("Mutex");
                    rw2.track_state_change("balance", None::<i64>, *guard, "Read");
                    *guard -= 10;
                    rw2.track_state_change("balance", Some(*guard + 10), *guard, "Write");
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker");
        }
        let pairs = verdict(&server, &rw);
        assert!(pairs.is_empty(), "{pairs}");
    }
}

#[test]
fn s4_program_order_does_not_race() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "ledger");
        let _trace = rw.start_trace();
        for v in [100, 90] {
            rw.track_state_change("balance", None::<i64>, v, "Read");
            rw.track_state_change("balance", Some(v), v - 10, "Write");
        }
        let pairs = verdict(&server, &rw);
        assert!(pairs.is_empty(), "{pairs}");
    }
}

#[test]
fn s6_spawn_and_join_order_the_thread() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "cache");
        let _trace = rw.start_trace();
        rw.track_state_change("cache", None::<i64>, 1, "Write");
        let rw2 = rw.clone();
        let handle = rw.spawn(move || rw2.track_state_change("cache", Some(1), 2, "Write"));
        handle.join().expect("thread");
        rw.track_state_change("cache", None::<i64>, 2, "Read");
        let pairs = verdict(&server, &rw);
        assert!(pairs.is_empty(), "{pairs}");
    }
}

#[test]
fn s8_two_threads_write_total_without_a_lock_one_pair() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "counter");
        let counter = Arc::new(AtomicI64::new(0));
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let (rw, counter) = (rw.clone(), counter.clone());
                std::thread::spawn(move || {
                    let before = counter.fetch_add(1, Ordering::SeqCst);
                    rw.track_state_change("counter", Some(before), before + 1, "AtomicRMW");
                    rw.track_state_change("total", None::<i64>, i, "Write");
                    rw.flush(Duration::from_secs(5)).expect("flush");
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let pairs = verdict(&server, &rw);
        assert_eq!(pairs.count("total"), 1, "{pairs}");
        // The server lists AtomicRMW pairs by design (RACES.md S8): not compared.
        assert_eq!(pairs.total() - pairs.count("counter"), 1, "{pairs}");
    }
}

// S2 ------------------------------------------------------------------------------------

#[test]
fn s2_odd_threads_record_more_events_first_still_six_pairs() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "ledger");
        four_unprotected_transfers(&rw, true);
        let pairs = verdict(&server, &rw);
        assert_eq!(pairs.count("balance"), 6, "{pairs}");
        assert_eq!(pairs.flows("balance").len(), 4, "{pairs}");
        assert_eq!(pairs.total(), 6, "{pairs}");
    }
}

// S7 ------------------------------------------------------------------------------------

#[test]
fn s7_readers_and_a_writer_under_one_tracked_rwlock_do_not_race() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "config");
        let lock = Arc::new(TrackedRwLock::new(1u32, rw.clone(), "config-lock"));
        let mut threads: Vec<_> = (0..3)
            .map(|_| {
                let (rw2, lock) = (rw.clone(), lock.clone());
                rw.spawn(move || {
                    let guard = lock.read();
                    rw2.track_state_change("config", None::<u32>, *guard, "Read");
                    std::thread::sleep(Duration::from_millis(20));
                })
            })
            .collect();
        let (rw2, lock2) = (rw.clone(), lock.clone());
        threads.push(rw.spawn(move || {
            let mut guard = lock2.write();
            *guard += 1;
            rw2.track_state_change("config", Some(*guard - 1), *guard, "Write");
        }));
        for t in threads {
            t.join().expect("thread");
        }
        let pairs = verdict(&server, &rw);
        assert!(pairs.is_empty(), "{pairs}");
    }
}

// S5a and S5b: two threaded services over HTTP ----------------------------------------------

/// A threaded HTTP/1.1 server on 127.0.0.1 (std::net, one thread per connection, one
/// request per connection), as a blocking service without a server crate would be: each
/// request is served with `handle_request`, and its `raceway-clock` goes on the response.
struct ThreadedService {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

type Route = fn(&RacewayClient, &str) -> u16;

impl ThreadedService {
    fn start(rw: Arc<RacewayClient>, route: Route) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let rw = rw.clone();
                std::thread::spawn(move || {
                    let _ = serve_connection(stream, &rw, route);
                });
            }
        });
        Self {
            addr,
            stop,
            accept: Some(accept),
        }
    }
}

impl Drop for ThreadedService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Reads the request line and the headers (and skips a `content-length` body).
fn read_head(reader: &mut impl BufRead) -> std::io::Result<(String, Vec<(String, String)>)> {
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok((first.trim_end().to_string(), headers))
}

fn serve_connection(stream: TcpStream, rw: &RacewayClient, route: Route) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let (first, headers) = read_head(&mut reader)?;
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    std::io::copy(&mut reader.by_ref().take(length as u64), &mut std::io::sink())?;
    let mut parts = first.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("GET"), parts.next().unwrap_or("/"));
    let pairs = headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let answer = rw.handle_request(method, path, pairs, || (route(rw, path), "ok"));
    let mut out = format!(
        "HTTP/1.1 {} OK\r\ncontent-length: {}\r\nconnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    for (name, value) in answer.response_headers() {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(answer.body);
    let mut stream = stream;
    stream.write_all(out.as_bytes())?;
    stream.flush()
}

/// POSTs to `http://{addr}{path}` with `headers` over a fresh connection; returns the
/// status and the response headers (names in lower case).
fn post(addr: SocketAddr, path: &str, headers: &HashMap<String, String>) -> (u16, Vec<(String, String)>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut out =
        format!("POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 0\r\nconnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes()).expect("send");
    let mut reader = BufReader::new(stream);
    let (status_line, headers) = read_head(&mut reader).expect("answer");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    std::io::copy(&mut reader, &mut std::io::sink()).expect("body");
    (status, headers)
}

/// Service A's outgoing call from the current flow: the propagation headers (which also
/// send A's pending events first), the call, and B's `raceway-clock` merged back.
fn call(rw: &RacewayClient, addr: SocketAddr, path: &str) {
    let headers = rw.propagation_headers(None).expect("in a flow");
    let (status, answer) = post(addr, path, &headers);
    assert_eq!(status, 200);
    let merged = rw.merge_response_headers(answer.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert!(
        merged,
        "B answers a propagated call with raceway-clock: {answer:?}"
    );
}

/// Service B's routes: `/total` (S5a) reads and writes `total`; `/stock` (S5b) reads
/// `stock`, sleeps, writes it.
fn b_routes(rw: &RacewayClient, path: &str) -> u16 {
    match path {
        "/total" => {
            rw.track_state_change("total", None::<i64>, 10, "Read");
            rw.track_state_change("total", Some(10), 11, "Write");
            200
        }
        "/stock" => {
            rw.track_state_change("stock", None::<i64>, 5, "Read");
            std::thread::sleep(Duration::from_millis(30));
            rw.track_state_change("stock", Some(5), 4, "Write");
            200
        }
        _ => 404,
    }
}

fn verdict_of(server: &RealServer, clients: &[&RacewayClient]) -> RacePairs {
    let mut recorded = 0;
    for c in clients {
        c.flush(Duration::from_secs(10)).expect("flush");
        let s = c.stats();
        assert_eq!(s.export.dropped(), 0, "{s:?}");
        recorded += s.core.recorded;
    }
    server.race_pairs_after(recorded)
}

#[test]
fn s5a_call_and_return_between_two_threaded_services_does_not_race() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let (a, b) = (client(&server, "svc-a"), client(&server, "svc-b"));
        let service_b = ThreadedService::start(b.clone(), b_routes);
        {
            let _request = a.start_trace();
            a.track_state_change("total", Some(0), 10, "Write");
            call(&a, service_b.addr, "/total");
            a.track_state_change("total", None::<i64>, 11, "Read");
        }
        drop(service_b);
        let pairs = verdict_of(&server, &[&*a, &*b]);
        assert!(pairs.is_empty(), "{pairs}");
    }
}

#[test]
fn s5b_two_parallel_calls_to_one_threaded_handler_race_between_the_two_b_flows() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let (a, b) = (client(&server, "svc-a"), client(&server, "svc-b"));
        let service_b = ThreadedService::start(b.clone(), b_routes);
        {
            let _request = a.start_trace();
            // A threaded caller calls in parallel from two threads of its flow.
            let calls: Vec<_> = (0..2)
                .map(|_| {
                    let (a2, addr) = (a.clone(), service_b.addr);
                    a.spawn(move || call(&a2, addr, "/stock"))
                })
                .collect();
            for c in calls {
                c.join().expect("call");
            }
        }
        drop(service_b);
        let pairs = verdict_of(&server, &[&*a, &*b]);
        assert_eq!(pairs.count("stock"), 1, "{pairs}");
        let flows = pairs.flows("stock");
        assert_eq!(flows.len(), 2, "{pairs}");
        assert!(flows.iter().all(|f| f.starts_with("svc-b#")), "{pairs}");
        assert_eq!(pairs.total(), 1, "{pairs}");
    }
}

// Delivery at the server's capacity ------------------------------------------------------

/// Records `n` state changes in one flow, as fast as the caller can.
fn burst(rw: &RacewayClient, n: u64) {
    let _trace = rw.start_trace();
    for i in 0..n {
        rw.track_state_change("burst", Some(i), i + 1, "Write");
    }
}

/// The server's count of event arrivals, summed over its traces (an event that arrived
/// twice counts twice there, once in `events_captured`).
fn arrivals(server: &RealServer) -> u64 {
    server.trace_event_counts().iter().map(|(_, n)| n).sum()
}

#[test]
fn a_burst_of_25000_with_a_queue_of_30000_arrives_exactly_once() {
    let Some(server) = RealServer::start_default() else {
        return;
    };
    let mut config = Config::new("burst");
    config.endpoint = Some(server.url());
    config.export.queue_capacity = 30_000;
    let rw = RacewayClient::from_config(config).expect("config");
    burst(&rw, 25_000);
    // The server takes about 1,000 events a second into a 10,000-event buffer: the
    // exporter paces itself to it (ExportConfig::server_capacity, the server's defaults),
    // so the buffer never fills: 9,000 at once, then about 900 a second, about 18 s.
    let started = std::time::Instant::now();
    rw.flush(Duration::from_secs(120)).expect("flushed");
    let took = started.elapsed();
    rw.shutdown_timeout(Duration::from_secs(10)).expect("drained");
    let s = rw.stats();
    println!("burst 25000: delivered in {took:?}: {:?}", s.export);
    assert_eq!((s.core.recorded, s.export.sent), (25_000, 25_000), "{s:?}");
    assert_eq!(s.export.dropped(), 0, "{s:?}");
    assert_eq!(s.export.unconfirmed_partial, 0, "{s:?}");
    assert_eq!(server.wait_for_captured(25_000, Duration::from_secs(60)), 25_000);
    assert_eq!(arrivals(&server), 25_000, "duplicates on the server");
}

#[test]
fn a_burst_against_a_500_event_buffer_is_on_the_server_or_counted() {
    let opts = raceway_testkit::ServerOptions {
        buffer: 500,
        ..Default::default()
    };
    let Some(server) = RealServer::start(opts) else {
        return;
    };
    let mut config = Config::new("burst");
    config.endpoint = Some(server.url());
    config.export.queue_capacity = 10_000;
    config.export.max_backoff = Duration::from_secs(2);
    let rw = RacewayClient::from_config(config).expect("config");
    burst(&rw, 5_000);
    let _ = rw.shutdown_timeout(Duration::from_secs(60));
    let s = rw.stats();
    println!("burst against --buffer 500: {:?}", s.export);
    assert!(s.export.batches_partial > 0, "the server was never full: {s:?}");
    let captured = server.wait_for_captured(s.export.sent, Duration::from_secs(30));
    assert_eq!(
        captured, s.export.sent,
        "every event counted as sent is on the server: {s:?}"
    );
    assert_eq!(
        captured + s.export.dropped() + s.export.unconfirmed_partial,
        5_000,
        "every event is on the server or counted: {s:?}"
    );
    assert_eq!(arrivals(&server), captured, "duplicates on the server");
}
