//! The host's call slots, shared fairly between tenants: each global plugin is a tenant,
//! and each session (all the plugins it brought) is one. Each plugin has its own cap
//! (`max_concurrent_calls`), a session's plugins together have the session's
//! (`[sessions] max_concurrent_calls`), and everything together has the host's total (the
//! instance pool). A tenant may take any free slot while it is below its fair share (the
//! total divided among the tenants with calls in flight), but above its share it cannot
//! take the last few (the reserve): those are kept for tenants that are not flooding, so a
//! crowd of plugins parked at their caps — or a session that brought many — cannot starve
//! the rest. A caller that finds no slot waits, boundedly, for one to free up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Why a call got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The plugin is running its maximum number of calls.
    PluginBusy { limit: u32 },
    /// The plugin's session is running its maximum number of calls.
    SessionBusy { limit: u32 },
    /// The host has no slot this plugin may take.
    HostBusy,
}

/// How many calls a plugin may run at once, and its session's plugins together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub plugin: u32,
    pub session: Option<u32>,
}

impl From<u32> for Caps {
    /// A global plugin's caps: its own only.
    fn from(plugin: u32) -> Caps {
        Caps {
            plugin,
            session: None,
        }
    }
}

#[derive(Default)]
struct State {
    used: usize,
    per_plugin: HashMap<String, usize>,
    /// Calls in flight per tenant: a global plugin's id, or `~<session>`.
    per_tenant: HashMap<String, usize>,
}

/// The tenant `plugin` (a stored id) belongs to: itself, or its session (`~` keeps a
/// session's key apart from every plugin id).
fn tenant_of(plugin: &str) -> String {
    match crate::sessions::owner(plugin) {
        crate::sessions::Owner::Session { session, .. } => format!("~{session}"),
        crate::sessions::Owner::Global => plugin.to_string(),
    }
}

/// Take one from `counts[key]`, forgetting keys that reach zero.
fn release(counts: &mut HashMap<String, usize>, key: &str) {
    if let Some(count) = counts.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(key);
        }
    }
}

/// The host's slots.
pub struct Slots {
    total: usize,
    reserve: usize,
    state: Mutex<State>,
    freed: Notify,
}

/// One call's slot; given back when dropped.
pub struct Slot {
    slots: Arc<Slots>,
    plugin: String,
    tenant: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.slots.lock();
        state.used -= 1;
        release(&mut state.per_plugin, &self.plugin);
        release(&mut state.per_tenant, &self.tenant);
        drop(state);
        self.slots.freed.notify_waiters();
    }
}

