//! Where the SQLite writer runs: its task and its connection's thread share one CPU core.
//!
//! The writer and SQLite's connection thread take turns: the writer hands a statement over and
//! waits, the connection thread runs it and hands the answer back. When the two threads sit on
//! different cores, each hand-over wakes an idle core; on a virtual machine that is an
//! inter-processor interrupt through the hypervisor, about 55 µs a statement on the 2-vCPU
//! machines Keten is measured on, against about 8 µs when both threads share a core
//! (docs/benchmarks.md, 2026-12-04). So on SQLite the writer gets a thread of its own, pinned to
//! one core, and the write connection is opened from a thread pinned to the same core (a thread
//! inherits its creator's affinity, and SQLite's driver runs each connection on a thread it starts
//! when connecting). Everything else runs wherever the scheduler puts it, the runtime's threads
//! too (they may share the writer's core). [`WriterCore`] chooses the core, or none. If the
//! process may not set affinities (a restricted container), nothing is pinned, a warning is
//! logged and everything still works.

use std::future::Future;
use std::sync::OnceLock;

use crate::StoreError;

/// Which core the SQLite writer and its connection's thread run on (`keten --writer-core`,
/// `KETEN_WRITER_CORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriterCore {
    /// The last core the process may use (`last`, the default).
    #[default]
    Last,
    /// Not pinned (`off`): where the cores are shared with other work, or where a quota, not a
    /// set of cores, limits the process.
    Off,
    /// This core (its number), which must be one the process may use.
    Core(usize),
}

impl std::str::FromStr for WriterCore {
    type Err = String;

    fn from_str(text: &str) -> Result<WriterCore, String> {
        match text {
            "last" => Ok(WriterCore::Last),
            "off" => Ok(WriterCore::Off),
            number => number
                .parse()
                .map(WriterCore::Core)
                .map_err(|_| format!("{number:?} is no core: `last`, `off` or a core's number")),
        }
    }
}

/// The cores this process may use, read once (before any thread of Keten pins itself).
fn allowed_cores() -> &'static [core_affinity::CoreId] {
    static CORES: OnceLock<Vec<core_affinity::CoreId>> = OnceLock::new();
    CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
}

