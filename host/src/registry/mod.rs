//! The live set of installed plugins: install (and upgrade), rollback, enable, disable,
//! remove, and restore at start. Every change compiles and links first, then persists in
//! one transaction, then swaps into memory, so a failure leaves the previous version
//! serving and a crash leaves either the old state or the new.

mod consent;
mod info;
mod session_plugins;

pub use info::{CapabilityRow, PluginInfo, PluginStatus};
pub use session_plugins::Ending;

use crate::audit::{AuditEvent, AuditKind};
use crate::capability::config::{self, Invalid};
use crate::capability::events::store::NewEvent;
use crate::capability::events::{ClaimHandler, Directory, Subscriber, Topic, topic};
use crate::capability::lifecycle::Hook;
use crate::capability::mcp::{Catalog, LiveCatalog};
use crate::capability::{CapabilityId, Grants, Verdict};
use crate::error::InstallError;
use crate::gate;
use crate::policy::{Policy, PolicyError};
use crate::runtime::{Plugin, Runtime};
use crate::sessions::{self, Session};
use crate::storage::{PluginStore, StoreError, StoredPlugin, Upload, VersionInfo};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, Weak};

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Install(#[from] InstallError),
    #[error("no plugin `{0}` is installed")]
    NotFound(String),
    #[error("plugin `{id}` has no version {seq}")]
    NoSuchVersion { id: String, seq: i64 },
    #[error("plugin `{0}` has no earlier version to roll back to")]
    NothingToRollBack(String),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("policy rejected: plugin `{plugin}` would not load under it: {error}")]
    PolicyRejected { plugin: String, error: InstallError },
    #[error("plugin `{0}` declares no [capabilities.config], so it has no settings")]
    NoConfig(String),
    #[error("config for plugin `{plugin}` refused: {invalid}")]
    InvalidConfig { plugin: String, invalid: Invalid },
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("session `{0}` is closed")]
    SessionGone(sessions::SessionId),
    #[error("session `{session}` has no room for this plugin: it would hold {what}")]
    SessionFull {
        session: sessions::SessionId,
        what: String,
    },
}

/// A plugin's settings as operators see them.
#[derive(Debug, Clone, serde::Serialize, PartialEq, utoipa::ToSchema)]
pub struct PluginConfig {
    /// The JSON Schema from the plugin's manifest.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
    /// What the operator set.
    #[schema(value_type = Object)]
    pub values: serde_json::Map<String, serde_json::Value>,
    /// What the plugin reads: the values over the schema's defaults.
    #[schema(value_type = Object)]
    pub effective: serde_json::Map<String, serde_json::Value>,
}

/// How long publishing one host event may take.
const HOST_EVENT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// Setting holding the current policy's text.
const POLICY_SETTING: &str = "policy";

/// How a policy change would alter one installed plugin's grants.
#[derive(Debug, Clone, serde::Serialize, PartialEq, utoipa::ToSchema)]
pub struct GrantChange {
    pub plugin: String,
    pub capability: CapabilityId,
    pub before: Verdict,
    pub after: Verdict,
}

/// One installed plugin in memory.
struct Entry {
    /// None when the stored version failed to load at start (see `last_error`).
    plugin: Option<Arc<Plugin>>,
    /// Its checked tools, when it offers any.
    tools: Option<Arc<LiveCatalog>>,
    enabled: bool,
    seq: i64,
    last_error: Option<String>,
}

/// Whether the plugin stored under `other` has `owner` (the global set, or one session).
fn same_owner(owner: &sessions::Owner, other: &str) -> bool {
    match (owner, sessions::owner(other)) {
        (sessions::Owner::Global, sessions::Owner::Global) => true,
        (
            sessions::Owner::Session { session, .. },
            sessions::Owner::Session {
                session: theirs, ..
            },
        ) => *session == theirs,
        _ => false,
    }
}

/// The capabilities whose decision differs between `before` and `after`.
fn grant_changes(plugin: &str, before: &Grants, after: &Grants) -> Vec<GrantChange> {
    before
        .summary()
        .into_iter()
        .zip(after.summary())
        .filter(|((_, old, _), (_, new, _))| old != new)
        .map(|((capability, old, _), (_, new, _))| GrantChange {
            plugin: plugin.to_string(),
            capability,
            before: old,
            after: new,
        })
        .collect()
}

/// A plugin that serves tools now (enabled, loaded, its `mcp` export granted), with its
/// checked catalog.
#[derive(Clone)]
pub struct ToolServer {
    pub plugin: Arc<Plugin>,
    pub tools: Arc<LiveCatalog>,
}

