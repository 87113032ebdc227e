//! The user service: profiles.
//!
//! - `GET /users/me` -> 200 the caller's profile
//! - `PUT /users/me {"name"}` -> 200 the updated profile; 422 on a bad name
//! - `GET /users` -> 200 `{"users": [...]}`, for admins (the gateway's route
//!   requires the role; the service checks it again)
//!
//! A profile is created the first time the service sees a user, from the
//! verified claims the gateway forwards (`X-User-Email`, `X-User-Name`):
//! the auth service never has to call this one.

use http::{Method, StatusCode};
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::{
    error, json_response, method_not_allowed, not_found, ApiError, Identity, Req, Resp,
};
use crate::store::{now_rfc3339, Db};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS profiles (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
";

#[derive(Debug)]
pub struct UserService {
    db: Db,
}

#[derive(Deserialize)]
struct UpdateMe {
    name: String,
}

impl UserService {
    pub fn new(db: Db) -> UserService {
        UserService { db }
    }

    pub fn handle(&self, req: Req) -> Resp {
        let who = match Identity::from_headers(&req.headers) {
            Ok(w) => w,
            Err(e) => return e.into(),
        };
        let segs = req.segments();
        let result = match (segs.as_slice(), &req.method) {
            (["users", "me"], &Method::GET) => self.me(&who),
            (["users", "me"], &Method::PUT) => self.update_me(&who, &req),
            (["users"], &Method::GET) => self.list(&who),
            (["users", "me"] | ["users"], _) => Err(method_not_allowed()),
            _ => Err(not_found()),
        };
        result.unwrap_or_else(Resp::from)
    }

    fn me(&self, who: &Identity) -> Result<Resp, ApiError> {
        let profile = self.provision(who)?;
        Ok(json_response(StatusCode::OK, &profile))
    }

    fn update_me(&self, who: &Identity, req: &Req) -> Result<Resp, ApiError> {
        let body: UpdateMe = req.json()?;
        let name = body.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                "name must have 1 to 100 characters",
            ));
        }
        self.provision(who)?;
        self.db.run(|c| {
            c.execute(
                "UPDATE profiles SET name = ?1, updated_at = ?2 WHERE id = ?3",
                rusqlite::params![name, now_rfc3339(), who.user_id],
            )
        })?;
        Ok(json_response(StatusCode::OK, &self.provision(who)?))
    }

    fn list(&self, who: &Identity) -> Result<Resp, ApiError> {
        if !who.has_role("admin") {
            return Err(error(StatusCode::FORBIDDEN, "forbidden", "admins only"));
        }
        self.provision(who)?;
        let users = self.db.run(|c| {
            let mut st = c.prepare(
                "SELECT id, email, name, created_at, updated_at FROM profiles ORDER BY created_at, id",
            )?;
            let rows = st.query_map([], |r| {
                Ok(json!({
                    "id": r.get::<_, String>(0)?,
                    "email": r.get::<_, String>(1)?,
                    "name": r.get::<_, String>(2)?,
                    "created_at": r.get::<_, String>(3)?,
                    "updated_at": r.get::<_, String>(4)?,
                }))
            })?;
            rows.collect::<rusqlite::Result<Vec<Value>>>()
        })?;
        Ok(json_response(StatusCode::OK, &json!({ "users": users })))
    }

    /// The caller's profile, created from the forwarded claims when new.
    fn provision(&self, who: &Identity) -> Result<Value, ApiError> {
        let email = who.email.clone().unwrap_or_default();
        // Non-ASCII names are not forwarded as headers: fall back to the
        // email's local part until the user sets a name.
        let name = who
            .name
            .clone()
            .unwrap_or_else(|| email.split('@').next().unwrap_or("").to_owned());
        let now = now_rfc3339();
        let row = self.db.run(|c| {
            c.execute(
                "INSERT INTO profiles (id, email, name, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT(id) DO NOTHING",
                rusqlite::params![who.user_id, email, name, now],
            )?;
            c.query_row(
                "SELECT email, name, created_at, updated_at FROM profiles WHERE id = ?1",
                [&who.user_id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()
        })?;
        let Some((email, name, created_at, updated_at)) = row else {
            return Err(not_found());
        };
        Ok(json!({
            "id": who.user_id,
            "email": email,
            "name": name,
            "roles": who.roles,
            "created_at": created_at,
            "updated_at": updated_at,
        }))
    }
}
