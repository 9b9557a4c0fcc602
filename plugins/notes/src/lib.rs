//! Notes in a SQL database of its own: `POST /notes` with the text as the body adds one,
//! `GET /notes` lists them (newest first). Portable SQL: runs on SQLite and PostgreSQL.

use capstan_guest::prelude::*;

pub struct Notes;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Plugin for Notes {
    fn handle(request: Request) -> Result<Response, Error> {
        match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/notes") => {
                let body = String::from_utf8(request.body)
                    .map_err(|_| Error::InvalidInput("the note is not UTF-8".into()))?;
                let created = now_ms();
                let count: i64 = sql::query("SELECT COUNT(*) AS n FROM notes", &[])?
                    .iter()
                    .next()
                    .map_or(Ok(0), |row| row.get("n"))?;
                let id = format!("{created:013}-{count}");
                sql::execute(
                    "INSERT INTO notes (id, body, created_ms) VALUES (?, ?, ?)",
                    &[id.clone().into(), body.into(), created.into()],
                )?;
                Ok(Response::json(201, &json!({"id": id})))
            }
            ("GET", "/notes") => {
                let rows = sql::query("SELECT id, body FROM notes ORDER BY id DESC", &[])?;
                let notes = rows
                    .iter()
                    .map(|row| Ok(json!({"id": row.get::<String>("id")?, "body": row.get::<String>("body")?})))
                    .collect::<Result<Vec<Value>, Error>>()?;
                Ok(Response::json(200, &notes))
            }
            _ => Ok(Response::not_found()),
        }
    }
}

capstan_guest::export_plugin!(Notes);

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_guest::testing;

    #[test]
    fn notes_are_added_and_listed_from_the_migrated_table() {
        testing::reset();
        let mut add = Request::new("POST", "/notes");
        add.body = b"buy milk".to_vec();
        assert_eq!(Notes::handle(add).unwrap().status, 201);
        let listed = Notes::handle(Request::new("GET", "/notes"))
            .unwrap()
            .body_text();
        let listed: Value = capstan_guest::serde_json::from_str(&listed).unwrap();
        assert_eq!(listed[0]["body"], "buy milk");
    }

    #[test]
    fn without_the_declaration_sql_is_denied() {
        testing::reset();
        testing::withhold(testing::Capability::Sql);
        assert!(matches!(sql::query("SELECT 1", &[]), Err(Error::Denied(_))));
    }
}
