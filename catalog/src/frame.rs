//! Frames: Delta Lake tables under `{root}/{hive}/{box}/{frame}/`.
//!
//! Writes are validated against the frame's declared schema before anything
//! is written (DESIGN §9: one bad write must not poison a frame), then handed
//! to delta-rs, which splits rows by partition value into Parquet cells and
//! commits them in one Delta transaction with a conditional put. Concurrent
//! appenders retry on conflict inside delta-rs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{new_null_array, Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use deltalake::delta_datafusion::DeltaScanNext;
use deltalake::kernel::{Action, Add, StructField};
use deltalake::logstore::ObjectStoreRef;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::TableProperty;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use serde::Serialize;
use url::Url;

use crate::commit::{self, Outcome, WriteKey};
use crate::error::{Error, ObjectKind, Result};
use crate::names;
use crate::open_tables::OpenTables;
use crate::registry::{ColumnDef, FrameDef};
use crate::root::StorageRoot;
use crate::scan::{live_files, CellScan};
use crate::table::FrameTable;
use crate::transaction::{remove_action, Change, Staged, Transaction};
use crate::types::{is_safe_cast, ColumnType, SQL_TYPE_KEY};

/// Size at which a staged write starts a new cell.
const TARGET_CELL_BYTES: u64 = 128 * 1024 * 1024;

/// Commits between Delta checkpoints of a frame.
const CHECKPOINT_INTERVAL: &str = "10";

/// A validated `hive.box.frame` name, with the directory of the frame's
/// Delta table under the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FrameName {
    pub hive: String,
    pub boxname: String,
    pub frame: String,
    /// `{hive}/{box}/{frame}` unless the registry says otherwise (a renamed
    /// frame keeps its directory): see [`FrameName::located`].
    dir: String,
}

impl FrameName {
    /// Validates and folds the three parts. The directory is the one a new
    /// frame of this name gets; storage is only reached through a name
    /// [`located`](Self::located) by its registry entry.
    pub fn new(hive: &str, boxname: &str, frame: &str) -> Result<Self> {
        let hive = names::validate(ObjectKind::Hive, hive)?;
        let boxname = names::validate(ObjectKind::Box, boxname)?;
        let frame = names::validate(ObjectKind::Frame, frame)?;
        Ok(FrameName {
            dir: default_dir(&hive, &boxname, &frame),
            hive,
            boxname,
            frame,
        })
    }

    /// The name with the directory its registry entry records.
    pub fn located(mut self, def: &FrameDef) -> Self {
        self.dir = def.dir(&self.hive, &self.boxname, &self.frame);
        self
    }

    /// The frame's directory relative to the root, `/`-separated.
    pub fn dir(&self) -> &str {
        &self.dir
    }
}

/// Where a frame created under this name keeps its Delta table.
pub(crate) fn default_dir(hive: &str, boxname: &str, frame: &str) -> String {
    format!("{hive}/{boxname}/{frame}")
}

impl std::fmt::Display for FrameName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.hive, self.boxname, self.frame)
    }
}

/// How a write treats the frame's existing data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Append,
    Overwrite,
}

/// Options for a write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Drop incoming columns the frame does not have instead of failing.
    pub drop_extra_columns: bool,
    /// Makes the write commit at most once however often it is retried:
    /// a write whose key a commit of the frame already carries writes
    /// nothing (see [`crate::commit`]). Outside transaction blocks only.
    pub idempotency_key: Option<String>,
}

/// What a write did; the SDK returns this as a dict.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WriteResult {
    /// Parquet files (cells) added by the commit.
    pub cells_written: u64,
    pub rows_written: u64,
    /// Bytes of the cells added.
    pub bytes_written: u64,
    /// The frame's Delta table version after the commit.
    pub version: u64,
    /// The write's idempotency key had already committed: this call wrote
    /// nothing (the counts are 0).
    pub already_committed: bool,
    pub duration_ms: u64,
}