/// A compiled plugin and its checked tools, before it is stored.
struct Loaded {
    plugin: Arc<Plugin>,
    /// The catalog as stored (JSON) and as served.
    tools: Option<(String, Arc<LiveCatalog>)>,
}

/// Run `plugin`'s `list-tools` and check the answer against its manifest (None when it
/// declares no tools).
fn discover_tools(plugin: &Plugin) -> Result<Option<(String, Arc<LiveCatalog>)>, InstallError> {
    let manifest = &plugin.admission().manifest;
    let Some(request) = &manifest.capabilities.mcp else {
        return Ok(None);
    };
    let offered = plugin
        .offered_tools()
        .map_err(|error| InstallError::ToolDiscovery(error.to_string()))?;
    let prefix = sessions::local(&manifest.id);
    let catalog = Catalog::check(prefix, request, offered)?;
    let json = catalog.to_json();
    Ok(Some((
        json,
        Arc::new(LiveCatalog::compile(prefix, catalog)?),
    )))
}

/// Refuse `plugin` if it does not serve what its manifest's `[provides]` promises: each
/// tool listed by `list-tools` and exposed by the policy, each route path under its
/// granted route prefix.
fn check_provides(plugin: &Plugin, tools: Option<&LiveCatalog>) -> Result<(), InstallError> {
    let provides = &plugin.admission().manifest.provides;
    for tool in &provides.tools {
        let listed =
            tools.is_some_and(|catalog| catalog.tools.iter().any(|t| t.spec.name == *tool));
        let why = if !listed {
            "its list-tools does not offer it"
        } else if !plugin.serves_tools() || !plugin.exposes(tool) {
            "the policy does not expose it"
        } else {
            continue;
        };
        return Err(InstallError::NotProvided {
            what: format!("tool `{}`", crate::text::escape(tool)),
            why,
        });
    }
    let prefix = plugin
        .admission()
        .grants
        .routes
        .granted()
        .map(|grant| grant.prefix.as_str());
    for route in &provides.routes {
        let why = match prefix {
            _ if !plugin.serves_routes() => "its routes are not granted",
            Some(prefix) if route.starts_with(prefix) => continue,
            _ => "the path is outside its route prefix",
        };
        return Err(InstallError::NotProvided {
            what: format!("route `{}`", crate::text::escape(route)),
            why,
        });
    }
    Ok(())
}

/// Installed plugins, persisted in a [`PluginStore`].
pub struct Registry {
    runtime: Runtime,
    store: Arc<dyn PluginStore>,
    /// The policy and the text it was parsed from.
    policy: RwLock<(Policy, String)>,
    live: RwLock<BTreeMap<String, Entry>>,
    /// Serialises changes (install, rollback, policy) so none sees another half-done.
    changes: std::sync::Mutex<()>,
    /// Bumped after every change to the live set, here or caught up from another host.
    generation: tokio::sync::watch::Sender<u64>,
}

impl Registry {
    /// A registry over `store`, restoring every stored plugin's current version.
    /// Plugins that fail to load stay listed with their error instead of stopping start-up.
    pub fn open(
        runtime: Runtime,
        store: Arc<dyn PluginStore>,
        seed: &str,
    ) -> Result<Registry, RegistryError> {
        let text = match store.setting(POLICY_SETTING)? {
            Some(text) => text,
            None => {
                Policy::parse(seed)?;
                store.set_setting(POLICY_SETTING, seed)?;
                seed.to_string()
            }
        };
        let registry = Registry {
            runtime,
            store,
            policy: RwLock::new((Policy::parse(&text)?, text)),
            live: RwLock::new(BTreeMap::new()),
            changes: std::sync::Mutex::new(()),
            generation: tokio::sync::watch::Sender::new(0),
        };
        for stored in registry.store.plugins()? {
            let entry = registry.restore(&stored);
            registry.write_live().insert(stored.id, entry);
        }
        registry.announce();
        Ok(registry)
    }

    /// Load the stored current version of `stored`; a failure is kept as the entry's error
    /// rather than returned, so one broken plugin never stops the others.
    fn restore(&self, stored: &StoredPlugin) -> Entry {
        let loaded = self
            .stored_upload(&stored.id, stored.current_seq)
            .and_then(|upload| self.load_version(&stored.id, stored.current_seq, &upload));
        let (plugin, tools, last_error) = match loaded {
            Ok((loaded, _)) => (
                Some(loaded.plugin),
                loaded.tools.map(|(_, live)| live),
                None,
            ),
            Err(error) => {
                tracing::error!(plugin = %stored.id, "loading failed: {error}");
                (None, None, Some(error.to_string()))
            }
        };
        Entry {
            plugin,
            tools,
            enabled: stored.enabled,
            seq: stored.current_seq,
            last_error,
        }
    }

