//! One rewrite of a frame at a time, swarm-wide.
//!
//! A rewrite is a commit that removes cells: an overwrite, `UPDATE`,
//! `DELETE`, `MERGE`, `OPTIMIZE`, `RESTORE`, a transaction block's rewrite.
//! Two that run at once must not both commit, or rows are duplicated (the
//! compacted copy of a cell beside the rows an `UPDATE` rewrote from it).
//! delta-rs 1.1 does not always see that conflict: it ignores removals
//! marked `dataChange: false`, which compactions write, when checking two
//! commits that remove the same cell. So each rewrite holds the frame's
//! lease, `_apiary/rewrites/{hive}.{box}.{frame}.json`, created with a
//! conditional put, from before it reads the frame until after it commits.
//! Appends take no lease and never wait.
//!
//! A lease names its holder and an expiry; a holder that died leaves one
//! that expires ([`LEASE_TIME`]) and is then taken over.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::path::Path;

use crate::error::{Error, Result};
use crate::frame::{FrameName, Frames};
use crate::root::{Created, StorageRoot};

const LEASE_DIR: &str = "_apiary/rewrites";
/// How long a lease holds without being released.
const LEASE_TIME: Duration = Duration::from_secs(15 * 60);
/// How long a rewrite waits for another to finish.
const WAIT: Duration = Duration::from_secs(120);

/// A held lease; [`Lease::release`] gives it back.
pub(crate) struct Lease {
    root: StorageRoot,
    key: Path,
    token: String,
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
        let key = root.key(&format!(
            "{LEASE_DIR}/{}.{}.{}.json",
            name.hive, name.boxname, name.frame
        ));
        let token = uuid::Uuid::new_v4().to_string();
        let deadline = Instant::now() + WAIT;
        let mut attempt = 0u32;
        loop {
            let expires_at_ms = now_ms() + LEASE_TIME.as_millis() as u64;
            let body = serde_json::json!({ "token": token, "expires_at_ms": expires_at_ms });
            let created = root.put_if_absent(&key, Bytes::from(body.to_string()));
            if created.await? == Created::Yes {
                return Ok(Lease { root, key, token });
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
    pub(crate) async fn release(self) {
        let ours = match self.root.get(&self.key).await {
            Ok(Some(held)) => serde_json::from_slice::<serde_json::Value>(&held)
                .is_ok_and(|v| v["token"].as_str() == Some(self.token.as_str())),
            _ => false,
        };
        if ours {
            if let Err(e) = self.root.delete(&self.key).await {
                tracing::warn!(key = %self.key, error = %e, "cannot release a rewrite lease; it expires on its own");
            }
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
