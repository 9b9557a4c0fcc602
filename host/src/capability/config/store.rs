//! The state behind `config`: one settings object per plugin, set by operators.

use crate::storage::StoreError;
use serde_json::{Map, Value};

/// Where settings are kept; implemented by every storage backend.
pub trait ConfigStore: Send + Sync {
    /// The settings the operator set for `plugin`, if any.
    fn config(&self, plugin: &str) -> Result<Option<Map<String, Value>>, StoreError>;
    /// Replace the settings of `plugin`.
    fn set_config(&self, plugin: &str, values: &Map<String, Value>) -> Result<(), StoreError>;
}