    /// What version `seq` of `id` was installed from.
    fn stored_upload(&self, id: &str, seq: i64) -> Result<Upload, RegistryError> {
        self.store
            .upload(id, seq)?
            .ok_or_else(|| RegistryError::NoSuchVersion { id: id.into(), seq })
    }

    /// Compile version `seq` of `id` (installed from `upload`) and load the tool catalog
    /// stored with it (versions stored before catalogs were kept run `list-tools` once
    /// more); also returns the text of the policy it was granted under.
    fn load_version(
        &self,
        id: &str,
        seq: i64,
        upload: &Upload,
    ) -> Result<(Loaded, String), RegistryError> {
        let (plugin, text) = self.compile(upload, self.session_of(id)?.as_ref())?;
        let tools = match self.store.tools(id, seq)? {
            Some(json) => {
                let catalog = Catalog::from_json(&json).map_err(InstallError::ToolDiscovery)?;
                let live = LiveCatalog::compile(sessions::local(id), catalog)
                    .map_err(InstallError::from)?;
                Some((json, Arc::new(live)))
            }
            None => discover_tools(&plugin)?,
        };
        Ok((Loaded { plugin, tools }, text))
    }

    /// Compile `upload` (as `session`'s plugin, if given) and discover its tools, outside
    /// the change lock.
    fn prepare(
        &self,
        upload: &Upload,
        session: Option<&Session>,
    ) -> Result<(Loaded, String), RegistryError> {
        let (plugin, text) = self.compile(upload, session)?;
        let tools = discover_tools(&plugin)?;
        Ok((Loaded { plugin, tools }, text))
    }

    /// Refuse `tools` of plugin `id` if a name clients would see is already another
    /// plugin's of the same owner (a session's tools are listed apart from the global
    /// ones).
    fn check_collisions(&self, id: &str, tools: Option<&LiveCatalog>) -> Result<(), InstallError> {
        let Some(tools) = tools else {
            return Ok(());
        };
        let owner = sessions::owner(id);
        let live = self.read_live();
        let others = live
            .iter()
            .filter(|(other, _)| *other != id && same_owner(&owner, other));
        for (holder, entry) in others {
            let Some(theirs) = &entry.tools else {
                continue;
            };
            if let Some(tool) = tools
                .tools
                .iter()
                .find(|tool| theirs.tools.iter().any(|t| t.exposed == tool.exposed))
            {
                return Err(InstallError::ToolCollision {
                    plugin: id.to_string(),
                    exposed: tool.exposed.clone(),
                    holder: holder.clone(),
                });
            }
        }
        Ok(())
    }

    /// Refuse `plugin` if it claims a kind another installed plugin holds.
    fn check_claims(&self, plugin: &Plugin) -> Result<(), InstallError> {
        let live = self.read_live();
        for kind in plugin.claimed_kinds() {
            let holder =
                live.iter()
                    .filter(|(other, _)| *other != plugin.id())
                    .find(|(_, entry)| {
                        entry
                            .plugin
                            .as_ref()
                            .is_some_and(|p| p.claimed_kinds().contains(kind))
                    });
            if let Some((holder, _)) = holder {
                return Err(InstallError::ClaimTaken {
                    plugin: plugin.id().to_string(),
                    kind: kind.to_string(),
                    holder: holder.clone(),
                });
            }
        }
        Ok(())
    }

    /// Apply `plugin`'s SQL migrations (if it has a database), recorded; a failure
    /// leaves the database as it was.
    fn migrate(&self, plugin: &Plugin) -> Result<(), InstallError> {
        let admission = plugin.admission();
        let Some(request) = &admission.manifest.capabilities.sql else {
            return Ok(());
        };
        let engine = &*self.runtime.services().sql;
        crate::capability::sql::migrate(engine, plugin.id(), request, &admission.grants.sql)?;
        Ok(())
    }

    /// The SQL migrations applied to plugin `id`'s database.
    pub fn migrations(
        &self,
        id: &str,
    ) -> Result<Vec<crate::capability::sql::Applied>, RegistryError> {
        self.loaded(id)?;
        Ok(self.runtime.services().sql.applied(id)?)
    }

    /// Announce a change of the live set to whoever watches it (the MCP gateway, the
    /// scheduler), and tell the events bus who receives and handles what now.
    fn announce(&self) {
        self.runtime
            .services()
            .events
            .set_directory(self.events_directory());
        self.generation.send_modify(|generation| *generation += 1);
    }

