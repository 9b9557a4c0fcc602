//! The runtime: compiles admitted components, links exactly their grants, and runs each
//! call in a fresh, limited store.

mod artifacts;
mod compile;
mod drive;
mod limits;
mod plugin;
mod state;
mod views;

pub use artifacts::{ArtifactCache, CacheStats};
pub use compile::{CHILD_COMMAND, CompileBudget, CompileError, Compiler, child_main};
pub use limits::CallLimiter;
pub use plugin::{
    CallContext, Caller, DeliveryError, Outcome, Plugin, Request, Response, RunContext, Tool,
    ToolCall, next_call_id,
};
pub use state::CallState;

use crate::audit::{AuditEvent, AuditKind, AuditSink, MemoryAudit, Throttled};
use crate::capability::http::{Outbound, SystemResolver};
use crate::capability::log::{DropReports, LogSink, MemoryLogs};
use crate::capability::{self, Denials, Grants, Verdict};
use crate::engine::{EpochTicker, PoolSize, build_engine};
use crate::error::InstallError;
use crate::gate::{self, Admission};
use crate::policy::{Effective, Policy};
use crate::rate::RateLimiter;
use crate::secrets::{Keyring, MasterKey, Secrets};
use crate::storage::{MemoryKv, StateStore};
use std::sync::Arc;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

/// The state services capabilities use; shared by every plugin of a host.
#[derive(Clone)]
pub struct Services {
    /// kv, config and every other capability's own state.
    pub state: Arc<dyn StateStore>,
    pub outbound: Arc<Outbound>,
    pub secrets: Secrets,
    pub audit: Arc<dyn AuditSink>,
    pub logs: Arc<dyn LogSink>,
    /// Every plugin's own SQL database.
    pub sql: Arc<dyn crate::capability::sql::SqlEngine>,
    /// Events between plugins.
    pub events: Arc<crate::capability::events::Bus>,
}

impl Services {
    /// In-memory services with a random master key and the system resolver, returning
    /// the concrete audit and log sinks for inspection.
    pub fn in_memory() -> (Services, Arc<MemoryAudit>, Arc<MemoryLogs>) {
        let outbound = Outbound::new(Arc::new(SystemResolver)).expect("outbound HTTP runtime");
        Self::in_memory_with(Arc::new(outbound))
    }

    /// In-memory services using `outbound` for plugins' HTTP requests.
    pub fn in_memory_with(
        outbound: Arc<Outbound>,
    ) -> (Services, Arc<MemoryAudit>, Arc<MemoryLogs>) {
        let audit = Arc::new(MemoryAudit::default());
        let logs = Arc::new(MemoryLogs::new(10_000));
        let store = Arc::new(MemoryKv::default());
        let services = Services {
            state: store.clone(),
            outbound,
            secrets: Secrets::new(store, Keyring::single(MasterKey::generate().0)),
            audit: audit.clone(),
            logs: logs.clone(),
            sql: Arc::new(
                crate::storage::SqliteSql::temporary().expect("a temporary SQL directory"),
            ),
            events: Arc::new(crate::capability::events::Bus::new(Arc::new(
                crate::storage::SqliteStore::open_in_memory().expect("an in-memory event log"),
            ))),
        };
        (services, audit, logs)
    }
}

/// Everything a call of one plugin needs that does not change between calls.
pub struct PluginContext {
    pub id: String,
    pub grants: Grants,
    pub policy: Effective,
    pub services: Services,
    /// Log lines per second, shared by all calls of this plugin.
    pub log_rate: RateLimiter,
    /// Reports of dropped log lines, rate-limited across all calls of this plugin.
    pub log_drops: DropReports,
    /// Events published per second, shared by all calls of this plugin.
    pub publish_rate: RateLimiter,
    /// Denial records, rate-limited across all calls of this plugin.
    pub denials: Denials,
    /// Trap, limit-hit and refusal records, rate-limited across all calls of this plugin.
    pub faults: Throttled,
}

/// One engine, its epoch ticker, the shared services and, for a server, the cache of
/// compiled components.
pub struct Runtime {
    engine: Engine,
    pool: PoolSize,
    services: Services,
    artifacts: Option<ArtifactCache>,
    compiler: Compiler,
    compiles: compile::CompileSlots,
    _ticker: EpochTicker,
}

impl Runtime {
    /// A runtime with its own engine (a server's pool), compiling every component it loads.
    pub fn new(services: Services) -> anyhow::Result<Runtime> {
        Runtime::sized(services, PoolSize::SERVER)
    }

    /// A runtime whose engine's pool holds `pool`.
    pub fn sized(services: Services, pool: PoolSize) -> anyhow::Result<Runtime> {
        let engine = build_engine(pool)?;
        let ticker = EpochTicker::start(&engine);
        Ok(Runtime {
            engine,
            pool,
            services,
            artifacts: None,
            compiler: Compiler::InProcess,
            compiles: compile::CompileSlots::default(),
            _ticker: ticker,
        })
    }

    /// Like [`Runtime::new`], keeping compiled components in `cache_dir` across restarts
    /// and counting hits and misses into `stats`.
    pub fn with_cache(
        services: Services,
        cache_dir: &std::path::Path,
        stats: CacheStats,
    ) -> anyhow::Result<Runtime> {
        let mut runtime = Runtime::new(services)?;
        runtime.artifacts = Some(
            ArtifactCache::open(cache_dir, &runtime.engine, stats).map_err(|e| {
                anyhow::anyhow!("cannot open artifact cache {}: {e}", cache_dir.display())
            })?,
        );
        Ok(runtime)
    }

