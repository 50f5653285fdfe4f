//! [`Waiters`]: who is waiting for which reply, and until when.
//!
//! An adapter keeps one per connection: each request id with the handle that completes its
//! caller (a oneshot sender, say) and an optional deadline. Replies are matched by id; a
//! caller whose deadline passes is handed back to be failed, and its request is abandoned in
//! the [`Connection`], which then reads and drops its reply. Runtime-neutral: no clock, no
//! channel type.

use crate::connection::{Connection, RequestId};
use std::collections::VecDeque;
use std::time::Instant;

/// Callers waiting for replies, in request order.
#[derive(Debug)]
pub struct Waiters<T> {
    queue: VecDeque<(RequestId, Option<Instant>, T)>,
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Waiters {
            queue: VecDeque::new(),
        }
    }
}

impl<T> Waiters<T> {
    /// Records a caller. Ids must increase, and deadlines must not decrease from one caller to
    /// the next (one timeout for every request, measured from when it was sent).
    pub fn push(&mut self, id: RequestId, deadline: Option<Instant>, reply: T) {
        self.queue.push_back((id, deadline, reply));
    }

    /// The caller of `id`, if it is still waiting. Callers of earlier ids that are still in
    /// the queue are dropped: their requests were abandoned.
    pub fn take(&mut self, id: RequestId) -> Option<T> {
        while self.queue.front().is_some_and(|(w, _, _)| *w < id) {
            self.queue.pop_front();
        }
        match self.queue.front() {
            Some((w, _, _)) if *w == id => self.queue.pop_front().map(|(_, _, r)| r),
            _ => None,
        }
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.iter().find_map(|(_, d, _)| *d)
    }

    /// Callers whose deadline is at or before `now`: removed, their requests abandoned in
    /// `conn`, and their handles returned to be failed.
    pub fn expire(&mut self, now: Instant, conn: &mut Connection) -> Vec<T> {
        let mut expired = Vec::new();
        let mut i = 0;
        while i < self.queue.len() {
            match self.queue[i].1 {
                Some(d) if d <= now => {
                    if let Some((id, _, reply)) = self.queue.remove(i) {
                        conn.abandon(id);
                        expired.push(reply);
                    }
                }
                Some(_) => break,
                None => i += 1,
            }
        }
        expired
    }

    /// Every caller still waiting (when the connection is lost).
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.queue.drain(..).map(|(_, _, r)| r)
    }

    /// How many callers are waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nobody is waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Key, Request, Response};
    use std::time::Duration;

    fn get(conn: &mut Connection, k: &str) -> RequestId {
        conn.send(Request::Retrieve(crate::text::request::Retrieve {
            command: crate::text::request::RetrieveCommand::Get,
            keys: vec![Key::new(k).unwrap()],
        }))
        .unwrap()
    }

    #[test]
    fn expired_callers_are_abandoned_and_later_replies_still_match() {
        let t0 = Instant::now();
        let mut conn = Connection::default();
        let mut w = Waiters::default();
        let a = get(&mut conn, "a");
        let b = get(&mut conn, "b");
        w.push(a, Some(t0 + Duration::from_millis(10)), "a");
        w.push(b, Some(t0 + Duration::from_millis(20)), "b");
        assert_eq!(w.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert!(w.expire(t0, &mut conn).is_empty());
        assert_eq!(
            w.expire(t0 + Duration::from_millis(15), &mut conn),
            vec!["a"]
        );
        let n = conn.transmit().len();
        conn.advance_transmit(n, t0);
        conn.receive(
            b"VALUE a 0 1\r\nA\r\nEND\r\nVALUE b 0 1\r\nB\r\nEND\r\n",
            t0,
        );
        // a's reply was read and dropped; b's comes to b.
        let (id, reply) = conn.poll_response().unwrap();
        assert_eq!(id, b);
        assert!(matches!(reply, Ok(Response::Values(v)) if &v[0].data[..] == b"B"));
        assert_eq!(w.take(id), Some("b"));
        assert!(conn.poll_response().is_none());
        assert!(w.is_empty());
    }

    #[test]
    fn take_skips_callers_of_abandoned_requests() {
        let mut conn = Connection::default();
        let mut w = Waiters::default();
        let a = get(&mut conn, "a");
        let b = get(&mut conn, "b");
        w.push(a, None, 1);
        w.push(b, None, 2);
        assert_eq!(w.take(b), Some(2));
        assert_eq!(w.take(a), None);
        assert_eq!(w.len(), 0);
    }
}
