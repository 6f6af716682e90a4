"""Storage faults as clients meet them: a node whose S3 server stops
answering keeps accepting connections, fails statements with 58030 instead
of hanging, and serves them again once storage answers."""

from __future__ import annotations

import socket
import threading
import time
import uuid

import psycopg
import pytest

from test_gateway import dsn, free_port, start_server, stop_server


class CuttableProxy(threading.Thread):
    """A TCP proxy to `target`; once `cut`, it resets every connection, as
    an unreachable or failing S3 endpoint does."""

    def __init__(self, target: tuple[str, int]):
        super().__init__(daemon=True)
        self.target = target
        self.cut = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]

    def run(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut.is_set():
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    def pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not self.cut.is_set():
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.close()
                except OSError:
                    pass


@pytest.fixture
def proxied_node(s3_env):
    host, port = s3_env["AWS_ENDPOINT_URL"].removeprefix("http://").rsplit(":", 1)
    proxy = CuttableProxy((host, int(port)))
    proxy.start()
    storage = f"s3://{s3_env['APIARY_TEST_S3_BUCKET']}/{uuid.uuid4().hex}"
    node_port = free_port()
    proc = start_server(
        storage,
        f"127.0.0.1:{node_port}",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}",
    )
    yield proxy, node_port
    proxy.cut.clear()
    proc.kill()
    proc.wait()
    proxy.listener.close()


def test_connections_survive_storage_that_stops_answering(proxied_node):
    proxy, port = proxied_node
    with psycopg.connect(dsn(port), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x BIGINT)")
        conn.execute("INSERT INTO t VALUES (1), (2)")
    proxy.cut.set()
    # A new connection goes on with the registry the node read last; a
    # statement, which reads the newest registry, fails cleanly and soon.
    started = time.monotonic()
    with psycopg.connect(dsn(port), autocommit=True, connect_timeout=20) as conn:
        with pytest.raises(psycopg.Error) as failed:
            conn.execute("SELECT count(*) FROM t")
        assert failed.value.sqlstate == "58030", failed.value
        assert "storage" in str(failed.value)
        # A database the node has never seen cannot be checked: 58030.
        with pytest.raises(psycopg.OperationalError, match="registry|storage"):
            psycopg.connect(dsn(port, "nosuchhive"), connect_timeout=20)
        assert time.monotonic() - started < 20
        proxy.cut.clear()
        # The same connection goes on once storage answers again.
        assert conn.execute("SELECT sum(x) FROM t").fetchone()[0] == 3
