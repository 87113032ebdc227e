//! JWT verification benchmarks (filled in with the auth module).
fn main() {}