/// Size and shape of a frame at its newest version.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FrameStats {
    pub version: u64,
    pub cells: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// Builds a frame definition from declared `(name, type)` pairs, checking
/// names, types and partition columns.
pub fn define(columns: &[(String, String)], partition_by: &[String]) -> Result<FrameDef> {
    if columns.is_empty() {
        return Err(Error::InvalidSchema(
            "a frame needs at least one column".into(),
        ));
    }
    let partitions: Vec<String> = partition_by
        .iter()
        .map(|p| names::validate(ObjectKind::Column, p))
        .collect::<Result<_>>()?;
    let mut defs: Vec<ColumnDef> = Vec::with_capacity(columns.len());
    for (name, declared) in columns {
        let name = names::validate(ObjectKind::Column, name)?;
        if defs.iter().any(|c| c.name == name) {
            return Err(Error::InvalidSchema(format!(
                "column {name:?} is declared twice"
            )));
        }
        let (declared, not_null) = match declared
            .trim()
            .to_ascii_lowercase()
            .strip_suffix("not null")
        {
            Some(rest) => (rest.trim().to_string(), true),
            None => (declared.clone(), false),
        };
        let ty = ColumnType::parse(&declared)?;
        let nullable = !(not_null || partitions.contains(&name));
        defs.push(ColumnDef {
            name,
            type_name: ty.name,
            nullable,
        });
    }
    for p in &partitions {
        if !defs.iter().any(|c| &c.name == p) {
            return Err(Error::InvalidSchema(format!(
                "partition column {p:?} is not one of the frame's columns"
            )));
        }
    }
    if partitions.len() >= defs.len() {
        return Err(Error::InvalidSchema(
            "at least one column must not be a partition column".into(),
        ));
    }
    Ok(FrameDef {
        columns: defs,
        partition_by: partitions,
        created_at: chrono::Utc::now().to_rfc3339(),
        indexes: Vec::new(),
        location: None,
    })
}

