//! A loaded plugin and its entry points: route, list tools, call tool. Whether callers may
//! reach each export is decided once, at load; every call gets a fresh store under the
//! plugin's limits and deadline.

use super::drive::drive;
use super::limits::LimitHit;
use super::{CallState, PluginContext};
use crate::audit::AuditKind;
use crate::bindings::capstan::plugin::types::Error as WitError;
use crate::bindings::exports::capstan::plugin::{claim, handler, jobs, lifecycle, mcp, subscriber};
use crate::capability::events::{ClaimHandler, Delivery, Topic};
use crate::capability::jobs::RunHandle;
use crate::capability::lifecycle::Hook;
use crate::capability::mcp::Offered;
use crate::capability::{CapabilityId, Deadline, Decision, routes};
use crate::error::{InstallError, InvokeError};
use crate::gate::Admission;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wasmtime::component::{Instance, InstancePre};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

pub use handler::{Request, Response};
pub use jobs::RunContext;
pub use mcp::{CallContext, Tool};
pub use subscriber::DeliveryError;

/// The outcome of a job run or hook that ran: ok, or the plugin's typed error.
pub type Outcome = Result<(), WitError>;

/// The outcome of a tool call that ran: the plugin's own result or its typed error.
pub type ToolCall = Result<String, WitError>;

static CALLS: AtomicU64 = AtomicU64::new(1);

/// A fresh id for one call, unique in this process; it tags the call's log lines and
/// audit records.
pub fn next_call_id() -> String {
    format!("{:x}", CALLS.fetch_add(1, Ordering::Relaxed))
}

/// Who asks for a tool call: the MCP client (or `cli`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub client_id: String,
    pub client_name: String,
}

/// Whether callers may reach one export, decided at load.
#[derive(Debug)]
enum Reach<I> {
    /// Exported and granted: calls run.
    Open(I),
    /// Exported but withheld by the policy, or not declared: calls are refused without
    /// running anything.
    Withheld,
    /// The component does not export it.
    Absent,
}

impl<I> Reach<I> {
    fn decide<G>(indices: Option<I>, decision: &Decision<G>) -> Reach<I> {
        match (indices, decision) {
            (None, _) => Reach::Absent,
            (Some(indices), Decision::Granted { .. }) => Reach::Open(indices),
            (Some(_), _) => Reach::Withheld,
        }
    }
}

