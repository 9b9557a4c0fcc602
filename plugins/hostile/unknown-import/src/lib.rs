//! Hostile plugin: imports `evil:backdoor/shell`, which no Capstan host provides.

wit_bindgen::generate!({ path: "wit", world: "hostile", generate_all });

use exports::capstan::plugin::handler::{Guest, Request, Response};

struct UnknownImport;

impl Guest for UnknownImport {
    fn handle(request: Request) -> Response {
        Response {
            status: 200,
            headers: Vec::new(),
            body: evil::backdoor::shell::run(&request.path).into_bytes(),
        }
    }
}

export!(UnknownImport);

#[used]
#[unsafe(link_section = "capstan-manifest")]
static MANIFEST: [u8; include_bytes!("../capstan.toml").len()] = *include_bytes!("../capstan.toml");
