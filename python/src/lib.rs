//! `apiary._apiary`: the native half of the Python SDK.
//!
//! A thin edge: each method converts Python values to engine types, releases
//! the GIL while the engine works, and maps engine errors to the exception
//! classes below. Dicts cross the boundary as JSON text and are decoded by
//! the pure-Python `apiary.Apiary` wrapper; Arrow data crosses either as IPC
//! stream bytes or through the Arrow C interfaces (pyo3-arrow).

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use apiary_engine::catalog::{Error as CatalogError, FrameName, WriteMode, WriteOptions};
use apiary_engine::{EngineError, Node, NodeConfig, QueryResult, Session};
use arrow::array::RecordBatch;
use arrow::ipc::reader::{FileReader, StreamReader};
use arrow::ipc::writer::StreamWriter;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::PyTable;

create_exception!(
    _apiary,
    ApiaryError,
    PyException,
    "Base class of every Apiary error."
);
create_exception!(
    _apiary,
    InvalidNameError,
    ApiaryError,
    "A hive, box, frame or column name breaks the naming rule."
);
create_exception!(
    _apiary,
    AlreadyExistsError,
    ApiaryError,
    "The hive, box or frame already exists."
);
create_exception!(
    _apiary,
    NotFoundError,
    ApiaryError,
    "The hive, box or frame does not exist."
);
create_exception!(
    _apiary,
    SchemaError,
    ApiaryError,
    "Data or a schema does not fit the frame."
);
create_exception!(
    _apiary,
    StorageError,
    ApiaryError,
    "The storage root cannot be used or an object access failed."
);
create_exception!(
    _apiary,
    CommitUnknownError,
    StorageError,
    "Storage failed both a write's commit and every look at the log after it: the write may have committed. Retrying with the idempotency key in the message commits it at most once."
);
create_exception!(
    _apiary,
    SqlError,
    ApiaryError,
    "The SQL could not be parsed, planned or run."
);
create_exception!(
    _apiary,
    UnsupportedError,
    ApiaryError,
    "The statement or operation is not supported."
);
create_exception!(
    _apiary,
    NotStartedError,
    ApiaryError,
    "The node is not running; call start() first."
);

create_exception!(
    _apiary,
    DeadlineExceededError,
    ApiaryError,
    "A wait ran past its deadline (a task, the swarm, storage)."
);

create_exception!(
    _apiary,
    OverloadedError,
    ApiaryError,
    "The node is too loaded to take the statement now; retry later or use another node."
);

fn to_py(err: EngineError) -> PyErr {
    let message = err.to_string();
    match err {
        EngineError::Catalog(c) => match c {
            CatalogError::InvalidName { .. } => InvalidNameError::new_err(message),
            CatalogError::AlreadyExists { .. } => AlreadyExistsError::new_err(message),
            CatalogError::NotFound { .. } => NotFoundError::new_err(message),
            CatalogError::InvalidSchema(_) | CatalogError::SchemaMismatch { .. } => {
                SchemaError::new_err(message)
            }
            CatalogError::CommitUnknown { .. } => CommitUnknownError::new_err(message),
            CatalogError::InvalidRoot { .. }
            | CatalogError::StorageUnavailable { .. }
            | CatalogError::Storage { .. } => StorageError::new_err(message),
            c if c.is_storage() => StorageError::new_err(message),
            _ => ApiaryError::new_err(message),
        },
        EngineError::Sql(_) | EngineError::DataFusion(_) => SqlError::new_err(message),
        EngineError::Unsupported { .. } => UnsupportedError::new_err(message),
        EngineError::InvalidArgument(_) => ApiaryError::new_err(message),
        EngineError::NotStarted => NotStartedError::new_err(message),
        EngineError::Timeout(_) => DeadlineExceededError::new_err(message),
        EngineError::Overloaded(_) => OverloadedError::new_err(message),
    }
}

