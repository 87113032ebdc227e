//! `ring_hash` keyed on a verified JWT claim (`key: claim:sub`): the
//! authentication step hands the claim to the balancer, so one user's
//! requests stay on one replica while different users spread out.

mod lb;
#[path = "fixtures/jwt/mint.rs"]
mod mint;
mod support;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use jsonwebtoken::Algorithm;
use lb::*;
use mint::*;
use support::*;

#[tokio::test]
async fn same_subject_same_replica() {
    let replicas = [
        Replica::start("r0").await,
        Replica::start("r1").await,
        Replica::start("r2").await,
    ];
    let eps: Vec<String> = replicas.iter().map(|r| format!("\"{}\"", r.addr)).collect();
    let yaml = format!(
        "listeners: [{{ name: t, bind: 127.0.0.1:0 }}]
auth:
  providers:
    - name: main
      issuer: {ISSUER}
      audiences: [{AUDIENCE}]
      secret: {SECRET}
      algorithms: [HS256]
upstreams:
  svc:
    endpoints: [{}]
    balance: {{ ring_hash: {{ key: \"claim:sub\" }} }}
routes:
  - {{ id: r, match: {{ path: /** }}, upstream: svc, auth: required }}
",
        eps.join(", ")
    );
    let gw = start_gateway(&yaml).await;
    let mut home: HashMap<String, String> = HashMap::new();
    for round in 0..3 {
        for u in 0..30 {
            let sub = format!("user-{u}");
            let token = mint(Algorithm::HS256, SECRET, None, &claims(&sub));
            let req = Request::get(gw.url("/x"))
                .header("authorization", format!("Bearer {token}"))
                .body(Full::new(Bytes::new()))
                .expect("request");
            let (status, headers, _) = send(req).await;
            assert_eq!(status, 200, "round {round} user {u}");
            let replica = who(&headers);
            let first = home.entry(sub.clone()).or_insert_with(|| replica.clone());
            assert_eq!(*first, replica, "{sub} moved between replicas");
        }
    }
    let used: HashSet<&String> = home.values().collect();
    assert!(
        used.len() >= 2,
        "30 subjects all hashed to one replica: {home:?}"
    );
}
