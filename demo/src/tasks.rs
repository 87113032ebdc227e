//! The task service: each user's own to-do list.
//!
//! - `GET /tasks` -> 200 `{"tasks": [...]}` (the caller's, oldest first)
//! - `POST /tasks {"title", "due"?}` -> 201 the task (and `Location`)
//! - `GET /tasks/{id}` -> 200; `PUT` (title, due?, done?) and `PATCH` (any
//!   of them; `"due": null` clears it) -> 200 the task; `DELETE` -> 204
//!
//! Another user's task is answered exactly like a missing one (404), so ids
//! reveal nothing. `due` is a date (`2030-01-31`) or an RFC 3339 time.

use http::{HeaderValue, Method, StatusCode};
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::http::{
    invalid, json_response, method_not_allowed, no_content, not_found, ApiError, Identity, Req,
    Resp,
};
use crate::store::{now_rfc3339, Db};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    due TEXT,
    done INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_owner ON tasks(owner, id);
";

#[derive(Debug)]
pub struct TaskService {
    db: Db,
}

#[derive(Deserialize)]
struct NewTask {
    title: String,
    due: Option<String>,
    #[serde(default)]
    done: bool,
}

/// One task's fields after validation.
struct Fields {
    title: String,
    due: Option<String>,
    done: bool,
}

impl TaskService {
    pub fn new(db: Db) -> TaskService {
        TaskService { db }
    }

    pub fn handle(&self, req: Req) -> Resp {
        let who = match Identity::from_headers(&req.headers) {
            Ok(w) => w,
            Err(e) => return e.into(),
        };
        let segs = req.segments();
        let result = match segs.as_slice() {
            ["tasks"] => match req.method {
                Method::GET => self.list(&who),
                Method::POST => self.create(&who, &req),
                _ => Err(method_not_allowed()),
            },
            ["tasks", id] => {
                let Ok(id) = id.parse::<i64>() else {
                    return not_found().into();
                };
                match req.method {
                    Method::GET => self
                        .get(&who, id)
                        .map(|t| json_response(StatusCode::OK, &t)),
                    Method::PUT => self.put(&who, id, &req),
                    Method::PATCH => self.patch(&who, id, &req),
                    Method::DELETE => self.delete(&who, id),
                    _ => Err(method_not_allowed()),
                }
            }
            _ => Err(not_found()),
        };
        result.unwrap_or_else(Resp::from)
    }

    fn list(&self, who: &Identity) -> Result<Resp, ApiError> {
        let tasks = self.db.run(|c| {
            let mut st = c.prepare(
                "SELECT id, title, due, done, created_at, updated_at FROM tasks WHERE owner = ?1 ORDER BY id",
            )?;
            let rows = st.query_map([&who.user_id], task_json)?;
            rows.collect::<rusqlite::Result<Vec<Value>>>()
        })?;
        Ok(json_response(StatusCode::OK, &json!({ "tasks": tasks })))
    }

    fn create(&self, who: &Identity, req: &Req) -> Result<Resp, ApiError> {
        let body: NewTask = req.json()?;
        let f = validate(body.title, body.due, body.done)?;
        let now = now_rfc3339();
        let id = self.db.run(|c| {
            c.execute(
                "INSERT INTO tasks (owner, title, due, done, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                rusqlite::params![who.user_id, f.title, f.due, f.done, now],
            )?;
            Ok(c.last_insert_rowid())
        })?;
        let task = self.get(who, id)?;
        let mut resp = json_response(StatusCode::CREATED, &task);
        if let Ok(loc) = HeaderValue::from_str(&format!("/tasks/{id}")) {
            resp.headers_mut().insert(http::header::LOCATION, loc);
        }
        Ok(resp)
    }

    /// The task if it exists and belongs to the caller; 404 otherwise.
    fn get(&self, who: &Identity, id: i64) -> Result<Value, ApiError> {
        self.db
            .run(|c| {
                c.query_row(
                    "SELECT id, title, due, done, created_at, updated_at FROM tasks WHERE id = ?1 AND owner = ?2",
                    rusqlite::params![id, who.user_id],
                    task_json,
                )
                .optional()
            })?
            .ok_or_else(not_found)
    }

    fn put(&self, who: &Identity, id: i64, req: &Req) -> Result<Resp, ApiError> {
        self.get(who, id)?;
        let body: NewTask = req.json()?;
        let f = validate(body.title, body.due, body.done)?;
        self.store(who, id, f)
    }

    fn patch(&self, who: &Identity, id: i64, req: &Req) -> Result<Resp, ApiError> {
        let current = self.get(who, id)?;
        let body: Map<String, Value> = req.json()?;
        let mut title = current["title"].as_str().unwrap_or("").to_owned();
        let mut due = current["due"].as_str().map(str::to_owned);
        let mut done = current["done"].as_bool().unwrap_or(false);
        for (key, value) in body {
            match (key.as_str(), value) {
                ("title", Value::String(s)) => title = s,
                ("due", Value::String(s)) => due = Some(s),
                ("due", Value::Null) => due = None,
                ("done", Value::Bool(b)) => done = b,
                ("title" | "due" | "done", _) => {
                    return Err(invalid(format!("bad type for `{key}`")))
                }
                _ => return Err(invalid(format!("unknown field `{key}`"))),
            }
        }
        let f = validate(title, due, done)?;
        self.store(who, id, f)
    }

    fn store(&self, who: &Identity, id: i64, f: Fields) -> Result<Resp, ApiError> {
        self.db.run(|c| {
            c.execute(
                "UPDATE tasks SET title = ?1, due = ?2, done = ?3, updated_at = ?4 WHERE id = ?5 AND owner = ?6",
                rusqlite::params![f.title, f.due, f.done, now_rfc3339(), id, who.user_id],
            )
        })?;
        Ok(json_response(StatusCode::OK, &self.get(who, id)?))
    }

    fn delete(&self, who: &Identity, id: i64) -> Result<Resp, ApiError> {
        let n = self.db.run(|c| {
            c.execute(
                "DELETE FROM tasks WHERE id = ?1 AND owner = ?2",
                rusqlite::params![id, who.user_id],
            )
        })?;
        if n == 0 {
            return Err(not_found());
        }
        Ok(no_content())
    }
}

fn task_json(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    Ok(json!({
        "id": r.get::<_, i64>(0)?,
        "title": r.get::<_, String>(1)?,
        "due": r.get::<_, Option<String>>(2)?,
        "done": r.get::<_, bool>(3)?,
        "created_at": r.get::<_, String>(4)?,
        "updated_at": r.get::<_, String>(5)?,
    }))
}

fn validate(title: String, due: Option<String>, done: bool) -> Result<Fields, ApiError> {
    let title = title.trim().to_owned();
    if title.is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control) {
        return Err(invalid("title must have 1 to 200 characters"));
    }
    if let Some(d) = &due {
        if !crate::store::is_date_or_time(d) {
            return Err(invalid(
                "due must be a date (2030-01-31) or an RFC 3339 time",
            ));
        }
    }
    Ok(Fields { title, due, done })
}
