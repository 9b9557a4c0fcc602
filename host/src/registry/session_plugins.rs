//! Sessions' private plugins in the registry: installed under their scoped ids, counted
//! against the operator's `[sessions] max_plugins`, and removed with their state when
//! their session closes or expires (or is found gone, after a crash or on another host).

use super::{Registry, RegistryError};
use crate::audit::{AuditEvent, AuditKind};
use crate::registry::PluginInfo;
use crate::runtime::Plugin;
use crate::sessions::{self, Owner, Session, SessionId};
use crate::storage::Upload;
use std::sync::Arc;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// An operator closed it.
    Closed,
    /// Its time to live ran out.
    Expired,
}

impl Ending {
    fn as_str(self) -> &'static str {
        match self {
            Ending::Closed => "closed",
            Ending::Expired => "expired",
        }
    }
}

impl Registry {
    /// The session the plugin stored under `id` belongs to (None for a global plugin); a
    /// session that no longer exists is an error, so its plugin is never loaded without
    /// the narrowing its session set.
    pub(super) fn session_of(&self, id: &str) -> Result<Option<Session>, RegistryError> {
        match sessions::owner(id) {
            Owner::Global => Ok(None),
            Owner::Session { session, .. } => self
                .runtime
                .services()
                .state
                .session(&session)?
                .map(Some)
                .ok_or(RegistryError::SessionGone(session)),
        }
    }

    /// Refuse `plugin` for `session` when the session holds `[sessions] max_plugins`
    /// already (an upgrade of one it holds is always room), or when the kv quotas granted
    /// to its plugins would add up to more than `[sessions] max_kv_bytes`.
    pub(super) fn check_session_room(
        &self,
        session: &Session,
        plugin: &Plugin,
    ) -> Result<(), RegistryError> {
        if self
            .runtime
            .services()
            .state
            .session(&session.id)?
            .is_none()
        {
            return Err(RegistryError::SessionGone(session.id.clone()));
        }
        let rules = self.session_rules();
        let id = plugin.id();
        let live = self.read_live();
        // The session's other plugins (None for one whose stored version failed to load).
        let others: Vec<Option<&Arc<Plugin>>> = live
            .iter()
            .filter(|(other, _)| *other != id && sessions::belongs_to(other, &session.id))
            .map(|(_, entry)| entry.plugin.as_ref())
            .collect();
        let held = others.len();
        if held >= rules.max_plugins() {
            return Err(RegistryError::SessionFull {
                session: session.id.clone(),
                what: format!("{held} plugins, the policy's [sessions] max_plugins"),
            });
        }
        let kv_bytes = |plugin: &Plugin| {
            plugin
                .admission()
                .grants
                .kv
                .granted()
                .map_or(0, |grant| grant.quota.max_bytes)
        };
        let total: u64 =
            others.iter().flatten().map(|p| kv_bytes(p)).sum::<u64>() + kv_bytes(plugin);
        if total > rules.max_kv_bytes() {
            return Err(RegistryError::SessionFull {
                session: session.id.clone(),
                what: format!(
                    "kv quotas of {total} bytes with this plugin, over the policy's [sessions] max_kv_bytes of {}",
                    rules.max_kv_bytes()
                ),
            });
        }
        Ok(())
    }

    /// Install `upload` (or a new version of it) as `session`'s private plugin.
    pub fn install_in(
        &self,
        session: &Session,
        upload: &Upload,
    ) -> Result<PluginInfo, RegistryError> {
        self.install_as(upload, Some(session))
    }

    /// The stored ids of `session`'s plugins.
    fn ids_in(&self, session: &SessionId) -> Vec<String> {
        self.read_live()
            .keys()
            .filter(|id| sessions::belongs_to(id, session))
            .cloned()
            .collect()
    }

    /// `session`'s plugins.
    pub fn list_in(&self, session: &SessionId) -> Vec<PluginInfo> {
        let live = self.read_live();
        live.iter()
            .filter(|(id, _)| sessions::belongs_to(id, session))
            .map(|(id, entry)| PluginInfo::of(id, entry))
            .collect()
    }

    /// Close `session`: its token stops working first (`revoked` is then called, for
    /// whoever caches token lookups), then each of its plugins is removed and its state
    /// purged; one audit record lists what was removed. Closing a session another host
    /// closed already removes whatever is left. Returns the stored ids of the plugins
    /// removed.
    pub fn close_session(
        &self,
        session: &Session,
        ending: Ending,
        revoked: &dyn Fn(),
    ) -> Result<Vec<String>, RegistryError> {
        self.runtime.services().state.remove_session(&session.id)?;
        revoked();
        let removed = self.remove_all(&self.ids_in(&session.id))?;
        self.runtime.services().audit.record(AuditEvent::new(
            "-",
            AuditKind::SessionChanged,
            None,
            format!(
                "session `{}` ({}) {}: removed plugins [{}] and purged their state",
                session.name,
                session.id,
                ending.as_str(),
                removed
                    .iter()
                    .map(|id| sessions::local(id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
        Ok(removed)
    }

    /// Remove and purge each of `ids` (stored ids); returns those removed. One already
    /// gone (removed by another host) is skipped.
    fn remove_all(&self, ids: &[String]) -> Result<Vec<String>, RegistryError> {
        let mut removed = Vec::new();
        for id in ids {
            match self.remove(id, true) {
                Ok(()) => removed.push(id.clone()),
                Err(RegistryError::NotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(removed)
    }

    /// Close every session expired at `now_ms`, and remove the plugins of sessions that
    /// no longer exist (a crash between a session's removal and its plugins', or a close
    /// on another host before this one caught up); `revoked` is called before any plugin
    /// goes (see [`Registry::close_session`]). Returns the stored ids of the plugins
    /// removed.
    pub fn sweep_sessions(
        &self,
        now_ms: i64,
        revoked: &dyn Fn(),
    ) -> Result<Vec<String>, RegistryError> {
        let state = &self.runtime.services().state;
        let mut removed = Vec::new();
        for session in state.sessions()? {
            if !session.is_open(now_ms) {
                removed.extend(self.close_session(&session, Ending::Expired, revoked)?);
            }
        }
        let candidates: Vec<(String, SessionId)> = self
            .read_live()
            .keys()
            .filter_map(|id| match sessions::owner(id) {
                Owner::Session { session, .. } => Some((id.clone(), session)),
                Owner::Global => None,
            })
            .collect();
        // Asked one by one, after the live set was read: a session opened since the
        // listing above is found, so its new plugins are never taken for orphans.
        let mut orphans = Vec::new();
        for (id, session) in candidates {
            if state.session(&session)?.is_none() {
                orphans.push(id);
            }
        }
        if !orphans.is_empty() {
            revoked();
            let gone = self.remove_all(&orphans)?;
            tracing::info!(
                plugins = gone.len(),
                "removed the plugins of sessions that are gone"
            );
            removed.extend(gone);
        }
        Ok(removed)
    }
}
