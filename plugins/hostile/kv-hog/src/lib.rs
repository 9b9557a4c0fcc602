//! Hostile plugin: `/fill?n=N` writes N keys until refused, `/big?size=N` writes one
//! value of N bytes, `/get?key=K` reads any key it names, `/list?prefix=P` lists keys.

use capstan_guest::prelude::*;

pub struct KvHog;

fn number(request: &Request, name: &str) -> usize {
    request
        .query_param(name)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

impl Plugin for KvHog {
    fn handle(request: Request) -> Result<Response, Error> {
        let outcome = match request.path.as_str() {
            "/fill" => {
                let wanted = number(&request, "n");
                let mut written = 0;
                let mut failure = None;
                for i in 0..wanted {
                    match kv::set(&format!("k{i}"), b"0123456789") {
                        Ok(()) => written += 1,
                        Err(error) => {
                            failure = Some(error.to_string());
                            break;
                        }
                    }
                }
                return Ok(Response::json(
                    200,
                    &json!({ "written": written, "error": failure }),
                ));
            }
            "/big" => {
                kv::set("big", &vec![7u8; number(&request, "size")]).map(|()| "stored".to_string())
            }
            "/get" => {
                let key = request.query_param("key").unwrap_or_default();
                kv::get(key)
                    .and_then(|value| value.ok_or(Error::NotFound))
                    .map(|v| String::from_utf8_lossy(&v).into_owned())
            }
            "/list" => kv::list_keys(request.query_param("prefix").unwrap_or_default(), None, 100)
                .map(|page| page.keys.join(",")),
            _ => Err(Error::NotFound),
        };
        Ok(Response::text(200, outcome?))
    }
}

capstan_guest::export_plugin!(KvHog);
