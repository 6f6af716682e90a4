//! What coordinators and workers exchange through the bucket.
//!
//! A coordinator puts a [`TaskSpec`] in the assignee's inbox
//! (`_apiary/inbox/{node}/…json`). The worker deletes it (claiming it), runs
//! the fragment, writes the result as Arrow IPC at the task's result key with
//! a conditional put (a re-run cannot create a second result), and then
//! writes a [`TaskStatus`] per attempt, which is what the coordinator polls.
//!
//! Every step may lose its reply (the request took effect, the answer did
//! not arrive) and every step is safe to repeat: puts write the same bytes,
//! a result put is conditional, deleting a deleted key is no error, and a
//! task run twice writes the same result. So each step is retried a few
//! times ([`with_retries`]) before it counts as failed, and a worker whose
//! claim failed runs the task anyway (see `worker.rs`): a lost reply costs
//! a retry interval, not the task's lease.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where inboxes live, relative to the root.
pub const INBOX_DIR: &str = "_apiary/inbox";
/// Where queries keep their partial results, relative to the root.
pub const QUERIES_DIR: &str = "_apiary/queries";

/// One task of one stage of a query, as handed to a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSpec {
    pub query_id: String,
    pub stage: usize,
    pub task: usize,
    pub attempt: u32,
    pub coordinator: String,
    /// The stage plan over this task's cells, serialized with
    /// datafusion-proto and base64-encoded.
    pub fragment: String,
    pub cells: usize,
    pub bytes: u64,
    /// The cells' paths (to count cache hits).
    #[serde(default)]
    pub files: Vec<String>,
    /// The worker skips the task after this instant (wall clock, ms).
    pub deadline_ms: u64,
}

/// The outcome of one attempt, written by the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskStatus {
    pub node_id: String,
    pub attempt: u32,
    /// `None` when the result is at [`TaskSpec::result_key`].
    pub error: Option<String>,
    pub rows: u64,
    pub result_bytes: u64,
    pub cached_cells: usize,
    pub elapsed_ms: u64,
}

impl TaskSpec {
    /// The stage's directory under the query's prefix.
    pub fn stage_dir(query_id: &str, stage: usize) -> String {
        format!("{QUERIES_DIR}/{query_id}/s{stage}")
    }

    pub fn result_key(&self) -> String {
        format!(
            "{}/t{}.arrow",
            Self::stage_dir(&self.query_id, self.stage),
            self.task
        )
    }

    pub fn status_key(&self) -> String {
        format!(
            "{}/{}",
            Self::stage_dir(&self.query_id, self.stage),
            status_file(self.task, self.attempt)
        )
    }

    pub fn inbox_key(&self, node_id: &str) -> String {
        format!(
            "{INBOX_DIR}/{node_id}/{}-s{}-t{}-a{}.json",
            self.query_id, self.stage, self.task, self.attempt
        )
    }
}

/// The file name of an attempt's status.
pub fn status_file(task: usize, attempt: u32) -> String {
    format!("t{task}-a{attempt}.json")
}

/// Parses `t{task}-a{attempt}.json`.
pub fn parse_status_file(name: &str) -> Option<(usize, u32)> {
    let rest = name.strip_prefix('t')?.strip_suffix(".json")?;
    let (task, attempt) = rest.split_once("-a")?;
    Some((task.parse().ok()?, attempt.parse().ok()?))
}

/// Tries of one hand-over step before it counts as failed; with the
/// backoff below they span about 1.5 s, on top of the storage client's own
/// retries.
const STEP_ATTEMPTS: u32 = 4;

/// Runs one idempotent hand-over step, trying again after an error.
pub async fn with_retries<T, E, F, Fut>(step: &str, mut call: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(e) if attempt >= STEP_ATTEMPTS => return Err(e),
            Err(e) => {
                tracing::debug!(step, attempt, error = %e, "storage call failed; trying again");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_file_names_round_trip() {
        assert_eq!(parse_status_file(&status_file(12, 3)), Some((12, 3)));
        assert_eq!(parse_status_file("t1.arrow"), None);
        assert_eq!(parse_status_file("x"), None);
    }

    #[tokio::test]
    async fn a_step_is_retried_until_it_succeeds_or_runs_out() {
        let mut calls = 0;
        let ok: Result<u32, String> = with_retries("test", || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(format!("lost {n}"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(ok, Ok(3));
        let mut calls = 0;
        let failed: Result<(), String> = with_retries("test", || {
            calls += 1;
            async { Err("down".to_string()) }
        })
        .await;
        assert_eq!(failed, Err("down".to_string()));
        assert_eq!(calls, STEP_ATTEMPTS);
    }
}