/// The Arrow schema values are converted to before they are written.
pub fn arrow_schema(def: &FrameDef) -> Result<SchemaRef> {
    let fields = def
        .columns
        .iter()
        .map(|c| {
            Ok(Field::new(
                &c.name,
                ColumnType::parse(&c.type_name)?.arrow,
                c.nullable,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

/// The schema frames are read with: Parquet strings and binaries come back
/// as view types (DataFusion's default), so declaring them avoids a cast.
fn scan_schema(def: &FrameDef) -> Result<SchemaRef> {
    let stored = arrow_schema(def)?;
    let fields: Vec<Field> = stored
        .fields()
        .iter()
        .map(|f| {
            let data_type = match (f.data_type(), def.partition_by.contains(f.name())) {
                (DataType::Utf8, false) => DataType::Utf8View,
                (DataType::Binary, false) => DataType::BinaryView,
                (other, _) => other.clone(),
            };
            Field::new(f.name(), data_type, f.is_nullable())
        })
        .zip(&def.columns)
        .map(|(field, column)| {
            let declared = ColumnType::parse(&column.type_name)?;
            Ok(match declared.sql_type() {
                Some(sql_type) => field.with_metadata(HashMap::from([(
                    SQL_TYPE_KEY.to_string(),
                    sql_type.to_string(),
                )])),
                None => field,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

/// Checks `batch` against the frame and returns it converted to the frame's
/// storage schema. Errors name the column and say what to change.
pub fn conform(
    batch: &RecordBatch,
    def: &FrameDef,
    target: &SchemaRef,
    opts: &WriteOptions,
) -> Result<RecordBatch> {
    let incoming = batch.schema();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (i, field) in incoming.fields().iter().enumerate() {
        let folded = field.name().to_ascii_lowercase();
        if by_name.insert(folded, i).is_some() {
            return Err(Error::mismatch(
                field.name(),
                "appears more than once in the data (names are case-insensitive)",
            ));
        }
    }
    if !opts.drop_extra_columns {
        if let Some(extra) = incoming.fields().iter().find(|f| {
            target
                .field_with_name(&f.name().to_ascii_lowercase())
                .is_err()
        }) {
            return Err(Error::mismatch(
                extra.name(),
                format!(
                    "is not a column of the frame (columns: {}); remove it or pass drop_extra_columns",
                    def.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let cast_options = CastOptions {
        safe: false,
        ..Default::default()
    };
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for (field, col) in target.fields().iter().zip(&def.columns) {
        let array = match by_name.get(field.name()) {
            Some(&i) => {
                let source = batch.column(i);
                if !is_safe_cast(source.data_type(), field.data_type()) {
                    return Err(Error::mismatch(
                        field.name(),
                        format!(
                            "has type {} but the frame declares {}; convert it first (only widening conversions happen automatically)",
                            source.data_type(),
                            col.type_name
                        ),
                    ));
                }
                if source.data_type() == field.data_type() {
                    source.clone()
                } else {
                    cast_with_options(source, field.data_type(), &cast_options)
                        .map_err(|e| Error::mismatch(field.name(), e.to_string()))?
                }
            }
            None if field.is_nullable() => new_null_array(field.data_type(), batch.num_rows()),
            None => {
                return Err(Error::mismatch(
                    field.name(),
                    "is missing from the data and is not nullable",
                ))
            }
        };
        let array = match ColumnType::parse(&col.type_name)?.max_chars() {
            Some((limit, pad)) => bounded_strings(&array, limit, pad, &col.type_name)
                .map_err(|detail| Error::mismatch(field.name(), detail))?,
            None => array,
        };
        if !field.is_nullable() && array.null_count() > 0 {
            let why = if def.partition_by.contains(field.name()) {
                "is a partition column and contains nulls; partition values must not be null"
            } else {
                "is declared not null and contains nulls"
            };
            return Err(Error::mismatch(
                field.name(),
                format!("{why} ({} null rows)", array.null_count()),
            ));
        }
        arrays.push(array);
    }
    Ok(RecordBatch::try_new(target.clone(), arrays)?)
}

/// `input` checked and converted batch by batch with [`conform`].
pub(crate) fn conforming(
    input: BoxStream<'static, Result<RecordBatch>>,
    def: &FrameDef,
    opts: &WriteOptions,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let target = arrow_schema(def)?;
    let (def, opts) = (def.clone(), opts.clone());
    Ok(input
        .map(move |batch| conform(&batch?, &def, &target, &opts))
        .boxed())
}

/// Strings of a `varchar(limit)` / `char(limit)` column: an error naming
/// the type for one that is longer (Postgres's 22001), and a `char` padded
/// with spaces to `limit`. Trailing spaces beyond the limit are dropped,
/// as in Postgres.
fn bounded_strings(
    array: &ArrayRef,
    limit: usize,
    pad: bool,
    declared: &str,
) -> std::result::Result<ArrayRef, String> {
    let Some(strings) = array.as_string_opt::<i32>() else {
        return Err(format!("{declared} holds text, not {}", array.data_type()));
    };
    let mut out = arrow::array::StringBuilder::with_capacity(strings.len(), strings.len() * limit);
    for value in strings.iter() {
        let Some(value) = value else {
            out.append_null();
            continue;
        };
        let chars = value.chars().count();
        let value = if chars > limit {
            let cut: String = value.chars().take(limit).collect();
            let rest: String = value.chars().skip(limit).collect();
            if rest.trim_end_matches(' ').is_empty() {
                std::borrow::Cow::Owned(cut)
            } else {
                let sql = match pad {
                    true => format!("character({limit})"),
                    false => format!("character varying({limit})"),
                };
                return Err(format!(
                    "value too long for type {sql} ({declared}): a value has {chars} characters"
                ));
            }
        } else {
            std::borrow::Cow::Borrowed(value)
        };
        let padding = if pad {
            limit.saturating_sub(value.chars().count())
        } else {
            0
        };
        out.append_value(format!("{value}{}", " ".repeat(padding)));
    }
    Ok(Arc::new(out.finish()))
}

/// Access to the Delta tables behind frames of one root.
#[derive(Debug, Clone)]
pub struct Frames {
    root: StorageRoot,
    /// Newest states of the frames read, shared by every clone.
    open_tables: Arc<OpenTables>,
}

impl Frames {
    pub(crate) fn root(&self) -> &StorageRoot {
        &self.root
    }

    pub fn new(root: StorageRoot) -> Self {
        Frames {
            root,
            open_tables: Arc::default(),
        }
    }

    /// The URL of the frame's Delta table, which other Delta readers open.
    pub fn url(&self, name: &FrameName) -> Url {
        self.root.dir_url(&name.dir.split('/').collect::<Vec<_>>())
    }

    pub(crate) fn builder(&self, name: &FrameName) -> Result<DeltaTableBuilder> {
        Ok(DeltaTableBuilder::from_url(self.url(name))
            .map_err(|e| Error::delta(name.to_string(), e))?
            .with_storage_options(self.root.delta_options().clone()))
    }

    /// Creates the Delta table for a frame if it does not exist yet.
    pub async fn create(&self, name: &FrameName, def: &FrameDef) -> Result<DeltaTable> {
        let table = self
            .builder(name)?
            .build()
            .map_err(|e| Error::delta(name.to_string(), e))?;
        let mut columns = Vec::with_capacity(def.columns.len());
        for c in &def.columns {
            let ty = ColumnType::parse(&c.type_name)?;
            columns.push(StructField::new(c.name.clone(), ty.delta()?, c.nullable));
        }
        let created = table
            .create()
            .with_table_name(name.frame.clone())
            .with_columns(columns)
            .with_partition_columns(def.partition_by.clone())
            // Idempotency keys (Delta `txn` ids, one per write) are kept
            // for this long, then dropped at checkpoints.
            .with_configuration_property(
                TableProperty::SetTransactionRetentionDuration,
                Some(commit::KEY_RETENTION),
            )
            // Opening a frame replays the log since its last checkpoint:
            // checkpoint as often as Delta's reference implementation does
            // (delta-rs's default is every 100 commits).
            .with_configuration_property(
                TableProperty::CheckpointInterval,
                Some(CHECKPOINT_INTERVAL),
            )
            .with_save_mode(SaveMode::Ignore)
            .await;
        match created {
            Ok(table) => Ok(table),
            // Another node may have created it at the same moment: use theirs,
            // and if there is none, report why creating failed.
            Err(create_error) => self
                .open(name)
                .await
                .map_err(|_| Error::delta(name.to_string(), create_error)),
        }
    }

    /// Opens a frame's table at its newest version.
    pub async fn open(&self, name: &FrameName) -> Result<DeltaTable> {
        self.builder(name)?
            .load()
            .await
            .map_err(|e| Error::delta(name.to_string(), e))
    }

    async fn open_or_create(&self, name: &FrameName, def: &FrameDef) -> Result<DeltaTable> {
        match self.builder(name)?.load().await {
            Ok(table) => Ok(table),
            Err(DeltaTableError::NotATable(_)) => self.create(name, def).await,
            Err(e) => Err(Error::delta(name.to_string(), e)),
        }
    }

    /// The frame's newest version, from the state this node keeps when the
    /// log shows no commit since; unlike [`Frames::newest`], a frame with no
    /// Delta table yet is an error.
    pub(crate) async fn kept_or_open(&self, name: &FrameName) -> Result<DeltaTable> {
        let url = self.url(name);
        self.open_tables
            .newest(url.as_str(), async || self.open(name).await)
            .await
    }

    /// The frame's newest version for reading: the state this node read
    /// last, when the log shows no commit since.
    async fn newest(&self, name: &FrameName, def: &FrameDef) -> Result<DeltaTable> {
        let url = self.url(name);
        self.open_tables
            .newest(url.as_str(), async || self.open_or_create(name, def).await)
            .await
    }

    /// A DataFusion table provider over the frame's newest version, or, when
    /// the open block in `txn` wrote the frame, over what that block sees.
    pub async fn provider(
        &self,
        name: &FrameName,
        def: &FrameDef,
        txn: &Transaction,
    ) -> Result<Arc<dyn TableProvider>> {
        let staged = txn.staged(name);
        let table = match &staged {
            Some(staged) => staged.table.clone(),
            None => self.newest(name, def).await?,
        };
        let files = live_files(&table)
            .map_err(|e| Error::delta(name.to_string(), e))?
            .map(|live| match &staged {
                Some(staged) => staged.view(live),
                None => live,
            });
        let read: Arc<dyn TableProvider> = match files {
            Some(files) => Arc::new(self.cell_scan(name, def, &files)?),
            // Deletion vectors or column mapping (written by another tool):
            // let delta-rs, which understands them, read the table.
            None => Arc::new(
                DeltaScanNext::builder()
                    .with_log_store(table.log_store())
                    .build()
                    .await
                    .map_err(|e| Error::delta(name.to_string(), DeltaTableError::from(e)))?,
            ),
        };
        Ok(Arc::new(FrameTable::new(
            self.clone(),
            name.clone(),
            def.clone(),
            read,
            txn.clone(),
        )))
    }

    /// A scan over exactly `files` of the frame.
    pub(crate) fn cell_scan(
        &self,
        name: &FrameName,
        def: &FrameDef,
        files: &[Add],
    ) -> Result<CellScan> {
        let url = self.url(name);
        CellScan::from_files(
            files,
            &url,
            self.root.remote_store(),
            scan_schema(def)?,
            &def.partition_by,
        )
        .map_err(|e| Error::delta(name.to_string(), e))
    }

    /// The open block's staged state for `name`: `None` outside a block;
    /// on the block's first write to the frame, a fresh one pinned at the
    /// frame's newest version.
    pub(crate) async fn staging(
        &self,
        txn: &Transaction,
        name: &FrameName,
        def: &FrameDef,
    ) -> Result<Option<Staged>> {
        let table = match txn.check_write(name)? {
            None => return Ok(None),
            Some(Some(staged)) => return Ok(Some(staged)),
            Some(None) => self.open_or_create(name, def).await?,
        };
        if live_files(&table)
            .map_err(|e| Error::delta(name.to_string(), e))?
            .is_none()
        {
            return Err(Error::InvalidSchema(format!(
                "frame {name} uses deletion vectors or column mapping (written by another tool); write it outside a transaction block"
            )));
        }
        Ok(Some(Staged {
            name: name.clone(),
            frames: self.clone(),
            table,
            adds: Vec::new(),
            removes: Vec::new(),
            change: Change::Append,
        }))
    }

    /// Inside an open block of `txn`, validates and writes the batches of
    /// `input` as cells that the block commits at `COMMIT`; `Ok(None)` when
    /// no block is open (the caller commits the write itself).
    pub async fn stage_write(
        &self,
        txn: &Transaction,
        name: &FrameName,
        def: &FrameDef,
        input: BoxStream<'static, Result<RecordBatch>>,
        mode: WriteMode,
        opts: WriteOptions,
    ) -> Result<Option<WriteResult>> {
        let started = Instant::now();
        let Some(mut staged) = self.staging(txn, name, def).await? else {
            return Ok(None);
        };
        let (adds, rows) = self
            .write_cells(name, &staged.table, conforming(input, def, &opts)?)
            .await?;
        let result = WriteResult {
            cells_written: adds.len() as u64,
            rows_written: rows,
            bytes_written: commit::added_bytes(&adds),
            version: staged.table.version().unwrap_or(0),
            already_committed: false,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        match mode {
            WriteMode::Append => {
                staged.adds.extend(adds);
            }
            WriteMode::Overwrite => {
                let live = live_files(&staged.table)
                    .map_err(|e| Error::delta(name.to_string(), e))?
                    .unwrap_or_default();
                let old = staged.view(live);
                for file in &old {
                    staged.replace(file, Vec::new(), Change::Delete);
                }
                staged.adds.extend(adds);
            }
        }
        txn.stage(staged)?;
        Ok(Some(result))
    }

    /// Writes the conformed batches of `input` (see [`conforming`]) as new
    /// cells of `table` without committing them; returns their `add`
    /// actions and the rows written.
    pub(crate) async fn write_cells(
        &self,
        name: &FrameName,
        table: &DeltaTable,
        mut input: BoxStream<'static, Result<RecordBatch>>,
    ) -> Result<(Vec<Add>, u64)> {
        let frame = || name.to_string();
        let mut writer = RecordBatchWriter::for_table(table)
            .map_err(|e| Error::delta(frame(), e))?
            .with_target_file_size(TARGET_CELL_BYTES);
        let mut rows = 0;
        while let Some(batch) = input.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            rows += batch.num_rows() as u64;
            writer.write(batch).await.map_err(|e| match e {
                // The batches fit the registry's declaration, so the Delta
                // schema changed since: an `ALTER TABLE` between its Delta
                // commit and its registry commit.
                DeltaTableError::SchemaMismatch { .. } => Error::Conflict {
                    frame: frame(),
                    detail: format!(
                        "{e}; the frame's columns changed while this statement ran (an ALTER \
                         TABLE), so it committed nothing; run it again (and run the ALTER \
                         TABLE again if it was interrupted)"
                    ),
                },
                e => Error::delta(frame(), e),
            })?;
        }
        let adds = writer.flush().await.map_err(|e| Error::delta(frame(), e))?;
        Ok((adds, rows))
    }

    /// Validates and writes `batches` in one commit.
    pub async fn write(
        &self,
        name: &FrameName,
        def: &FrameDef,
        batches: &[RecordBatch],
        mode: WriteMode,
        opts: WriteOptions,
    ) -> Result<WriteResult> {
        // Validate everything before writing anything.
        let target = arrow_schema(def)?;
        let conformed = batches
            .iter()
            .map(|b| conform(b, def, &target, &opts))
            .collect::<Result<Vec<_>>>()?;
        let input = futures::stream::iter(conformed.into_iter().map(Ok)).boxed();
        self.write_conformed(name, def, input, mode, opts).await
    }

    /// Validates and writes the batches of `input` as they arrive, in one
    /// commit once it ends, so a load larger than memory streams through
    /// (`COPY FROM STDIN`). If `input` yields an error, or a batch does not
    /// fit the frame, nothing is committed and that error is returned.
    ///
    /// The commit happens exactly once (see [`crate::commit`]): `Ok` means
    /// it stands, an error (other than [`Error::CommitUnknown`]) that it
    /// does not; a write whose `idempotency_key` already committed writes
    /// nothing and says so in [`WriteResult::already_committed`].
    pub async fn write_stream(
        &self,
        name: &FrameName,
        def: &FrameDef,
        input: BoxStream<'static, Result<RecordBatch>>,
        mode: WriteMode,
        opts: WriteOptions,
    ) -> Result<WriteResult> {
        let input = conforming(input, def, &opts)?;
        self.write_conformed(name, def, input, mode, opts).await
    }

    /// [`Frames::write_stream`] for batches already conformed.
    async fn write_conformed(
        &self,
        name: &FrameName,
        def: &FrameDef,
        input: BoxStream<'static, Result<RecordBatch>>,
        mode: WriteMode,
        opts: WriteOptions,
    ) -> Result<WriteResult> {
        let started = Instant::now();
        let key = WriteKey::from_option(opts.idempotency_key.as_deref())?;
        let mut table = self.open_or_create(name, def).await?;
        let delta = |e| Error::delta(name.to_string(), e);
        if commit::already_committed(&table, &key)
            .await
            .map_err(delta)?
        {
            return Ok(WriteResult {
                version: table.version().unwrap_or(0),
                already_committed: true,
                duration_ms: started.elapsed().as_millis() as u64,
                ..Default::default()
            });
        }
        let (adds, rows) = self.write_cells(name, &table, input).await?;
        if adds.is_empty() && mode == WriteMode::Append {
            return Ok(WriteResult {
                version: table.version().unwrap_or(0),
                duration_ms: started.elapsed().as_millis() as u64,
                ..Default::default()
            });
        }
        // An append commits on the newest version (appends never conflict);
        // an overwrite removes the cells of the newest version, read while
        // it holds the frame's rewrite lease (see rewrite_lease.rs).
        let lease = match mode {
            WriteMode::Append => None,
            WriteMode::Overwrite => Some(self.lease(name).await?),
        };
        table.update_state().await.map_err(delta)?;
        let removes = match mode {
            WriteMode::Append => Vec::new(),
            WriteMode::Overwrite => live_files(&table)
                .map_err(delta)?
                .unwrap_or_default()
                .into_iter()
                .map(|add| Action::Remove(remove_action(&add)))
                .collect(),
        };
        let partition_by = def.partition_by.clone();
        let operation = DeltaOperation::Write {
            mode: match mode {
                WriteMode::Append => SaveMode::Append,
                WriteMode::Overwrite => SaveMode::Overwrite,
            },
            partition_by: (!partition_by.is_empty()).then_some(partition_by),
            predicate: None,
        };
        let actions: Vec<Action> = removes
            .into_iter()
            .chain(adds.iter().cloned().map(Action::Add))
            .collect();
        let outcome =
            commit::commit_once(&name.to_string(), &table, actions, operation, &key).await;
        if let Some(lease) = lease {
            lease.release().await;
        }
        let version = match outcome {
            Ok(Outcome::Committed(version)) => version,
            Ok(Outcome::AlreadyCommitted) => {
                discard_cells(name, table.object_store(), adds);
                return Ok(WriteResult {
                    version: table.version().unwrap_or(0),
                    already_committed: true,
                    duration_ms: started.elapsed().as_millis() as u64,
                    ..Default::default()
                });
            }
            Err(e) => {
                if !matches!(e, Error::CommitUnknown { .. }) {
                    discard_cells(name, table.object_store(), adds);
                }
                return Err(e);
            }
        };
        Ok(WriteResult {
            cells_written: adds.len() as u64,
            rows_written: rows,
            bytes_written: commit::added_bytes(&adds),
            version,
            already_committed: false,
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Cells, rows and bytes of the frame's newest version.
    pub async fn stats(&self, name: &FrameName, def: &FrameDef) -> Result<FrameStats> {
        let table = self.open_or_create(name, def).await?;
        let snapshot = table
            .snapshot()
            .map_err(|e| Error::delta(name.to_string(), e))?;
        let mut stats = FrameStats {
            version: table.version().unwrap_or(0),
            ..Default::default()
        };
        for file in snapshot.log_data().iter() {
            stats.cells += 1;
            stats.bytes += file.size().max(0) as u64;
            stats.rows += file.num_records().unwrap_or(0) as u64;
        }
        Ok(stats)
    }

    /// Removes a frame's files (after it was dropped from the registry).
    pub async fn delete(&self, name: &FrameName) -> Result<()> {
        let dir = self.root.key(name.dir());
        self.root.delete_dir(&dir).await
    }
}

/// Deletes cells that no commit will name (a failed or duplicate write).
/// Best effort: a cell left behind is invisible and VACUUM-able.
pub(crate) fn discard_cells(name: &FrameName, store: ObjectStoreRef, adds: Vec<Add>) {
    if adds.is_empty() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let name = name.clone();
    runtime.spawn(async move {
        for add in &adds {
            let path = Path::parse(&add.path).unwrap_or_else(|_| Path::from(add.path.as_str()));
            if let Err(e) = store.delete(&path).await {
                tracing::debug!(frame = %name, cell = %add.path, error = %e, "could not delete an uncommitted cell");
            }
        }
    });
}
