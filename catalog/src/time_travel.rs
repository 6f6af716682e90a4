//! Reading a frame as of an earlier version: `frame@v3` names version 3,
//! `frame@20261207120000000` (`yyyyMMddHHmmssSSS`, UTC) the version current
//! at that instant, the suffixes Delta's SQL engines give a table name. In
//! SQL the name is quoted (`SELECT * FROM events."clicks@v3"`), since `@`
//! is an operator in Postgres's grammar. Such a frame is read-only.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use datafusion::catalog::TableProvider;
use object_store::path::Path;
use object_store::ObjectStoreExt;

use crate::error::{Error, ObjectKind, Result};
use crate::frame::{FrameName, Frames};
use crate::registry::FrameDef;
use crate::scan::live_files;

/// Which version of a frame to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Version(u64),
    Timestamp(DateTime<Utc>),
}

/// Splits `clicks@v3` into `clicks` and version 3, and
/// `clicks@20261207120000000` into `clicks` and that instant; `None` for a
/// name without such a suffix.
pub fn split_as_of(name: &str) -> Option<(&str, AsOf)> {
    let (frame, suffix) = name.rsplit_once('@')?;
    if frame.is_empty() {
        return None;
    }
    if let Some(version) = suffix
        .strip_prefix('v')
        .or_else(|| suffix.strip_prefix('V'))
    {
        return version.parse().ok().map(|v| (frame, AsOf::Version(v)));
    }
    if suffix.len() == 17 && suffix.bytes().all(|b| b.is_ascii_digit()) {
        let instant = NaiveDateTime::parse_from_str(suffix, "%Y%m%d%H%M%S%3f").ok()?;
        return Some((frame, AsOf::Timestamp(instant.and_utc())));
    }
    None
}

impl Frames {
    /// A read-only scan of the frame as of `as_of`. A version whose cells
    /// VACUUM has deleted is an error that says so.
    pub async fn provider_as_of(
        &self,
        name: &FrameName,
        def: &FrameDef,
        as_of: AsOf,
    ) -> Result<Arc<dyn TableProvider>> {
        let builder = self.builder(name)?;
        let builder = match as_of {
            AsOf::Version(version) => builder.with_version(version),
            AsOf::Timestamp(instant) => builder.with_timestamp(instant),
        };
        let table = builder.load().await.map_err(|e| Error::NotFound {
            kind: ObjectKind::Frame,
            name: format!("{name} as of {as_of:?}"),
            hint: format!("; {e}"),
        })?;
        let files = live_files(&table)
            .map_err(|e| Error::delta(name.to_string(), e))?
            .ok_or_else(|| {
                Error::InvalidSchema(format!(
                    "frame {name} uses deletion vectors or column mapping (written by another tool); \
                     read its earlier versions with that tool"
                ))
            })?;
        if let Some(first) = files.first() {
            let path = Path::parse(&first.path).unwrap_or_else(|_| Path::from(first.path.as_str()));
            if table.object_store().head(&path).await.is_err() {
                return Err(Error::NotFound {
                    kind: ObjectKind::Frame,
                    name: format!("{name} as of {as_of:?}"),
                    hint: "; VACUUM deleted its cells (a vacuum keeps the files of versions \
                           within its retention, 7 days unless RETAIN says otherwise)"
                        .into(),
                });
            }
        }
        Ok(Arc::new(self.cell_scan(name, def, &files)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_name_a_version_or_an_instant() {
        assert_eq!(split_as_of("clicks@v3"), Some(("clicks", AsOf::Version(3))));
        assert_eq!(split_as_of("a@b@V12"), Some(("a@b", AsOf::Version(12))));
        let (frame, AsOf::Timestamp(at)) = split_as_of("clicks@20261207120000123").unwrap() else {
            panic!("an instant");
        };
        assert_eq!(frame, "clicks");
        assert_eq!(at.to_rfc3339(), "2026-12-07T12:00:00.123+00:00");
        for plain in [
            "clicks",
            "@v3",
            "clicks@v",
            "clicks@vx",
            "clicks@2026",
            "clicks@20261399120000000",
        ] {
            assert_eq!(split_as_of(plain), None, "{plain}");
        }
    }
}
