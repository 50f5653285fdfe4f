//! A memoized call is observable: a debug-level `memoize` span with the function and how the
//! call was served, and (feature `metrics`) the per-function counters through the `metrics`
//! facade. Against a real memcached.
#![cfg(feature = "tokio")]

mod common;

use mcache_registry::tokio::Client;
use mcache_registry::{memoize, Cache};
use std::sync::{Arc, Mutex};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Subscriber;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// The tests of this file, one at a time: tracing decides whether a callsite is enabled
/// when it is first hit, and a `memoize` span first hit by the metrics test (no subscriber)
/// while the span test installs its own could stay disabled for the span test.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[memoize(cache = cache)]
async fn watched(cache: &Cache<Client>, id: u32) -> u32 {
    id
}

/// Records each `memoize` span's fields as `name=value` strings.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Vec<String>>>>);

struct Fields<'a>(&'a mut Vec<String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{}={:?}", field.name(), value));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push(format!("{}={}", field.name(), value));
    }
}

impl<S: Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() == "memoize" {
            assert_eq!(*attrs.metadata().level(), tracing::Level::DEBUG);
            let mut fields = Vec::new();
            attrs.record(&mut Fields(&mut fields));
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(fields);
        }
    }

    fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(last) = self.0.lock().unwrap_or_else(|p| p.into_inner()).last_mut() {
            values.record(&mut Fields(last));
        }
    }
}

#[test]
fn each_call_runs_in_a_debug_span_saying_how_it_was_served() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let server = common::server();
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let cache = common::cache(&server).await;
            watched(&cache, 1).await;
            watched(&cache, 1).await;
        })
    });
    let spans = spans.0.lock().unwrap().clone();
    let path = "function=observability::watched";
    assert_eq!(
        spans,
        vec![
            vec![path.to_string(), "outcome=miss".into()],
            vec![path.to_string(), "outcome=hit".into()],
        ]
    );
}

#[cfg(feature = "metrics")]
#[test]
fn counters_are_exported_through_metrics() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let server = common::server();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let cache = common::cache(&server).await;
            for _ in 0..3 {
                watched(&cache, 2).await;
            }
        })
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let calls = |outcome: &str| {
        snapshot
            .iter()
            .find(|(k, ..)| {
                let key = k.key();
                key.name() == "mcache_registry_calls_total"
                    && key
                        .labels()
                        .any(|l| l.key() == "function" && l.value() == "observability::watched")
                    && key
                        .labels()
                        .any(|l| l.key() == "outcome" && l.value() == outcome)
            })
            .map(|(.., v)| match v {
                DebugValue::Counter(n) => *n,
                other => panic!("{other:?}"),
            })
    };
    assert_eq!(calls("miss"), Some(1));
    assert_eq!(calls("hit"), Some(2));
}
