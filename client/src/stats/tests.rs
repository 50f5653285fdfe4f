//! Counting and exporting, deterministically: the manual runtime, an in-memory server played
//! by the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::testing::{poll, ready, Connect, ManualRuntime, MemStream};
use crate::{Builder, Client, Error, Failover, HealthPolicy, Memcache};
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

/// A client of one connection to an in-memory server.
fn client_on(rt: &ManualRuntime) -> (Client, MemStream) {
    let server = MemStream::new();
    rt.on_connect(Connect::Open(server.clone()));
    let client = Builder::new(Arc::new(rt.clone()))
        .server("mem:1")
        .connections(1)
        .request_timeout(Some(SECOND))
        .backoff(Duration::from_millis(100), Duration::from_millis(100))
        .build();
    (ready(client).unwrap(), server)
}

/// Runs `call` to its end while the server answers `reply` to what it was sent.
fn answered<T>(
    rt: &ManualRuntime,
    server: &MemStream,
    call: impl Future<Output = T>,
    reply: &[u8],
) -> T {
    let mut call = std::pin::pin!(call);
    assert!(poll(call.as_mut()).is_pending());
    rt.run_tasks();
    assert!(!server.take_written().is_empty(), "the request was written");
    server.send(reply);
    rt.run_tasks();
    match poll(call.as_mut()) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("not answered"),
    }
}

/// Every kind of event once: an ok, a server error line, a timeout, a lost connection with
/// a call failed fast while down, a failed reconnect, a reconnect, an ok again.
fn every_event(rt: &ManualRuntime, client: &Client, server: &MemStream) {
    answered(rt, server, client.set("k", "v", 0), b"STORED\r\n").unwrap();
    let e = answered(
        rt,
        server,
        client.set("k", "v", 0),
        b"SERVER_ERROR out of memory\r\n",
    );
    assert!(matches!(e, Err(Error::Server(_))), "{e:?}");

    let mut get = Box::pin(client.get("k"));
    assert!(poll(get.as_mut()).is_pending());
    rt.run_tasks();
    assert_eq!(client.client_stats().servers[0].in_flight, 1);
    rt.advance(SECOND);
    rt.run_tasks();
    assert!(matches!(
        poll(get.as_mut()),
        Poll::Ready(Err(Error::Timeout))
    ));
    drop(get);

    server.close();
    rt.run_tasks();
    let down = Box::pin(client.get("k"));
    let mut down = down;
    assert!(poll(down.as_mut()).is_pending());
    rt.run_tasks();
    assert!(matches!(
        poll(down.as_mut()),
        Poll::Ready(Err(Error::Unavailable(_)))
    ));

    // The first attempt after the backoff is refused, the second opens a new connection.
    rt.on_connect(Connect::Refuse);
    rt.advance(Duration::from_millis(100));
    rt.run_tasks();
    let again = MemStream::new();
    rt.on_connect(Connect::Open(again.clone()));
    rt.advance(Duration::from_millis(100));
    rt.run_tasks();
    let v = answered(rt, &again, client.get("k"), b"VA 1 f0 O0\r\nv\r\n").unwrap();
    assert_eq!(v.unwrap().data, "v");
}

#[test]
fn stats_count_requests_results_and_connection_events() {
    let rt = ManualRuntime::new();
    let (client, server) = client_on(&rt);
    let s = &client.client_stats().servers[0];
    assert_eq!((s.requests, s.completed(), s.in_flight), (0, 0, 0));
    assert_eq!(s.endpoint.to_string(), "mem:1");

    every_event(&rt, &client, &server);

    let stats = client.client_stats();
    assert_eq!(stats.servers.len(), 1);
    let s = &stats.servers[0];
    assert_eq!(s.requests, 5, "{s:?}");
    assert_eq!(s.ok, 2, "{s:?}");
    assert_eq!(s.errors.server_reply, 1, "{s:?}");
    assert_eq!(s.errors.timeout, 1, "{s:?}");
    assert_eq!(s.errors.unavailable, 1, "{s:?}");
    assert_eq!(s.errors.total(), 3, "{s:?}");
    assert_eq!(s.timeouts, 1, "{s:?}");
    assert_eq!(s.connect_failures, 1, "{s:?}");
    assert_eq!(s.reconnects, 1, "{s:?}");
    assert_eq!(s.ejections, 0, "a single server is never ejected");
    assert_eq!(s.in_flight, 0, "{s:?}");
    assert_eq!(s.completed(), s.requests);
    assert_eq!(stats.total().as_ref(), Some(s));
    assert_eq!(client.server(0).unwrap().client_stats(), *s);
}

