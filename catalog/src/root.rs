//! The storage root: where a swarm keeps everything.
//!
//! A root is a local directory (`/path`, `file:///path`), an S3 bucket and
//! prefix (`s3://bucket/prefix`, any S3-compatible server through
//! `AWS_ENDPOINT_URL`), `gs://bucket/prefix` or `az://container/prefix`.
//! Every object access of Apiary's own metadata goes through [`StorageRoot`],
//! which owns the prefix, so no other code builds object paths by hand. Frames
//! are Delta tables under the same root; [`StorageRoot::frame_url`] and
//! [`StorageRoot::delta_options`] give delta-rs what it needs to open them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};
use url::Url;

use crate::error::{Error, Result};

/// Outcome of a conditional create.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    /// This call created the object.
    Yes,
    /// An object already existed at that key.
    AlreadyExists,
}

/// A parsed, connected storage root.
#[derive(Debug, Clone)]
pub struct StorageRoot {
    /// The root as a URL with a trailing slash, e.g. `s3://bucket/swarm/`.
    url: Url,
    store: Arc<dyn ObjectStore>,
    /// The key prefix inside `store` under which this root lives.
    prefix: Path,
    /// Options handed to delta-rs so frames use the same endpoint and credentials.
    delta_options: HashMap<String, String>,
}

impl std::fmt::Display for StorageRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.url)
    }
}

impl StorageRoot {
    /// Parses a root URI and builds its object store. S3 settings come from
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    /// `AWS_ENDPOINT_URL` (plain `http://` allowed) and `AWS_REGION`
    /// (default `us-east-1`). Nothing is read or written yet; call
    /// [`StorageRoot::check`] to verify access.
    pub fn parse(uri: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidRoot {
            uri: uri.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = uri.trim();
        if trimmed.is_empty() {
            return Err(invalid("the URI is empty"));
        }
        if !trimmed.contains("://") {
            return Self::local(std::path::Path::new(trimmed), uri);
        }
        let url = Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
        if url.cannot_be_a_base() {
            return Err(invalid("the URI has no path; write scheme://bucket/prefix"));
        }
        match url.scheme() {
            "file" => {
                let path = url
                    .to_file_path()
                    .map_err(|_| invalid("not a local file path"))?;
                Self::local(&path, uri)
            }
            "s3" | "s3a" => Self::s3(url, uri),
            "gs" | "az" | "abfs" | "abfss" | "azure" => Self::cloud(url, uri),
            other => Err(invalid(&format!(
                "unsupported scheme {other:?}; use a local path, file://, s3://, gs:// or az://"
            ))),
        }
    }

    fn local(path: &std::path::Path, uri: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidRoot {
            uri: uri.to_string(),
            reason,
        };
        std::fs::create_dir_all(path)
            .map_err(|e| invalid(format!("cannot create directory {}: {e}", path.display())))?;
        let abs = std::fs::canonicalize(path)
            .map_err(|e| invalid(format!("cannot resolve {}: {e}", path.display())))?;
        let url = Url::from_directory_path(&abs)
            .map_err(|_| invalid(format!("{} is not an absolute path", abs.display())))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&abs)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(StorageRoot {
            url,
            store: Arc::new(store),
            prefix: Path::default(),
            delta_options: HashMap::new(),
        })
    }

