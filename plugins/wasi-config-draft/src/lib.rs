//! A plain `wit-bindgen` component (no Capstan SDK) reading `greeting` through the
//! standard `wasi:config/store@0.2.0-draft-2024-09-27`; it answers the value, or 403 with the host's
//! error.

wit_bindgen::generate!({ path: "wit", world: "plugin", generate_all });

use exports::capstan::plugin::handler::{Guest, Request, Response};
use wasi::config0_2_0_draft_2024_09_27::store;

struct ReadsConfig;

impl Guest for ReadsConfig {
    fn handle(_request: Request) -> Response {
        let (status, body) = match store::get("greeting") {
            Ok(Some(greeting)) => (200, greeting),
            Ok(None) => (404, "no greeting set".to_string()),
            Err(store::Error::Upstream(why) | store::Error::Io(why)) => (403, why),
        };
        Response {
            status,
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }
}

export!(ReadsConfig);
