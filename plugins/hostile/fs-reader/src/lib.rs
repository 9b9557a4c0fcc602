//! Hostile plugin: uses `std::fs`, which imports `wasi:filesystem`.

use capstan_guest::prelude::*;

pub struct FsReader;

impl Plugin for FsReader {
    fn handle(_request: Request) -> Result<Response, Error> {
        match std::fs::read_to_string("/etc/passwd") {
            Ok(text) => Ok(Response::text(200, text)),
            Err(error) => Ok(Response::text(500, error.to_string())),
        }
    }
}

capstan_guest::export_plugin!(FsReader);
