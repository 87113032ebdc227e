//! The appointment service: meetings between users.
//!
//! - `GET /appointments` -> 200 `{"appointments": [...]}`: those the caller
//!   created or takes part in, by start time
//! - `POST /appointments {"title","starts_at","ends_at","participants":[ids]}`
//!   -> 201; 422 when `ends_at <= starts_at` or a field is invalid
//! - `GET /appointments/{id}` -> 200 for the creator and the participants,
//!   404 for anyone else
//! - `DELETE /appointments/{id}` -> 204 for the creator, 403 for a
//!   participant, 404 for anyone else
//!
//! Times are RFC 3339 and compared as instants (offsets are honoured).
//! Participants are user ids as the auth service issues them; the service
//! does not check that they exist (it owns no users).

use http::{HeaderValue, Method, StatusCode};
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::{
    error, invalid, json_response, method_not_allowed, no_content, not_found, ApiError, Identity,
    Req, Resp,
};
use crate::store::{now_rfc3339, parse_time, Db};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS appointments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    creator TEXT NOT NULL,
    title TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    starts_unix INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS participants (
    appointment_id INTEGER NOT NULL REFERENCES appointments(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    PRIMARY KEY (appointment_id, user_id)
);
CREATE INDEX IF NOT EXISTS participants_user ON participants(user_id);
";

const MAX_PARTICIPANTS: usize = 50;

#[derive(Debug)]
pub struct AppointmentService {
    db: Db,
}

#[derive(Deserialize)]
struct NewAppointment {
    title: String,
    starts_at: String,
    ends_at: String,
    #[serde(default)]
    participants: Vec<String>,
}

impl AppointmentService {
    pub fn new(db: Db) -> AppointmentService {
        AppointmentService { db }
    }

    pub fn handle(&self, req: Req) -> Resp {
        let who = match Identity::from_headers(&req.headers) {
            Ok(w) => w,
            Err(e) => return e.into(),
        };
        let segs = req.segments();
        let result = match segs.as_slice() {
            ["appointments"] => match req.method {
                Method::GET => self.list(&who),
                Method::POST => self.create(&who, &req),
                _ => Err(method_not_allowed()),
            },
            ["appointments", id] => {
                let Ok(id) = id.parse::<i64>() else {
                    return not_found().into();
                };
                match req.method {
                    Method::GET => self
                        .get(&who, id)
                        .map(|a| json_response(StatusCode::OK, &a)),
                    Method::DELETE => self.delete(&who, id),
                    _ => Err(method_not_allowed()),
                }
            }
            _ => Err(not_found()),
        };
        result.unwrap_or_else(Resp::from)
    }

    fn list(&self, who: &Identity) -> Result<Resp, ApiError> {
        let ids = self.db.run(|c| {
            let mut st = c.prepare(
                "SELECT id FROM appointments WHERE creator = ?1
                 OR id IN (SELECT appointment_id FROM participants WHERE user_id = ?1)
                 ORDER BY starts_unix, id",
            )?;
            let rows = st.query_map([&who.user_id], |r| r.get::<_, i64>(0))?;
            rows.collect::<rusqlite::Result<Vec<i64>>>()
        })?;
        let mut list = Vec::with_capacity(ids.len());
        for id in ids {
            list.push(self.load(id)?.ok_or_else(not_found)?);
        }
        Ok(json_response(
            StatusCode::OK,
            &json!({ "appointments": list }),
        ))
    }

    fn create(&self, who: &Identity, req: &Req) -> Result<Resp, ApiError> {
        let body: NewAppointment = req.json()?;
        let title = body.title.trim().to_owned();
        if title.is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control) {
            return Err(invalid("title must have 1 to 200 characters"));
        }
        let (Some(starts), Some(ends)) = (parse_time(&body.starts_at), parse_time(&body.ends_at))
        else {
            return Err(invalid(
                "starts_at and ends_at must be RFC 3339 times, e.g. 2030-02-01T10:00:00Z",
            ));
        };
        if ends <= starts {
            return Err(invalid("ends_at must be after starts_at"));
        }
        let mut participants: Vec<String> = Vec::new();
        for p in body.participants {
            let p = p.trim().to_owned();
            if p.is_empty() || p.len() > 256 || !p.chars().all(|c| c.is_ascii_graphic()) {
                return Err(invalid("participants must be user ids"));
            }
            if p != who.user_id && !participants.contains(&p) {
                participants.push(p);
            }
        }
        if participants.len() > MAX_PARTICIPANTS {
            return Err(invalid("at most 50 participants"));
        }
        let id = self.db.run(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO appointments (creator, title, starts_at, ends_at, starts_unix, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    who.user_id,
                    title,
                    body.starts_at,
                    body.ends_at,
                    starts.unix_timestamp(),
                    now_rfc3339()
                ],
            )?;
            let id = tx.last_insert_rowid();
            for p in &participants {
                tx.execute(
                    "INSERT INTO participants (appointment_id, user_id) VALUES (?1, ?2)",
                    rusqlite::params![id, p],
                )?;
            }
            tx.commit()?;
            Ok(id)
        })?;
        let appointment = self.load(id)?.ok_or_else(not_found)?;
        let mut resp = json_response(StatusCode::CREATED, &appointment);
        if let Ok(loc) = HeaderValue::from_str(&format!("/appointments/{id}")) {
            resp.headers_mut().insert(http::header::LOCATION, loc);
        }
        Ok(resp)
    }

    /// The appointment if the caller may see it; 404 otherwise.
    fn get(&self, who: &Identity, id: i64) -> Result<Value, ApiError> {
        let a = self.load(id)?.ok_or_else(not_found)?;
        if visible_to(&a, &who.user_id) {
            Ok(a)
        } else {
            Err(not_found())
        }
    }

    fn delete(&self, who: &Identity, id: i64) -> Result<Resp, ApiError> {
        let a = self.get(who, id)?;
        if a["created_by"].as_str() != Some(who.user_id.as_str()) {
            return Err(error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "only the creator can delete an appointment",
            ));
        }
        self.db
            .run(|c| c.execute("DELETE FROM appointments WHERE id = ?1", [id]))?;
        Ok(no_content())
    }

    fn load(&self, id: i64) -> Result<Option<Value>, ApiError> {
        self.db.run(|c| {
            let row = c
                .query_row(
                    "SELECT creator, title, starts_at, ends_at, created_at FROM appointments WHERE id = ?1",
                    [id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                        ))
                    },
                )
                .optional()?;
            let Some((creator, title, starts_at, ends_at, created_at)) = row else {
                return Ok(None);
            };
            let mut st = c.prepare(
                "SELECT user_id FROM participants WHERE appointment_id = ?1 ORDER BY rowid",
            )?;
            let participants = st
                .query_map([id], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(Some(json!({
                "id": id,
                "title": title,
                "starts_at": starts_at,
                "ends_at": ends_at,
                "created_by": creator,
                "participants": participants,
                "created_at": created_at,
            })))
        })
    }
}

fn visible_to(a: &Value, user: &str) -> bool {
    a["created_by"].as_str() == Some(user)
        || a["participants"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p.as_str() == Some(user)))
}