#[test]
fn ejections_are_counted_per_server() {
    let rt = ManualRuntime::new();
    let up = MemStream::new();
    rt.on_connect(Connect::Open(up.clone()));
    rt.on_connect(Connect::Refuse);
    let client = Builder::new(Arc::new(rt.clone()))
        .servers(["mem:1", "mem:2"])
        .connections(1)
        .health(HealthPolicy {
            failure_limit: 1,
            retry_after: SECOND,
            failover: Failover::FailFast,
        })
        .build();
    let client = ready(client).unwrap();
    rt.run_tasks();
    let stats = client.client_stats();
    let [a, b] = &stats.servers[..] else {
        panic!("{stats:?}")
    };
    assert_eq!((a.ejections, b.ejections), (0, 1), "{stats:?}");
    assert!(b.connect_failures >= 1, "its task retries: {b:?}");
    assert_eq!(a.connect_failures, 0);
    let total = stats.total().unwrap();
    assert_eq!(total.ejections, 1);
}

#[test]
fn the_command_runs_in_a_trace_span() {
    use std::sync::Mutex;
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// Records the name and fields of every span opened.
    #[derive(Default)]
    struct Spans(Mutex<Vec<String>>);
    struct Fields<'a>(&'a mut String);
    impl tracing::field::Visit for Fields<'_> {
        fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
            self.0.push_str(&format!(" {}={v:?}", f.name()));
        }
    }
    impl Subscriber for &'static Spans {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let mut line = span.metadata().name().to_string();
            span.record(&mut Fields(&mut line));
            let mut spans = self.0.lock().unwrap();
            spans.push(line);
            Id::from_u64(spans.len() as u64)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    let spans: &'static Spans = Box::leak(Box::default());
    let rt = ManualRuntime::new();
    let (client, server) = client_on(&rt);
    tracing::subscriber::with_default(spans, || {
        answered(&rt, &server, client.set("k", "v", 0), b"STORED\r\n").unwrap();
    });
    let seen = spans.0.lock().unwrap().clone();
    assert!(
        seen.contains(&"memcache command=\"set\" server=0".to_string()),
        "{seen:?}"
    );
}

#[cfg(feature = "metrics")]
#[test]
fn metrics_export_the_same_events_with_a_server_label() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use metrics_util::MetricKind;

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let rt = ManualRuntime::new();
    // The handles are registered at build time, with the recorder in force then.
    let (client, server) = metrics::with_local_recorder(&recorder, || client_on(&rt));
    every_event(&rt, &client, &server);
    // One more call left waiting: in flight at the snapshot.
    let mut waiting = Box::pin(client.get("w"));
    assert!(poll(waiting.as_mut()).is_pending());
    rt.run_tasks();

    let snapshot = snapshotter.snapshot().into_vec();
    let value = |kind: MetricKind, name: &str, labels: &[(&str, &str)]| {
        let found = snapshot.iter().find(|(k, ..)| {
            let key = k.key();
            k.kind() == kind
                && key.name() == name
                && labels.iter().all(|(l, v)| {
                    key.labels()
                        .any(|label| label.key() == *l && label.value() == *v)
                })
        });
        match found {
            Some((.., v)) => v,
            None => panic!("no {name} {labels:?} in {snapshot:#?}"),
        }
    };
    let counter =
        |name: &str, labels: &[(&str, &str)]| match value(MetricKind::Counter, name, labels) {
            DebugValue::Counter(n) => *n,
            other => panic!("{name}: {other:?}"),
        };
    let server_label = [("server", "mem:1")];
    assert_eq!(counter("mcache_requests_total", &server_label), 6);
    let kind = |k: &'static str| [("server", "mem:1"), ("kind", k)];
    assert_eq!(counter("mcache_errors_total", &kind("timeout")), 1);
    assert_eq!(counter("mcache_errors_total", &kind("unavailable")), 1);
    assert_eq!(counter("mcache_errors_total", &kind("server_reply")), 1);
    assert_eq!(counter("mcache_errors_total", &kind("io")), 0);
    assert_eq!(counter("mcache_timeouts_total", &server_label), 1);
    assert_eq!(counter("mcache_reconnects_total", &server_label), 1);
    assert_eq!(counter("mcache_connect_failures_total", &server_label), 1);
    assert_eq!(counter("mcache_ejections_total", &server_label), 0);
    match value(MetricKind::Gauge, "mcache_in_flight", &server_label) {
        DebugValue::Gauge(g) => assert_eq!(g.into_inner(), 1.0),
        other => panic!("{other:?}"),
    }
    match value(
        MetricKind::Histogram,
        "mcache_request_duration_seconds",
        &server_label,
    ) {
        DebugValue::Histogram(samples) => {
            assert_eq!(samples.len(), 5, "one per completed request: {samples:?}");
            // The timed-out call waited the whole request timeout on the manual clock.
            assert!(samples.iter().any(|s| s.into_inner() == 1.0), "{samples:?}");
        }
        other => panic!("{other:?}"),
    }
    // The snapshot through the client agrees.
    let s = &client.client_stats().servers[0];
    assert_eq!((s.requests, s.in_flight), (6, 1));
}
