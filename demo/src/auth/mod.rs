//! The auth service: sign-up, login, refresh with rotating refresh tokens,
//! and the JWKS the gateway verifies access tokens with.
//!
//! - `POST /auth/signup {"email","password","name"}` -> 201 `{"id"}`; 409
//!   when the email exists; 422 on invalid input
//! - `POST /auth/login {"email","password"}` -> 200 tokens; 401 otherwise
//! - `POST /auth/refresh {"refresh_token"}` -> 200 new tokens. A refresh
//!   token works once; presenting a used one revokes its whole family (the
//!   chain of tokens since the login), since one of the two holders is a thief.
//! - `GET /.well-known/jwks.json`
//!
//! Access tokens: ES256, 15 minutes, `iss`, `aud`, `sub`, `roles`, `scope`,
//! `email`, `name`, `iat`, `exp`, `jti`, and the key's `kid` in the header.

mod keys;
mod password;

use std::sync::Arc;

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::{
    error, internal, json_response, method_not_allowed, not_found, ApiError, Req, Resp,
};
use crate::store::{now_unix, Db};
pub use keys::SigningKey;

/// `iss` of every access token (the gateway's provider `issuer`).
pub const ISSUER: &str = "gwanmun-demo";
/// `aud` of every access token (the gateway's provider `audiences`).
pub const AUDIENCE: &str = "gwanmun-demo-api";
/// Access token lifetime: 15 minutes.
pub const ACCESS_TTL_SECS: i64 = 15 * 60;
/// Refresh token lifetime: 30 days.
const REFRESH_TTL_SECS: i64 = 30 * 24 * 3600;
/// The error code of a sign-up with a known email.
const EMAIL_TAKEN: &str = "email_taken";
/// Scopes every account gets.
const SCOPE: &str = "profile tasks appointments";

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens(family);
CREATE TABLE IF NOT EXISTS signing_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pkcs8 BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
";

#[derive(Debug)]
pub struct AuthService {
    db: Db,
    key: Arc<SigningKey>,
}

#[derive(Deserialize)]
struct Signup {
    email: String,
    password: String,
    name: String,
}

#[derive(Deserialize)]
struct Login {
    email: String,
    password: String,
}

#[derive(Deserialize)]
struct Refresh {
    refresh_token: String,
}

/// What a token is minted for.
struct Account {
    id: String,
    email: String,
    name: String,
    roles: Vec<String>,
}

impl AuthService {
    pub fn new(db: Db) -> anyhow::Result<AuthService> {
        let key = Arc::new(SigningKey::load_or_create(&db)?);
        Ok(AuthService { db, key })
    }

    pub async fn handle(&self, req: Req) -> Resp {
        let segs = req.segments();
        let result = match (segs.as_slice(), &req.method) {
            (["auth", "signup"], &Method::POST) => self.signup(&req).await,
            (["auth", "login"], &Method::POST) => self.login(&req).await,
            (["auth", "refresh"], &Method::POST) => self.refresh(&req),
            ([".well-known", "jwks.json"], &Method::GET) => {
                let mut resp = json_response(StatusCode::OK, &self.key.jwks());
                resp.headers_mut().insert(
                    http::header::CACHE_CONTROL,
                    http::HeaderValue::from_static("max-age=300"),
                );
                Ok(resp)
            }
            (["auth", "signup" | "login" | "refresh"], _) => Err(method_not_allowed()),
            ([".well-known", "jwks.json"], _) => Err(method_not_allowed()),
            _ => Err(not_found()),
        };
        result.unwrap_or_else(Resp::from)
    }

    async fn signup(&self, req: &Req) -> Result<Resp, ApiError> {
        let body: Signup = req.json()?;
        let id = self.create_account(body, &["user"]).await?;
        Ok(json_response(StatusCode::CREATED, &json!({ "id": id })))
    }

