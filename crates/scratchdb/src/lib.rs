//! Throwaway databases for tests and benchmarks.
//!
//! [`PostgresServer::start`] runs `initdb` and `pg_ctl` from `PATH` (or `/usr/lib/postgresql/*/bin`)
//! into a temporary directory, on a free loopback port. A small watchdog process stops the server
//! and removes the directory when the process that started it exits, so a crashed test run leaves
//! nothing behind. When the machine runs as root, the server runs as the `postgres` user (PostgreSQL
//! refuses to run as root).
//!
//! Tests call [`postgres_or_skip`]: when PostgreSQL is not installed it prints a loud `SKIPPED` line
//! and returns `None`, except under `CI=true`, where a missing PostgreSQL is a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin")]
    NotInstalled,
    #[error("{command} failed: {output}")]
    Command { command: String, output: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Settings of a scratch server.
#[derive(Debug, Clone, Copy)]
pub struct PostgresOptions {
    /// `fsync` and `synchronous_commit`: off makes tests fast; benchmarks keep them on, so that a
    /// commit is durable as in production.
    pub durable: bool,
    pub max_connections: u32,
    /// Checkpoints spaced as on a server set up for heavy writes: `max_wal_size` 16 GB and
    /// `checkpoint_timeout` 30 min, against PostgreSQL's defaults of 1 GB and 5 min. With the
    /// defaults a checkpoint starts after about 540 MB of WAL; `keten bench orders` writes about
    /// 700 MB in all (generating its stock, then its two measured runs), so a checkpoint, and the
    /// whole pages logged again after it (`full_page_writes`), fell inside one measured run or the
    /// other by chance, and the side it fell on ran slower (a p99 of 181 ms against 23–29 ms).
    /// Spaced, neither run has one (docs/benchmarks.md, Orders,
    /// "2026-12-04, 13:30–14:35 UTC").
    pub checkpoints_spaced: bool,
}

impl PostgresOptions {
    pub const TEST: PostgresOptions =
        PostgresOptions { durable: false, max_connections: 300, checkpoints_spaced: false };
    pub const BENCH: PostgresOptions =
        PostgresOptions { durable: true, max_connections: 300, checkpoints_spaced: true };
}

/// A private PostgreSQL server. Dropping it stops the server and removes its files.
#[derive(Debug)]
pub struct PostgresServer {
    directory: PathBuf,
    port: u16,
    binaries: PathBuf,
    run_as_postgres: bool,
    next_database: AtomicU64,
}

const USER: &str = "keten";

fn find_binaries() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for directory in std::env::split_paths(&path) {
            if directory.join("initdb").is_file() && directory.join("pg_ctl").is_file() {
                // PATH often holds symbolic links to a few tools; the real directory has them all.
                let real = std::fs::canonicalize(directory.join("initdb"))
                    .ok()
                    .and_then(|path| path.parent().map(Path::to_path_buf));
                return Some(real.unwrap_or(directory));
            }
        }
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    candidates.sort();
    candidates.pop()
}

/// Whether PostgreSQL's server binaries are installed.
pub fn postgres_installed() -> bool {
    find_binaries().is_some()
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|output| output.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn run(mut command: Command) -> Result<String, ScratchError> {
    let description = format!("{command:?}");
    let output = command.stdin(Stdio::null()).output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        return Err(ScratchError::Command { command: description, output: text });
    }
    Ok(text)
}