/// A running node and the session the SDK's `sql()` uses.
struct Running {
    node: Arc<Node>,
    session: Session,
}

/// The native node behind `apiary.Apiary`.
#[pyclass(module = "apiary._apiary")]
struct NativeNode {
    config: NodeConfig,
    runtime: tokio::runtime::Runtime,
    running: Mutex<Option<Arc<Running>>>,
}

impl NativeNode {
    fn running(&self) -> PyResult<Arc<Running>> {
        self.running
            .lock()
            .map_err(|_| ApiaryError::new_err("internal lock poisoned"))?
            .clone()
            .ok_or_else(|| to_py(EngineError::NotStarted))
    }

    /// Runs `f` on the node's runtime with the GIL released.
    fn block<T, F>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        T: Send,
        F: std::future::Future<Output = Result<T, EngineError>> + Send,
    {
        py.detach(|| self.runtime.block_on(f)).map_err(to_py)
    }
}

#[pymethods]
impl NativeNode {
    #[new]
    #[pyo3(signature = (name, storage=None))]
    fn new(name: &str, storage: Option<&str>) -> PyResult<Self> {
        let config = NodeConfig::new(name, storage).map_err(to_py)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("apiary")
            .thread_stack_size(apiary_engine::STATEMENT_STACK_BYTES)
            .build()
            .map_err(|e| ApiaryError::new_err(format!("cannot start the async runtime: {e}")))?;
        Ok(NativeNode {
            config,
            runtime,
            running: Mutex::new(None),
        })
    }

