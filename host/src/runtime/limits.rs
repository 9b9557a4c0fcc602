//! Per-call resource limits that remember which one was hit, so a trap can be reported
//! as "memory limit of 64 MiB exceeded" rather than an opaque allocation failure.

use crate::policy::Limits;
use wasmtime::ResourceLimiter;

/// Which limit a call ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    Memory,
    Table,
}

/// Memory, table and instance caps for one store.
pub struct CallLimiter {
    memory_bytes: usize,
    table_elements: usize,
    instances: usize,
    /// The first limit refused during this call.
    pub hit: Option<LimitHit>,
}

impl CallLimiter {
    /// Caps from the plugin's effective limits.
    pub fn new(limits: &Limits) -> Self {
        CallLimiter {
            memory_bytes: (limits.memory_mib as usize) << 20,
            table_elements: limits.table_elements as usize,
            instances: limits.instances as usize,
            hit: None,
        }
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit.get_or_insert(LimitHit::Memory);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            self.hit.get_or_insert(LimitHit::Table);
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.instances
    }

    fn memories(&self) -> usize {
        self.instances
    }
}
