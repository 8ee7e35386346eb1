#!/bin/bash
# web-config= in a real broker: a bad file makes the load fail with a
# message naming the problem while the broker carries on; basic auth and
# TLS (with and without client certificates) as curl and promtool see them.
. "$(dirname "$0")/lib.sh"
run_inside_flux 1

plan 20

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
load() { flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 "$@"; }
# The module's message in the broker log for the last failed load.
load_fails_saying() {
    local want=$1
    shift
    if load "$@" 2>/dev/null; then
        flux module remove prometheus
        diag "loaded with $*"
        return 1
    fi
    flux dmesg | grep prometheus | tail -8 | grep -qF -- "$want" || {
        diag "broker log lacks '$want':"; flux dmesg | grep prometheus | tail -3 | sed 's/^/# /'
        return 1
    }
}

ok "a missing web-config file: load fails naming the file" load_fails_saying "$dir/none.yml: cannot read" web-config="$dir/none.yml"
printf 'basic_auth_users:\n  alice: hunter2\n' >"$dir/plain.yml"
ok "a password that is not a bcrypt hash: load fails naming the user" load_fails_saying "the password of 'alice' is not a bcrypt hash" web-config="$dir/plain.yml"
printf 'tls_server_config:\n  cert_file: tls.crt\n  key_file: missing.key\n' >"$dir/nokey.yml"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null
ok "a missing key file: load fails naming it" load_fails_saying "$dir/missing.key" web-config="$dir/nokey.yml"
printf 'basic_auth_users: {}\nweb_server_config: {}\n' >"$dir/unknown.yml"
ok "an unknown field: load fails naming it" load_fails_saying "unknown field \`web_server_config\`" web-config="$dir/unknown.yml"
ok "the broker carries on after every refused load" flux getattr size

# Basic auth, with the shipped example (user prometheus, password change-me).
load web-config="$REPO/etc/prometheus/web-config.yml"
url=$(module_url)
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
is "$(code "$url")" 401 "no credentials: 401"
is "$(code -u prometheus:wrong "$url")" 401 "a wrong password: 401"
is "$(code -u nobody:change-me "$url")" 401 "an unknown user: 401"
is "$(code "${url%/metrics}/-/targets")" 401 "/-/targets (nested instances) without credentials: 401"
is "$(code -u prometheus:change-me "${url%/metrics}/-/targets")" 200 "/-/targets with the right credentials: 200"
ok "the right credentials: the metrics, which promtool finds nothing wrong with" \
    bash -c "curl -sf -u prometheus:change-me '$url' | promtool check metrics"
flux module remove prometheus

# TLS, then mutual TLS with a client certificate signed by a CA.
printf 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  min_version: TLS12\n' >"$dir/tls.yml"
load web-config="$dir/tls.yml"
url=$(module_url)
ok "with TLS the module's URL is https ($url)" grep -q '^https://' <<<"$url"
ok "an https scrape verified against the certificate" bash -c "curl -sf --cacert '$dir/tls.crt' '$url' | grep -q '^flux_prometheus_build_info'"
ok "HTTP/2 over TLS, as exporter-toolkit offers it by default" bash -c \
    "[ \"\$(curl -sf --http2 --cacert '$dir/tls.crt' -o '$dir/h2.txt' -w '%{http_version}' '$url')\" = 2 ] && grep -q '^flux_prometheus_build_info' '$dir/h2.txt'"
flux module remove prometheus
printf 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\nhttp_server_config:\n  http2: false\n' >"$dir/h1.yml"
load web-config="$dir/h1.yml"
is "$(curl -sf --http2 --cacert "$dir/tls.crt" -o /dev/null -w '%{http_version}' "$(module_url)")" 1.1 "http2: false: HTTP/1.1 only"
flux module remove prometheus
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=client-ca -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=scraper -keyout "$dir/client.key" -out "$dir/client.csr" 2>/dev/null
# X.509 v3 with clientAuth: rustls (webpki) refuses v1 certificates, which
# is what openssl x509 -req makes without extensions.
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' >"$dir/client.ext"
openssl x509 -req -in "$dir/client.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
    -extfile "$dir/client.ext" -out "$dir/client.crt" 2>/dev/null
printf 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n' >"$dir/mtls.yml"
load web-config="$dir/mtls.yml"
url=$(module_url)
ok "mutual TLS: no client certificate, no metrics" bash -c "! curl -sf --cacert '$dir/tls.crt' '$url' >/dev/null 2>&1"
ok "mutual TLS: a certificate signed by the client CA gets the metrics" \
    bash -c "curl -sf --cacert '$dir/tls.crt' --cert '$dir/client.crt' --key '$dir/client.key' '$url' | grep -q '^flux_prometheus_build_info'"
flux module remove prometheus

# rate_limit, as node_exporter's: two requests at once, then one an hour;
# the third gets 429 at once, as exporter-toolkit answers it.
printf 'rate_limit:\n  interval: 1h\n  burst: 2\n' >"$dir/rate.yml"
load web-config="$dir/rate.yml"
url=$(module_url)
is "$(code "$url") $(code "$url")" "200 200" "rate_limit: the burst is served"
is "$(code "$url")" 429 "rate_limit: past it, 429 Too Many Requests"
ok "rate_limit: the broker answers meanwhile" flux getattr size
flux module remove prometheus
done_testing
