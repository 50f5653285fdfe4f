//! `ConnectionConfig::single_get_as_meta`: a single-key `get`/`gets` goes out as
//! `mg <key> v f [c]` and its reply comes back exactly as the `get`'s would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use mcache_proto::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use mcache_proto::{
    Connection, ConnectionConfig, Error, Key, PoisonReason, Request, RequestId, Response, Value,
};
use std::time::Instant;

fn meta_conn() -> Connection {
    Connection::new(ConnectionConfig {
        single_get_as_meta: true,
        ..ConnectionConfig::default()
    })
}

fn retrieve(command: RetrieveCommand, keys: &[&str]) -> Request {
    Request::Retrieve(Retrieve {
        command,
        keys: keys.iter().map(|k| Key::new(*k).unwrap()).collect(),
    })
}

fn get(k: &str) -> Request {
    retrieve(RetrieveCommand::Get, &[k])
}

fn flush(conn: &mut Connection) -> Vec<u8> {
    let out = conn.transmit().to_vec();
    conn.advance_transmit(out.len(), Instant::now());
    out
}

fn replies(conn: &mut Connection, bytes: &[u8]) -> Vec<(RequestId, Result<Response, Error>)> {
    conn.receive(bytes, Instant::now());
    std::iter::from_fn(|| conn.poll_response()).collect()
}

fn value(k: &str, flags: u32, cas: Option<u64>, data: &'static [u8]) -> Value {
    Value {
        key: Key::new(k).unwrap(),
        flags,
        cas,
        data: Bytes::from_static(data),
    }
}

#[test]
fn a_get_goes_out_as_mg_and_its_hit_and_miss_come_back_as_values() {
    let mut conn = meta_conn();
    let hit = conn.send(get("foo")).unwrap();
    let miss = conn.send(get("bar")).unwrap();
    assert_eq!(flush(&mut conn), b"mg foo f v O0\r\nmg bar f v O1\r\n");
    let got = replies(&mut conn, b"VA 3 f5 O0\r\nabc\r\nEN O1\r\n");
    assert_eq!(
        got,
        vec![
            (
                hit,
                Ok(Response::Values(vec![value("foo", 5, None, b"abc")]))
            ),
            (miss, Ok(Response::Values(Vec::new()))),
        ]
    );
}

#[test]
fn a_gets_asks_for_the_cas_and_returns_it() {
    let mut conn = meta_conn();
    let id = conn
        .send(retrieve(RetrieveCommand::Gets, &["foo"]))
        .unwrap();
    assert_eq!(flush(&mut conn), b"mg foo c f v O0\r\n");
    let got = replies(&mut conn, b"VA 2 f0 c99 O0\r\nhi\r\n");
    assert_eq!(
        got,
        vec![(
            id,
            Ok(Response::Values(vec![value("foo", 0, Some(99), b"hi")]))
        )]
    );
}

#[test]
fn multi_key_retrievals_and_gat_go_out_as_they_are_and_so_does_everything_by_default() {
    let mut conn = meta_conn();
    conn.send(retrieve(RetrieveCommand::Get, &["a", "b"]))
        .unwrap();
    conn.send(retrieve(RetrieveCommand::Gat(10), &["a"]))
        .unwrap();
    assert_eq!(flush(&mut conn), b"get a b\r\ngat 10 a\r\n");

    let mut plain = Connection::default();
    plain.send(get("foo")).unwrap();
    assert_eq!(flush(&mut plain), b"get foo\r\n");
}

#[test]
fn an_error_line_is_the_get_s_own_error_and_the_connection_goes_on() {
    let mut conn = meta_conn();
    let bad = conn.send(get("foo")).unwrap();
    let next = conn.send(get("bar")).unwrap();
    flush(&mut conn);
    let got = replies(&mut conn, b"SERVER_ERROR out of memory\r\nEN O1\r\n");
    assert!(
        matches!(&got[0], (id, Err(Error::Server(m))) if *id == bad && &m[..] == b"out of memory")
    );
    assert_eq!(got[1], (next, Ok(Response::Values(Vec::new()))));
    assert!(conn.poisoned().is_none());
}

#[test]
fn a_status_mg_v_cannot_have_is_an_error_for_that_get_alone() {
    let mut conn = meta_conn();
    let odd = conn.send(get("foo")).unwrap();
    let next = conn.send(get("bar")).unwrap();
    flush(&mut conn);
    let got = replies(&mut conn, b"HD O0\r\nVA 1 f0 O1\r\nx\r\n");
    assert!(
        matches!(&got[0], (id, Err(Error::UnexpectedResponse { command: "get", .. })) if *id == odd),
        "{got:?}"
    );
    assert_eq!(
        got[1],
        (
            next,
            Ok(Response::Values(vec![value("bar", 0, None, b"x")]))
        )
    );
}

#[test]
fn a_reply_with_another_request_s_opaque_poisons_the_connection() {
    let mut conn = meta_conn();
    let id = conn.send(get("foo")).unwrap();
    flush(&mut conn);
    let got = replies(&mut conn, b"VA 3 f0 O7\r\nabc\r\n");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, id);
    assert!(matches!(
        &got[0].1,
        Err(Error::Poisoned(PoisonReason::Malformed(_)))
    ));
}

#[test]
fn after_a_noreply_set_the_get_s_reply_shows_the_set_succeeded() {
    let mut conn = meta_conn();
    let set = conn
        .send(Request::Store(Store {
            command: StoreCommand::Set,
            key: Key::new("foo").unwrap(),
            flags: 0,
            exptime: 0,
            value: Bytes::from_static(b"abc"),
            noreply: true,
        }))
        .unwrap();
    let id = conn.send(get("foo")).unwrap();
    assert_eq!(
        flush(&mut conn),
        b"set foo 0 0 3 noreply\r\nabc\r\nmg foo f v O1\r\n"
    );
    let got = replies(&mut conn, b"VA 3 f0 O1\r\nabc\r\n");
    assert_eq!(
        got,
        vec![
            (set, Ok(Response::NoReply)),
            (
                id,
                Ok(Response::Values(vec![value("foo", 0, None, b"abc")]))
            ),
        ]
    );
}

#[test]
fn taking_a_meta_request_s_expectation_moves_its_key_and_expects_what_of_does() {
    use mcache_proto::meta::request::MetaGet;
    use mcache_proto::{Expect, MetaGetFlags};
    // A key built from a `Vec`: cloning it would allocate, so `take` moves it.
    let key = Key::new(String::from("foo")).unwrap();
    let request = Request::MetaGet(Box::new(MetaGet {
        key,
        flags: MetaGetFlags {
            value: true,
            ..MetaGetFlags::default()
        },
    }));
    assert_eq!(Expect::take(request.clone()), Expect::of(&request));
}

#[test]
fn a_gets_value_without_its_cas_is_an_error_and_a_get_never_reports_one() {
    let mut conn = meta_conn();
    let gets = conn
        .send(retrieve(RetrieveCommand::Gets, &["foo"]))
        .unwrap();
    let get = conn.send(get("foo")).unwrap();
    flush(&mut conn);
    let got = replies(&mut conn, b"VA 1 f0 O0\r\nx\r\nVA 1 f0 c5 O1\r\nx\r\n");
    assert!(
        matches!(&got[0], (id, Err(Error::UnexpectedResponse { command: "gets", .. })) if *id == gets),
        "{got:?}"
    );
    assert_eq!(
        got[1],
        (get, Ok(Response::Values(vec![value("foo", 0, None, b"x")])))
    );
    assert!(conn.poisoned().is_none());
}
