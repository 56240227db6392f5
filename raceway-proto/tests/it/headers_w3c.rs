//! Every `traceparent` and `tracestate` case of the W3C trace-context test suite
//! (`test/test.py` of w3c/trace-context), replayed through [`extract`]: where the suite
//! expects a service to keep the trace id, the context must carry it; where it expects a
//! new trace, extraction must fail; where it expects the tracestate to be discarded, the
//! context must have none.

use raceway_proto::headers::{extract, ExtractError, RemoteContext, TraceParent, TraceState};

const TRACE: &str = "12345678901234567890123456789012";
const TP00: &str = "00-12345678901234567890123456789012-1234567890123456-00";
const TP01: &str = "00-12345678901234567890123456789012-1234567890123456-01";

fn ctx(headers: &[(&str, &str)]) -> Result<RemoteContext, ExtractError> {
    extract(headers.iter().copied())
}

/// The suite's "expects the same trace_id".
fn keeps_trace(headers: &[(&str, &str)]) -> RemoteContext {
    let c = ctx(headers).unwrap_or_else(|e| panic!("{headers:?} should be valid: {e}"));
    assert_eq!(c.trace_id.w3c_hex().to_string(), TRACE, "{headers:?}");
    c
}

/// The suite's "expects a newly generated trace_id": nothing valid to continue.
fn restarts(headers: &[(&str, &str)]) {
    assert!(ctx(headers).is_err(), "{headers:?} should be refused");
}

fn tracestate_of(headers: &[(&str, &str)]) -> Option<TraceState> {
    keeps_trace(headers).tracestate
}

fn with_tp00<'a>(tracestates: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![("traceparent", TP00)];
    v.extend_from_slice(tracestates);
    v
}

#[test]
fn test_both_traceparent_and_tracestate_missing() {
    assert_eq!(ctx(&[]), Err(ExtractError::Missing));
}

#[test]
fn test_traceparent_included_tracestate_missing() {
    let c = keeps_trace(&[("traceparent", TP01)]);
    assert_eq!(c.span_id.to_string(), "1234567890123456");
    assert_eq!(c.tracestate, None);
}

#[test]
fn test_traceparent_duplicated() {
    restarts(&[
        (
            "traceparent",
            "00-12345678901234567890123456789011-1234567890123456-01",
        ),
        (
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-01",
        ),
    ]);
}

#[test]
fn test_traceparent_header_name() {
    assert_eq!(ctx(&[("trace-parent", TP01)]), Err(ExtractError::Missing));
    assert_eq!(ctx(&[("trace.parent", TP01)]), Err(ExtractError::Missing));
}

#[test]
fn test_traceparent_header_name_valid_casing() {
    for name in ["TraceParent", "TrAcEpArEnT", "TRACEPARENT"] {
        keeps_trace(&[(name, TP01)]);
    }
}

#[test]
fn test_traceparent_version_0x00() {
    restarts(&[(
        "traceparent",
        "00-12345678901234567890123456789012-1234567890123456-01.",
    )]);
    restarts(&[(
        "traceparent",
        "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
    )]);
}

#[test]
fn test_traceparent_version_0xcc() {
    keeps_trace(&[(
        "traceparent",
        "cc-12345678901234567890123456789012-1234567890123456-01",
    )]);
    keeps_trace(&[(
        "traceparent",
        "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
    )]);
    restarts(&[(
        "traceparent",
        "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like",
    )]);
}

#[test]
fn test_traceparent_version_0xff() {
    restarts(&[(
        "traceparent",
        "ff-12345678901234567890123456789012-1234567890123456-01",
    )]);
}

#[test]
fn test_traceparent_version_illegal_characters() {
    restarts(&[(
        "traceparent",
        ".0-12345678901234567890123456789012-1234567890123456-01",
    )]);
    restarts(&[(
        "traceparent",
        "0.-12345678901234567890123456789012-1234567890123456-01",
    )]);
}

#[test]
fn test_traceparent_version_too_long() {
    restarts(&[(
        "traceparent",
        "000-12345678901234567890123456789012-1234567890123456-01",
    )]);
    restarts(&[(
        "traceparent",
        "0000-12345678901234567890123456789012-1234567890123456-01",
    )]);
}

#[test]
fn test_traceparent_version_too_short() {
    restarts(&[(
        "traceparent",
        "0-12345678901234567890123456789012-1234567890123456-01",
    )]);
}

#[test]
fn test_traceparent_trace_id_all_zero() {
    restarts(&[(
        "traceparent",
        "00-00000000000000000000000000000000-1234567890123456-01",
    )]);
}

#[test]
fn test_traceparent_trace_id_illegal_characters() {
    restarts(&[(
        "traceparent",
        "00-.2345678901234567890123456789012-1234567890123456-01",
    )]);
    restarts(&[(
        "traceparent",
        "00-1234567890123456789012345678901.-1234567890123456-01",
    )]);
}

