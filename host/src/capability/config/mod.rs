//! `config`: settings the operator sets for one plugin, validated against the JSON Schema
//! its manifest declares, read through `capstan:plugin/config` or either spelling of the
//! standard `wasi:config/store`. Granted by default (it exposes only what the operator set
//! for this plugin) and withholdable with `deny = ["config"]`.

mod bindings;
mod deny;
mod host;
mod schema;
mod store;

pub use host::ConfigHost;
pub use schema::{Invalid, SECRET_KEYWORD, SettingsSchema};
pub use store::ConfigStore;

use super::{CallScope, Capability, CapabilityId, CapabilityInfo, Decision, Direction, Import};
use crate::storage::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use wasmtime::component::{HasData, Linker};

/// The `config` capability.
pub struct Config;

/// The two spellings of the standard interface in use.
pub const WASI_RC: &str = "wasi:config/store@0.2.0-rc.1";
pub const WASI_DRAFT: &str = "wasi:config/store@0.2.0-draft-2024-09-27";

/// Largest settings object (as JSON) a policy may allow, and the default.
pub const MAX_SETTINGS_BYTES: u32 = 1024 * 1024;
pub const DEFAULT_MAX_SETTINGS_BYTES: u32 = 64 * 1024;

/// Manifest `[capabilities.config]`: the JSON Schema of the plugin's settings object,
/// written as a TOML table (`[capabilities.config.schema.properties.greeting]` …).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default = "empty_object")]
    pub schema: Value,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            schema: empty_object(),
        }
    }
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// Policy `[…capabilities.config]`: the largest settings object the operator may set.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    pub max_bytes: Option<u32>,
}

/// What a granted plugin reads: the stored settings over these defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub defaults: Map<String, Value>,
    pub max_bytes: u32,
}

impl Capability for Config {
    const INFO: CapabilityInfo = CapabilityInfo {
        id: CapabilityId::Config,
        name: "config",
        key: "config",
        interface: "config",
        standard: &[WASI_RC, WASI_DRAFT],
        exports: &[],
        direction: Direction::Import,
    };

    type Request = Request;
    type Allowed = Allowed;
    type Grant = Grant;

    fn grant(request: &Request, allowed: &Allowed) -> Result<Grant, String> {
        let schema = SettingsSchema::new(&request.schema)?;
        Ok(Grant {
            defaults: schema.defaults(),
            max_bytes: allowed.max_bytes.unwrap_or(DEFAULT_MAX_SETTINGS_BYTES),
        })
    }

    fn check_request(request: &Request) -> Result<(), String> {
        SettingsSchema::new(&request.schema).map(drop)
    }

    fn check_allowed(allowed: &Allowed) -> Result<(), String> {
        match allowed.max_bytes {
            Some(n) if n == 0 || n > MAX_SETTINGS_BYTES => {
                Err(format!("max_bytes must be 1..={MAX_SETTINGS_BYTES}"))
            }
            _ => Ok(()),
        }
    }

    fn implied() -> Option<Allowed> {
        Some(Allowed::default())
    }

    fn check_state(
        request: &Request,
        plugin: &str,
        state: &dyn crate::storage::StateStore,
    ) -> Result<(), String> {
        check_stored(state, plugin, request)
    }
}

/// Check settings an operator wants to store for a plugin with `request`: they fit the
/// schema (a failure names the field and the rule) and are at most `max_bytes` as JSON.
pub fn validate(
    request: &Request,
    max_bytes: u32,
    values: &Value,
) -> Result<Map<String, Value>, Invalid> {
    let schema = SettingsSchema::new(&request.schema).map_err(|rule| Invalid {
        field: "/".into(),
        rule,
    })?;
    let size = values.to_string().len();
    if size > max_bytes as usize {
        return Err(Invalid {
            field: "/".into(),
            rule: format!("settings are {size} bytes as JSON; the policy allows {max_bytes}"),
        });
    }
    schema.validate(values)
}

/// Keys added, changed or removed between `before` and `after`, sorted.
pub fn changed_keys(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<String> = after
        .iter()
        .filter(|(key, value)| before.get(*key) != Some(*value))
        .map(|(key, _)| key.clone())
        .chain(
            before
                .keys()
                .filter(|key| !after.contains_key(*key))
                .cloned(),
        )
        .collect();
    keys.sort();
    keys
}

/// Whether the settings stored for `plugin` still fit `request` (an upgrade's schema);
/// `Err` names the field that no longer does.
pub fn check_stored(
    store: &dyn ConfigStore,
    plugin: &str,
    request: &Request,
) -> Result<(), String> {
    let Some(stored) = store.config(plugin).map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let schema = SettingsSchema::new(&request.schema)?;
    schema
        .validate(&Value::Object(stored))
        .map(drop)
        .map_err(|invalid| format!("the stored config no longer fits the schema: {invalid}"))
}

/// The stored settings of `plugin` over `defaults`.
pub fn effective(
    store: &dyn ConfigStore,
    plugin: &str,
    defaults: &Map<String, Value>,
) -> Result<Map<String, Value>, StoreError> {
    let mut values = defaults.clone();
    values.extend(store.config(plugin)?.unwrap_or_default());
    Ok(values)
}

