//! The `keten` binary as a person uses it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn keten(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_keten"))
        .args(args)
        .env_remove("KETEN_DB")
        .env_remove("KETEN_LISTEN")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn version_is_printed() {
    let output = keten(&["--version"]);
    assert!(output.status.success());
    assert_eq!(text(&output.stdout).trim(), format!("keten {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn migrate_applies_once() {
    let file = scratchdb::SqliteFile::new().unwrap();
    let first = keten(&["migrate", "--db", &file.url()]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("applied 1 foundation"), "{}", text(&first.stdout));
    let second = keten(&["migrate", "--db", &file.url()]);
    assert!(text(&second.stdout).contains("up to date"), "{}", text(&second.stdout));
    let unsupported = keten(&["migrate", "--db", "mysql://localhost/x"]);
    assert!(!unsupported.status.success());
    assert!(text(&unsupported.stderr).contains("unsupported database URL"), "{}", text(&unsupported.stderr));
}

#[test]
fn migrate_works_on_postgres() {
    let Some(url) = scratchdb::postgres_or_skip("migrate_works_on_postgres") else { return };
    let output = keten(&["migrate", "--db", &url]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("applied 1 foundation"));
}

#[test]
fn admin_creates_tenants_and_keys() {
    let file = scratchdb::SqliteFile::new().unwrap();
    let db = file.url();
    let created = keten(&["admin", "tenant", "create", "acme", "--name", "Acme Foods", "--db", &db]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let again = keten(&["admin", "tenant", "create", "acme", "--name", "Acme Foods", "--db", &db]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already exists"), "{}", text(&again.stderr));
    let reserved = keten(&["admin", "tenant", "create", "network", "--name", "x", "--db", &db]);
    assert!(!reserved.status.success());
    let listed = keten(&["admin", "tenant", "list", "--db", &db]);
    assert_eq!(text(&listed.stdout), "acme\tAcme Foods\n");
    let key =
        keten(&["admin", "key", "create", "--tenant", "acme", "--scope", "tenant:read", "--name", "ci", "--db", &db]);
    assert!(key.status.success(), "{}", text(&key.stderr));
    let key_text = text(&key.stdout).trim().to_owned();
    assert!(key_text.starts_with("ktn_acme_"), "{key_text}");
    let bad_scope = keten(&["admin", "key", "create", "--tenant", "acme", "--scope", "operator", "--db", &db]);
    assert!(!bad_scope.status.success());
    let no_tenant = keten(&["admin", "key", "create", "--tenant", "ghost", "--scope", "tenant:read", "--db", &db]);
    assert!(text(&no_tenant.stderr).contains("no tenant ghost"), "{}", text(&no_tenant.stderr));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let principal = runtime.block_on(async {
        let store = store::Store::open(store::StoreConfig::new(&db)).await.unwrap();
        let principal = store.authenticate(&key_text).await.unwrap();
        store.close().await;
        principal
    });
    let principal = principal.expect("the printed key authenticates");
    let key_id = principal.key_id.clone();
    let revoked = keten(&["admin", "key", "revoke", "--tenant", "acme", &key_id, "--db", &db]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let after = runtime.block_on(async {
        let store = store::Store::open(store::StoreConfig::new(&db)).await.unwrap();
        let principal = store.authenticate(&key_text).await.unwrap();
        store.close().await;
        principal
    });
    assert_eq!(after, None);
}

/// Runs `keten demo` until it prints its keys; answers the child and the printed lines.
fn start_demo(db: &str, port: u16) -> (Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keten"))
        .args(["demo", "--listen", &format!("127.0.0.1:{port}"), "--db", db])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    let reader = BufReader::new(child.stdout.take().unwrap());
    for line in reader.lines() {
        let line = line.unwrap();
        let done = line.contains("keys are shown once");
        lines.push(line);
        if done {
            break;
        }
    }
    (child, lines)
}

fn key_of(lines: &[String], label: &str) -> String {
    lines.iter().find(|line| line.contains(label)).and_then(|line| line.split_whitespace().last()).unwrap().to_owned()
}

fn get(port: u16, path: &str, key: &str) -> (u16, serde_json::Value) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match reqwest::Client::new().get(format!("http://127.0.0.1:{port}{path}")).bearer_auth(key).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    return (status, response.json().await.unwrap_or(serde_json::Value::Null));
                }
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("server never answered: {error}"),
            }
        }
    })
}

