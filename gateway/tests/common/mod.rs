//! Test harness: `apiary serve` as a real child process on a free loopback
//! port over a temporary storage root, plus a tokio-postgres client.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `apiary serve`; killed when dropped.
pub struct Server {
    pub port: u16,
    pub root: tempfile::TempDir,
    child: Child,
}

/// The port in a "listening" log line such as `… listen=127.0.0.1:41234 …`.
fn listening_port(line: &str) -> Option<u16> {
    if !line.contains("gateway listening") {
        return None;
    }
    let addr = line.split("listen=").nth(1)?.split_whitespace().next()?;
    addr.rsplit(':').next()?.parse().ok()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Server {
    /// Starts a server with extra environment variables (e.g. users, TLS).
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let root = tempfile::tempdir().expect("temp dir");
        Self::start_on(root, env)
    }

    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// Starts on port 0 and reads the port the server logs, so parallel
    /// tests never race for a port.
    pub fn start_on(root: tempfile::TempDir, env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_apiary"));
        command
            .arg("serve")
            .env("APIARY_STORAGE", root.path())
            .env("APIARY_LISTEN", "127.0.0.1:0")
            .env("APIARY_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("APIARY_USER")
            .env_remove("APIARY_PASSWORD")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn apiary serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut sent = false;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if !sent {
                    if let Some(port) = listening_port(&line) {
                        let _ = tx.send(port);
                        sent = true;
                    }
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("apiary serve did not report its port within 30 s");
        Server { port, root, child }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `host=… port=… user=…` plus `extra`.
    pub fn conninfo(&self, extra: &str) -> String {
        format!("host=127.0.0.1 port={} user=tester {extra}", self.port)
    }

    pub async fn connect(&self) -> tokio_postgres::Client {
        self.connect_with("").await.expect("connect")
    }

    pub async fn connect_with(
        &self,
        extra: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) =
            tokio_postgres::connect(&self.conninfo(extra), tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "apiary serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}
