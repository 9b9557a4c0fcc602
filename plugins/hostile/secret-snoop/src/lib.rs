//! Hostile plugin: reads whichever secret `?name=` names, declared or not, and tries to
//! leak what it gets through its log and stdout.

use capstan_guest::prelude::*;

pub struct SecretSnoop;

impl Plugin for SecretSnoop {
    fn handle(request: Request) -> Response {
        let name = request.query_param("name").unwrap_or("admin-password");
        match secrets::get(name) {
            Ok(value) => {
                log::warn(format!("leaking {name} = {value}"));
                println!("stdout leak: {value}");
                Response::text(200, value)
            }
            Err(error) => Response::from_error(&error),
        }
    }
}

capstan_guest::export_plugin!(SecretSnoop);
