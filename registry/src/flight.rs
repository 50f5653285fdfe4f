//! Single flight: identical concurrent calls in one process share one computation.
//!
//! The first caller for a key becomes the leader; later callers follow and wait for what it
//! publishes: the encoded result, `None` when the result cannot be shared (an error that is not
//! cached, a value that does not encode), or, with stale-while-revalidate, a stale value to
//! serve while it recomputes. A leader that is dropped or panics abandons the flight: its
//! followers wake and one of them leads. Nothing here talks to memcached or knows a runtime.

use crate::codec::Encoded;
use event_listener::Event;
use mcache_proto::Key;
use std::collections::hash_map::{Entry, HashMap};
use std::sync::{Arc, Mutex};

/// The flights of one cache handle, by key.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<Key, Arc<Flight>>>,
}

#[derive(Debug, Default)]
pub(crate) struct Flight {
    state: Mutex<State>,
    event: Event,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Running,
    /// Still running, and a value may be served meanwhile: always if it is live (an early
    /// recache), with stale-while-revalidate if it is stale.
    Interim(Arc<Encoded>, bool),
    Done(Option<Arc<Encoded>>),
    Abandoned,
}

/// What a follower gets.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The leader's result, encoded, or `None` when it cannot be shared.
    Done(Option<Arc<Encoded>>),
    /// A value to serve while the leader recomputes (stale, or live during an early recache).
    Stale(Arc<Encoded>),
    /// The leader went away: try again.
    Abandoned,
}

pub(crate) enum Role<'a> {
    Leader(Leader<'a>),
    Follower(Arc<Flight>),
}

impl Flights {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Flight>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leads the flight for `key`, or follows the one already running.
    pub(crate) fn join<'a>(&'a self, key: &'a Key) -> Role<'a> {
        let flight = match self.lock().entry(key.clone()) {
            Entry::Occupied(running) => return Role::Follower(running.get().clone()),
            Entry::Vacant(slot) => slot.insert(Arc::default()).clone(),
        };
        Role::Leader(Leader {
            flights: self,
            key,
            flight,
            finished: false,
        })
    }

    /// Later calls for `key` start a new flight (after an invalidation or a replace: they must
    /// not be handed a result computed before it). Running leaders finish for their followers.
    pub(crate) fn detach(&self, key: &Key) {
        self.lock().remove(key);
    }

    /// [`detach`](Self::detach) for every key.
    pub(crate) fn detach_all(&self) {
        self.lock().clear();
    }

    fn remove_if_current(&self, key: &Key, flight: &Arc<Flight>) {
        let mut map = self.lock();
        // One lookup when the flight is the current one, as it is unless `key` was detached
        // and a new flight started; that one is put back.
        if let Some(current) = map.remove(key) {
            if !Arc::ptr_eq(&current, flight) {
                map.insert(key.clone(), current);
            }
        }
    }
}

impl Flight {
    fn set(&self, state: State) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
        self.event.notify(usize::MAX);
    }

    fn check(&self, take_stale: bool) -> Option<Outcome> {
        match &*self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            State::Running => None,
            State::Interim(e, live) if take_stale || *live => Some(Outcome::Stale(e.clone())),
            State::Interim(..) => None,
            State::Done(r) => Some(Outcome::Done(r.clone())),
            State::Abandoned => Some(Outcome::Abandoned),
        }
    }

    /// Waits for the leader's outcome; with `take_stale`, a stale value ends the wait too.
    pub(crate) async fn wait(&self, take_stale: bool) -> Outcome {
        loop {
            if let Some(o) = self.check(take_stale) {
                return o;
            }
            let listener = self.event.listen();
            if let Some(o) = self.check(take_stale) {
                return o;
            }
            listener.await;
        }
    }
}

/// The leader's side of a flight. Dropping it unfinished abandons the flight.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: &'a Key,
    flight: Arc<Flight>,
    finished: bool,
}

impl Leader<'_> {
    /// Offers followers a value while the computation runs: a `live` one to all, a stale one
    /// to those that take stale values.
    pub(crate) fn publish_interim(&self, value: Arc<Encoded>, live: bool) {
        self.flight.set(State::Interim(value, live));
    }

    /// Hands the result to the followers and ends the flight. With no follower (the flight
    /// is out of the map, so none can join any more) there is nobody to hand it to.
    pub(crate) fn finish(mut self, result: Option<Encoded>) {
        self.finished = true;
        self.flights.remove_if_current(self.key, &self.flight);
        if Arc::strong_count(&self.flight) > 1 {
            self.flight.set(State::Done(result.map(Arc::new)));
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.flights.remove_if_current(self.key, &self.flight);
            self.flight.set(State::Abandoned);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn key() -> Key {
        Key::new("k").unwrap()
    }

    #[tokio::test]
    async fn followers_get_the_leaders_result() {
        let flights = Flights::default();
        let k = key();
        let Role::Leader(leader) = flights.join(&k) else {
            panic!("first caller leads")
        };
        let Role::Follower(f) = flights.join(&k) else {
            panic!("second caller follows")
        };
        let enc = Encoded {
            flags: 1,
            bytes: Bytes::from_static(b"x"),
        };
        leader.finish(Some(enc.clone()));
        assert!(matches!(f.wait(false).await, Outcome::Done(Some(e)) if *e == enc));
        assert!(matches!(flights.join(&k), Role::Leader(_)), "flight ended");
    }

    #[tokio::test]
    async fn dropped_leader_abandons() {
        let flights = Flights::default();
        let k = key();
        let leader = flights.join(&k);
        let Role::Follower(f) = flights.join(&k) else {
            panic!("second caller follows")
        };
        drop(leader);
        assert!(matches!(f.wait(false).await, Outcome::Abandoned));
        assert!(matches!(flights.join(&k), Role::Leader(_)));
    }

    #[tokio::test]
    async fn stale_values_and_detach() {
        let flights = Flights::default();
        let k = key();
        let Role::Leader(leader) = flights.join(&k) else {
            panic!("first caller leads")
        };
        let Role::Follower(f) = flights.join(&k) else {
            panic!("second caller follows")
        };
        let stale = Arc::new(Encoded {
            flags: 1,
            bytes: Bytes::from_static(b"old"),
        });
        leader.publish_interim(stale.clone(), false);
        assert!(matches!(f.wait(true).await, Outcome::Stale(e) if e == stale));
        flights.detach(&k);
        let Role::Leader(second) = flights.join(&k) else {
            panic!("detached: a new flight starts")
        };
        leader.finish(None);
        assert!(matches!(f.wait(false).await, Outcome::Done(None)));
        // The first leader's end does not remove the second flight.
        assert!(matches!(flights.join(&k), Role::Follower(_)));
        drop(second);
    }
}
