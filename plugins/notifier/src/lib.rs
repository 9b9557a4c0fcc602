//! Notifier: receives `orders.created` and counts each order once (a redelivery carries
//! the same event id, so it is recognised and counted apart); handles `notify.email`
//! requests. `GET /counts` reports `{orders, redeliveries, emails}`. An order is counted
//! by its `seen:<event id>` key alone, so a host dying between two kv writes cannot leave
//! an order seen but uncounted.

use capstan_guest::prelude::*;

pub struct Notifier;

/// Orders seen: the `seen:` keys, a page at a time.
fn orders() -> Result<i64, Error> {
    let (mut total, mut cursor) = (0, None);
    loop {
        let page = kv::list_keys("seen:", cursor.as_deref(), 1000)?;
        total += page.keys.len() as i64;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(total),
        }
    }
}

fn count(key: &str) -> Result<i64, Error> {
    Ok(kv::get(key)?
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.parse().ok())
        .unwrap_or(0))
}

impl Plugin for Notifier {
    fn on_event(event: &Event) -> Result<(), DeliveryError> {
        let order = event
            .json()
            .map_err(|e| DeliveryError::Reject(e.to_string()))?;
        if kv::compare_and_swap(&format!("seen:{}", event.id), None, b"1")? {
            kv::set("last-order", order.to_string().as_bytes())?;
        } else {
            kv::increment("redeliveries", 1)?;
        }
        Ok(())
    }

    fn handle_claim(kind: &str, payload: &[u8]) -> Result<Vec<u8>, Error> {
        if kind != "notify.email" {
            return Err(Error::NotFound);
        }
        let sent = kv::increment("emails", 1)?;
        Ok(format!("email {sent} queued ({} bytes)", payload.len()).into_bytes())
    }

    fn handle(request: Request) -> Result<Response, Error> {
        if request.path != "/counts" {
            return Ok(Response::not_found());
        }
        Ok(Response::json(
            200,
            &json!({
                "orders": orders()?,
                "redeliveries": count("redeliveries")?,
                "emails": count("emails")?,
            }),
        ))
    }
}

capstan_guest::export_plugin!(Notifier);

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_guest::testing;

    #[test]
    fn an_order_is_counted_once_however_often_it_arrives() {
        testing::reset();
        let event = Event::local("orders.created", br#"{"order":1}"#);
        testing::deliver::<Notifier>(&event).unwrap();
        testing::deliver::<Notifier>(&event).unwrap();
        assert_eq!(orders().unwrap(), 1);
        assert_eq!(count("redeliveries").unwrap(), 1);
    }

    #[test]
    fn a_payload_that_is_not_json_is_rejected_for_good() {
        testing::reset();
        let event = Event::local("orders.created", b"not json");
        assert!(matches!(
            testing::deliver::<Notifier>(&event),
            Err(DeliveryError::Reject(_))
        ));
        assert_eq!(orders().unwrap(), 0);
    }

    #[test]
    fn only_subscribed_topics_are_delivered() {
        testing::reset();
        let event = Event::local("orders.deleted", br#"{"order":1}"#);
        assert!(testing::deliver::<Notifier>(&event).is_err());
    }

    #[test]
    fn email_requests_are_answered() {
        testing::reset();
        let answer = Notifier::handle_claim("notify.email", b"hello").unwrap();
        assert_eq!(answer, b"email 1 queued (5 bytes)");
    }
}
