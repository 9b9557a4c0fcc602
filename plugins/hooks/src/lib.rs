//! Lifecycle hooks: `on-install` records the version it upgraded from (and fails when the
//! `refuse_install` setting says so), `on-config-changed` records the greeting it then
//! reads, `on-secret-changed` records the name it was given. `GET /` shows all of it.

use capstan_guest::prelude::*;

pub struct Hooks;

fn remember(key: &str, value: &str) -> Result<(), Error> {
    kv::set(key, value.as_bytes())
}

fn recall(key: &str) -> Result<Option<String>, Error> {
    Ok(kv::get(key)?.and_then(|bytes| String::from_utf8(bytes).ok()))
}

impl Plugin for Hooks {
    fn on_install(previous_version: Option<&str>) -> Result<(), Error> {
        if config::get_as::<bool>("refuse_install")?.unwrap_or(false) {
            return Err(Error::InvalidInput("refuse_install is set".into()));
        }
        kv::increment("installs", 1)?;
        remember("upgraded-from", previous_version.unwrap_or("-"))
    }

    fn on_config_changed() -> Result<(), Error> {
        let greeting: String = config::get_as("greeting")?.unwrap_or_default();
        remember("greeting-seen", &greeting)
    }

    fn on_secret_changed(name: &str) -> Result<(), Error> {
        capstan_guest::info!("secret {name} changed");
        remember("secret-changed", name)
    }

    fn handle(_request: Request) -> Result<Response, Error> {
        Ok(Response::json(
            200,
            &json!({
                "installs": recall("installs")?,
                "upgraded-from": recall("upgraded-from")?,
                "greeting-seen": recall("greeting-seen")?,
                "secret-changed": recall("secret-changed")?,
            }),
        ))
    }
}

capstan_guest::export_plugin!(Hooks);

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_guest::testing;

    #[test]
    fn hooks_record_what_they_were_told() {
        testing::reset();
        Hooks::on_install(Some("0.0.9")).unwrap();
        testing::set_config(json!({"greeting": "Ahoy"}));
        Hooks::on_config_changed().unwrap();
        Hooks::on_secret_changed("api-token").unwrap();
        let state: Value = capstan_guest::serde_json::from_str(
            &Hooks::handle(Request::new("GET", "/")).unwrap().body_text(),
        )
        .unwrap();
        assert_eq!(state["upgraded-from"], "0.0.9");
        assert_eq!(state["greeting-seen"], "Ahoy");
        assert_eq!(state["secret-changed"], "api-token");
        testing::set_config(json!({"refuse_install": true}));
        assert!(Hooks::on_install(None).is_err());
    }
}
