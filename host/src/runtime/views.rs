//! The one place the runtime hands each capability its view of a call. A capability
//! added to the registry without a view here does not compile.

use super::CallState;
use crate::capability::config::ConfigHost;
use crate::capability::events::EventsHost;
use crate::capability::http::HttpHost;
use crate::capability::jobs::JobHost;
use crate::capability::kv::KvHost;
use crate::capability::log::LogHost;
use crate::capability::secrets::SecretsHost;
use crate::capability::sql::SqlHost;
use crate::capability::wasi::BoundedClock;
use crate::capability::{CallScope, CallViews, Decision};
use wasmtime_wasi::clocks::WasiClocksCtxView;

/// The grant of a capability that is linked to its real host only when granted.
fn granted<G>(decision: &Decision<G>) -> &G {
    decision
        .granted()
        .expect("a capability is linked to its real host only when granted")
}

impl CallViews for CallState {
    fn scope(&mut self) -> CallScope<'_> {
        CallState::scope_of(&self.plugin, &self.call_id, self.deadline)
    }

    fn log(&mut self) -> LogHost<'_> {
        LogHost {
            target: CallState::log_target(&self.plugin, &self.call_id),
            call: &mut self.log,
        }
    }

    fn kv(&mut self) -> KvHost<'_> {
        KvHost {
            scope: CallState::scope_of(&self.plugin, &self.call_id, self.deadline),
            grant: granted(&self.plugin.grants.kv),
            store: &*self.plugin.services.state,
        }
    }

    fn http(&mut self) -> HttpHost<'_> {
        let plugin = &*self.plugin;
        HttpHost {
            scope: CallState::scope_of(plugin, &self.call_id, self.deadline),
            grant: granted(&plugin.grants.http),
            outbound: &plugin.services.outbound,
            secrets: &plugin.services.secrets,
            secrets_grant: plugin.grants.secrets.granted(),
            redactions: &mut self.log.redactions,
        }
    }

    fn secrets(&mut self) -> SecretsHost<'_> {
        let plugin = &*self.plugin;
        SecretsHost {
            scope: CallState::scope_of(plugin, &self.call_id, self.deadline),
            grant: granted(&plugin.grants.secrets),
            secrets: &plugin.services.secrets,
            redactions: &mut self.log.redactions,
        }
    }

    fn jobs(&mut self) -> JobHost<'_> {
        JobHost {
            run: self.run.as_deref(),
        }
    }

    fn sql(&mut self) -> SqlHost<'_> {
        SqlHost {
            scope: CallState::scope_of(&self.plugin, &self.call_id, self.deadline),
            grant: granted(&self.plugin.grants.sql),
            engine: &*self.plugin.services.sql,
        }
    }

    fn events(&mut self) -> EventsHost<'_> {
        let plugin = &*self.plugin;
        EventsHost {
            scope: CallState::scope_of(plugin, &self.call_id, self.deadline),
            grant: granted(&plugin.grants.events),
            bus: &plugin.services.events,
            rate: &plugin.publish_rate,
        }
    }

    fn config(&mut self) -> ConfigHost<'_> {
        ConfigHost {
            scope: CallState::scope_of(&self.plugin, &self.call_id, self.deadline),
            grant: granted(&self.plugin.grants.config),
            store: &*self.plugin.services.state,
        }
    }
}

impl CallState {
    /// The monotonic clock of this call, bounded by its deadline.
    pub(crate) fn clock(&mut self) -> BoundedClock<'_> {
        BoundedClock {
            clocks: WasiClocksCtxView {
                ctx: self.wasi.ctx().clocks(),
                table: &mut self.table,
            },
            deadline: self.deadline,
        }
    }
}