impl WriterCore {
    /// The core to pin to: `None` for `off`, or where the process's cores cannot be read. A core
    /// the process may not use is refused.
    pub(crate) fn resolve(self) -> Result<Option<core_affinity::CoreId>, StoreError> {
        let allowed = allowed_cores();
        match self {
            WriterCore::Off => Ok(None),
            WriterCore::Last => Ok(allowed.last().copied()),
            WriterCore::Core(id) if allowed.is_empty() || allowed.iter().any(|core| core.id == id) => {
                Ok(Some(core_affinity::CoreId { id }))
            }
            WriterCore::Core(id) => Err(StoreError::Config(format!(
                "writer core {id} is not one this process may use ({})",
                allowed.iter().map(|core| core.id.to_string()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

/// A core the process may use other than the writer's `core`, where the writer applies writes
/// ahead while SQLite's thread commits on its own (`writer::Ahead`): `None` when the writer is not
/// pinned or the process has one core.
pub(crate) fn other_core(core: Option<core_affinity::CoreId>) -> Option<core_affinity::CoreId> {
    let core = core?;
    allowed_cores().iter().copied().find(|other| other.id != core.id)
}

/// Runs `work` to completion on a new thread named `name`, pinned to `core` (if any), with a
/// single-threaded runtime of its own; answers what it returned. Threads `work` starts inherit the
/// pin. Returns once the thread has pinned itself (a few microseconds), so the thread is where it
/// belongs before anything is handed to it.
pub(crate) fn spawn_on_core<F, T>(
    name: &str,
    core: Option<core_affinity::CoreId>,
    work: impl FnOnce() -> F + Send + 'static,
) -> std::io::Result<tokio::sync::oneshot::Receiver<T>>
where
    F: Future<Output = T>,
    T: Send + 'static,
{
    let (done, finished) = tokio::sync::oneshot::channel();
    let (placed, was_placed) = std::sync::mpsc::sync_channel(1);
    let thread = name.to_owned();
    std::thread::Builder::new().name(name.to_string()).spawn(move || {
        if let Some(core) = core
            && !core_affinity::set_for_current(core)
        {
            tracing::warn!(
                core = core.id,
                thread,
                "could not pin a thread of the writer to its core; it runs unpinned"
            );
        }
        let _ = placed.send(());
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "could not build the writer thread's runtime");
                return;
            }
        };
        let outcome = runtime.block_on(work());
        let _ = done.send(outcome);
    })?;
    let _ = was_placed.recv();
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's threads: their names (as the kernel keeps them, 15 bytes at most) and the
    /// cores each may run on (`Cpus_allowed_list`, e.g. `1` or `0-1`).
    fn threads() -> Vec<(String, String)> {
        let mut threads = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let path = task.unwrap().path();
            let (Ok(name), Ok(status)) =
                (std::fs::read_to_string(path.join("comm")), std::fs::read_to_string(path.join("status")))
            else {
                continue; // the thread ended meanwhile
            };
            let allowed = status.lines().find_map(|line| line.strip_prefix("Cpus_allowed_list:")).unwrap_or("");
            threads.push((name.trim().to_string(), allowed.trim().to_string()));
        }
        threads
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sqlite_writer_and_its_connection_share_one_core_and_readers_are_free() {
        let file = scratchdb::SqliteFile::new().unwrap();
        let store = crate::Store::open(crate::StoreConfig::new(file.url())).await.unwrap();
        let core = WriterCore::Last.resolve().unwrap().expect("this process's cores are readable on Linux");
        let cores = core_affinity::get_core_ids().unwrap();
        assert_eq!(cores.last(), Some(&core), "the writer takes the last core this process may use");
        let pinned = core.id.to_string();
        let threads = threads();
        assert!(
            threads.iter().any(|(name, allowed)| name == "keten-writer" && *allowed == pinned),
            "no writer thread pinned to core {pinned}: {threads:?}"
        );
        // SQLite's driver names each connection's thread `sqlx-sqlite-worker-N`.
        let connections: Vec<&String> = threads
            .iter()
            .filter(|(name, _)| name.starts_with("sqlx-sqlite-wor"))
            .map(|(_, allowed)| allowed)
            .collect();
        assert!(connections.contains(&&pinned), "no connection thread pinned to core {pinned}: {threads:?}");
        if cores.len() > 1 {
            // A read connection runs wherever the scheduler puts it.
            assert!(connections.iter().any(|allowed| **allowed != pinned), "every connection is pinned: {threads:?}");
            // Writes applied ahead run on another core than the writer's (`writer::Ahead`).
            let other = cores.iter().find(|other| other.id != core.id).unwrap().id.to_string();
            assert!(
                threads.iter().any(|(name, allowed)| name == "keten-ahead" && *allowed == other),
                "no thread applying writes ahead pinned to core {other}: {threads:?}"
            );
        }
        store.close().await;
    }

    #[test]
    fn writer_cores_parse_and_a_core_the_process_may_not_use_is_refused() {
        assert_eq!("last".parse(), Ok(WriterCore::Last));
        assert_eq!("off".parse(), Ok(WriterCore::Off));
        assert_eq!("1".parse(), Ok(WriterCore::Core(1)));
        assert!("first".parse::<WriterCore>().unwrap_err().contains("`last`, `off` or a core's number"));
        assert_eq!(WriterCore::Off.resolve().unwrap(), None);
        let cores = core_affinity::get_core_ids().unwrap();
        let first = cores[0].id;
        assert_eq!(WriterCore::Core(first).resolve().unwrap(), Some(cores[0]));
        let error = WriterCore::Core(100_000).resolve().unwrap_err().to_string();
        assert!(error.contains("writer core 100000 is not one this process may use"), "{error}");
    }

    /// `off`: the writer's thread and the write connection's run wherever the scheduler puts them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unpinned_writer_runs_on_every_core() {
        let file = scratchdb::SqliteFile::new().unwrap();
        let mut config = crate::StoreConfig::new(file.url());
        config.writer.core = WriterCore::Off;
        let store = crate::Store::open(config).await.unwrap();
        // The cores of the process's first thread, which nothing pins.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let all =
            status.lines().find_map(|line| line.strip_prefix("Cpus_allowed_list:")).map(|list| list.trim().to_string());
        // This test's writer thread is unpinned: as wide as the process (the other tests' are pinned).
        let writers: Vec<String> =
            threads().into_iter().filter(|(name, _)| name == "keten-writer").map(|(_, allowed)| allowed).collect();
        assert!(!writers.is_empty());
        if core_affinity::get_core_ids().unwrap().len() > 1 {
            assert!(writers.iter().any(|allowed| Some(allowed) == all.as_ref()), "{writers:?} against {all:?}");
        }
        store.close().await;
    }
}
