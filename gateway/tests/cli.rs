//! The `apiary` command as a user runs it.

use std::process::Command;

mod common;

fn apiary(args: &[&str]) -> (i32, String, String) {
    apiary_with(args, &[])
}

/// Runs `apiary` with extra environment variables.
fn apiary_with(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_apiary"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("APIARY_STORAGE")
        .env_remove("APIARY_USER")
        .env_remove("APIARY_PASSWORD")
        .output()
        .expect("run apiary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sql_prints_a_table_for_a_local_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let root = root.to_str().unwrap();
    let (code, out, err) = apiary(&[
        "sql",
        "--storage",
        root,
        "SELECT 'hello' AS greeting, 40 + 2 AS answer",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("| greeting | answer |"), "{out}");
    assert!(out.contains("| hello    | 42     |"), "{out}");
    assert!(out.contains("(1 rows)"), "{out}");
    let (code, out, _) = apiary(&["sql", "--storage", root, "SHOW HIVES"]);
    assert_eq!(code, 0);
    assert!(out.contains("default"), "{out}");
}

#[test]
fn bad_sql_fails_with_a_message_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let (code, _, err) = apiary(&["sql", "--storage", root, "SELEC 1"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("error:"), "{err}");
    let (code, _, err) = apiary(&[
        "sql",
        "--storage",
        root,
        "SELECT * FROM default.default.nope",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("nope"), "{err}");
    let (code, _, err) = apiary(&["sql", "--storage", "ftp://x/y", "SELECT 1"]);
    assert_eq!(code, 1);
    assert!(err.contains("unsupported scheme"), "{err}");
}

#[test]
fn status_lists_the_servers_of_a_root() {
    let empty = tempfile::tempdir().unwrap();
    let (code, out, err) = apiary(&["status", "--storage", empty.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(status["swarm"]["alive"], 0);
    assert_eq!(status["node"]["mode"], "client");
    assert!(status["colony"]["regulation"].is_string());

    let server = common::Server::start();
    let root = server.root().to_str().unwrap().to_string();
    let (code, out, err) = apiary(&["status", "--storage", &root]);
    assert_eq!(code, 0, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(status["swarm"]["alive"], 1, "{status}");
    let node = &status["swarm"]["nodes"][0];
    assert_eq!(node["state"], "alive");
    assert!(node["node_id"].as_str().unwrap().len() > 8);
    assert!(node["bees"].as_u64().unwrap() >= 1);
    // The endpoint actually bound, not the configured port 0, from the
    // first heartbeat after binding (one interval, 2 s).
    let bound = format!("127.0.0.1:{}", server.port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, out, _) = apiary(&["status", "--storage", &root]);
        let status: serde_json::Value = serde_json::from_str(&out).expect("json");
        if status["swarm"]["nodes"][0]["listen"] == bound.as_str() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the heartbeat never announced {bound}: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(server.terminate().success());
}

#[test]
fn serve_refuses_half_configured_credentials() {
    let (code, _, err) = apiary(&["serve", "--user", "ana", "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 1);
    assert!(err.contains("APIARY_PASSWORD"), "{err}");
}

#[test]
fn bad_node_settings_are_refused_with_what_to_write_and_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let root = root.to_str().unwrap();
    for (variable, value, advice) in [
        ("APIARY_BEE_MEMORY", "lots", "64MiB"),
        ("APIARY_BEE_MEMORY", "10", "at least 1 MiB"),
        ("APIARY_NODE_ID", "../evil", "letters, digits"),
        ("APIARY_HEARTBEAT_INTERVAL", "soon", "2s"),
        (
            "APIARY_DEAD_AFTER",
            "1s",
            "longer than APIARY_HEARTBEAT_INTERVAL",
        ),
        ("APIARY_BACKPRESSURE", "maybe", "wait or error"),
        ("APIARY_CACHE_SIZE", "-3", "64MiB"),
        ("APIARY_DISTRIBUTE_MIN_CELLS", "some", "whole number"),
        ("APIARY_TASK_LEASE", "0s", "duration"),
    ] {
        let (code, _, err) = apiary_with(&["status", "--storage", root], &[(variable, value)]);
        assert_eq!(code, 1, "{variable}={value}");
        assert!(
            err.contains(variable) && err.contains(advice),
            "{variable}={value}: {err}"
        );
    }
    // Nothing was created for the refused node, not even the root.
    assert!(!dir.path().join("root").exists());
    assert!(!std::env::temp_dir()
        .join("apiary-scratch")
        .join("evil")
        .exists());

    let (code, _, err) = apiary(&["sql", "--storage", root, "SHOW SWARM NOW"]);
    assert_eq!(code, 1);
    assert!(err.contains("SHOW SWARM"), "{err}");
}