    /// Enabled plugins' subscriptions and claims (the first holder by id wins a kind two
    /// plugins were granted, which install refuses; only a policy change can cause it).
    fn events_directory(&self) -> Directory {
        let mut directory = Directory::default();
        for entry in self.read_live().values().filter(|entry| entry.enabled) {
            let Some(plugin) = &entry.plugin else {
                continue;
            };
            if plugin.receives_events()
                && let Some(grant) = plugin.admission().grants.events.granted()
            {
                directory.subscribers.push(Subscriber {
                    plugin: plugin.id().to_string(),
                    grant: grant.clone(),
                });
            }
            for kind in plugin.claimed_kinds() {
                let handler: Weak<dyn ClaimHandler> = Arc::downgrade(plugin) as _;
                directory
                    .claims
                    .entry(kind.clone())
                    .or_insert_with(|| (plugin.id().to_string(), handler));
            }
        }
        directory
    }

    /// Every plugin that receives events now (enabled, loaded, `subscriber` exported and
    /// topics granted).
    pub fn event_subscribers(&self) -> Vec<Arc<Plugin>> {
        self.read_live()
            .values()
            .filter(|entry| entry.enabled)
            .filter_map(|entry| entry.plugin.clone().filter(|p| p.receives_events()))
            .collect()
    }

    /// A receiver that sees every change of the live set (installs, upgrades, rollbacks,
    /// enable/disable, removals, policy changes, and those caught up from other hosts).
    pub fn watch_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Every plugin whose jobs run now (enabled, loaded, `jobs` exported and granted).
    pub fn job_servers(&self) -> Vec<Arc<Plugin>> {
        self.read_live()
            .values()
            .filter(|entry| entry.enabled)
            .filter_map(|entry| entry.plugin.clone().filter(|p| p.runs_jobs()))
            .collect()
    }

