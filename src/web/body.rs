//! A deadline on each request's body: it must arrive within `timeout` of its
//! headers, whatever its pace; past that, a long body (an upload) goes on
//! only while its average pace since the headers is at least `min_rate`
//! bytes a second. So a large file from a slow phone still arrives, and a
//! client that dribbles a byte now and then is cut off.
//!
//! The clock is kept here, on the body, rather than on the connection's
//! bytes (`deadlines`): only the body knows where it ends (a length, or
//! chunks), so a body that has all arrived is never timed while the
//! handler works. The serve loop wraps every request's body in a
//! [`TimedBody`]; when one runs out of time, the handler reading it gets an
//! error, and the serve loop answers 408 with `Connection: close` in place
//! of whatever the handler said (see `serve`), so hyper closes the
//! connection after the answer rather than read the rest of the body.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::{error::BoxError, pending::Pending};

/// The pace extension is capped (a year) so a deadline is always a time.
const LONGEST: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyDeadline {
    /// The time every body has, from its headers.
    pub timeout: Duration,
    /// Bytes a second a body must average to go on past `timeout` (0: none may).
    pub min_rate: u64,
}

impl BodyDeadline {
    /// When a body that began at `started` and has brought `received` bytes
    /// runs out of time.
    fn due(&self, started: Instant, received: u64) -> Instant {
        let by_pace = if self.min_rate == 0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(received as f64 / self.min_rate as f64)
                .unwrap_or(LONGEST)
                .min(LONGEST)
        };
        started + self.timeout.max(by_pace)
    }
}

/// Raised by a [`TimedBody`] that ran out of time, and read by whoever
/// answers the request.
#[derive(Debug, Clone, Default)]
pub struct Expired(Arc<AtomicBool>);

impl Expired {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The error a handler reading an expired body gets.
#[derive(Debug, thiserror::Error)]
#[error("the request's body came too slowly")]
pub struct TooSlow;

/// A request body with a deadline (see the module's comment).
pub struct TimedBody<B> {
    inner: B,
    deadline: BodyDeadline,
    started: Instant,
    received: u64,
    /// Armed when the body first has to wait for the client.
    timer: Option<Pin<Box<Sleep>>>,
    expired: Expired,
    /// The connection's place among its client's pending ones, given back
    /// when the body has all arrived (see `pending`).
    pending: Option<Arc<Pending>>,
    /// Ended, by its end, an error, or its deadline: nothing more is read.
    done: bool,
}

impl<B> TimedBody<B> {
    /// Starts the clock now: call it as the request's headers are read.
    pub fn new(inner: B, deadline: BodyDeadline, expired: Expired, pending: Option<Arc<Pending>>) -> Self {
        let started = Instant::now();
        Self { inner, deadline, started, received: 0, timer: None, expired, pending, done: false }
    }

