//! One rewrite of a frame at a time, swarm-wide.
//!
//! A rewrite is a commit that removes cells: an overwrite, `UPDATE`,
//! `DELETE`, `MERGE`, `OPTIMIZE`, `RESTORE`, a transaction block's rewrite.
//! Two that run at once must not both commit, or rows are duplicated (the
//! compacted copy of a cell beside the rows an `UPDATE` rewrote from it).
//! delta-rs 1.1 does not always see that conflict: it ignores removals
//! marked `dataChange: false`, which compactions write, when checking two
//! commits that remove the same cell. So each rewrite holds the frame's
//! lease, `_apiary/rewrites/{hive}.{box}.{frame}.json` (named after the
//! frame's directory, which a renamed frame keeps), created with a
//! conditional put, from before it reads the frame until after it commits.
//! Appends take no lease and never wait.
//!
//! A lease names its holder and an expiry, which the holder pushes forward
//! while it works. A holder that died stops doing so, and its lease expires
//! ([`LEASE_TIME`]) and is taken over; a statement cancelled mid-rewrite
//! gives its lease back as it is dropped.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::path::Path;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::frame::{FrameName, Frames};
use crate::root::{Created, StorageRoot};

const LEASE_DIR: &str = "_apiary/rewrites";
/// How long a lease holds past its holder's last renewal.
const LEASE_TIME: Duration = Duration::from_secs(30);
/// How often a holder renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How long a rewrite waits for another to finish.
const WAIT: Duration = Duration::from_secs(120);

/// A held lease, renewed in the background until [`Lease::release`] gives
/// it back or it is dropped.
pub(crate) struct Lease {
    root: StorageRoot,
    key: Path,
    token: String,
    renewal: JoinHandle<()>,
    released: bool,
}

impl Frames {
    /// Runs `work` (which reads the frame and commits a rewrite) while
    /// holding the frame's rewrite lease.
    pub(crate) async fn rewriting<T>(
        &self,
        name: &FrameName,
        work: impl Future<Output = T>,
    ) -> Result<T> {
        let lease = self.lease(name).await?;
        let done = work.await;
        lease.release().await;
        Ok(done)
    }

    /// Waits for the frame's rewrite lease and takes it.
    pub(crate) async fn lease(&self, name: &FrameName) -> Result<Lease> {
        let root = self.root().clone();
        // Keyed by the directory: a rewrite under a frame's old name and
        // one under its new name take turns.
        let key = root.key(&format!(
            "{LEASE_DIR}/{}.json",
            name.dir().replace('/', ".")
        ));
        let token = uuid::Uuid::new_v4().to_string();
        let deadline = Instant::now() + WAIT;
        let mut attempt = 0u32;
        loop {
            let created = root.put_if_absent(&key, lease_body(&token));
            if created.await? == Created::Yes {
                let renewal = tokio::spawn(renew(root.clone(), key.clone(), token.clone()));
                return Ok(Lease {
                    root,
                    key,
                    token,
                    renewal,
                    released: false,
                });
            }
            // A holder that died leaves an expired lease behind.
            if let Some(held) = root.get(&key).await? {
                let expired = serde_json::from_slice::<serde_json::Value>(&held)
                    .ok()
                    .and_then(|v| v["expires_at_ms"].as_u64())
                    .is_none_or(|at| at < now_ms());
                if expired {
                    tracing::warn!(frame = %name, "taking over an expired rewrite lease");
                    root.delete(&key).await?;
                    continue;
                }
            }
            if Instant::now() > deadline {
                return Err(Error::Conflict {
                    frame: name.to_string(),
                    detail: format!(
                        "another statement has been rewriting the frame for over {} s; try again",
                        WAIT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(20 << attempt.min(5))).await;
            attempt += 1;
        }
    }
}

impl Lease {
    /// Gives the lease back, unless it expired and another holder took it.
    pub(crate) async fn release(mut self) {
        self.renewal.abort();
        self.released = true;
        give_back(&self.root, &self.key, &self.token).await;
    }
}

impl Drop for Lease {
    /// A rewrite cancelled while it held the lease (a cancel request,
    /// `statement_timeout`) gives it back as well.
    fn drop(&mut self) {
        self.renewal.abort();
        if !self.released {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let (root, key, token) = (self.root.clone(), self.key.clone(), self.token.clone());
                runtime.spawn(async move { give_back(&root, &key, &token).await });
            }
        }
    }
}

fn lease_body(token: &str) -> Bytes {
    let expires_at_ms = now_ms() + LEASE_TIME.as_millis() as u64;
    Bytes::from(serde_json::json!({ "token": token, "expires_at_ms": expires_at_ms }).to_string())
}

async fn holds(root: &StorageRoot, key: &Path, token: &str) -> bool {
    match root.get(key).await {
        Ok(Some(held)) => serde_json::from_slice::<serde_json::Value>(&held)
            .is_ok_and(|v| v["token"].as_str() == Some(token)),
        _ => false,
    }
}

/// Pushes the lease's expiry forward every [`RENEW_EVERY`] while it is
/// still ours.
async fn renew(root: StorageRoot, key: Path, token: String) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        if !holds(&root, &key, &token).await {
            return;
        }
        if let Err(e) = root.put(&key, lease_body(&token)).await {
            tracing::warn!(key = %key, error = %e, "cannot renew a rewrite lease; trying again");
        }
    }
}

async fn give_back(root: &StorageRoot, key: &Path, token: &str) {
    if holds(root, key, token).await {
        if let Err(e) = root.delete(key).await {
            tracing::warn!(key = %key, error = %e, "cannot release a rewrite lease; it expires on its own");
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease_expiry(bytes: &[u8]) -> u64 {
        serde_json::from_slice::<serde_json::Value>(bytes).unwrap()["expires_at_ms"]
            .as_u64()
            .unwrap()
    }

    #[tokio::test]
    async fn a_held_lease_is_renewed_and_a_dropped_one_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = StorageRoot::parse(dir.path().to_str().unwrap()).unwrap();
        let frames = Frames::new(root.clone());
        let name = FrameName::new("h", "b", "f").unwrap();
        let key = root.key("_apiary/rewrites/h.b.f.json");

        let lease = frames.lease(&name).await.unwrap();
        let first = lease_expiry(&root.get(&key).await.unwrap().unwrap());
        tokio::time::sleep(RENEW_EVERY + Duration::from_secs(1)).await;
        let renewed = lease_expiry(&root.get(&key).await.unwrap().unwrap());
        assert!(renewed > first, "{renewed} <= {first}");
        lease.release().await;
        assert!(root.get(&key).await.unwrap().is_none());

        // Dropped without release (its statement was cancelled): given back.
        drop(frames.lease(&name).await.unwrap());
        let deadline = Instant::now() + Duration::from_secs(5);
        while root.get(&key).await.unwrap().is_some() {
            assert!(Instant::now() < deadline, "the dropped lease is still held");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // An expired lease (its holder died) is taken over at once.
        let stale = serde_json::json!({ "token": "dead", "expires_at_ms": now_ms() - 1 });
        root.put(&key, Bytes::from(stale.to_string()))
            .await
            .unwrap();
        let taken = tokio::time::timeout(Duration::from_secs(5), frames.lease(&name)).await;
        taken.unwrap().unwrap().release().await;
    }
}