#[test]
fn test_traceparent_trace_id_too_long() {
    restarts(&[(
        "traceparent",
        "00-123456789012345678901234567890123-1234567890123456-01",
    )]);
}

#[test]
fn test_traceparent_trace_id_too_short() {
    restarts(&[(
        "traceparent",
        "00-1234567890123456789012345678901-1234567890123456-01",
    )]);
}

#[test]
fn test_traceparent_parent_id_all_zero() {
    restarts(&[(
        "traceparent",
        "00-12345678901234567890123456789012-0000000000000000-01",
    )]);
}

#[test]
fn test_traceparent_parent_id_illegal_characters() {
    restarts(&[(
        "traceparent",
        "00-12345678901234567890123456789012-.234567890123456-01",
    )]);
    restarts(&[(
        "traceparent",
        "00-12345678901234567890123456789012-123456789012345.-01",
    )]);
}

#[test]
fn test_traceparent_parent_id_too_long() {
    restarts(&[(
        "traceparent",
        "00-12345678901234567890123456789012-12345678901234567-01",
    )]);
}

#[test]
fn test_traceparent_parent_id_too_short() {
    restarts(&[(
        "traceparent",
        "00-12345678901234567890123456789012-123456789012345-01",
    )]);
}

#[test]
fn test_traceparent_trace_flags_illegal_characters() {
    restarts(&[(
        "traceparent",
        "00-12345678901234567890123456789012-1234567890123456-.0",
    )]);
    restarts(&[(
        "traceparent",
        "00-12345678901234567890123456789012-1234567890123456-0.",
    )]);
}

#[test]
fn test_traceparent_trace_flags_too_long() {
    restarts(&[(
        "traceparent",
        "00-12345678901234567890123456789012-1234567890123456-001",
    )]);
}

#[test]
fn test_traceparent_trace_flags_too_short() {
    restarts(&[(
        "traceparent",
        "00-12345678901234567890123456789012-1234567890123456-1",
    )]);
}

#[test]
fn test_traceparent_ows_handling() {
    for v in [
        " 00-12345678901234567890123456789012-1234567890123456-01",
        "\t00-12345678901234567890123456789012-1234567890123456-01",
        "00-12345678901234567890123456789012-1234567890123456-01 ",
        "00-12345678901234567890123456789012-1234567890123456-01\t",
        "\t 00-12345678901234567890123456789012-1234567890123456-01 \t",
    ] {
        keeps_trace(&[("traceparent", v)]);
    }
}

#[test]
fn test_tracestate_included_traceparent_missing() {
    // No traceparent: nothing to continue, and the tracestate is not read.
    assert_eq!(ctx(&[("tracestate", "foo=1")]), Err(ExtractError::Missing));
    assert_eq!(ctx(&[("tracestate", "foo=1,bar=2")]), Err(ExtractError::Missing));
}

#[test]
fn test_tracestate_included_traceparent_included() {
    let ts = tracestate_of(&with_tp00(&[("tracestate", "foo=1,bar=2")])).unwrap();
    assert_eq!(ts.get("foo"), Some("1"));
    assert_eq!(ts.get("bar"), Some("2"));
}

#[test]
fn test_tracestate_header_name() {
    assert_eq!(tracestate_of(&with_tp00(&[("trace-state", "foo=1")])), None);
    assert_eq!(tracestate_of(&with_tp00(&[("trace.state", "foo=1")])), None);
}

#[test]
fn test_tracestate_header_name_valid_casing() {
    for name in ["TraceState", "TrAcEsTaTe", "TRACESTATE"] {
        let ts = tracestate_of(&with_tp00(&[(name, "foo=1")])).unwrap();
        assert_eq!(ts.get("foo"), Some("1"));
    }
}

#[test]
fn test_tracestate_empty_header() {
    assert_eq!(tracestate_of(&with_tp00(&[("tracestate", "")])), None);
    let ts = tracestate_of(&with_tp00(&[("tracestate", "foo=1"), ("tracestate", "")])).unwrap();
    assert_eq!(ts.get("foo"), Some("1"));
    let ts = tracestate_of(&with_tp00(&[("tracestate", ""), ("tracestate", "foo=1")])).unwrap();
    assert_eq!(ts.get("foo"), Some("1"));
}

#[test]
fn test_tracestate_multiple_headers_different_keys() {
    let ts = tracestate_of(&with_tp00(&[
        ("tracestate", "foo=1,bar=2"),
        ("tracestate", "rojo=1,congo=2"),
        ("tracestate", "baz=3"),
    ]))
    .unwrap();
    assert_eq!(ts.to_string(), "foo=1,bar=2,rojo=1,congo=2,baz=3");
}

#[test]
fn test_tracestate_duplicated_keys() {
    for headers in [
        &[("tracestate", "foo=1,foo=1")][..],
        &[("tracestate", "foo=1,foo=2")][..],
        &[("tracestate", "foo=1"), ("tracestate", "foo=1")][..],
        &[("tracestate", "foo=1"), ("tracestate", "foo=2")][..],
    ] {
        assert_eq!(tracestate_of(&with_tp00(headers)), None, "{headers:?}");
    }
}