impl Import for Config {
    type View<'a> = ConfigHost<'a>;

    fn link<T: 'static>(
        linker: &mut Linker<T>,
        decision: &Decision<Grant>,
        view: fn(&mut T) -> ConfigHost<'_>,
        scope: fn(&mut T) -> CallScope<'_>,
    ) -> wasmtime::Result<()> {
        use crate::bindings::capstan::plugin::config;
        use bindings::{draft, rc};
        match decision {
            Decision::Granted { .. } => {
                config::add_to_linker::<T, Config>(linker, view)?;
                rc::add_to_linker::<T, Config>(linker, view)?;
                draft::add_to_linker::<T, Config>(linker, view)
            }
            _ => {
                config::add_to_linker::<T, deny::Withheld>(linker, scope)?;
                rc::add_to_linker::<T, deny::Withheld>(linker, scope)?;
                draft::add_to_linker::<T, deny::Withheld>(linker, scope)
            }
        }
    }
}

impl HasData for Config {
    type Data<'a> = ConfigHost<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::capstan::plugin::config::Host;
    use crate::bindings::capstan::plugin::types::Error;
    use crate::capability::scope::testing::TestScope;
    use crate::capability::{Grants, Requested};
    use crate::policy::Policy;
    use crate::storage::MemoryKv;
    use serde_json::json;

    const MANIFEST: &str = r#"
[config.schema]
type = "object"
[config.schema.properties.greeting]
type = "string"
default = "Hello"
[config.schema.properties.retries]
type = "integer"
"#;

    /// The config decision for `MANIFEST` under policy text `policy`.
    fn decide(policy: &str) -> Decision<Grant> {
        let requested: Requested = toml::from_str(MANIFEST).unwrap();
        let effective = Policy::parse(policy).unwrap().for_plugin("plugin");
        Grants::decide(&requested, &effective.capabilities).config
    }

    #[test]
    fn config_is_granted_by_default_and_reads_stored_values_over_defaults() {
        let decision = decide("");
        let store = MemoryKv::default();
        store
            .set_config(
                "plugin",
                &json!({"retries": 3}).as_object().unwrap().clone(),
            )
            .unwrap();
        let test = TestScope::new();
        let mut host = ConfigHost {
            scope: test.scope(),
            grant: decision.granted().expect("granted with no policy entry"),
            store: &store,
        };
        assert_eq!(host.get("retries".into()).unwrap().as_deref(), Some("3"));
        assert_eq!(
            host.get("greeting".into()).unwrap().as_deref(),
            Some("\"Hello\"")
        );
        assert_eq!(host.get("missing".into()).unwrap(), None);
        assert_eq!(
            host.get_all().unwrap(),
            [
                ("greeting".into(), "\"Hello\"".into()),
                ("retries".into(), "3".into())
            ]
        );
        let mut standard = ConfigHost { ..host };
        assert_eq!(
            bindings::rc::Host::get(&mut standard, "greeting".into())
                .unwrap()
                .as_deref(),
            Some("Hello"),
            "the standard interface returns strings as their text"
        );
    }

    #[test]
    fn config_withheld_by_the_policy_is_denied_on_every_spelling_and_audited() {
        let decision = decide("[plugins.plugin]\ndeny = [\"config\"]\n");
        assert!(matches!(decision, Decision::Denied { .. }));
        let test = TestScope::new();
        let mut scope = test.scope();
        assert!(matches!(
            Host::get(&mut scope, "greeting".into()),
            Err(Error::Denied(_))
        ));
        assert!(matches!(
            bindings::rc::Host::get(&mut scope, "greeting".into()),
            Err(bindings::rc::Error::Upstream(_))
        ));
        assert!(matches!(
            bindings::draft::Host::get_all(&mut scope),
            Err(bindings::draft::Error::Upstream(_))
        ));
        assert_eq!(test.denials_of(CapabilityId::Config), 3);
    }

    #[test]
    fn an_upgrade_whose_schema_rejects_the_stored_config_is_refused_naming_the_field() {
        let store = MemoryKv::default();
        store
            .set_config(
                "plugin",
                &json!({"retries": "three"}).as_object().unwrap().clone(),
            )
            .unwrap();
        let request: Request =
            toml::from_str("[schema.properties.retries]\ntype = \"integer\"\n").unwrap();
        let problem = check_stored(&store, "plugin", &request).unwrap_err();
        assert!(problem.contains("`/retries`"), "{problem}");
        assert!(
            check_stored(&store, "fresh", &request).is_ok(),
            "nothing stored, nothing to check"
        );
    }

    #[test]
    fn settings_over_the_policy_cap_are_refused() {
        let decision = decide("[defaults.capabilities.config]\nmax_bytes = 16\n");
        let request: Requested = toml::from_str(MANIFEST).unwrap();
        let error = validate(
            request.config.as_ref().unwrap(),
            decision.granted().unwrap().max_bytes,
            &json!({"greeting": "a greeting far longer than sixteen bytes"}),
        )
        .unwrap_err();
        assert!(error.rule.contains("the policy allows 16"), "{error}");
    }
}
