//! The HTTP/1.1 codec's hot pieces: parsing a request head into `http`
//! types (values sliced, framing decided) and writing a response head.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue, StatusCode};

use gwanmun::server::http1::parse;
use gwanmun::server::http1::write::{encode_head, ConnHeader, Out};

const SMALL: &[u8] = b"GET /api/tasks/42 HTTP/1.1\r\nHost: api.example.com\r\n\r\n";
const BROWSER: &[u8] = b"GET /api/tasks/42?view=full HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\nAccept: application/json, text/plain, */*\r\nAccept-Language: en-US,en;q=0.9,ko;q=0.8\r\nAccept-Encoding: gzip, deflate, br\r\nAuthorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2ln\r\nCookie: theme=dark; lang=ko\r\nReferer: https://app.example.com/tasks\r\nConnection: keep-alive\r\n\r\n";

fn bench(c: &mut Criterion) {
    for (name, head) in [("small", SMALL), ("browser", BROWSER)] {
        c.bench_function(&format!("http1/parse_head/{name}"), |b| {
            b.iter(|| {
                let mut buf = BytesMut::from(black_box(head));
                black_box(parse::parse(&mut buf, 32 * 1024).expect("valid"))
            })
        });
    }
    let mut headers = HeaderMap::new();
    for (k, v) in [
        ("content-type", "application/json"),
        ("server", "task-service"),
        ("x-request-id", "01JD8ZQ2X4W6K9F3B7N5M1P0RT"),
        ("cache-control", "no-store"),
    ] {
        headers.insert(k, HeaderValue::from_static(v));
    }
    let mut out = Vec::with_capacity(1024);
    c.bench_function("http1/encode_response_head", |b| {
        b.iter(|| {
            out.clear();
            encode_head(
                &mut out,
                StatusCode::OK,
                black_box(&headers),
                None,
                Out::Length(512),
                ConnHeader::None,
            );
            black_box(out.len())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