fn free_port() -> Result<u16, ScratchError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl PostgresServer {
    /// Starts a new server. Blocks for about a second (initdb dominates).
    pub fn start(options: PostgresOptions) -> Result<PostgresServer, ScratchError> {
        let binaries = find_binaries().ok_or(ScratchError::NotInstalled)?;
        let run_as_postgres = running_as_root();
        let directory = tempfile::Builder::new().prefix("keten-pg-").tempdir()?.keep();
        if run_as_postgres {
            let mut chown = Command::new("chown");
            chown.arg("-R").arg("postgres:postgres").arg(&directory);
            run(chown)?;
        }
        let data = directory.join("data");
        let server = PostgresServer {
            directory: directory.clone(),
            port: free_port()?,
            binaries,
            run_as_postgres,
            next_database: AtomicU64::new(0),
        };
        server.spawn_watchdog()?;
        let mut initdb = server.tool("initdb");
        initdb.arg("-D").arg(&data).args(["-U", USER, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]);
        run(initdb)?;
        let durable = if options.durable { "on" } else { "off" };
        let checkpoints =
            if options.checkpoints_spaced { " -c max_wal_size=16GB -c checkpoint_timeout=30min" } else { "" };
        let settings = format!(
            "-p {port} -k {socket} -c listen_addresses=127.0.0.1 -c max_connections={max} -c fsync={durable} \
             -c synchronous_commit={durable} -c full_page_writes={durable} -c shared_buffers=256MB{checkpoints}",
            port = server.port,
            socket = directory.display(),
            max = options.max_connections,
        );
        let mut pg_ctl = server.tool("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(&data)
            .arg("-o")
            .arg(settings)
            .arg("-l")
            .arg(directory.join("server.log"))
            .args(["-w", "-t", "60", "start"]);
        run(pg_ctl)?;
        Ok(server)
    }

    fn tool(&self, name: &str) -> Command {
        let path = self.binaries.join(name);
        if self.run_as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    /// Stops the server and removes its files when this process ends, however it ends.
    fn spawn_watchdog(&self) -> Result<(), ScratchError> {
        let pg_ctl = self.binaries.join("pg_ctl");
        let runner = if self.run_as_postgres { "runuser -u postgres -- " } else { "" };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {runner}{pg_ctl} -D {data} stop -m immediate >/dev/null 2>&1; rm -rf {directory}",
            pid = std::process::id(),
            pg_ctl = pg_ctl.display(),
            data = self.directory.join("data").display(),
            directory = self.directory.display(),
        );
        Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a fresh, empty database and returns its URL.
    pub fn create_database(&self) -> Result<String, ScratchError> {
        let number = self.next_database.fetch_add(1, Ordering::Relaxed);
        let name = format!("keten_{}_{number}", std::process::id());
        let mut createdb = Command::new(self.binaries.join("createdb"));
        createdb.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER, &name]);
        run(createdb)?;
        Ok(self.url(&name))
    }

    /// Drops a database [`Self::create_database`] made (by its URL): a bench's later run does not
    /// share the server with its autovacuum.
    pub fn drop_database(&self, url: &str) -> Result<(), ScratchError> {
        let name = url.rsplit('/').next().unwrap_or_default();
        let mut dropdb = Command::new(self.binaries.join("dropdb"));
        dropdb.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER, "--force", name]);
        run(dropdb).map(drop)
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let mut stop = self.tool("pg_ctl");
        stop.arg("-D").arg(self.directory.join("data")).args(["stop", "-m", "fast", "-w"]);
        let _ = run(stop);
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// One server per test process, started on first use (test servers trade durability for speed).
pub fn shared_postgres() -> Result<&'static PostgresServer, String> {
    static SERVER: OnceLock<Result<PostgresServer, String>> = OnceLock::new();
    static STARTING: Mutex<()> = Mutex::new(());
    let _guard = STARTING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    SERVER
        .get_or_init(|| PostgresServer::start(PostgresOptions::TEST).map_err(|error| error.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// Whether this run is under continuous integration, where skipping is failing.
pub fn under_ci() -> bool {
    std::env::var("CI").map(|value| value == "true" || value == "1").unwrap_or(false)
}

/// A fresh PostgreSQL database URL on the shared test server, or `None` (after a loud line) when
/// PostgreSQL is not installed. Under `CI=true` a missing or broken PostgreSQL panics.
pub fn postgres_or_skip(test: &str) -> Option<String> {
    if !postgres_installed() {
        assert!(!under_ci(), "{test}: PostgreSQL is not installed, and CI=true forbids skipping");
        eprintln!("\n!!!! SKIPPED {test} on PostgreSQL: initdb/pg_ctl not found (install PostgreSQL to run it) !!!!\n");
        return None;
    }
    let server = match shared_postgres() {
        Ok(server) => server,
        Err(error) => panic!("{test}: could not start a scratch PostgreSQL server: {error}"),
    };
    match server.create_database() {
        Ok(url) => Some(url),
        Err(error) => panic!("{test}: could not create a scratch database: {error}"),
    }
}

/// A fresh SQLite database file in a temporary directory, removed when the value is dropped.
#[derive(Debug)]
pub struct SqliteFile {
    directory: tempfile::TempDir,
}

impl SqliteFile {
    pub fn new() -> Result<SqliteFile, ScratchError> {
        Ok(SqliteFile { directory: tempfile::Builder::new().prefix("keten-sqlite-").tempdir()? })
    }

    pub fn path(&self) -> PathBuf {
        self.directory.path().join("keten.db")
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path().display())
    }
}