    /// Compile with `compiler` from now on (the server compiles in a budgeted child).
    pub fn compiling_with(mut self, compiler: Compiler) -> Runtime {
        self.compiler = compiler;
        self
    }

    /// Component instances allocated now and the pool's capacity.
    pub fn pool_usage(&self) -> Option<(u64, u64)> {
        self.engine.pooling_allocator_metrics().map(|pool| {
            (
                pool.component_instances(),
                u64::from(self.pool.component_instances),
            )
        })
    }

    /// The compiled-artifact cache, if this runtime keeps one.
    pub fn artifacts(&self) -> Option<&ArtifactCache> {
        self.artifacts.as_ref()
    }

    /// The shared services.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Admit, compile and link a component under `policy`. Refusals are audited.
    pub fn load(
        &self,
        bytes: &[u8],
        sidecar: Option<&[u8]>,
        policy: &Policy,
    ) -> Result<Plugin, InstallError> {
        let parts = gate::Parts {
            wasm: bytes,
            manifest: sidecar,
            signature: None,
        };
        self.load_in(parts, policy, None)
    }

    /// [`Runtime::load`] as `session`'s plugin when one is given (see [`gate::admit_in`]).
    pub fn load_in(
        &self,
        parts: gate::Parts<'_>,
        policy: &Policy,
        session: Option<&crate::sessions::Session>,
    ) -> Result<Plugin, InstallError> {
        let max = gate::DEFAULT_MAX_COMPONENT_BYTES;
        let result = gate::admit_in(parts, policy, max, session)
            .and_then(|admission| self.link(parts.wasm, admission));
        match &result {
            Ok(plugin) => self.audit_install(plugin.admission()),
            Err(error) => self.services.audit.record(AuditEvent::new(
                "-",
                AuditKind::Refused,
                None,
                format!("{}: {error}", error.code()),
            )),
        }
        result
    }

    fn link(&self, bytes: &[u8], admission: Admission) -> Result<Plugin, InstallError> {
        if let Some(request) = &admission.manifest.capabilities.sql {
            let host = self.services.sql.dialect();
            if !request.dialect.runs_on(host) {
                return Err(InstallError::DialectUnavailable {
                    wanted: request.dialect.as_str(),
                    host: host.as_str(),
                });
            }
        }
        let compile = || {
            self.compiler
                .precompile(&self.compiles, &self.engine, bytes)
        };
        let component = match &self.artifacts {
            Some(cache) => cache.component(&self.engine, &admission.sha256, compile),
            None => {
                compile().and_then(|artifact| artifacts::load_artifact(&self.engine, &artifact))
            }
        }
        .map_err(|error| match error {
            CompileError::OverBudget(why) => InstallError::CompileBudget(why),
            CompileError::Failed(why) => InstallError::Compile(why),
        })?;
        let linker = self
            .linker_for(&admission)
            .map_err(|e| InstallError::Link(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| InstallError::Link(format!("{e:#}")))?;
        let context = Arc::new(PluginContext {
            id: admission.manifest.id.clone(),
            grants: admission.grants.clone(),
            log_rate: RateLimiter::new(admission.policy.log.lines_per_second),
            log_drops: DropReports::default(),
            publish_rate: RateLimiter::new(
                admission
                    .grants
                    .events
                    .granted()
                    .map_or(crate::capability::events::DEFAULT_PUBLISH_RATE, |grant| {
                        grant.publish_rate
                    }),
            ),
            denials: Denials::default(),
            faults: capability::faults(),
            policy: admission.policy.clone(),
            services: self.services.clone(),
        });
        Plugin::new(self.engine.clone(), pre, context, admission)
    }

    /// A linker holding the WASI baseline plus, per imported capability, its real
    /// implementation if granted or its deny implementation if not. Nothing else.
    fn linker_for(&self, admission: &Admission) -> wasmtime::Result<Linker<CallState>> {
        let mut linker = Linker::new(&self.engine);
        capability::wasi::link_baseline(&mut linker, CallState::clock)?;
        crate::bindings::capstan::plugin::types::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut linker,
            |state| state,
        )?;
        for id in admission.imported_capabilities() {
            capability::link(&mut linker, id, &admission.grants)?;
        }
        Ok(linker)
    }

    fn audit_install(&self, admission: &Admission) {
        let id = &admission.manifest.id;
        self.services.audit.record(AuditEvent::new(
            id,
            AuditKind::Installed,
            None,
            match &admission.signer {
                Some(signer) => format!(
                    "version {} sha256 {} signed by {signer}",
                    admission.manifest.version, admission.sha256
                ),
                None => format!(
                    "version {} sha256 {} unsigned",
                    admission.manifest.version, admission.sha256
                ),
            },
        ));
        for (capability, verdict, reason) in admission.grants.summary() {
            if verdict == Verdict::NotRequested {
                continue;
            }
            let detail = match reason {
                Some(reason) => format!("{verdict}: {reason}"),
                None => verdict.to_string(),
            };
            self.services.audit.record(AuditEvent::new(
                id,
                AuditKind::GrantDecision,
                Some(capability),
                detail,
            ));
        }
    }
}
