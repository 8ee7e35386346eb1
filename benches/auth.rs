//! Basic-auth cost (BENCHMARKS.md, "Basic authentication"): a wrong user name
//! must cost what a wrong password costs (bcrypt either way), and a scrape
//! with cached credentials must cost next to nothing.

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, Criterion};
use flux_prometheus::http::auth::Users;

fn benches(c: &mut Criterion) {
    let mut hashes = BTreeMap::new();
    hashes.insert(
        "prometheus".to_string(),
        bcrypt::hash("change-me", 10).expect("bcrypt"),
    );
    let users = Users::new(hashes).expect("valid hash");
    let mut group = c.benchmark_group("basic auth, bcrypt cost 10");
    group.sample_size(20);
    group.bench_function("wrong password (bcrypt)", |b| {
        b.iter(|| users.verify("prometheus", "wrong"))
    });
    group.bench_function("unknown user (bcrypt of the dummy hash)", |b| {
        b.iter(|| users.verify("nobody", "change-me"))
    });
    group.bench_function("right credentials, first time (bcrypt)", |b| {
        b.iter(|| users.verify("prometheus", "change-me"))
    });
    users.verify("prometheus", "change-me");
    group.bench_function("right credentials, cached", |b| {
        b.iter(|| users.cached("prometheus", "change-me"))
    });
    group.finish();
}

criterion_group!(auth, benches);
criterion_main!(auth);
