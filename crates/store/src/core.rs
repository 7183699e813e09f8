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
//! too (they may share the writer's core). If the process may not set affinities (a restricted
//! container), nothing is pinned, a warning is logged and everything still works.

use std::future::Future;
use std::sync::OnceLock;

/// The core the SQLite writer runs on: the last one this process may use (read once, from the
/// first thread that asks, before it pins itself), or `None` where affinities cannot be read.
pub(crate) fn writer_core() -> Option<core_affinity::CoreId> {
    static CORE: OnceLock<Option<core_affinity::CoreId>> = OnceLock::new();
    *CORE.get_or_init(|| core_affinity::get_core_ids().and_then(|cores| cores.last().copied()))
}

/// Runs `work` to completion on a new thread named `name`, pinned to the writer's core, with a
/// single-threaded runtime of its own; answers what it returned. Threads `work` starts inherit the
/// pin.
pub(crate) fn spawn_on_writer_core<F, T>(
    name: &str,
    work: impl FnOnce() -> F + Send + 'static,
) -> std::io::Result<tokio::sync::oneshot::Receiver<T>>
where
    F: Future<Output = T>,
    T: Send + 'static,
{
    let (done, finished) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name(name.to_string()).spawn(move || {
        if let Some(core) = writer_core()
            && !core_affinity::set_for_current(core)
        {
            tracing::warn!(core = core.id, "could not pin the writer's thread to its core; it runs unpinned");
        }
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
        let core = writer_core().expect("this process's cores are readable on Linux");
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
        }
        store.close().await;
    }
}