    /// Call `hook` of `plugin` if it has lifecycle hooks, auditing the outcome; `Err`
    /// says why it failed.
    fn hook(&self, plugin: &Plugin, hook: &Hook) -> Result<(), String> {
        let Some(outcome) = plugin.run_hook(hook) else {
            return Ok(());
        };
        let result = match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(crate::wit_error::describe(&error)),
            Err(error) => Err(error.to_string()),
        };
        let subject = match hook {
            Hook::SecretChanged { name } => format!("{} for secret `{name}`", hook.name()),
            _ => hook.name().to_string(),
        };
        let detail = match &result {
            Ok(()) => format!("{subject}: ok"),
            Err(why) => format!("{subject}: failed: {why}"),
        };
        self.runtime.services().audit.record(AuditEvent::new(
            plugin.id(),
            AuditKind::Hook,
            Some(CapabilityId::Lifecycle),
            detail,
        ));
        result
    }

    /// Tell plugin `id` (if it is loaded and has hooks) that its secret `name` was set or
    /// deleted. A failure is audited; the secret change stands.
    pub fn secret_changed(&self, id: &str, name: &str) {
        if let Ok(plugin) = self.loaded(id) {
            let _ = self.hook(
                &plugin,
                &Hook::SecretChanged {
                    name: name.to_string(),
                },
            );
        }
    }

    /// Every global plugin that serves tools now, by id.
    pub fn tool_servers(&self) -> Vec<ToolServer> {
        self.tool_servers_where(|id| sessions::owner(id) == sessions::Owner::Global)
    }

    /// Every plugin whose routes are served now (enabled, loaded, `handler` granted), by
    /// stored id.
    pub fn route_servers(&self) -> Vec<Arc<Plugin>> {
        self.read_live()
            .values()
            .filter(|entry| entry.enabled)
            .filter_map(|entry| entry.plugin.clone().filter(|p| p.serves_routes()))
            .collect()
    }

    /// Every plugin of `session` that serves tools now, by id.
    pub fn tool_servers_in(&self, session: &sessions::SessionId) -> Vec<ToolServer> {
        self.tool_servers_where(|id| sessions::belongs_to(id, session))
    }

    fn tool_servers_where(&self, owned: impl Fn(&str) -> bool) -> Vec<ToolServer> {
        self.read_live()
            .iter()
            .filter(|(id, entry)| entry.enabled && owned(id))
            .filter_map(|(_, entry)| {
                let plugin = entry.plugin.clone().filter(|p| p.serves_tools())?;
                Some(ToolServer {
                    plugin,
                    tools: entry.tools.clone()?,
                })
            })
            .collect()
    }

    /// Catch up with changes another host made to the shared store: adopt its policy,
    /// load every plugin whose current version changed (all of them if the policy did),
    /// copy enabled flags, and drop plugins it removed.
    pub fn sync(&self) -> Result<(), RegistryError> {
        let _changing = self.lock_changes();
        let stored_policy = self.store.setting(POLICY_SETTING)?;
        let policy_changed = stored_policy
            .as_ref()
            .is_some_and(|text| *text != self.policy_text());
        if let Some(text) = stored_policy.filter(|_| policy_changed) {
            let policy = Policy::parse(&text)?;
            *self.policy.write().unwrap_or_else(|p| p.into_inner()) = (policy, text);
        }
        let stored = self.store.plugins()?;
        let mut reloaded = Vec::new();
        for plugin in &stored {
            let live = self.read_live().get(&plugin.id).map(|entry| entry.seq);
            match live {
                Some(seq) if seq == plugin.current_seq && !policy_changed => {}
                _ => reloaded.push((plugin.id.clone(), self.restore(plugin))),
            }
        }
        let mut live = self.write_live();
        live.retain(|id, _| stored.iter().any(|plugin| &plugin.id == id));
        for (id, entry) in reloaded {
            live.insert(id, entry);
        }
        for plugin in &stored {
            if let Some(entry) = live.get_mut(&plugin.id) {
                entry.enabled = plugin.enabled;
            }
        }
        tracing::info!(
            plugins = live.len(),
            policy_changed,
            "caught up with the shared store"
        );
        drop(live);
        self.announce();
        Ok(())
    }

    /// Changes other hosts make to the shared store (see [`PluginStore::watch`]); call
    /// [`Registry::sync`] on each.
    pub fn watch(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<()>> {
        self.store.watch()
    }

    /// The runtime plugins run in (and its services).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn write_live(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Entry>> {
        self.live.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read_live(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        self.live.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Admit, compile and link `upload` under the current policy (as `session`'s plugin,
    /// if given); also returns the text of the policy it was granted under.
    fn compile(
        &self,
        upload: &Upload,
        session: Option<&Session>,
    ) -> Result<(Arc<Plugin>, String), RegistryError> {
        let (policy, text) = self
            .policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let plugin = self.runtime.load_in(upload.parts(), &policy, session)?;
        Ok((Arc::new(plugin), text))
    }

    /// Like [`Registry::prepare`] under the change lock: compiled again if the policy
    /// changed since `prepared` was, so what is stored is granted under the policy in
    /// force (the tools, which no policy changes, are kept).
    fn recompile_if_stale(
        &self,
        upload: &Upload,
        session: Option<&Session>,
        prepared: (Loaded, String),
    ) -> Result<Loaded, RegistryError> {
        let (loaded, text) = prepared;
        if text == self.policy_text() {
            return Ok(loaded);
        }
        Ok(Loaded {
            plugin: self.compile(upload, session)?.0,
            tools: loaded.tools,
        })
    }

    fn lock_changes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The operator's bounds on sessions, from the current policy.
    pub fn session_rules(&self) -> sessions::SessionRules {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .sessions
            .clone()
    }

    /// The current policy.
    pub fn policy(&self) -> Policy {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// The current policy's text.
    pub fn policy_text(&self) -> String {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// How `text` would change the grants of installed plugins, without changing anything.
    pub fn policy_dry_run(&self, text: &str) -> Result<Vec<GrantChange>, RegistryError> {
        let policy = Policy::parse(text)?;
        let mut changes = Vec::new();
        for (id, entry) in self.read_live().iter() {
            let Some(plugin) = &entry.plugin else {
                continue;
            };
            let session = match self.session_of(id) {
                Ok(session) => session,
                Err(RegistryError::SessionGone(_)) => continue,
                Err(error) => return Err(error),
            };
            let upload = self.stored_upload(id, entry.seq)?;
            let after = gate::admit_in(upload.parts(), &policy, usize::MAX, session.as_ref())
                .map_err(|error| RegistryError::PolicyRejected {
                    plugin: id.clone(),
                    error,
                })?;
            changes.extend(grant_changes(id, &plugin.admission().grants, &after.grants));
        }
        Ok(changes)
    }

    /// Replace the policy: every installed plugin is re-granted under `text`, all or none.
    pub fn set_policy(&self, text: &str) -> Result<Vec<GrantChange>, RegistryError> {
        let _changing = self.lock_changes();
        let policy = Policy::parse(text)?;
        let mut recompiled = Vec::new();
        let mut changes = Vec::new();
        for (id, entry) in self.read_live().iter() {
            let Some(before) = &entry.plugin else {
                continue;
            };
            let upload = self.stored_upload(id, entry.seq)?;
            let session = match self.session_of(id) {
                Ok(session) => session,
                // Its session ended; the sweep removes it, whatever the policy.
                Err(RegistryError::SessionGone(_)) => continue,
                Err(error) => return Err(error),
            };
            let plugin = self
                .runtime
                .load_in(upload.parts(), &policy, session.as_ref())
                .map_err(|error| RegistryError::PolicyRejected {
                    plugin: id.clone(),
                    error,
                })?;
            changes.extend(grant_changes(
                id,
                &before.admission().grants,
                &plugin.admission().grants,
            ));
            recompiled.push((id.clone(), Arc::new(plugin)));
        }
        self.store.set_setting(POLICY_SETTING, text)?;
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = (policy, text.to_string());
        let mut live = self.write_live();
        for (id, plugin) in recompiled {
            if let Some(entry) = live.get_mut(&id) {
                entry.plugin = Some(plugin);
            }
        }
        drop(live);
        self.announce();
        self.audit(
            "-",
            format!("policy replaced; {} grant changes", changes.len()),
        );
        self.publish_fact(
            "policy.changed",
            serde_json::json!({"grant_changes": changes.len()}),
        );
        Ok(changes)
    }

    /// Publish a fact about the host on `capstan.<fact>` (failures are logged: the change
    /// it reports stands).
    fn publish_fact(&self, fact: &str, payload: serde_json::Value) {
        let topic = match Topic::parse(&format!("{}.{fact}", topic::RESERVED)) {
            Ok(topic) => topic,
            Err(problem) => {
                tracing::error!("host event topic: {problem}");
                return;
            }
        };
        let payload = payload.to_string();
        let event = NewEvent {
            topic: &topic,
            source: topic::RESERVED,
            content_type: "application/json",
            payload: payload.as_bytes(),
            retention: crate::capability::events::DEFAULT_RETENTION,
            retention_count: crate::capability::events::DEFAULT_RETENTION_COUNT,
        };
        let deadline = crate::capability::Deadline::after(HOST_EVENT_DEADLINE);
        if let Err(error) = self.runtime.services().events.publish(&event, deadline) {
            tracing::warn!(%topic, "publishing a host event failed: {error}");
        }
    }

    fn audit(&self, id: &str, detail: String) {
        self.runtime.services().audit.record(AuditEvent::new(
            id,
            AuditKind::PluginChanged,
            None,
            detail,
        ));
    }

    /// Install `upload` as a new plugin, or as a new version of the plugin its manifest
    /// names. It is compiled before the change lock is taken, so a slow compile holds up
    /// no other admin change; the stored state is then checked and the version stored and
    /// swapped in under the lock.
    pub fn install(&self, upload: &Upload) -> Result<PluginInfo, RegistryError> {
        self.install_as(upload, None)
    }

    /// [`Registry::install`] for `session`'s plugin when one is given.
    fn install_as(
        &self,
        upload: &Upload,
        session: Option<&Session>,
    ) -> Result<PluginInfo, RegistryError> {
        let prepared = self.prepare(upload, session)?;
        check_provides(
            &prepared.0.plugin,
            prepared.0.tools.as_ref().map(|(_, live)| &**live),
        )?;
        let id = prepared.0.plugin.admission().manifest.id.clone();
        let previous = self
            .loaded(&id)
            .ok()
            .map(|plugin| plugin.admission().manifest.version.clone());
        self.migrate(&prepared.0.plugin)?;
        self.hook(
            &prepared.0.plugin,
            &Hook::Install {
                previous: previous.clone(),
            },
        )
        .map_err(|why| InstallError::HookFailed {
            hook: "on-install",
            why,
        })?;
        let _changing = self.lock_changes();
        let Loaded { plugin, tools } = self.recompile_if_stale(upload, session, prepared)?;
        if let Some(session) = session {
            self.check_session_room(session, &plugin)?;
        }
        let admission = plugin.admission();
        let id = admission.manifest.id.clone();
        admission
            .manifest
            .capabilities
            .check_state(&id, &*self.runtime.services().state)
            .map_err(|(capability, problem)| InstallError::StateRejected {
                capability,
                problem,
            })?;
        self.check_collisions(&id, tools.as_ref().map(|(_, live)| &**live))?;
        self.check_claims(&plugin)?;
        let seq = self.store.add_version(
            &id,
            &admission.manifest.version,
            &admission.sha256,
            upload,
            tools.as_ref().map(|(json, _)| json.as_str()),
            admission.signer.as_ref().map(|signer| signer.0.as_str()),
        )?;
        {
            let mut live = self.write_live();
            let enabled = live.get(&id).is_none_or(|entry| entry.enabled);
            live.insert(
                id.clone(),
                Entry {
                    plugin: Some(plugin),
                    tools: tools.map(|(_, live)| live),
                    enabled,
                    seq,
                    last_error: None,
                },
            );
        }
        self.announce();
        self.audit(&id, format!("version {seq} is now current"));
        let info = self.info(&id)?;
        let fact = match &previous {
            Some(_) => "upgraded",
            None => "installed",
        };
        self.publish_fact(
            &format!("plugin.{fact}"),
            serde_json::json!({"plugin": id, "version": info.version, "previous_version": previous}),
        );
        Ok(info)
    }

    /// Make an earlier version current: `to`, or the one before the current one.
    pub fn rollback(&self, id: &str, to: Option<i64>) -> Result<PluginInfo, RegistryError> {
        let current = self
            .read_live()
            .get(id)
            .map(|e| e.seq)
            .ok_or_else(|| RegistryError::NotFound(id.into()))?;
        let target = match to {
            Some(seq) => seq,
            None => self
                .store
                .versions(id)?
                .iter()
                .rev()
                .map(|v| v.seq)
                .find(|seq| *seq < current)
                .ok_or_else(|| RegistryError::NothingToRollBack(id.into()))?,
        };
        let upload = self.stored_upload(id, target)?;
        let prepared = self.load_version(id, target, &upload)?;
        let _changing = self.lock_changes();
        let session = self.session_of(id)?;
        let Loaded { plugin, tools } =
            self.recompile_if_stale(&upload, session.as_ref(), prepared)?;
        self.check_collisions(id, tools.as_ref().map(|(_, live)| &**live))?;
        self.check_claims(&plugin)?;
        self.store.set_current(id, target)?;
        if let Some(entry) = self.write_live().get_mut(id) {
            entry.plugin = Some(plugin);
            entry.tools = tools.map(|(_, live)| live);
            entry.seq = target;
            entry.last_error = None;
        }
        self.announce();
        self.audit(
            id,
            format!("rolled back from version {current} to {target}"),
        );
        let info = self.info(id)?;
        self.publish_fact(
            "plugin.rolled_back",
            serde_json::json!({"plugin": id, "version": info.version}),
        );
        Ok(info)
    }

    /// Enable or disable routing and tool calls to `id`.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<PluginInfo, RegistryError> {
        let _changing = self.lock_changes();
        if !self.read_live().contains_key(id) {
            return Err(RegistryError::NotFound(id.into()));
        }
        self.store.set_enabled(id, enabled)?;
        if let Some(entry) = self.write_live().get_mut(id) {
            entry.enabled = enabled;
        }
        self.announce();
        let fact = if enabled { "enabled" } else { "disabled" };
        self.audit(id, fact.to_string());
        self.publish_fact(&format!("plugin.{fact}"), serde_json::json!({"plugin": id}));
        self.info(id)
    }

    /// Uninstall `id` and all its versions, after its `on-remove` hook (best effort: a
    /// failure is audited and the removal goes on). Its data (SQL database, kv, secrets,
    /// settings) is kept unless `purge`.
    pub fn remove(&self, id: &str, purge: bool) -> Result<(), RegistryError> {
        if let Ok(plugin) = self.loaded(id) {
            let _ = self.hook(&plugin, &Hook::Remove);
        }
        let _changing = self.lock_changes();
        if !self.store.remove_plugin(id)? {
            return Err(RegistryError::NotFound(id.into()));
        }
        self.write_live().remove(id);
        self.announce();
        self.audit(id, "removed".to_string());
        match self.runtime.services().events.store().drop_plugin(id) {
            Ok(0) => {}
            Ok(dropped) => self.audit(
                id,
                format!("{dropped} event deliveries not yet made were dropped with it"),
            ),
            Err(error) => {
                tracing::warn!(plugin = %id, "dropping its event deliveries failed: {error}")
            }
        }
        self.publish_fact(
            "plugin.removed",
            serde_json::json!({"plugin": id, "purged": purge}),
        );
        if purge {
            self.purge(id)?;
        }
        Ok(())
    }

    /// Delete everything plugin `id` kept: its SQL database, kv, secrets and settings.
    fn purge(&self, id: &str) -> Result<(), RegistryError> {
        let services = self.runtime.services();
        services.sql.purge(id)?;
        let keys = crate::capability::kv::purge(&*services.state, id)?;
        let names = services
            .secrets
            .list(Some(id))
            .map_err(|e| crate::storage::StoreError::Backend(e.to_string()))?;
        for (_, name) in &names {
            services
                .secrets
                .remove(id, name)
                .map_err(|e| crate::storage::StoreError::Backend(e.to_string()))?;
        }
        services.state.set_config(id, &serde_json::Map::new())?;
        self.audit(
            id,
            format!(
                "purged: its SQL database, {keys} kv keys, {} secrets and its settings",
                names.len()
            ),
        );
        Ok(())
    }

    /// Every installed plugin of the operator's (sessions' plugins are listed with their
    /// session).
    pub fn list(&self) -> Vec<PluginInfo> {
        let live = self.read_live();
        live.iter()
            .filter(|(id, _)| sessions::owner(id) == sessions::Owner::Global)
            .map(|(id, entry)| PluginInfo::of(id, entry))
            .collect()
    }

    /// One installed plugin.
    pub fn info(&self, id: &str) -> Result<PluginInfo, RegistryError> {
        let live = self.read_live();
        let entry = live
            .get(id)
            .ok_or_else(|| RegistryError::NotFound(id.into()))?;
        Ok(PluginInfo::of(id, entry))
    }

    /// Stored versions of `id`, oldest first.
    pub fn versions(&self, id: &str) -> Result<Vec<VersionInfo>, RegistryError> {
        if !self.read_live().contains_key(id) {
            return Err(RegistryError::NotFound(id.into()));
        }
        Ok(self.store.versions(id)?)
    }

    /// The settings of plugin `id`: its schema, what the operator set, and what the plugin
    /// reads (set over the schema's defaults).
    pub fn config(&self, id: &str) -> Result<PluginConfig, RegistryError> {
        let plugin = self.loaded(id)?;
        let request = config_request(&plugin)?;
        let defaults = config::SettingsSchema::new(&request.schema)
            .map(|schema| schema.defaults())
            .unwrap_or_default();
        let state = &*self.runtime.services().state;
        Ok(PluginConfig {
            schema: request.schema.clone(),
            values: state.config(id)?.unwrap_or_default(),
            effective: config::effective(state, id, &defaults)?,
        })
    }

    /// Replace the settings of plugin `id` once they fit its schema and the policy's size
    /// cap (a refusal names the field and the rule, and stores nothing); returns the keys
    /// whose value changed, which is also what the audit record lists.
    pub fn set_config(
        &self,
        id: &str,
        values: &serde_json::Value,
    ) -> Result<Vec<String>, RegistryError> {
        let changing = self.lock_changes();
        let plugin = self.loaded(id)?;
        let request = config_request(&plugin)?;
        let max_bytes = plugin
            .admission()
            .grants
            .config
            .granted()
            .map_or(config::DEFAULT_MAX_SETTINGS_BYTES, |grant| grant.max_bytes);
        let values = config::validate(request, max_bytes, values).map_err(|invalid| {
            RegistryError::InvalidConfig {
                plugin: id.into(),
                invalid,
            }
        })?;
        let state = &*self.runtime.services().state;
        let before = state.config(id)?.unwrap_or_default();
        state.set_config(id, &values)?;
        let changed = config::changed_keys(&before, &values);
        self.runtime.services().audit.record(AuditEvent::new(
            id,
            AuditKind::ConfigChanged,
            Some(CapabilityId::Config),
            format!("config set; changed keys: [{}]", changed.join(", ")),
        ));
        drop(changing);
        if !changed.is_empty() {
            let _ = self.hook(&plugin, &Hook::ConfigChanged);
        }
        Ok(changed)
    }

    /// The loaded plugin `id`, enabled or not.
    pub fn plugin(&self, id: &str) -> Option<Arc<Plugin>> {
        self.loaded(id).ok()
    }

    /// The loaded plugin `id`.
    fn loaded(&self, id: &str) -> Result<Arc<Plugin>, RegistryError> {
        self.read_live()
            .get(id)
            .and_then(|entry| entry.plugin.clone())
            .ok_or_else(|| RegistryError::NotFound(id.into()))
    }

    /// Readiness: the store answers; returns (plugins loaded, plugins that failed to load).
    pub fn readiness(&self) -> Result<(usize, usize), RegistryError> {
        self.store.plugins()?;
        let live = self.read_live();
        let failed = live.values().filter(|e| e.plugin.is_none()).count();
        Ok((live.len() - failed, failed))
    }

    /// The plugin to call, if it is installed, enabled and loaded.
    pub fn serving(&self, id: &str) -> Option<Arc<Plugin>> {
        self.read_live()
            .get(id)
            .filter(|entry| entry.enabled)
            .and_then(|entry| entry.plugin.clone())
    }
}

/// The config slice of `plugin`'s manifest.
fn config_request(plugin: &Plugin) -> Result<&config::Request, RegistryError> {
    plugin
        .admission()
        .manifest
        .capabilities
        .config
        .as_ref()
        .ok_or_else(|| RegistryError::NoConfig(plugin.id().into()))
}