    /// Creates an account; the inner error is the client's (422, 409).
    async fn create_account(&self, body: Signup, roles: &[&str]) -> Result<String, ApiError> {
        let email = body.email.trim().to_ascii_lowercase();
        let name = body.name.trim().to_owned();
        if let Some(problem) = invalid_signup(&email, &body.password, &name) {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                problem,
            ));
        }
        let hash = password::hash(body.password)
            .await
            .map_err(|e| internal("hashing failed", &e))?;
        let id = keys::random_hex(12).map_err(|e| internal("id", &e))?;
        let roles = roles.join(",");
        let inserted = self.db.run(|c| {
            c.execute(
                "INSERT INTO users (id, email, name, password_hash, roles, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(email) DO NOTHING",
                rusqlite::params![id, email, name, hash, roles, now_unix()],
            )
        })?;
        if inserted == 0 {
            return Err(error(
                StatusCode::CONFLICT,
                EMAIL_TAKEN,
                "an account with this email exists",
            ));
        }
        Ok(id)
    }

    /// Makes `email` an admin with `password` (creating the account when
    /// needed), for the demo's seeded administrator.
    pub async fn seed_admin(&self, email: &str, password: &str) -> anyhow::Result<()> {
        let body = Signup {
            email: email.to_owned(),
            password: password.to_owned(),
            name: "Admin".to_owned(),
        };
        match self.create_account(body, &["admin", "user"]).await {
            Ok(_) => return Ok(()),
            Err(e) if e.code == EMAIL_TAKEN => {}
            Err(e) => anyhow::bail!("cannot seed the admin account: {}", e.message),
        }
        // Already there (a kept data directory): reset password and roles.
        let hash = password::hash(password.to_owned()).await?;
        let email = email.trim().to_ascii_lowercase();
        self.db
            .run(|c| {
                c.execute(
                    "UPDATE users SET password_hash = ?1, roles = 'admin,user' WHERE email = ?2",
                    rusqlite::params![hash, email],
                )
            })
            .map_err(|_| anyhow::anyhow!("cannot seed the admin account"))?;
        Ok(())
    }

    async fn login(&self, req: &Req) -> Result<Resp, ApiError> {
        let body: Login = req.json()?;
        let email = body.email.trim().to_ascii_lowercase();
        let found = self.db.run(|c| {
            let mut st = c.prepare(
                "SELECT id, email, name, roles, password_hash FROM users WHERE email = ?1",
            )?;
            let mut rows = st.query([&email])?;
            let Some(row) = rows.next()? else {
                return Ok(None);
            };
            let roles: String = row.get(3)?;
            let account = Account {
                id: row.get(0)?,
                email: row.get(1)?,
                name: row.get(2)?,
                roles: roles.split(',').map(str::to_owned).collect(),
            };
            Ok(Some((account, row.get::<_, String>(4)?)))
        })?;
        let (account, stored) = match found {
            Some((a, h)) => (Some(a), Some(h)),
            None => (None, None),
        };
        let ok = password::verify(body.password, stored).await;
        match (ok, account) {
            (true, Some(account)) => {
                let family = keys::random_hex(8).map_err(|e| internal("family id", &e))?;
                self.issue(&account, &family)
            }
            _ => Err(error(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "wrong email or password",
            )),
        }
    }

    fn refresh(&self, req: &Req) -> Result<Resp, ApiError> {
        let body: Refresh = req.json()?;
        let hash = keys::sha256_hex(&body.refresh_token);
        let now = now_unix();
        // Claim the token atomically: of two concurrent uses only one wins.
        let claimed = self.db.run(|c| {
            let tx = c.transaction()?;
            let row = {
                let mut st = tx.prepare(
                    "SELECT r.family, r.expires_at, r.used, u.id, u.email, u.name, u.roles
                     FROM refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.hash = ?1",
                )?;
                let mut rows = st.query([&hash])?;
                match rows.next()? {
                    None => None,
                    Some(row) => {
                        let roles: String = row.get(6)?;
                        Some((
                            row.get::<_, String>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, i64>(2)? != 0,
                            Account {
                                id: row.get(3)?,
                                email: row.get(4)?,
                                name: row.get(5)?,
                                roles: roles.split(',').map(str::to_owned).collect(),
                            },
                        ))
                    }
                }
            };
            let result = match row {
                None => None,
                Some((family, _, true, _)) => {
                    tx.execute("DELETE FROM refresh_tokens WHERE family = ?1", [&family])?;
                    None
                }
                Some((_, expires, false, _)) if expires <= now => None,
                Some((family, _, false, account)) => {
                    tx.execute(
                        "UPDATE refresh_tokens SET used = 1 WHERE hash = ?1",
                        [&hash],
                    )?;
                    Some((family, account))
                }
            };
            tx.commit()?;
            Ok(result)
        });
        match claimed {
            Ok(Some((family, account))) => self.issue(&account, &family),
            Ok(None) => Err(error(
                StatusCode::UNAUTHORIZED,
                "invalid_refresh_token",
                "refresh token unknown, expired or already used",
            )),
            Err(e) => Err(e),
        }
    }

    /// A new access token and a new refresh token in `family`.
    fn issue(&self, account: &Account, family: &str) -> Result<Resp, ApiError> {
        let now = now_unix();
        let claims = json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": account.id,
            "email": account.email,
            "name": account.name,
            "roles": account.roles,
            "scope": SCOPE,
            "iat": now,
            "exp": now + ACCESS_TTL_SECS,
            "jti": keys::random_hex(8).unwrap_or_default(),
        });
        let access = self
            .key
            .sign(&claims)
            .map_err(|e| internal("signing", &e))?;
        let refresh = (self.key.random_token(32)).map_err(|e| internal("refresh token", &e))?;
        let hash = keys::sha256_hex(&refresh);
        self.db.run(|c| {
            c.execute(
                "INSERT INTO refresh_tokens (hash, user_id, family, expires_at) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![hash, account.id, family, now + REFRESH_TTL_SECS],
            )
        })?;
        Ok(json_response(StatusCode::OK, &token_body(access, refresh)))
    }
}

/// A fresh random password (the seeded admin's, unless one is given).
pub fn random_password() -> anyhow::Result<String> {
    keys::random_token(&ring::rand::SystemRandom::new(), 12)
}

fn token_body(access: String, refresh: String) -> Value {
    json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ACCESS_TTL_SECS,
        "refresh_token": refresh,
    })
}

/// What is wrong with a sign-up, if anything.
fn invalid_signup(email: &str, password: &str, name: &str) -> Option<&'static str> {
    let at = email.find('@');
    let valid_email = email.len() <= 254
        && at.is_some_and(|i| i > 0 && i + 1 < email.len())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid_email {
        return Some("email must look like name@example.com");
    }
    if password.chars().count() < 8 || password.len() > 1024 {
        return Some("password must have 8 to 1024 characters");
    }
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Some("name must have 1 to 100 characters");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signup_validation() {
        assert!(invalid_signup("a@b.c", "12345678", "A").is_none());
        assert!(invalid_signup("ab.c", "12345678", "A").is_some());
        assert!(invalid_signup("@b.c", "12345678", "A").is_some());
        assert!(invalid_signup("a@b.c", "1234567", "A").is_some());
        assert!(invalid_signup("a@b.c", "12345678", "").is_some());
    }
}
