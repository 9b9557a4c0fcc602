//! The wasmtime engine: component model, pooling allocator, epoch interruption driven
//! by a ticker thread so every call can be given a wall-clock deadline.

use crate::policy::MAX_MEMORY_MIB;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Interval between epoch ticks; deadlines are enforced to this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Component instances a server's pool holds at once (across all plugins).
pub const POOL_COMPONENT_INSTANCES: u32 = 256;

/// How many instances an engine's pool holds at once. The pool reserves address space for
/// every slot up front, so a process that runs one plugin asks for a small one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSize {
    pub component_instances: u32,
    /// Core instances per component instance: a CPython component needs 33.
    pub core_per_component: u32,
    /// Freed slots decommitted together: one madvise (and one cross-CPU TLB shootdown)
    /// per batch instead of per call lifted plugin-route throughput by ~30%
    /// (`benches/route-vs-native`). A pool smaller than a batch would run dry with its
    /// slots queued and take an error-and-flush detour on most calls.
    pub decommit_batch: usize,
    /// Bytes of each freed linear memory reset in place rather than given back to the
    /// kernel, so the next call takes no page faults there. Where Linux has the
    /// `PAGEMAP_SCAN` ioctl (6.7+) these are the pages the call dirtied, wherever they lie,
    /// not the lowest ones: a fresh-instance no-op 16.1 -> 7.6 us, `hello` 18.6 -> 8.1 us
    /// (`cargo bench --bench invoke`). Callgrind counts the resetting but not the faults it
    /// saves, so the one-plugin pool that `benches/callgrind-guard` measures keeps none.
    pub keep_resident_memory: usize,
    /// The same for each freed table.
    pub keep_resident_table: usize,
}

impl PoolSize {
    /// A server's pool: many plugins, many calls at once.
    pub const SERVER: PoolSize = PoolSize {
        component_instances: POOL_COMPONENT_INSTANCES,
        core_per_component: 8,
        decommit_batch: 32,
        keep_resident_memory: 64 << 10,
        keep_resident_table: 4 << 10,
    };
    /// One plugin called one call at a time (`capstan run`): a few gigabytes of address
    /// space instead of terabytes, so it also runs under valgrind.
    pub const ONE_PLUGIN: PoolSize = PoolSize {
        component_instances: 4,
        core_per_component: 64,
        decommit_batch: 1,
        keep_resident_memory: 0,
        keep_resident_table: 0,
    };
}

/// The settings compiled code depends on: the engine that runs plugins and the one a
/// compile child uses must agree on them, or an artifact would not load.
fn code_config() -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(512 * 1024);
    config
}

/// An engine that only compiles (no instance pool to reserve memory for), whose
/// artifacts load in [`build_engine`]'s.
pub fn build_compiler() -> anyhow::Result<Engine> {
    Engine::new(&code_config())
        .map_err(|e| anyhow::anyhow!("cannot build the compiling engine: {e:#}"))
}

/// Build the engine plugins run in, with a pool of `size`.
pub fn build_engine(size: PoolSize) -> anyhow::Result<Engine> {
    let instances = size.component_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances * size.core_per_component)
        .total_memories(instances * 2)
        .total_tables(instances * 4)
        // Every call runs on a fiber stack of its own (calls are futures).
        .total_stacks(instances)
        .max_memory_size((MAX_MEMORY_MIB as usize) << 20)
        .decommit_batch_size(size.decommit_batch)
        .linear_memory_keep_resident(size.keep_resident_memory)
        .table_keep_resident(size.keep_resident_table)
        .pagemap_scan(Enabled::Auto);
    let mut config = code_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).map_err(|e| anyhow::anyhow!("cannot build the wasmtime engine: {e:#}"))
}

/// Increments the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Start ticking `engine`.
    pub fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("capstan-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_of_the_compiling_engine_load_in_the_pooling_engine() {
        let component = wat::parse_str(
            r#"(component (core module $m (func (export "f") (result i32) i32.const 7))
                (core instance $i (instantiate $m)))"#,
        )
        .unwrap();
        let artifact = build_compiler()
            .unwrap()
            .precompile_component(&component)
            .unwrap();
        // SAFETY: an artifact this process just produced.
        let loaded = unsafe {
            wasmtime::component::Component::deserialize(
                &build_engine(PoolSize::SERVER).unwrap(),
                &artifact,
            )
        };
        assert!(loaded.is_ok(), "{:?}", loaded.err());
    }
}