#[test]
fn test_tracestate_all_allowed_characters() {
    let key_without_vendor: String = ('a'..='z').chain('0'..='9').chain(['_', '-', '*', '/']).collect();
    let key_with_vendor = format!("{key_without_vendor}@a-z0-9_-*/");
    let value: String = (0x20u8..=0x2B)
        .chain(0x2D..=0x3C)
        .chain(0x3E..=0x7E)
        .map(char::from)
        .collect();
    for key in [&key_without_vendor, &key_with_vendor] {
        let header = format!("{key}={value}");
        let ts = tracestate_of(&with_tp00(&[("tracestate", &header)])).unwrap();
        assert_eq!(ts.get(key), Some(value.as_str()));
        // and it is forwarded unchanged
        assert_eq!(ts.to_string(), header);
    }
}

#[test]
fn test_tracestate_ows_handling() {
    for v in [
        "foo=1 \t , \t bar=2, \t baz=3",
        "foo=1\t \t,\t \tbar=2,\t \tbaz=3",
    ] {
        let ts = tracestate_of(&with_tp00(&[("tracestate", v)])).unwrap();
        assert_eq!(ts.get("foo"), Some("1"));
        assert_eq!(ts.get("bar"), Some("2"));
        assert_eq!(ts.get("baz"), Some("3"));
    }
    for v in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
        let ts = tracestate_of(&with_tp00(&[("tracestate", v)])).unwrap();
        assert_eq!(ts.get("foo"), Some("1"), "{v:?}");
    }
}

#[test]
fn test_tracestate_key_illegal_characters() {
    for v in ["foo =1", "FOO=1", "foo.bar=1"] {
        assert_eq!(tracestate_of(&with_tp00(&[("tracestate", v)])), None, "{v:?}");
    }
}

#[test]
fn test_tracestate_key_illegal_vendor_format() {
    for v in [
        "foo@=1,bar=2",
        "@foo=1,bar=2",
        "foo@@bar=1,bar=2",
        "foo@bar@baz=1,bar=2",
    ] {
        assert_eq!(tracestate_of(&with_tp00(&[("tracestate", v)])), None, "{v:?}");
    }
}

#[test]
fn test_tracestate_member_count_limit() {
    let h1 = "bar01=01,bar02=02,bar03=03,bar04=04,bar05=05,bar06=06,bar07=07,bar08=08,bar09=09,bar10=10";
    let h2 = "bar11=11,bar12=12,bar13=13,bar14=14,bar15=15,bar16=16,bar17=17,bar18=18,bar19=19,bar20=20";
    let h3 = "bar21=21,bar22=22,bar23=23,bar24=24,bar25=25,bar26=26,bar27=27,bar28=28,bar29=29,bar30=30";
    let ts = tracestate_of(&with_tp00(&[
        ("tracestate", h1),
        ("tracestate", h2),
        ("tracestate", h3),
        ("tracestate", "bar31=31,bar32=32"),
    ]))
    .unwrap();
    assert_eq!(ts.get("bar01"), Some("01"));
    assert_eq!(ts.len(), 32);
    assert_eq!(
        tracestate_of(&with_tp00(&[
            ("tracestate", h1),
            ("tracestate", h2),
            ("tracestate", h3),
            ("tracestate", "bar31=31,bar32=32,bar33=33"),
        ])),
        None
    );
}

#[test]
fn test_tracestate_key_length_limit() {
    let ok = |second: String| {
        let ts = tracestate_of(&with_tp00(&[("tracestate", "foo=1"), ("tracestate", &second)]));
        ts.and_then(|t| t.get("foo").map(String::from))
    };
    assert_eq!(ok(format!("{}=1", "z".repeat(256))).as_deref(), Some("1"));
    assert_eq!(ok(format!("{}=1", "z".repeat(257))), None);
    assert_eq!(
        ok(format!("{}@{}=1", "t".repeat(241), "v".repeat(14))).as_deref(),
        Some("1")
    );
    assert_eq!(ok(format!("{}@v=1", "t".repeat(242))), None);
    assert_eq!(ok(format!("t@{}=1", "v".repeat(15))), None);
}

#[test]
fn test_tracestate_value_illegal_characters() {
    assert_eq!(tracestate_of(&with_tp00(&[("tracestate", "foo=bar=baz")])), None);
    assert_eq!(tracestate_of(&with_tp00(&[("tracestate", "foo=,bar=3")])), None);
}

#[test]
fn advanced_test_multiple_requests_with_illegal_traceparent() {
    restarts(&[(
        "traceparent",
        "00-00000000000000000000000000000000-1234567890123456-01",
    )]);
}

#[test]
fn traceparent_is_written_as_version_00() {
    let tp: TraceParent = "cc-12345678901234567890123456789012-1234567890123456-01-x"
        .parse()
        .unwrap();
    assert_eq!(tp.to_string(), TP01);
}