    fn start(&self, py: Python<'_>) -> PyResult<()> {
        if self.running().is_ok() {
            return Ok(());
        }
        let config = self.config.clone();
        let node = self.block(py, async move { Node::start(config).await })?;
        let session = node.session();
        *self
            .running
            .lock()
            .map_err(|_| ApiaryError::new_err("internal lock poisoned"))? =
            Some(Arc::new(Running {
                node: Arc::new(node),
                session,
            }));
        Ok(())
    }

    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self
            .running
            .lock()
            .map_err(|_| ApiaryError::new_err("internal lock poisoned"))?
            .take();
        if let Some(running) = taken {
            self.block(py, async move {
                running.node.shutdown().await;
                Ok(())
            })?;
        }
        Ok(())
    }

    fn is_running(&self) -> bool {
        self.running().is_ok()
    }

    fn storage(&self) -> String {
        self.config.storage.clone()
    }

    fn status_json(&self) -> PyResult<String> {
        match self.running() {
            Ok(r) => Ok(r.node.status().to_string()),
            Err(_) => Ok(serde_json::json!({
                "name": self.config.name,
                "node_id": self.config.node_id,
                "storage": self.config.storage,
                "state": "stopped",
            })
            .to_string()),
        }
    }

    fn swarm_status_json(&self, py: Python<'_>) -> PyResult<String> {
        let r = self.running()?;
        let status = self.block(py, async move { r.node.swarm_status().await })?;
        serde_json::to_string(&status).map_err(|e| ApiaryError::new_err(e.to_string()))
    }

    fn colony_status_json(&self) -> PyResult<String> {
        let r = self.running()?;
        serde_json::to_string(&r.node.colony_status())
            .map_err(|e| ApiaryError::new_err(e.to_string()))
    }

    fn create_hive(&self, py: Python<'_>, hive: &str) -> PyResult<()> {
        let r = self.running()?;
        self.block(
            py,
            async move { Ok(r.node.catalog().create_hive(hive).await?) },
        )
    }

    fn create_box(&self, py: Python<'_>, hive: &str, boxname: &str) -> PyResult<()> {
        let r = self.running()?;
        self.block(py, async move {
            Ok(r.node.catalog().create_box(hive, boxname).await?)
        })
    }

    /// `columns`: (name, type name) pairs in order.
    fn create_frame(
        &self,
        py: Python<'_>,
        hive: &str,
        boxname: &str,
        frame: &str,
        columns: Vec<(String, String)>,
        partition_by: Vec<String>,
    ) -> PyResult<()> {
        let r = self.running()?;
        self.block(py, async move {
            r.node
                .catalog()
                .create_frame(hive, boxname, frame, &columns, &partition_by)
                .await?;
            Ok(())
        })
    }

    fn drop_frame(&self, py: Python<'_>, hive: &str, boxname: &str, frame: &str) -> PyResult<()> {
        let r = self.running()?;
        self.block(py, async move {
            Ok(r.node.catalog().drop_frame(hive, boxname, frame).await?)
        })
    }

    fn list_hives(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let r = self.running()?;
        self.block(py, async move { Ok(r.node.catalog().list_hives().await?) })
    }

    fn list_boxes(&self, py: Python<'_>, hive: &str) -> PyResult<Vec<String>> {
        let r = self.running()?;
        self.block(
            py,
            async move { Ok(r.node.catalog().list_boxes(hive).await?) },
        )
    }

    fn list_frames(&self, py: Python<'_>, hive: &str, boxname: &str) -> PyResult<Vec<String>> {
        let r = self.running()?;
        self.block(py, async move {
            Ok(r.node.catalog().list_frames(hive, boxname).await?)
        })
    }

    /// The frame's definition and size, as JSON.
    fn get_frame_json(
        &self,
        py: Python<'_>,
        hive: &str,
        boxname: &str,
        frame: &str,
    ) -> PyResult<String> {
        let r = self.running()?;
        self.block(py, async move {
            let catalog = r.node.catalog();
            let (name, def) = catalog.frame(hive, boxname, frame).await?;
            let stats = catalog.frames().stats(&name, &def).await?;
            Ok(serde_json::json!({
                "hive": name.hive,
                "box": name.boxname,
                "frame": name.frame,
                "schema": def.columns,
                "partition_by": def.partition_by,
                "indexes": def.indexes,
                "created_at": def.created_at,
                "location": catalog.frames().url(&name).as_str(),
                "version": stats.version,
                "cells": stats.cells,
                "rows": stats.rows,
                "bytes": stats.bytes,
            })
            .to_string())
        })
    }

    /// Writes `data` (IPC stream/file bytes, or any Arrow-exporting object:
    /// pyarrow Table/RecordBatch/RecordBatchReader, pandas DataFrame).
    #[pyo3(signature = (hive, boxname, frame, data, overwrite=false, drop_extra_columns=false, idempotency_key=None, evolve_schema=false))]
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        py: Python<'_>,
        hive: &str,
        boxname: &str,
        frame: &str,
        data: &Bound<'_, PyAny>,
        overwrite: bool,
        drop_extra_columns: bool,
        idempotency_key: Option<String>,
        evolve_schema: bool,
    ) -> PyResult<String> {
        let r = self.running()?;
        let batches = read_batches(data)?;
        let mode = if overwrite {
            WriteMode::Overwrite
        } else {
            WriteMode::Append
        };
        let opts = WriteOptions {
            drop_extra_columns,
            idempotency_key,
        };
        self.block(py, async move {
            let catalog = r.node.catalog();
            if let (true, Some(first)) = (evolve_schema, batches.first()) {
                catalog
                    .add_missing_columns(hive, boxname, frame, &first.schema())
                    .await?;
            }
            let (name, def) = catalog.frame(hive, boxname, frame).await?;
            let result = r.session.write(&name, &def, &batches, mode, opts).await?;
            Ok(serde_json::to_string(&result).unwrap_or_default())
        })
    }

    /// `SELECT * FROM "h"."b"."f"` after validating the three names; with
    /// a `version`, over `"f@vN"`, the frame as of that version.
    #[pyo3(signature = (hive, boxname, frame, version=None))]
    fn select_all_sql(
        &self,
        hive: &str,
        boxname: &str,
        frame: &str,
        version: Option<u64>,
    ) -> PyResult<String> {
        let name = FrameName::new(hive, boxname, frame).map_err(|e| to_py(e.into()))?;
        let as_of = version.map(|v| format!("@v{v}")).unwrap_or_default();
        Ok(format!(
            "SELECT * FROM \"{}\".\"{}\".\"{}{as_of}\"",
            name.hive, name.boxname, name.frame
        ))
    }

    /// Runs SQL; the result as Arrow IPC stream bytes.
    fn sql<'py>(&self, py: Python<'py>, query: &str) -> PyResult<Bound<'py, PyBytes>> {
        let result = self.run_sql(py, query)?;
        let bytes = py.detach(|| ipc_bytes(&result)).map_err(to_py)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Runs SQL; the result as a `pyarrow.Table`, without copying.
    fn sql_table<'py>(&self, py: Python<'py>, query: &str) -> PyResult<Bound<'py, PyAny>> {
        let result = self.run_sql(py, query)?;
        PyTable::try_new(result.batches, result.schema)?.into_pyarrow(py)
    }
}

