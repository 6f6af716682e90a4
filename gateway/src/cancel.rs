//! CancelRequest and `statement_timeout` for the whole of a query.
//!
//! pgwire stops a query's handler when a CancelRequest arrives, but a
//! handler returns once the first batch is ready and the rest of the rows
//! stream afterwards. So the gateway also keeps a cancel signal per
//! connection, fired by the same CancelRequest, and stops a streaming
//! result with SQLSTATE 57014 when it fires or the statement's deadline
//! passes. Dropping the stream stops the engine's work.
//!
//! The same registry answers `pg_cancel_backend(pid)` and
//! `pg_terminate_backend(pid)` from another connection, and lists the
//! connections' [`Activity`] for `pg_stat_activity`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{stream, Stream, StreamExt};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::ConnectionManager;
use pgwire::error::PgWireResult;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::activity::Activity;
use crate::sqlstate::error;

/// A connection's identity in CancelRequests: its process id and secret key.
type Key = (i32, Bytes);

/// One open connection: its cancel signal and what it is doing.
#[derive(Debug)]
struct Registered {
    signal: watch::Sender<u64>,
    activity: Arc<Activity>,
}

/// The cancel signals of a node's open connections, beside pgwire's
/// (which stops a statement's handler before its first row).
#[derive(Debug, Default)]
pub struct Cancels {
    connections: Mutex<HashMap<Key, Registered>>,
    pgwire: Arc<ConnectionManager>,
}

impl Cancels {
    pub fn new(pgwire: Arc<ConnectionManager>) -> Self {
        Cancels {
            connections: Mutex::default(),
            pgwire,
        }
    }

    /// Entries are only inserted and removed whole, so a lock poisoned by a
    /// panic elsewhere still holds usable state.
    fn connections(&self) -> MutexGuard<'_, HashMap<Key, Registered>> {
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The signal for the connection with this process id and secret key,
    /// registered with its activity until the returned value is dropped.
    pub fn register(
        self: &Arc<Self>,
        pid: i32,
        secret: Bytes,
        activity: Arc<Activity>,
    ) -> CancelSignal {
        let (signal, receiver) = watch::channel(0);
        let key = (pid, secret);
        self.connections()
            .insert(key.clone(), Registered { signal, activity });
        CancelSignal {
            receiver,
            registration: Some((self.clone(), key)),
        }
    }

    /// Fires the signal of the connection a CancelRequest names.
    fn cancel(&self, pid: i32, secret: Bytes) {
        if let Some(registered) = self.connections().get(&(pid, secret)) {
            registered.signal.send_modify(|count| *count += 1);
        }
    }

    /// Every open connection's activity.
    pub fn activities(&self) -> Vec<Arc<Activity>> {
        self.connections()
            .values()
            .map(|registered| registered.activity.clone())
            .collect()
    }

    /// `pg_cancel_backend(pid)`: stops the statement the connection with
    /// this process id is running, as its own CancelRequest would. False
    /// when no connection of this node has the id.
    pub fn cancel_backend(&self, pid: i32) -> bool {
        let Some((pid, secret)) = self.connections().keys().find(|(p, _)| *p == pid).cloned()
        else {
            return false;
        };
        self.cancel(pid, secret.clone());
        let pgwire = self.pgwire.clone();
        tokio::spawn(async move {
            pgwire.cancel(pid, &SecretKey::Bytes(secret)).await;
        });
        true
    }

    /// `pg_terminate_backend(pid)`: cancels the connection's statement and
    /// ends the connection at its next message (57P01, as Postgres).
    pub fn terminate_backend(&self, pid: i32) -> bool {
        let activity = self
            .connections()
            .iter()
            .find(|((p, _), _)| *p == pid)
            .map(|(_, registered)| registered.activity.clone());
        match activity {
            Some(activity) => {
                activity.terminate();
                self.cancel_backend(pid)
            }
            None => false,
        }
    }
}