impl Slots {
    /// `total` slots, a sixteenth of them (at least one) kept in reserve.
    pub fn new(total: usize) -> Arc<Slots> {
        let total = total.max(1);
        Arc::new(Slots {
            total,
            reserve: (total / 16).max(1),
            state: Mutex::new(State::default()),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a call of `plugin` (its stored id) within `caps` now, or why not.
    pub fn try_take(
        self: &Arc<Self>,
        plugin: &str,
        caps: impl Into<Caps>,
    ) -> Result<Slot, Refusal> {
        let caps = caps.into();
        let tenant = tenant_of(plugin);
        let mut state = self.lock();
        let mine = state.per_plugin.get(plugin).copied().unwrap_or(0);
        if mine >= caps.plugin as usize {
            return Err(Refusal::PluginBusy { limit: caps.plugin });
        }
        let ours = state.per_tenant.get(&tenant).copied().unwrap_or(0);
        if let Some(limit) = caps.session
            && tenant != plugin
            && ours >= limit as usize
        {
            return Err(Refusal::SessionBusy { limit });
        }
        let active = state.per_tenant.len() + usize::from(ours == 0);
        let share = (self.total / active).max(1);
        let free = self.total - state.used;
        if free == 0 || (ours >= share && free <= self.reserve) {
            return Err(Refusal::HostBusy);
        }
        state.used += 1;
        *state.per_plugin.entry(plugin.to_string()).or_default() += 1;
        *state.per_tenant.entry(tenant.clone()).or_default() += 1;
        Ok(Slot {
            slots: self.clone(),
            plugin: plugin.to_string(),
            tenant,
        })
    }

    /// Like [`Slots::try_take`], waiting at most `wait` for a slot to free up.
    pub async fn take(
        self: &Arc<Self>,
        plugin: &str,
        caps: impl Into<Caps>,
        wait: Duration,
    ) -> Result<Slot, Refusal> {
        let cap = caps.into();
        let give_up = tokio::time::Instant::now() + wait;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let refusal = match self.try_take(plugin, cap) {
                Ok(slot) => return Ok(slot),
                Err(refusal) => refusal,
            };
            if tokio::time::timeout_at(give_up, freed).await.is_err() {
                return Err(refusal);
            }
        }
    }

    /// Calls running now, per plugin.
    pub fn in_flight(&self) -> Vec<(String, u32)> {
        let state = self.lock();
        let mut counts: Vec<(String, u32)> = state
            .per_plugin
            .iter()
            .map(|(plugin, n)| (plugin.clone(), *n as u32))
            .collect();
        counts.sort();
        counts
    }

    /// The host's total.
    pub fn total(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_plugins_at_their_caps_leave_room_for_a_twenty_first() {
        let slots = Slots::new(256);
        let mut held = Vec::new();
        // Twenty plugins try to run 16 calls each (320 > 256), taking turns like a flood.
        for _ in 0..16 {
            for plugin in 0..20 {
                if let Ok(slot) = slots.try_take(&format!("flood{plugin}"), 16) {
                    held.push(slot);
                }
            }
        }
        assert!(
            held.len() < 256,
            "the flood may not take every slot: {}",
            held.len()
        );
        for plugin in 0..20 {
            assert_eq!(
                slots.try_take(&format!("flood{plugin}"), 16).err(),
                Some(Refusal::HostBusy),
                "flood{plugin} is above its share and the reserve is kept"
            );
        }
        // A plugin with nothing running still gets slots, while the flood holds on.
        let quiet: Vec<Slot> = (0..4)
            .map(|_| slots.try_take("quiet", 16).unwrap())
            .collect();
        assert_eq!(quiet.len(), 4);
        assert_eq!(
            slots
                .in_flight()
                .iter()
                .find(|(p, _)| p == "quiet")
                .unwrap()
                .1,
            4
        );
    }

    #[test]
    fn a_plugin_at_its_own_cap_is_told_so_and_a_freed_slot_is_reused() {
        let slots = Slots::new(8);
        let first = slots.try_take("a", 1).unwrap();
        assert_eq!(
            slots.try_take("a", 1).err(),
            Some(Refusal::PluginBusy { limit: 1 })
        );
        drop(first);
        assert!(slots.try_take("a", 1).is_ok());
        assert!(slots.in_flight().is_empty(), "dropped slots are given back");
    }

    #[test]
    fn a_sessions_plugins_share_one_cap_and_other_sessions_are_untouched() {
        let slots = Slots::new(256);
        let caps = Caps {
            plugin: 16,
            session: Some(4),
        };
        let session = "0123456789abcdef";
        let held: Vec<Slot> = (0..4)
            .map(|n| slots.try_take(&format!("p{n}~{session}"), caps).unwrap())
            .collect();
        assert_eq!(
            slots.try_take(&format!("p9~{session}"), caps).err(),
            Some(Refusal::SessionBusy { limit: 4 }),
            "a fifth plugin of the session finds the session's cap"
        );
        assert!(slots.try_take("p9~fedcba9876543210", caps).is_ok());
        assert!(slots.try_take("global", 16).is_ok());
        drop(held);
        assert!(slots.try_take(&format!("p9~{session}"), caps).is_ok());
    }

    #[test]
    fn a_session_that_brought_many_plugins_gets_one_share_not_one_per_plugin() {
        let slots = Slots::new(64);
        let session = "0123456789abcdef";
        let caps = Caps {
            plugin: 64,
            session: Some(64),
        };
        // One global plugin is flooding next to the session: two tenants, 32 slots each.
        let mut held: Vec<Slot> = (0..16)
            .map(|_| slots.try_take("global", 64).unwrap())
            .collect();
        // The session's sixteen plugins flood in turns; together they are one tenant.
        for _ in 0..8 {
            for plugin in 0..16 {
                if let Ok(slot) = slots.try_take(&format!("p{plugin}~{session}"), caps) {
                    held.push(slot);
                }
            }
        }
        let session_held = slots
            .in_flight()
            .iter()
            .filter(|(id, _)| id.ends_with(session))
            .map(|(_, n)| *n)
            .sum::<u32>();
        assert_eq!(
            session_held,
            64 - 16 - 4,
            "it took every slot but the reserve"
        );
        // A plugin of the session with nothing running yet is still the session, which is
        // far above its share: the reserve is not its to take (counted per plugin, this
        // fresh plugin would be below a plugin's share and would take it).
        assert_eq!(
            slots.try_take(&format!("fresh~{session}"), caps).err(),
            Some(Refusal::HostBusy)
        );
        assert!(
            slots.try_take("global", 64).is_ok(),
            "the global plugin, below its share, still gets a slot"
        );
    }

    #[test]
    fn a_waiting_call_gets_the_next_freed_slot_and_a_bounded_wait_gives_up() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let slots = Slots::new(1);
            let held = slots.try_take("a", 4).unwrap();
            let gave_up = slots.take("b", 4, Duration::from_millis(20)).await;
            assert_eq!(gave_up.err(), Some(Refusal::HostBusy));
            let waiter = {
                let slots = slots.clone();
                tokio::spawn(
                    async move { slots.take("b", 4, Duration::from_secs(30)).await.is_ok() },
                )
            };
            tokio::task::yield_now().await;
            drop(held);
            assert!(waiter.await.unwrap(), "the waiter got the freed slot");
        });
    }
}
