use capstan_guest::prelude::*;

pub struct Settings;

impl Plugin for Settings {
    fn handle(request: Request) -> Result<Response, Error> {
        match request.path.as_str() {
            "/settings" => Ok(Response::json(200, &config::get_all()?)),
            _ => {
                let greeting: String = config::get_as("greeting")?.unwrap_or_default();
                let retries: u32 = config::get_as("retries")?.unwrap_or_default();
                let name = request.query_param("name").unwrap_or("world");
                Ok(Response::text(
                    200,
                    format!("{greeting}, {name}! (retries: {retries})"),
                ))
            }
        }
    }
}

capstan_guest::export_plugin!(Settings);
