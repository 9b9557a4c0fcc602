//! Orders: `POST /orders` with `{"item": "…", "quantity": n}` numbers the order and
//! publishes it on `orders.created` (every subscriber receives it at least once);
//! `POST /notify` asks the plugin that claimed `notify.email` to send the body as mail
//! and returns its answer.

use capstan_guest::prelude::*;

pub struct Orders;

/// The order `body` describes: an item name and a positive quantity.
fn order_of(body: &[u8]) -> Result<(String, i64), Error> {
    let value: Value = capstan_guest::serde_json::from_slice(body)
        .map_err(|e| Error::InvalidInput(format!("the body is not JSON: {e}")))?;
    let item = value["item"]
        .as_str()
        .filter(|item| !item.is_empty() && item.len() <= 200)
        .ok_or_else(|| Error::InvalidInput("`item` must be a string of 1 to 200 bytes".into()))?;
    let quantity = value["quantity"]
        .as_i64()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::InvalidInput("`quantity` must be a positive integer".into()))?;
    Ok((item.to_string(), quantity))
}

impl Plugin for Orders {
    fn handle(request: Request) -> Result<Response, Error> {
        match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/orders") => {
                let (item, quantity) = order_of(&request.body)?;
                let order = kv::increment("next-order", 1)?;
                let event = events::publish_json(
                    "orders.created",
                    &json!({"order": order, "item": item, "quantity": quantity}),
                )?;
                Ok(Response::json(
                    201,
                    &json!({"order": order, "event": event}),
                ))
            }
            ("POST", "/notify") => {
                let answer = events::request("notify.email", &request.body)?;
                Ok(Response::text(
                    200,
                    String::from_utf8_lossy(&answer).into_owned(),
                ))
            }
            _ => Ok(Response::not_found()),
        }
    }
}

capstan_guest::export_plugin!(Orders);

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_guest::testing;

    fn post(path: &str, body: &str) -> Request {
        let mut request = Request::new("POST", path);
        request.body = body.as_bytes().to_vec();
        request
    }

    #[test]
    fn an_order_is_numbered_and_published() {
        testing::reset();
        let response = Orders::handle(post("/orders", r#"{"item":"tea","quantity":2}"#)).unwrap();
        assert_eq!(response.status, 201);
        let published = testing::published();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].topic, "orders.created");
        let event: Value = capstan_guest::serde_json::from_slice(&published[0].payload).unwrap();
        assert_eq!(event, json!({"order": 1, "item": "tea", "quantity": 2}));
    }

    #[test]
    fn a_bad_order_publishes_nothing() {
        testing::reset();
        let refused = Orders::handle(post("/orders", r#"{"item":"tea","quantity":0}"#));
        assert!(matches!(refused, Err(Error::InvalidInput(m)) if m.contains("quantity")));
        assert!(testing::published().is_empty());
    }

    #[test]
    fn notify_forwards_the_claimants_answer() {
        testing::reset();
        assert_eq!(
            Orders::handle(post("/notify", "hi")).unwrap_err(),
            Error::NotFound,
            "nobody holds the claim yet"
        );
        testing::answer("notify.email", "queued");
        let response = Orders::handle(post("/notify", "hi")).unwrap();
        assert_eq!(response.body, b"queued");
    }
}
