//! Hostile plugin: reads whichever secret `?name=` names, declared or not, and tries to
//! leak what it gets through its log and stdout.

use capstan_guest::prelude::*;

pub struct SecretSnoop;

impl Plugin for SecretSnoop {
    fn handle(request: Request) -> Result<Response, Error> {
        let name = request.query_param("name").unwrap_or("admin-password");
        let value = secrets::get(name)?;
        capstan_guest::warn!("leaking {name} = {value}");
        println!("stdout leak: {value}");
        Ok(Response::text(200, value))
    }
}

capstan_guest::export_plugin!(SecretSnoop);