impl NativeNode {
    fn run_sql(&self, py: Python<'_>, query: &str) -> PyResult<QueryResult> {
        let r = self.running()?;
        self.block(py, async move { r.session.sql(query).await })
    }
}

fn read_batches(data: &Bound<'_, PyAny>) -> PyResult<Vec<RecordBatch>> {
    if let Ok(bytes) = data.cast::<PyBytes>() {
        return read_ipc(bytes.as_bytes());
    }
    let input: AnyRecordBatch = data.extract().map_err(|_| {
        SchemaError::new_err(format!(
            "cannot read data of type {}; pass Arrow IPC bytes, a pyarrow Table/RecordBatch/RecordBatchReader or a pandas DataFrame",
            data.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))
    })?;
    let reader = input.into_reader()?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SchemaError::new_err(e.to_string()))
}

fn read_ipc(bytes: &[u8]) -> PyResult<Vec<RecordBatch>> {
    let invalid = |e: arrow::error::ArrowError| {
        SchemaError::new_err(format!(
            "the bytes are not a valid Arrow IPC stream or file: {e}"
        ))
    };
    if bytes.starts_with(b"ARROW1") {
        let reader = FileReader::try_new(Cursor::new(bytes), None).map_err(invalid)?;
        return reader.collect::<Result<Vec<_>, _>>().map_err(invalid);
    }
    let reader = StreamReader::try_new(Cursor::new(bytes), None).map_err(invalid)?;
    reader.collect::<Result<Vec<_>, _>>().map_err(invalid)
}

fn ipc_bytes(result: &QueryResult) -> Result<Vec<u8>, EngineError> {
    let mut buffer = Vec::new();
    {
        let mut writer = StreamWriter::try_new(&mut buffer, &result.schema)?;
        for batch in &result.batches {
            writer.write(batch)?;
        }
        writer.finish()?;
    }
    Ok(buffer)
}

#[pymodule]
fn _apiary(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeNode>()?;
    let py = m.py();
    for (name, ty) in [
        ("ApiaryError", py.get_type::<ApiaryError>()),
        ("InvalidNameError", py.get_type::<InvalidNameError>()),
        ("AlreadyExistsError", py.get_type::<AlreadyExistsError>()),
        ("NotFoundError", py.get_type::<NotFoundError>()),
        ("SchemaError", py.get_type::<SchemaError>()),
        ("StorageError", py.get_type::<StorageError>()),
        ("CommitUnknownError", py.get_type::<CommitUnknownError>()),
        ("SqlError", py.get_type::<SqlError>()),
        ("UnsupportedError", py.get_type::<UnsupportedError>()),
        ("NotStartedError", py.get_type::<NotStartedError>()),
        (
            "DeadlineExceededError",
            py.get_type::<DeadlineExceededError>(),
        ),
        ("OverloadedError", py.get_type::<OverloadedError>()),
    ] {
        m.add(name, ty)?;
    }
    Ok(())
}