/// One connection's cancel signal.
#[derive(Debug)]
pub struct CancelSignal {
    receiver: watch::Receiver<u64>,
    registration: Option<(Arc<Cancels>, Key)>,
}

impl CancelSignal {
    /// A signal no CancelRequest can reach (for connections without a key).
    pub fn unregistered() -> Self {
        let (_, receiver) = watch::channel(0);
        CancelSignal {
            receiver,
            registration: None,
        }
    }

    /// Completes at the first cancel after this call.
    fn next_cancel(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.receiver.clone();
        receiver.mark_unchanged();
        async move {
            if receiver.changed().await.is_err() {
                // The connection is gone; nothing will cancel any more.
                std::future::pending::<()>().await;
            }
        }
    }

    /// `rows` until the next cancel or `deadline`, then one 57014 error.
    pub fn stop_on_cancel<S, T>(
        &self,
        rows: S,
        deadline: Option<Instant>,
    ) -> impl Stream<Item = PgWireResult<T>> + Send + 'static
    where
        S: Stream<Item = PgWireResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        let cancel = self.next_cancel();
        let stop = Box::pin(async move {
            tokio::select! {
                _ = cancel => "canceling statement due to user request",
                _ = sleep_until(deadline) => "canceling statement due to statement timeout",
            }
        });
        stream::unfold(Some((rows.boxed(), stop)), |state| async move {
            let (mut rows, mut stop) = state?;
            tokio::select! {
                biased;
                reason = &mut stop => Some((Err(error("57014", reason)), None)),
                row = rows.next() => row.map(|row| (row, Some((rows, stop)))),
            }
        })
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl Drop for CancelSignal {
    fn drop(&mut self) {
        if let Some((cancels, key)) = self.registration.take() {
            cancels.connections().remove(&key);
        }
    }
}

/// pgwire's cancel handling plus the connection's own signal.
pub struct CancelQueries {
    pub cancels: Arc<Cancels>,
}

#[async_trait]
impl CancelHandler for CancelQueries {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.cancels
            .cancel(request.pid, request.secret_key.to_bytes());
        self.cancels
            .pgwire
            .cancel(request.pid, &request.secret_key)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> impl Stream<Item = PgWireResult<u32>> + Send + 'static {
        stream::iter(0..).then(|i| async move {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            Ok(i)
        })
    }

    #[tokio::test]
    async fn a_cancel_ends_the_stream_with_57014_and_unregisters_on_drop() {
        let cancels = Arc::new(Cancels::default());
        let client = "127.0.0.1:5000".parse().unwrap();
        let activity = Arc::new(Activity::new(7, "analyst", "default", "", client));
        let signal = cancels.register(7, Bytes::from_static(b"key"), activity);
        let mut stream = Box::pin(signal.stop_on_cancel(rows(), None));
        assert_eq!(stream.next().await.unwrap().unwrap(), 0);
        cancels.cancel(7, Bytes::from_static(b"other"));
        assert_eq!(stream.next().await.unwrap().unwrap(), 1);
        cancels.cancel(7, Bytes::from_static(b"key"));
        let stopped = stream.next().await.unwrap().unwrap_err().to_string();
        assert!(stopped.contains("user request"), "{stopped}");
        assert!(stream.next().await.is_none());
        drop(signal);
        assert!(cancels.connections().is_empty());
    }

    #[tokio::test]
    async fn a_deadline_ends_the_stream_with_the_timeout_message() {
        let signal = CancelSignal::unregistered();
        let deadline = Instant::now() + std::time::Duration::from_millis(30);
        let results: Vec<_> = signal
            .stop_on_cancel(rows(), Some(deadline))
            .collect()
            .await;
        let last = results.last().unwrap().as_ref().unwrap_err().to_string();
        assert!(last.contains("statement timeout"), "{last}");
        assert!(results.len() > 1);
    }
}