    /// Nothing more comes: the request has arrived, or never will.
    fn end(&mut self) {
        self.done = true;
        if let Some(pending) = self.pending.take() {
            pending.release();
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.end();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.end();
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.end();
                Poll::Ready(None)
            }
            // Waiting for the client: only now does its time matter.
            Poll::Pending => {
                let due = this.deadline.due(this.started, this.received);
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                if timer.deadline() != due {
                    timer.as_mut().reset(due);
                }
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                tracing::info!(received = this.received, "a request's body came too slowly");
                this.end();
                this.expired.set();
                Poll::Ready(Some(Err(TooSlow.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::pending::PendingLimit;
    use tokio::sync::mpsc;

    /// A body whose chunks the test sends when it likes.
    struct Trickle(mpsc::UnboundedReceiver<Bytes>);

    impl Body for Trickle {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
        }
    }

    const DEADLINE: BodyDeadline = BodyDeadline { timeout: Duration::from_secs(30), min_rate: 1000 };

    async fn next(body: &mut TimedBody<Trickle>) -> Option<Result<Frame<Bytes>, BoxError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
    }

    fn timed(deadline: BodyDeadline) -> (mpsc::UnboundedSender<Bytes>, TimedBody<Trickle>, Expired) {
        let (send, receive) = mpsc::unbounded_channel();
        let expired = Expired::default();
        (send, TimedBody::new(Trickle(receive), deadline, expired.clone(), None), expired)
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_comes_runs_out_at_the_timeout() {
        let (_send, mut body, expired) = timed(DEADLINE);
        let started = Instant::now();
        let err = next(&mut body).await.unwrap().unwrap_err();
        assert!(err.is::<TooSlow>());
        assert_eq!(started.elapsed(), DEADLINE.timeout);
        assert!(expired.is_set());
        assert!(next(&mut body).await.is_none(), "nothing after the deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dribbled_body_runs_out_at_the_timeout_whatever_its_pace() {
        let (send, mut body, expired) = timed(DEADLINE);
        let started = Instant::now();
        let dribbler = tokio::spawn(async move {
            while send.send(Bytes::from_static(b"x")).is_ok() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let err = loop {
            match next(&mut body).await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => break e,
                None => panic!("ended"),
            }
        };
        assert!(err.is::<TooSlow>() && expired.is_set());
        assert_eq!(started.elapsed(), DEADLINE.timeout);
        dribbler.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn an_upload_goes_on_past_the_timeout_while_it_keeps_the_pace() {
        let (send, mut body, expired) = timed(DEADLINE);
        let started = Instant::now();
        // 2000 bytes a second for 60 s (twice the timeout), then it stops.
        let uploader = tokio::spawn(async move {
            for _ in 0..60 {
                send.send(Bytes::from(vec![0u8; 2000])).unwrap();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            std::future::pending::<()>().await;
        });
        let mut received = 0;
        let err = loop {
            match next(&mut body).await {
                Some(Ok(frame)) => received += frame.into_data().unwrap().len(),
                Some(Err(e)) => break e,
                None => panic!("ended"),
            }
        };
        assert_eq!(received, 120_000, "all of it arrived past the timeout");
        assert!(err.is::<TooSlow>() && expired.is_set());
        // Once stopped, 120,000 bytes at 1000 a second last 120 s from the start.
        assert_eq!(started.elapsed(), Duration::from_secs(120));
        uploader.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_ends_in_time_is_not_timed_after() {
        let (send, mut body, expired) = timed(DEADLINE);
        send.send(Bytes::from_static(b"all of it")).unwrap();
        drop(send);
        assert!(next(&mut body).await.unwrap().is_ok());
        assert!(next(&mut body).await.is_none());
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(next(&mut body).await.is_none() && !expired.is_set());
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_has_arrived_is_no_longer_pending() {
        let limit = PendingLimit::new(1);
        let client: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let pending = limit.admit(client);
        let (send, receive) = mpsc::unbounded_channel();
        let mut body = TimedBody::new(Trickle(receive), DEADLINE, Expired::default(), pending.clone());
        send.send(Bytes::from_static(b"half")).unwrap();
        assert!(next(&mut body).await.unwrap().is_ok());
        assert_eq!(limit.of(client), 1, "more may come");
        drop(send);
        assert!(next(&mut body).await.is_none());
        assert_eq!(limit.of(client), 0, "all of it came");
        assert!(pending.is_some(), "the connection still holds its place, released");
    }

    #[test]
    fn with_no_minimum_rate_the_timeout_is_all_there_is() {
        let started = Instant::now();
        let strict = BodyDeadline { min_rate: 0, ..DEADLINE };
        assert_eq!(strict.due(started, u64::MAX), started + DEADLINE.timeout);
        assert_eq!(DEADLINE.due(started, 45_000), started + Duration::from_secs(45));
        assert_eq!(DEADLINE.due(started, u64::MAX), started + LONGEST);
    }
}