fn stop(mut child: Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "keten did not shut down cleanly: {exit:?}");
            return;
        }
        assert!(Instant::now() < deadline, "keten did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn demo_runs_twice_on_one_database() {
    let file = scratchdb::SqliteFile::new().unwrap();
    let db = file.url();
    let port = free_port();
    let (first, first_lines) = start_demo(&db, port);
    let salmon_key = key_of(&first_lines, "(nordfjord) key:");
    let operator_key = key_of(&first_lines, "operator key:");
    let (status, products) = get(port, "/v1/products", &salmon_key);
    assert_eq!(status, 200);
    assert_eq!(products["items"].as_array().unwrap().len(), 2);
    let (status, tenants) = get(port, "/v1/operator/tenants", &operator_key);
    assert_eq!(status, 200);
    assert_eq!(tenants["items"].as_array().unwrap().len(), 4, "network + three demo tenants");
    let link = first_lines
        .iter()
        .find(|line| line.contains("Digital Link"))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned();
    let path = link.trim_start_matches(&format!("http://127.0.0.1:{port}"));
    let page = tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::get(format!("http://127.0.0.1:{port}{path}")).await.unwrap().text().await.unwrap()
    });
    assert!(page.contains("Norwegian salmon fillets") && page.contains("Ingrid Solberg"), "{page}");
    stop(first);

    let (second, second_lines) = start_demo(&db, port);
    let fresh_key = key_of(&second_lines, "(nordfjord) key:");
    assert_ne!(fresh_key, salmon_key);
    let (status, products) = get(port, "/v1/products", &fresh_key);
    assert_eq!((status, products["items"].as_array().unwrap().len()), (200, 2), "nothing duplicated");
    let (status, _) = get(port, "/v1/products", &salmon_key);
    assert_eq!(status, 200, "the first run's key still works");
    let (_, locations) = get(port, "/v1/locations?limit=500", &fresh_key);
    assert_eq!(locations["items"].as_array().unwrap().len(), 7);
    stop(second);
}

#[test]
fn benchmarks_end_with_a_summary_line() {
    for args in [
        &["bench", "gs1", "--seconds", "0.05", "--rounds", "1"][..],
        &["bench", "resolver", "--seconds", "0.2", "--connections", "2"][..],
    ] {
        let output = keten(args);
        assert!(output.status.success(), "{args:?}: {}", text(&output.stderr));
        let stdout = text(&output.stdout);
        let last = stdout.lines().last().unwrap_or("");
        assert!(last.starts_with("summary: "), "{args:?}: {stdout}");
    }
    let refused = keten(&["bench", "gs1", "--rounds", "0"]);
    assert!(!refused.status.success());
}

fn keten_with_stdin(args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_keten"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn coldchain_analyse_reads_a_logger_file() {
    // MKT vector 3 of the cold-chain issue: 14 °C for 6 h, then 5 °C for 18 h (hourly readings).
    let mut csv = String::from("time,celsius\n");
    for hour in 0..24 {
        let celsius = if hour < 6 { 14 } else { 5 };
        csv.push_str(&format!("2026-11-01T{hour:02}:00:00Z,{celsius}\n"));
    }
    let output = keten_with_stdin(&["coldchain", "analyse", "-", "--class", "pharma", "--json"], &csv);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let analysis: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(analysis["mkt_celsius"], 8.29);
    assert_eq!(analysis["pass"], false);
    assert_eq!(analysis["time_out_of_range_s"], 6 * 3600);
    assert_eq!(analysis["excursions"][0]["peak_celsius"], 14.0);
    let text_output = keten_with_stdin(&["coldchain", "analyse", "-", "--class", "pharma"], &csv);
    assert!(text(&text_output.stdout).contains("FAIL"), "{}", text(&text_output.stdout));
    let broken = keten_with_stdin(
        &["coldchain", "analyse", "-", "--class", "pharma"],
        "time,celsius\n2026-11-01T00:00:00Z,4\nyesterday,5\n",
    );
    assert!(!broken.status.success());
    assert!(text(&broken.stderr).contains("line 3"), "{}", text(&broken.stderr));
    let unknown_class = keten(&["coldchain", "analyse", "-", "--class", "tepid"]);
    assert!(!unknown_class.status.success());
}