/// A plugin ready to be called.
pub struct Plugin {
    engine: Engine,
    pre: InstancePre<CallState>,
    handler: Reach<handler::GuestIndices>,
    mcp: Reach<mcp::GuestIndices>,
    jobs: Reach<jobs::GuestIndices>,
    lifecycle: Reach<lifecycle::GuestIndices>,
    subscriber: Reach<subscriber::GuestIndices>,
    claim: Reach<claim::GuestIndices>,
    context: Arc<PluginContext>,
    admission: Admission,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.context.id)
            .field("sha256", &self.admission.sha256)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub(super) fn new(
        engine: Engine,
        pre: InstancePre<CallState>,
        context: Arc<PluginContext>,
        admission: Admission,
    ) -> Result<Plugin, InstallError> {
        let handler = handler::GuestIndices::new(&pre).ok();
        let mcp = mcp::GuestIndices::new(&pre).ok();
        let jobs = jobs::GuestIndices::new(&pre).ok();
        let lifecycle = lifecycle::GuestIndices::new(&pre).ok();
        let subscriber = subscriber::GuestIndices::new(&pre).ok();
        let claim = claim::GuestIndices::new(&pre).ok();
        if handler.is_none()
            && mcp.is_none()
            && jobs.is_none()
            && lifecycle.is_none()
            && subscriber.is_none()
            && claim.is_none()
        {
            return Err(InstallError::NotAPlugin(
                "none of its `handler`, `mcp`, `jobs`, `lifecycle`, `subscriber` and `claim` \
                 exports matches the contract's types"
                    .into(),
            ));
        }
        let grants = &context.grants;
        Ok(Plugin {
            handler: Reach::decide(handler, &grants.routes),
            mcp: Reach::decide(mcp, &grants.mcp),
            jobs: Reach::decide(jobs, &grants.jobs),
            lifecycle: Reach::decide(lifecycle, &grants.lifecycle),
            subscriber: Reach::decide(subscriber, &grants.events),
            claim: Reach::decide(claim, &grants.events),
            engine,
            pre,
            context,
            admission,
        })
    }

    /// The plugin id.
    pub fn id(&self) -> &str {
        &self.context.id
    }

    /// What the gate decided: manifest, imports, grants, effective policy.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// How many of its calls may run at once, alone and with its session's other plugins.
    pub fn caps(&self) -> crate::slots::Caps {
        let policy = &self.admission.policy;
        crate::slots::Caps {
            plugin: policy.limits.max_concurrent_calls,
            session: policy.session_calls,
        }
    }

    /// Whether HTTP requests reach the plugin's `handler` (exported and granted).
    pub fn serves_routes(&self) -> bool {
        matches!(self.handler, Reach::Open(_))
    }

    /// Whether MCP clients reach the plugin's tools (exported and granted).
    pub fn serves_tools(&self) -> bool {
        matches!(self.mcp, Reach::Open(_))
    }

    /// Whether the host runs the plugin's jobs (exported and granted).
    pub fn runs_jobs(&self) -> bool {
        matches!(self.jobs, Reach::Open(_))
    }

    /// Whether the host delivers events to the plugin (`subscriber` exported, topics
    /// granted).
    pub fn receives_events(&self) -> bool {
        matches!(self.subscriber, Reach::Open(_))
            && self
                .context
                .grants
                .events
                .granted()
                .is_some_and(|grant| !grant.subscribe.is_empty())
    }

    /// The kinds whose requests reach the plugin (`claim` exported, kinds granted).
    pub fn claimed_kinds(&self) -> &[Topic] {
        match (&self.claim, self.context.grants.events.granted()) {
            (Reach::Open(_), Some(grant)) => &grant.claims,
            _ => &[],
        }
    }

    /// Deliver `delivery` through the plugin's `subscriber` export under its deadline.
    pub fn deliver(
        &self,
        delivery: &Delivery,
        call_id: String,
    ) -> Result<Result<(), DeliveryError>, InvokeError> {
        let indices = self.open(&self.subscriber, CapabilityId::Events, "subscriber")?;
        let event = subscriber::Event {
            id: delivery.event_id.clone(),
            topic: delivery.topic.clone(),
            source_plugin: delivery.source.clone(),
            published_at: u64::try_from(delivery.published_ms).unwrap_or(0),
            attempt: delivery.attempt,
            content_type: delivery.content_type.clone(),
            payload: delivery.payload.clone(),
        };
        self.call(call_id, async |store, instance| {
            indices
                .load(&mut *store, instance)?
                .call_on_event(store, &event)
                .await
        })
    }

    /// Run job `name` as `run`, for `context`, under `deadline`: the run's cancel flag is
    /// what the plugin's `job.cancelled()` reads, and a stopped run is interrupted at its
    /// next instruction.
    pub fn run_job(
        &self,
        name: &str,
        context: &RunContext,
        run: Arc<RunHandle>,
        deadline: Duration,
        call_id: String,
    ) -> Result<Outcome, InvokeError> {
        let indices = self.open(&self.jobs, CapabilityId::Jobs, "jobs")?;
        drive(
            self.call_within(call_id, deadline, Some(run), async |store, instance| {
                indices
                    .load(&mut *store, instance)?
                    .call_run(store, name, context)
                    .await
            }),
        )
    }

    /// Call `hook` if the plugin's lifecycle hooks are exported and granted (None if not),
    /// under the policy's hook deadline.
    pub fn run_hook(&self, hook: &Hook) -> Option<Result<Outcome, InvokeError>> {
        let Reach::Open(indices) = &self.lifecycle else {
            return None;
        };
        let grant = self.context.grants.lifecycle.granted()?;
        Some(drive(self.call_within(
            next_call_id(),
            hook.deadline(grant),
            None,
            async |store, instance| {
                let hooks = indices.load(&mut *store, instance)?;
                match hook {
                    Hook::Install { previous } => {
                        hooks.call_on_install(store, previous.as_deref()).await
                    }
                    Hook::Remove => hooks.call_on_remove(store).await,
                    Hook::ConfigChanged => hooks.call_on_config_changed(store).await,
                    Hook::SecretChanged { name } => hooks.call_on_secret_changed(store, name).await,
                }
            },
        )))
    }

    /// Serve one HTTP request through the plugin's `handler` export, on this thread.
    pub fn handle(&self, request: &Request) -> Result<Response, InvokeError> {
        drive(self.handle_async(request))
    }

    /// Serve one HTTP request through the plugin's `handler` export, as a future whose
    /// wasm yields at every epoch tick. A response the host will not send (see
    /// [`routes::response::check`]) is refused with a plugin log line naming what was
    /// wrong.
    pub async fn handle_async(&self, request: &Request) -> Result<Response, InvokeError> {
        let indices = self.open(&self.handler, CapabilityId::Routes, "handler")?;
        self.call_within(
            next_call_id(),
            self.budget(),
            None,
            async |store, instance| {
                let response = indices
                    .load(&mut *store, instance)?
                    .call_handle(&mut *store, request)
                    .await?;
                Ok(routes::response::check(&response)
                    .map(|()| response)
                    .map_err(|what| {
                        store.data_mut().note(&format!("response refused: {what}"));
                        InvokeError::InvalidResponse(what)
                    }))
            },
        )
        .await?
    }

    /// The tools the plugin offers, filtered to those the policy exposes.
    pub fn list_tools(&self) -> Result<Vec<Tool>, InvokeError> {
        self.open(&self.mcp, CapabilityId::Mcp, "mcp")?;
        Ok(self
            .run_list_tools()?
            .into_iter()
            .filter(|tool| self.exposes(&tool.name))
            .collect())
    }

    /// What the plugin's `list-tools` offers, whatever the policy exposes: the host's own
    /// discovery call at install, under the plugin's limits and deadline.
    pub fn offered_tools(&self) -> Result<Vec<Offered>, InvokeError> {
        Ok(self
            .run_list_tools()?
            .into_iter()
            .map(|tool| Offered {
                name: tool.name,
                description: tool.description,
                input_schema: tool.input_schema,
            })
            .collect())
    }

    fn run_list_tools(&self) -> Result<Vec<Tool>, InvokeError> {
        let not_exported = || InvokeError::NotExported {
            plugin: self.context.id.clone(),
            interface: "mcp",
        };
        let withheld;
        let indices = match &self.mcp {
            Reach::Open(indices) => indices,
            Reach::Withheld => {
                withheld = mcp::GuestIndices::new(&self.pre).map_err(|_| not_exported())?;
                &withheld
            }
            Reach::Absent => return Err(not_exported()),
        };
        self.call(next_call_id(), async |store, instance| {
            indices
                .load(&mut *store, instance)?
                .call_list_tools(store)
                .await
        })
    }

    /// Call tool `name` with JSON `arguments` for `caller`, as call `call_id`, on this
    /// thread.
    pub fn call_tool(
        &self,
        name: &str,
        arguments: &str,
        caller: &Caller,
        call_id: String,
    ) -> Result<ToolCall, InvokeError> {
        drive(self.call_tool_async(name, arguments, caller, call_id))
    }

    /// Call tool `name` with JSON `arguments` for `caller`, as call `call_id`, as a
    /// future whose wasm yields at every epoch tick.
    pub async fn call_tool_async(
        &self,
        name: &str,
        arguments: &str,
        caller: &Caller,
        call_id: String,
    ) -> Result<ToolCall, InvokeError> {
        let indices = self.open(&self.mcp, CapabilityId::Mcp, "mcp")?;
        if !self.exposes(name) {
            return Err(InvokeError::ToolNotGranted {
                tool: name.to_string(),
            });
        }
        self.call_within(call_id, self.budget(), None, async |store, instance| {
            let context = CallContext {
                client_id: caller.client_id.clone(),
                client_name: caller.client_name.clone(),
                call_id: store.data().call_id.clone(),
            };
            indices
                .load(&mut *store, instance)?
                .call_call_tool(store, name, arguments, &context)
                .await
        })
        .await
    }

    /// The indices of an export callers may reach, or why they may not (decided at load:
    /// nothing runs and nothing is written for a refused call).
    fn open<'a, I>(
        &self,
        reach: &'a Reach<I>,
        capability: CapabilityId,
        interface: &'static str,
    ) -> Result<&'a I, InvokeError> {
        match reach {
            Reach::Open(indices) => Ok(indices),
            Reach::Withheld => Err(InvokeError::Denied {
                plugin: self.context.id.clone(),
                capability,
            }),
            Reach::Absent => Err(InvokeError::NotExported {
                plugin: self.context.id.clone(),
                interface,
            }),
        }
    }

    /// Whether the policy exposes tool `name`.
    pub fn exposes(&self, name: &str) -> bool {
        self.context
            .grants
            .mcp
            .granted()
            .is_some_and(|grant| grant.tools.contains(name))
    }

    /// Run `f` as call `call_id` against a fresh instance with this plugin's limits and
    /// deadline, on this thread.
    fn call<R>(
        &self,
        call_id: String,
        f: impl AsyncFnOnce(&mut Store<CallState>, &Instance) -> wasmtime::Result<R>,
    ) -> Result<R, InvokeError> {
        drive(self.call_within(call_id, self.budget(), None, f))
    }

    /// The plugin's own deadline for one call.
    fn budget(&self) -> Duration {
        Duration::from_millis(u64::from(self.context.policy.limits.deadline_ms))
    }

    /// Run `f` as call `call_id` against a fresh instance under deadline `budget`; for a
    /// job `run`, the call can also be stopped through its handle. Every epoch tick the
    /// wasm yields to whoever polls the call (so a route call on the server's async
    /// threads never holds one for longer than a tick) or is interrupted once stopped or
    /// past its deadline.
    async fn call_within<R>(
        &self,
        call_id: String,
        budget: Duration,
        run: Option<Arc<RunHandle>>,
        f: impl AsyncFnOnce(&mut Store<CallState>, &Instance) -> wasmtime::Result<R>,
    ) -> Result<R, InvokeError> {
        let deadline = Deadline::after(budget);
        let mut store = Store::new(
            &self.engine,
            CallState::new(self.context.clone(), call_id, deadline, run.clone()),
        );
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            let stopped = run.as_ref().is_some_and(|run| run.is_stopped());
            Ok(if stopped || deadline.passed() {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        let result = match self.pre.instantiate_async(&mut store).await {
            Ok(instance) => f(&mut store, &instance).await,
            Err(error) => Err(error),
        };
        store.data_mut().finish();
        // The deadline is wall-clock time: a call that returns after it (its last host
        // wait cut short just before the epoch interrupt fired) is over it all the same.
        let result = result.and_then(|value| match deadline.passed() {
            false => Ok(value),
            true => Err(wasmtime::Error::from(Trap::Interrupt)),
        });
        result.map_err(|error| self.classify(error, store.data().limiter.hit, budget))
    }

    /// Turn a wasmtime error into a typed one, auditing limit hits and traps.
    fn classify(
        &self,
        error: wasmtime::Error,
        hit: Option<LimitHit>,
        budget: Duration,
    ) -> InvokeError {
        let limits = &self.context.policy.limits;
        let typed = match (hit, error.downcast_ref::<Trap>()) {
            (Some(LimitHit::Memory), _) => InvokeError::MemoryLimit {
                limit_mib: limits.memory_mib,
            },
            (Some(LimitHit::Table), _) => InvokeError::ResourceLimit {
                what: "table elements",
                limit: limits.table_elements,
            },
            (None, Some(Trap::Interrupt)) => InvokeError::Timeout {
                deadline_ms: u32::try_from(budget.as_millis()).unwrap_or(u32::MAX),
            },
            (None, Some(Trap::StackOverflow)) => InvokeError::StackOverflow,
            (None, Some(trap)) => InvokeError::Trap(trap.to_string()),
            (None, None) => InvokeError::Trap(format!("{error:#}")),
        };
        let kind = match typed {
            InvokeError::Trap(_) | InvokeError::StackOverflow => AuditKind::Trapped,
            _ => AuditKind::LimitHit,
        };
        self.context.faults.record(
            &*self.context.services.audit,
            &self.context.id,
            kind,
            None,
            typed.to_string(),
        );
        typed
    }
}

impl ClaimHandler for Plugin {
    fn handle_claim(
        &self,
        kind: &Topic,
        payload: &[u8],
        budget: Duration,
    ) -> Result<Vec<u8>, WitError> {
        let indices = self
            .open(&self.claim, CapabilityId::Events, "claim")
            .map_err(|error| WitError::Internal(error.to_string()))?;
        let outcome = drive(self.call_within(
            next_call_id(),
            budget.min(self.budget()),
            None,
            async |store, instance| {
                indices
                    .load(&mut *store, instance)?
                    .call_handle(store, kind.as_str(), payload)
                    .await
            },
        ));
        match outcome {
            Ok(answer) => answer,
            Err(InvokeError::Timeout { .. }) => Err(WitError::Timeout),
            Err(error) => Err(WitError::Internal(format!(
                "plugin `{}` failed to handle `{kind}`: {error}",
                self.context.id
            ))),
        }
    }
}
