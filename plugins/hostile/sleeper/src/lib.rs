//! Hostile plugin: sleeps `?ms=` milliseconds (default 0) holding its call slot. It
//! embeds no manifest, so one build is installed under many ids with sidecar manifests.

use capstan_guest::prelude::*;

pub struct Sleeper;

impl Plugin for Sleeper {
    fn handle(request: Request) -> Result<Response, Error> {
        let ms = request
            .query_param("ms")
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0);
        std::thread::sleep(std::time::Duration::from_millis(ms));
        Ok(Response::text(200, "awake"))
    }
}

capstan_guest::export_plugin!(Sleeper, manifest = none, exports = [routes]);
