"""Apiary: a lakehouse for small compute that scales out.

``Apiary`` embeds a node in this Python process. With ``storage=None`` the
node keeps its data in a local directory (``$APIARY_HOME/<name>``, default
``~/.apiary/<name>``); with ``storage="s3://bucket/prefix"`` it uses an
S3-compatible bucket, configured by ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL`` and ``AWS_REGION``.

Data is organised as hives (databases), boxes (schemas) and frames (tables);
in SQL a frame is ``hive.box.frame``. Frames are Delta Lake tables, so other
tools (``deltalake``, DuckDB, Spark, Polars) can read them.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ._apiary import (
    AlreadyExistsError,
    ApiaryError,
    CommitUnknownError,
    DeadlineExceededError,
    InvalidNameError,
    NativeNode,
    NotFoundError,
    NotStartedError,
    OverloadedError,
    SchemaError,
    SqlError,
    StorageError,
    UnsupportedError,
)



def _pyarrow_compat() -> None:
    """Apiary's tutorials write IPC with ``pa.ipc.new_stream_writer``, a name
    pyarrow spells ``pa.ipc.new_stream``; provide the alias so they run as
    written (see docs/decisions.md)."""
    import pyarrow.ipc as ipc

    if not hasattr(ipc, "new_stream_writer"):
        ipc.new_stream_writer = ipc.new_stream


_pyarrow_compat()

__all__ = [
    "Apiary",
    "ApiaryError",
    "AlreadyExistsError",
    "CommitUnknownError",
    "DeadlineExceededError",
    "InvalidNameError",
    "NotFoundError",
    "NotStartedError",
    "OverloadedError",
    "SchemaError",
    "SqlError",
    "StorageError",
    "UnsupportedError",
]


class Apiary:
    """An Apiary node running inside this process.

    Call :meth:`start` before anything else and :meth:`shutdown` when done,
    or use it as a context manager::

        with Apiary("demo") as ap:
            ap.sql("SELECT 1")
    """

    def __init__(self, name: str, storage: Optional[str] = None) -> None:
        self.name = name
        self._node = NativeNode(name, storage)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> "Apiary":
        """Connect to the storage root (checking access) and start the node."""
        self._node.start()
        return self

    def shutdown(self) -> None:
        """Stop the node. Safe to call more than once."""
        self._node.shutdown()

    def __enter__(self) -> "Apiary":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    @property
    def storage(self) -> str:
        """The storage root this node uses."""
        return self._node.storage()

    # -- status ------------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        """This node: id, storage root, state, cores, memory."""
        return json.loads(self._node.status_json())

    def swarm_status(self) -> Dict[str, Any]:
        """The live nodes of this root: ``alive``, ``total_bees``, ``nodes`` …"""
        return json.loads(self._node.swarm_status_json())

    def colony_status(self) -> Dict[str, Any]:
        """Load of this node: ``temperature`` in [0, 1], ``regulation``, ``abandoned_tasks``."""
        return json.loads(self._node.colony_status_json())

    # -- catalog -----------------------------------------------------------

    def create_hive(self, hive: str) -> None:
        """Create a hive (a database). Raises AlreadyExistsError if it exists."""
        self._node.create_hive(hive)

    def create_box(self, hive: str, box: str) -> None:
        """Create a box (a schema) in a hive."""
        self._node.create_box(hive, box)

    def create_frame(
        self,
        hive: str,
        box: str,
        frame: str,
        schema: Mapping[str, str],
        partition_by: Optional[Sequence[str]] = None,
    ) -> None:
        """Create a frame (a table).

        ``schema`` maps column names to type names: int8…int64, uint8…uint64,
        float32, float64, utf8/string, bool/boolean, date32, timestamp,
        binary, decimal(p,s); append `` not null`` to forbid nulls.
        Partition columns never accept nulls.
        """
        if not isinstance(schema, Mapping):
            raise SchemaError("schema must be a dict of column name -> type name")
        columns = [(str(k), str(v)) for k, v in schema.items()]
        self._node.create_frame(hive, box, frame, columns, list(partition_by or []))

    def drop_frame(self, hive: str, box: str, frame: str) -> None:
        """Remove a frame and delete its data."""
        self._node.drop_frame(hive, box, frame)

    def list_hives(self) -> List[str]:
        return self._node.list_hives()

    def list_boxes(self, hive: str) -> List[str]:
        return self._node.list_boxes(hive)

    def list_frames(self, hive: str, box: str) -> List[str]:
        return self._node.list_frames(hive, box)

    def get_frame(self, hive: str, box: str, frame: str) -> Dict[str, Any]:
        """A frame's schema, partitioning, indexes, version, cells, rows and
        bytes, and ``location``: the URL of its Delta table, for other Delta
        readers (a renamed frame keeps its directory)."""
        return json.loads(self._node.get_frame_json(hive, box, frame))

    # Traditional names for the same operations.
    create_database = create_hive
    create_schema = create_box
    create_table = create_frame
    drop_table = drop_frame
    list_databases = list_hives
    list_schemas = list_boxes
    list_tables = list_frames
    get_table = get_frame

    # -- data --------------------------------------------------------------

    def write_to_frame(
        self,
        hive: str,
        box: str,
        frame: str,
        data: Any,
        drop_extra_columns: bool = False,
        idempotency_key: Optional[str] = None,
        evolve_schema: bool = False,
    ) -> Dict[str, Any]:
        """Append rows in one atomic commit.

        ``data``: Arrow IPC stream (or file) bytes, a ``pyarrow.Table``,
        ``RecordBatch`` or ``RecordBatchReader``, or a ``pandas.DataFrame``.
        Returns ``cells_written``, ``rows_written``, ``bytes_written``,
        ``version``, ``already_committed`` and ``duration_ms``. Data that
        does not fit the frame raises SchemaError and writes nothing.

        The write commits exactly once: it returns when its commit stands
        and raises when it does not. Pass ``idempotency_key`` (any string up
        to 256 bytes, unique per logical write) to make retries safe across
        calls and processes: a write whose key the frame already holds
        writes nothing and returns ``already_committed=True``.

        With ``evolve_schema=True``, columns of ``data`` the frame does not
        have are first added to it as nullable columns (as ``ALTER TABLE …
        ADD COLUMN`` would); rows written before read them as NULL.
        """
        return json.loads(
            self._node.write(
                hive,
                box,
                frame,
                _arrow_input(data),
                False,
                drop_extra_columns,
                idempotency_key,
                evolve_schema,
            )
        )

    def overwrite_frame(
        self,
        hive: str,
        box: str,
        frame: str,
        data: Any,
        drop_extra_columns: bool = False,
        idempotency_key: Optional[str] = None,
        evolve_schema: bool = False,
    ) -> Dict[str, Any]:
        """Replace all rows of a frame in one atomic commit (same inputs as write_to_frame)."""
        return json.loads(
            self._node.write(
                hive,
                box,
                frame,
                _arrow_input(data),
                True,
                drop_extra_columns,
                idempotency_key,
                evolve_schema,
            )
        )

    def read_from_frame(self, hive: str, box: str, frame: str, version: int | None = None) -> bytes:
        """All rows of a frame as Arrow IPC stream bytes; with ``version``,
        as the frame held them at that Delta version (see DESCRIBE HISTORY)."""
        return self._node.sql(self._node.select_all_sql(hive, box, frame, version))

    def read_table(self, hive: str, box: str, frame: str, version: int | None = None):
        """All rows of a frame as a ``pyarrow.Table``; ``version`` as in
        :meth:`read_from_frame`."""
        return self._node.sql_table(self._node.select_all_sql(hive, box, frame, version))

    def sql(self, query: str) -> bytes:
        """Run one SQL statement; the result as Arrow IPC stream bytes
        (read it with ``pyarrow.ipc.open_stream``)."""
        return self._node.sql(query)

    def query(self, query: str):
        """Run one SQL statement; the result as a ``pyarrow.Table``."""
        return self._node.sql_table(query)

    def __repr__(self) -> str:
        state = "running" if self._node.is_running() else "stopped"
        return f"Apiary({self.name!r}, storage={self.storage!r}, {state})"


def _arrow_input(data: Any) -> Any:
    """Pass bytes and Arrow-exporting objects through; convert the rest."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        import pyarrow as pa

        return pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
        return data
    raise SchemaError(
        f"cannot write data of type {type(data).__name__}; pass Arrow IPC bytes, "
        "a pyarrow Table/RecordBatch/RecordBatchReader or a pandas DataFrame"
    )

