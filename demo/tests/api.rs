//! The services' status codes and bodies, called directly (no gateway):
//! what the issue lists, plus the identity rule (no X-User-Id: 401).

use bytes::Bytes;
use gwanmun_demo::http::Req;
use gwanmun_demo::store::{Db, Storage};
use gwanmun_demo::{Kind, Service};
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::BodyExt;
use serde_json::{json, Value};

fn service(kind: Kind) -> Service {
    let db = Db::open(&Storage::Memory, kind.name(), kind.schema()).expect("db");
    kind.service(db).expect("service")
}

/// Calls `svc` as user `who` (None: no identity headers) and returns
/// status and JSON body (Null when empty).
async fn call(
    svc: &Service,
    who: Option<(&str, &str)>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut headers = HeaderMap::new();
    if let Some((id, roles)) = who {
        headers.insert("x-user-id", HeaderValue::from_str(id).expect("id"));
        headers.insert("x-user-roles", HeaderValue::from_str(roles).expect("roles"));
        headers.insert("x-user-email", HeaderValue::from_static("x@example.com"));
    }
    let req = Req {
        method,
        path: path.to_owned(),
        headers,
        body: body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string())),
    };
    let resp = svc.handle(req).await;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("json")
    };
    (status, json)
}

#[tokio::test]
async fn auth_signup_login_refresh() {
    let auth = service(Kind::Auth);
    let signup = json!({"email":"A@Example.com","password":"long enough","name":"A"});
    let (s, b) = call(
        &auth,
        None,
        Method::POST,
        "/auth/signup",
        Some(signup.clone()),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert!(b["id"].as_str().is_some_and(|id| id.len() == 24));
    let (s, b) = call(&auth, None, Method::POST, "/auth/signup", Some(signup)).await;
    assert_eq!((s, b["error"].as_str()), (409, Some("email_taken")));
    let bad = json!({"email":"nope","password":"long enough","name":"A"});
    assert_eq!(
        call(&auth, None, Method::POST, "/auth/signup", Some(bad))
            .await
            .0,
        422
    );
    let short = json!({"email":"b@example.com","password":"short","name":"B"});
    assert_eq!(
        call(&auth, None, Method::POST, "/auth/signup", Some(short))
            .await
            .0,
        422
    );
    let (s, _) = call(&auth, None, Method::POST, "/auth/signup", None).await;
    assert_eq!(s, 422, "no body");

    let wrong = json!({"email":"a@example.com","password":"wrong password"});
    assert_eq!(
        call(&auth, None, Method::POST, "/auth/login", Some(wrong))
            .await
            .0,
        401
    );
    let unknown = json!({"email":"zz@example.com","password":"long enough"});
    assert_eq!(
        call(&auth, None, Method::POST, "/auth/login", Some(unknown))
            .await
            .0,
        401
    );
    let login = json!({"email":"a@example.com","password":"long enough"});
    let (s, tokens) = call(&auth, None, Method::POST, "/auth/login", Some(login)).await;
    assert_eq!(s, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert_eq!(
        tokens["access_token"].as_str().unwrap().split('.').count(),
        3
    );

    // Rotation: first use works, reuse is refused and revokes the family.
    let r1 = json!({"refresh_token": tokens["refresh_token"]});
    let (s, t2) = call(&auth, None, Method::POST, "/auth/refresh", Some(r1.clone())).await;
    assert_eq!(s, 200);
    assert_ne!(t2["refresh_token"], tokens["refresh_token"]);
    assert_eq!(
        call(&auth, None, Method::POST, "/auth/refresh", Some(r1))
            .await
            .0,
        401
    );
    let r2 = json!({"refresh_token": t2["refresh_token"]});
    let (s, _) = call(&auth, None, Method::POST, "/auth/refresh", Some(r2)).await;
    assert_eq!(
        s, 401,
        "the reuse revoked the newer token of the family too"
    );

    let (s, jwks) = call(&auth, None, Method::GET, "/.well-known/jwks.json", None).await;
    assert_eq!(s, 200);
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["alg"].as_str()),
        (Some("EC"), Some("ES256"))
    );
    assert!(key["kid"].is_string() && key["d"].is_null(), "public only");
    assert_eq!(
        call(&auth, None, Method::GET, "/auth/login", None).await.0,
        405
    );
}

