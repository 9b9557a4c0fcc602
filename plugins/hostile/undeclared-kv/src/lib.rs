//! Hostile plugin: imports `kv` although its manifest does not declare `kv`.

use capstan_guest::prelude::*;

pub struct UndeclaredKv;

impl Plugin for UndeclaredKv {
    fn handle(_request: Request) -> Result<Response, Error> {
        kv::set("stolen", b"data")?;
        Ok(Response::text(200, "wrote without asking"))
    }
}

capstan_guest::export_plugin!(UndeclaredKv);
