//! Host side of the WIT `kv` interface: size caps, then the store, in the plugin's namespace.

use super::{Grant, KvStore};
use crate::audit::AuditKind;
use crate::bindings::capstan::plugin::kv::{Host, KeyPage};
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::{CallScope, CapabilityId};
use crate::storage::StoreError;

/// The granted kv, seen from one call: the namespace is the calling plugin's id.
pub struct KvHost<'a> {
    pub scope: CallScope<'a>,
    pub grant: &'a Grant,
    pub store: &'a dyn KvStore,
}

impl KvHost<'_> {
    fn namespace(&self) -> &str {
        self.scope.plugin
    }

    fn check_key(&self, key: &str) -> Result<(), Error> {
        let max = self.grant.max_key_bytes as usize;
        if key.is_empty() {
            return Err(Error::InvalidInput("key must not be empty".into()));
        }
        check_no_nul("key", key)?;
        if key.len() > max {
            return Err(Error::TooLarge(format!(
                "key is {} bytes; the cap is {max}",
                key.len()
            )));
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), Error> {
        let max = self.grant.max_value_bytes as usize;
        if value.len() > max {
            return Err(Error::TooLarge(format!(
                "value is {} bytes; the cap is {max}",
                value.len()
            )));
        }
        Ok(())
    }

    fn map(&self, error: StoreError) -> Error {
        match error {
            StoreError::QuotaExceeded(detail) => {
                self.scope.fault(
                    AuditKind::LimitHit,
                    CapabilityId::Kv,
                    format!("kv quota exceeded: {detail}"),
                );
                Error::QuotaExceeded(detail)
            }
            StoreError::NotAnInteger(detail) => Error::InvalidInput(detail),
            StoreError::DeadlinePassed => Error::Timeout,
            StoreError::Backend(detail) => {
                tracing::error!(plugin = %self.scope.plugin, "kv backend failed: {detail}");
                Error::Internal("storage is unavailable".into())
            }
        }
    }
}

/// Keys and prefixes are text without NUL on every backend (PostgreSQL text cannot hold
/// it), so a NUL is refused up front rather than answered differently per backend.
fn check_no_nul(what: &str, text: &str) -> Result<(), Error> {
    if text.contains('\0') {
        return Err(Error::InvalidInput(format!("{what} must not contain NUL")));
    }
    Ok(())
}

impl Host for KvHost<'_> {
    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.scope.plugin))]
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.check_key(&key)?;
        self.store
            .get(self.namespace(), &key, self.scope.deadline)
            .map_err(|e| self.map(e))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.scope.plugin))]
    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.check_key(&key)?;
        self.check_value(&value)?;
        self.store
            .set(
                self.namespace(),
                &key,
                &value,
                self.grant.quota,
                self.scope.deadline,
            )
            .map_err(|e| self.map(e))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.scope.plugin))]
    fn delete(&mut self, key: String) -> Result<bool, Error> {
        self.check_key(&key)?;
        self.store
            .delete(self.namespace(), &key, self.scope.deadline)
            .map_err(|e| self.map(e))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.scope.plugin))]
    fn list_keys(
        &mut self,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<KeyPage, Error> {
        check_no_nul("prefix", &prefix)?;
        let page = self
            .store
            .list_keys(
                self.namespace(),
                &prefix,
                cursor.as_deref(),
                limit,
                self.scope.deadline,
            )
            .map_err(|e| self.map(e))?;
        Ok(KeyPage {
            keys: page.keys,
            next_cursor: page.next_cursor,
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.scope.plugin))]
    fn increment(&mut self, key: String, delta: i64) -> Result<i64, Error> {
        self.check_key(&key)?;
        self.store
            .increment(
                self.namespace(),
                &key,
                delta,
                self.grant.quota,
                self.scope.deadline,
            )
            .map_err(|e| self.map(e))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.scope.plugin))]
    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, Error> {
        self.check_key(&key)?;
        self.check_value(&value)?;
        self.store
            .compare_and_swap(
                self.namespace(),
                &key,
                expected.as_deref(),
                &value,
                self.grant.quota,
                self.scope.deadline,
            )
            .map_err(|e| self.map(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::FAULT_RECORDS_PER_SECOND;
    use crate::capability::kv::Quota;
    use crate::capability::scope::testing::TestScope;
    use crate::storage::MemoryKv;

    /// A plugin that keeps writing past its quota, ignoring the refusals: each write is
    /// refused, but the limit-hit records are rate-limited per plugin.
    #[test]
    fn writes_retried_past_the_quota_write_a_bounded_number_of_records() {
        let test = TestScope::new();
        let store = MemoryKv::default();
        let grant = Grant {
            quota: Quota {
                max_keys: 1,
                max_bytes: 1 << 20,
            },
            max_key_bytes: 64,
            max_value_bytes: 64,
        };
        let mut host = KvHost {
            scope: test.scope(),
            grant: &grant,
            store: &store,
        };
        assert!(host.set("first".into(), b"1".to_vec()).is_ok());
        for n in 0..1_000 {
            let refused = host.set(format!("key-{n}"), b"1".to_vec());
            assert!(
                matches!(refused, Err(Error::QuotaExceeded(_))),
                "{refused:?}"
            );
        }
        let written = test
            .audit
            .events()
            .iter()
            .filter(|e| e.kind == AuditKind::LimitHit && e.capability == Some(CapabilityId::Kv))
            .count();
        assert!(
            (1..=FAULT_RECORDS_PER_SECOND as usize + 1).contains(&written),
            "{written} records for 1000 refused writes"
        );
    }
}