#[tokio::test]
async fn tasks_are_private_and_crud() {
    let tasks = service(Kind::Task);
    let a = Some(("alice", "user"));
    let b = Some(("bob", "user"));
    assert_eq!(call(&tasks, None, Method::GET, "/tasks", None).await.0, 401);
    let (s, t) = call(
        &tasks,
        a,
        Method::POST,
        "/tasks",
        Some(json!({"title":"T"})),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    let id = t["id"].as_i64().unwrap();
    let path = format!("/tasks/{id}");
    assert_eq!(
        call(&tasks, a, Method::POST, "/tasks", Some(json!({"title":""})))
            .await
            .0,
        422
    );
    let bad_due = json!({"title":"x","due":"soon"});
    assert_eq!(
        call(&tasks, a, Method::POST, "/tasks", Some(bad_due))
            .await
            .0,
        422
    );
    for m in [Method::GET, Method::DELETE] {
        assert_eq!(call(&tasks, b, m, &path, None).await.0, 404, "bob");
    }
    let put = json!({"title":"T2","due":"2030-01-31","done":true});
    assert_eq!(
        call(&tasks, b, Method::PUT, &path, Some(put.clone()))
            .await
            .0,
        404
    );
    let (s, t) = call(&tasks, a, Method::PUT, &path, Some(put)).await;
    assert_eq!(
        (s, t["title"].as_str(), t["done"].as_bool()),
        (200, Some("T2"), Some(true))
    );
    let (s, t) = call(
        &tasks,
        a,
        Method::PATCH,
        &path,
        Some(json!({"due":null,"done":false})),
    )
    .await;
    assert_eq!(
        (s, t["due"].clone(), t["title"].as_str()),
        (200, Value::Null, Some("T2"))
    );
    let (_, list) = call(&tasks, b, Method::GET, "/tasks", None).await;
    assert_eq!(list["tasks"], json!([]));
    assert_eq!(call(&tasks, a, Method::DELETE, &path, None).await.0, 204);
    assert_eq!(call(&tasks, a, Method::GET, &path, None).await.0, 404);
    assert_eq!(
        call(&tasks, a, Method::GET, "/tasks/abc", None).await.0,
        404
    );
}

#[tokio::test]
async fn appointments_visibility() {
    let svc = service(Kind::Appointment);
    let (a, b, c) = (
        Some(("alice", "user")),
        Some(("bob", "user")),
        Some(("carol", "user")),
    );
    let backwards =
        json!({"title":"x","starts_at":"2030-02-01T11:00:00Z","ends_at":"2030-02-01T10:00:00Z"});
    assert_eq!(
        call(&svc, a, Method::POST, "/appointments", Some(backwards))
            .await
            .0,
        422
    );
    // Offsets count: 10:00+09:00 is 01:00Z, before 02:00Z.
    let ok = json!({"title":"x","starts_at":"2030-02-01T10:00:00+09:00","ends_at":"2030-02-01T02:00:00Z","participants":["bob"]});
    let (s, appt) = call(&svc, a, Method::POST, "/appointments", Some(ok)).await;
    assert_eq!(s, 201, "{appt}");
    let path = format!("/appointments/{}", appt["id"]);
    assert_eq!(call(&svc, b, Method::GET, &path, None).await.0, 200);
    assert_eq!(call(&svc, c, Method::GET, &path, None).await.0, 404);
    let (_, list) = call(&svc, c, Method::GET, "/appointments", None).await;
    assert_eq!(list["appointments"], json!([]));
    assert_eq!(call(&svc, c, Method::DELETE, &path, None).await.0, 404);
    assert_eq!(call(&svc, b, Method::DELETE, &path, None).await.0, 403);
    assert_eq!(call(&svc, a, Method::DELETE, &path, None).await.0, 204);
    assert_eq!(call(&svc, b, Method::GET, &path, None).await.0, 404);
}

#[tokio::test]
async fn users_me_and_admin_list() {
    let svc = service(Kind::User);
    let (s, me) = call(
        &svc,
        Some(("alice", "user")),
        Method::GET,
        "/users/me",
        None,
    )
    .await;
    assert_eq!((s, me["email"].as_str()), (200, Some("x@example.com")));
    let rename = json!({"name":"Alice Liddell"});
    let (s, me) = call(
        &svc,
        Some(("alice", "user")),
        Method::PUT,
        "/users/me",
        Some(rename),
    )
    .await;
    assert_eq!((s, me["name"].as_str()), (200, Some("Alice Liddell")));
    let empty = json!({"name":"  "});
    assert_eq!(
        call(
            &svc,
            Some(("alice", "user")),
            Method::PUT,
            "/users/me",
            Some(empty)
        )
        .await
        .0,
        422
    );
    assert_eq!(
        call(&svc, Some(("alice", "user")), Method::GET, "/users", None)
            .await
            .0,
        403
    );
    let (s, list) = call(
        &svc,
        Some(("root", "admin,user")),
        Method::GET,
        "/users",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(list["users"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        call(&svc, None, Method::GET, "/users/me", None).await.0,
        401
    );
}
