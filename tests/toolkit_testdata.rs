//! exporter-toolkit v0.17.0's own web-config test files
//! (`tests/fixtures/exporter-toolkit`, its `web/testdata`, unchanged), each
//! read as the module reads a web-config, with the outcome the toolkit's
//! tests give it (`web/tls_config_test.go`): taken, or refused for the same
//! reason. Where rustls cannot do what a file asks (CurveP521), the file is
//! refused by name rather than taken and ignored, and the table says so.

use std::path::Path;

use flux_prometheus::http::webconfig::WebConfig;

#[derive(Debug)]
enum Outcome {
    /// Taken; with TLS or without.
    Taken { tls: bool },
    /// Refused, the message holding this (the toolkit's words where it has
    /// them).
    Refused(&'static str),
    /// Taken by the toolkit, refused here by name: rustls cannot honour it.
    NotInRustls(&'static str),
}

use Outcome::*;

const CASES: &[(&str, Outcome)] = &[
    ("web_config_empty.yml", Taken { tls: false }),
    ("web_config_junk.yml", Refused("invalid type")),
    (
        "web_config_junk_key.yml",
        Refused("unknown field `cert_filse`"),
    ),
    (
        "web_config_noAuth_certPath_empty.bad.yml",
        Refused("missing one of cert or cert_file"),
    ),
    (
        "web_config_noAuth_cert_empty.bad.yml",
        Refused("missing one of cert or cert_file"),
    ),
    (
        "web_config_noAuth_keyPath_empty.bad.yml",
        Refused("missing one of key or key_file"),
    ),
    (
        "web_config_noAuth_key_empty.bad.yml",
        Refused("missing one of key or key_file"),
    ),
    (
        "web_config_noAuth_certPath_keyPath_empty.bad.yml",
        Refused("missing one of cert or cert_file"),
    ),
    (
        "web_config_noAuth_certPath_invalid.bad.yml",
        Refused("No such file"),
    ),
    (
        "web_config_noAuth_keyPath_invalid.bad.yml",
        Refused("No such file"),
    ),
    (
        "web_config_noAuth_certPath_keyPath_invalid.bad.yml",
        Refused("No such file"),
    ),
    (
        "web_config_noAuth.bad.yml",
        Refused("client CA's have been configured without a Client Auth Policy"),
    ),
    (
        "web_config_auth_clientCAs_invalid.bad.yml",
        Refused("No such file"),
    ),
    // Go verifies against the system's roots without a CA; so here (the
    // file is "bad" in the toolkit's tests for the handshake it fails).
    (
        "web_config_auth_clientCAs_missing.bad.yml",
        Taken { tls: true },
    ),
    (
        "web_config_auth_user_list_invalid.bad.yml",
        Refused("is not a bcrypt hash"),
    ),
    (
        "web_config_noAuth_inventedCiphers.bad.yml",
        Refused("unknown cipher: TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA2048"),
    ),
    (
        "web_config_noAuth_inventedCurves.bad.yml",
        Refused("unknown curve: CurveP257"),
    ),
    (
        "web_config_noAuth_wrongTLSVersion.bad.yml",
        Refused("unknown TLS version 'TLS111'"),
    ),
    ("web_config_noAuth.good.yml", Taken { tls: true }),
    ("web_config_noAuth.good.blocking.yml", Taken { tls: true }),
    ("web_config_noAuth_tlsInline.good.yml", Taken { tls: true }),
    (
        "web_config_noAuth_allCiphers.good.yml",
        NotInRustls("rustls does not implement CBC suites"),
    ),
    (
        "web_config_noAuth_someCiphers.good.yml",
        Taken { tls: true },
    ),
    (
        "web_config_noAuth_someCiphers_noOrder.good.yml",
        Taken { tls: true },
    ),
    (
        "web_config_noAuth_allCurves.good.yml",
        NotInRustls("'CurveP521' cannot be honoured"),
    ),
    (
        "web_config_noAuth_someCurves.good.yml",
        NotInRustls("'CurveP521' cannot be honoured"),
    ),
    ("web_config_noAuth_noHTTP2.good.yml", Taken { tls: true }),
    // The toolkit's "bad" here is its HTTP/2 server's cipher demand at
    // serve time; this exporter speaks HTTP/1.1 only.
    (
        "web_config_noAuth_noHTTP2Cipher.bad.yml",
        Taken { tls: true },
    ),
    (
        "tls_config_noAuth.requireandverifyclientcert.good.yml",
        Taken { tls: true },
    ),
    (
        "tls_config_noAuth.requireanyclientcert.good.yml",
        Taken { tls: true },
    ),
    (
        "tls_config_noAuth.requireanyclientcertkeyinline.good.yml",
        Taken { tls: true },
    ),
    ("web_config_auth_client_san.good.yaml", Taken { tls: true }),
    // Refused at the handshake, not at load.
    ("web_config_auth_client_san.bad.yaml", Taken { tls: true }),
    ("web_config_users.good.yml", Taken { tls: true }),
    ("web_config_users_noTLS.good.yml", Taken { tls: false }),
    ("web_config_headers.good.yml", Taken { tls: false }),
    (
        "web_config_headers_content_type_options.bad.yml",
        Refused("X-Content-Type-Options: 'sniff' is not one of nosniff"),
    ),
    (
        "web_config_headers_extra_header.bad.yml",
        Refused("Content-Type cannot be set"),
    ),
    (
        "web_config_headers_frame_options.bad.yml",
        Refused("X-Frame-Options: 'foo' is not one of deny, sameorigin"),
    ),
    (
        "web_config_rate_limiter_nonblocking.yaml",
        Taken { tls: false },
    ),
    (
        "web_config_rate_limiter_one_second.yaml",
        Taken { tls: false },
    ),
];

#[test]
fn every_toolkit_test_file_gets_the_toolkits_outcome() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exporter-toolkit");
    let mut seen = Vec::new();
    for (name, outcome) in CASES {
        seen.push(*name);
        let got = WebConfig::load(&dir.join(name)).map_err(|e| e.to_string());
        match (outcome, &got) {
            (Taken { tls }, Ok(web)) => {
                assert_eq!(web.tls.is_some(), *tls, "{name}: TLS");
            }
            (Refused(why) | NotInRustls(why), Err(e)) => {
                assert!(e.contains(why), "{name}: '{e}' lacks '{why}'");
                // Every refusal names the file.
                assert!(e.contains(name), "{name}: '{e}'");
            }
            _ => panic!("{name}: expected {outcome:?}, got {:?}", got.map(drop)),
        }
    }
    // Every YAML file of the toolkit's is in the table.
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    files.sort();
    let missing: Vec<&String> = files
        .iter()
        .filter(|f| !seen.contains(&f.as_str()))
        .collect();
    assert!(missing.is_empty(), "not in the table: {missing:?}");
}

#[test]
fn the_toolkits_rate_limit_files_limit_as_the_toolkit_does() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exporter-toolkit");
    // interval 0: no limit at all.
    let web = WebConfig::load(&dir.join("web_config_rate_limiter_nonblocking.yaml")).unwrap();
    assert!((0..100).all(|_| web.rate_limit.allow()));
    // interval 1s, burst 0: Go's limiter lets nothing through.
    let web = WebConfig::load(&dir.join("web_config_rate_limiter_one_second.yaml")).unwrap();
    assert!(!web.rate_limit.allow());
}