    fn s3(url: Url, uri: &str) -> Result<Self> {
        let bucket = url.host_str().unwrap_or_default().to_string();
        if bucket.is_empty() {
            return Err(Error::InvalidRoot {
                uri: uri.to_string(),
                reason: "no bucket name; write s3://bucket/prefix".into(),
            });
        }
        let mut options = HashMap::new();
        for key in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
        ] {
            if let Ok(value) = std::env::var(key) {
                if !value.is_empty() {
                    options.insert(key.to_string(), value);
                }
            }
        }
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "us-east-1".to_string());
        options.insert("AWS_REGION".into(), region);
        if options
            .get("AWS_ENDPOINT_URL")
            .is_some_and(|e| e.starts_with("http://"))
        {
            options.insert("AWS_ALLOW_HTTP".into(), "true".into());
        }

        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&bucket)
            .with_retry(short_retry());
        for (key, value) in &options {
            if let Ok(config_key) = key.to_ascii_lowercase().parse() {
                builder = builder.with_config(config_key, value);
            }
        }
        let store = builder.build().map_err(|e| Error::InvalidRoot {
            uri: uri.to_string(),
            reason: e.to_string(),
        })?;
        Ok(StorageRoot {
            prefix: Path::from(url.path().trim_matches('/')),
            url: with_trailing_slash(url),
            store: Arc::new(store),
            delta_options: options,
        })
    }

    fn cloud(url: Url, uri: &str) -> Result<Self> {
        let options: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("GOOGLE_") || k.starts_with("AZURE_"))
            .collect();
        let (store, prefix) =
            object_store::parse_url_opts(&url, options.iter()).map_err(|e| Error::InvalidRoot {
                uri: uri.to_string(),
                reason: e.to_string(),
            })?;
        Ok(StorageRoot {
            url: with_trailing_slash(url),
            store: Arc::from(store),
            prefix,
            delta_options: options,
        })
    }

    /// The root URL, always ending in `/`.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The object store for reading cells by absolute key, for roots that are
    /// not local (local files are served by DataFusion's own file store).
    pub fn remote_store(&self) -> Option<Arc<dyn ObjectStore>> {
        (self.url.scheme() != "file").then(|| self.store.clone())
    }

    /// Options for delta-rs (`DeltaTableBuilder::with_storage_options`).
    pub fn delta_options(&self) -> &HashMap<String, String> {
        &self.delta_options
    }

    /// The URL of the directory at `segments` (already validated names).
    pub fn dir_url(&self, segments: &[&str]) -> Url {
        let mut url = self.url.clone();
        // Always hierarchical: `parse` refuses URLs that cannot be a base.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
            path.push("");
        }
        url
    }

    /// The object key for a path relative to the root, e.g. `_apiary/registry/x.json`.
    pub fn key(&self, relative: &str) -> Path {
        relative
            .split('/')
            .filter(|s| !s.is_empty())
            .fold(self.prefix.clone(), |p, s| p.join(s))
    }

    /// Makes sure the root can be listed and written, so a missing bucket or
    /// wrong credentials surface now, with the root's name, instead of on the
    /// first query.
    pub async fn check(&self) -> Result<()> {
        let probe = self.key("_apiary");
        let listing = self.store.list_with_delimiter(Some(&probe)).await;
        listing.map_err(|e| Error::StorageUnavailable {
            root: self.url.to_string(),
            detail: explain(&e),
        })?;
        Ok(())
    }

    /// Creates `key` only if nothing is there (`If-None-Match: *` on S3,
    /// an exclusive create locally).
    pub async fn put_if_absent(&self, key: &Path, bytes: Bytes) -> Result<Created> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(key, PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(Created::Yes),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(Created::AlreadyExists),
            Err(e) => Err(self.storage_error(e)),
        }
    }

    /// Writes `key`, replacing whatever is there. Object stores make the new
    /// object visible whole (locally: a staged file renamed into place), so a
    /// reader never sees half of it.
    pub async fn put(&self, key: &Path, bytes: Bytes) -> Result<()> {
        self.store
            .put(key, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.storage_error(e))
    }

    /// Deletes one object; deleting what is not there is not an error.
    pub async fn delete(&self, key: &Path) -> Result<()> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.storage_error(e)),
        }
    }

    /// Reads a whole object; `None` if it does not exist.
    pub async fn get(&self, key: &Path) -> Result<Option<Bytes>> {
        match self.store.get(key).await {
            Ok(result) => Ok(Some(
                result.bytes().await.map_err(|e| self.storage_error(e))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.storage_error(e)),
        }
    }

    /// Lists objects under `dir` whose keys sort after `offset` (all if `None`).
    pub async fn list_after(&self, dir: &Path, offset: Option<&Path>) -> Result<Vec<ObjectMeta>> {
        let stream = match offset {
            Some(offset) => self.store.list_with_offset(Some(dir), offset),
            None => self.store.list(Some(dir)),
        };
        stream
            .try_collect()
            .await
            .map_err(|e| self.storage_error(e))
    }

    /// Deletes every object under `dir` (used when dropping a frame).
    pub async fn delete_dir(&self, dir: &Path) -> Result<()> {
        for meta in self.list_after(dir, None).await? {
            self.delete(&meta.location).await?;
        }
        Ok(())
    }

    fn storage_error(&self, source: object_store::Error) -> Error {
        Error::Storage {
            root: self.url.to_string(),
            source,
        }
    }
}

/// Fails fast on an unreachable endpoint instead of retrying for minutes.
fn short_retry() -> RetryConfig {
    RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(15),
        ..Default::default()
    }
}

fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// Turns an object-store failure during the access check into advice.
fn explain(e: &object_store::Error) -> String {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let advice = if lower.contains("nosuchbucket") || lower.contains("bucket does not exist") {
        "the bucket does not exist; create it first"
    } else if lower.contains("accessdenied")
        || lower.contains("signature")
        || lower.contains("invalidaccesskeyid")
        || lower.contains("403")
    {
        "access denied; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    } else if lower.contains("connect") || lower.contains("dns") || lower.contains("timed out") {
        "cannot reach the endpoint; check AWS_ENDPOINT_URL and that the server is running"
    } else {
        "check the URI, endpoint and credentials"
    };
    format!("{advice} ({text})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_and_file_urls_parse_to_the_same_root() {
        let dir = tempfile::tempdir().unwrap();
        let plain = StorageRoot::parse(dir.path().to_str().unwrap()).unwrap();
        let url = StorageRoot::parse(&format!("file://{}", dir.path().display())).unwrap();
        assert_eq!(plain.url(), url.url());
        assert!(plain.url().as_str().ends_with('/'));
    }

    #[test]
    fn s3_roots_keep_bucket_and_prefix() {
        let root = StorageRoot::parse("s3://bucket/some/prefix").unwrap();
        assert_eq!(root.url().as_str(), "s3://bucket/some/prefix/");
        assert_eq!(
            root.key("_apiary/registry").as_ref(),
            "some/prefix/_apiary/registry"
        );
        assert_eq!(
            root.dir_url(&["h", "b", "f"]).as_str(),
            "s3://bucket/some/prefix/h/b/f/"
        );
    }

    #[test]
    fn bad_uris_are_rejected() {
        assert!(StorageRoot::parse("").is_err());
        assert!(StorageRoot::parse("ftp://x/y").is_err());
        assert!(StorageRoot::parse("s3:///nobucket").is_err());
    }

    #[tokio::test]
    async fn conditional_create_refuses_a_second_writer_locally() {
        let dir = tempfile::tempdir().unwrap();
        let root = StorageRoot::parse(dir.path().to_str().unwrap()).unwrap();
        let key = root.key("_apiary/x.json");
        assert_eq!(
            root.put_if_absent(&key, Bytes::from("a")).await.unwrap(),
            Created::Yes
        );
        assert_eq!(
            root.put_if_absent(&key, Bytes::from("b")).await.unwrap(),
            Created::AlreadyExists
        );
        assert_eq!(root.get(&key).await.unwrap().unwrap(), Bytes::from("a"));
    }
}
