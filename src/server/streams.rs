//! HTTP/2 streams run inside their connection's task.
//!
//! hyper's HTTP/2 server hands every new stream's future to an executor.
//! With tokio's, each stream is a task of its own: an allocation, a trip
//! through the scheduler, and a cross-task wake between the connection (which
//! reads the frames) and the stream (which answers). [`Streams`] is the
//! executor instead: a stream's future goes to the connection that accepted
//! it, which polls it with its own waker. A connection's streams are then
//! served as HTTP/1.1 requests are, all in one task, and end with it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_util::stream::{FuturesUnordered, StreamExt};

type StreamFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The executor given to hyper: it only queues. hyper calls it while the
/// connection is polled, so the queue is emptied right after, in the same
/// poll of the connection's task (see [`Streams::poll`]).
#[derive(Clone, Default)]
pub struct Inbox(Arc<Mutex<Vec<StreamFuture>>>);

impl<F> hyper::rt::Executor<F> for Inbox
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::pin(fut));
    }
}

/// The streams of one connection.
#[derive(Default)]
pub struct Streams {
    inbox: Inbox,
    running: FuturesUnordered<StreamFuture>,
}

impl Streams {
    /// The executor to build the connection with.
    pub fn inbox(&self) -> Inbox {
        self.inbox.clone()
    }

    /// Takes the streams hyper queued and polls every stream that was woken.
    /// Never ready: call it after each poll of the connection (a stream is
    /// queued only while the connection is polled, and a queued stream is
    /// polled here at once).
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            {
                let mut queued = self.inbox.0.lock().unwrap_or_else(PoisonError::into_inner);
                self.running.extend(queued.drain(..));
            }
            match self.running.poll_next_unpin(cx) {
                // One stream ended: there may be more ready, or queued.
                Poll::Ready(Some(())) => continue,
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Streams started and not yet finished.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Executor;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn queued_streams_run_in_the_polling_task_until_done() {
        let mut streams = Streams::default();
        let done = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let d = done.clone();
        streams.inbox().execute(async move {
            let _ = rx.await;
            d.fetch_add(1, Ordering::SeqCst);
        });
        let d = done.clone();
        streams.inbox().execute(async move {
            d.fetch_add(1, Ordering::SeqCst);
        });
        // First poll: the ready stream finishes, the waiting one stays.
        assert!(std::future::poll_fn(|cx| Poll::Ready(streams.poll(cx)))
            .await
            .is_pending());
        assert_eq!(done.load(Ordering::SeqCst), 1);
        assert_eq!(streams.len(), 1);
        tx.send(()).expect("receiver alive");
        // Woken through the connection's waker: polling again finishes it.
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            std::future::poll_fn(|cx| {
                let _ = streams.poll(cx);
                if streams.is_empty() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }),
        )
        .await
        .expect("the stream finished once woken");
        assert_eq!(done.load(Ordering::SeqCst), 2);
    }
}
