//! Hostile plugin: imports `kv` although its manifest does not declare `kv`.

use capstan_guest::prelude::*;

pub struct UndeclaredKv;

impl Plugin for UndeclaredKv {
    fn handle(_request: Request) -> Response {
        match kv::set("stolen", b"data") {
            Ok(()) => Response::text(200, "wrote without asking"),
            Err(error) => Response::from_error(&error),
        }
    }
}

capstan_guest::export_plugin!(UndeclaredKv);
