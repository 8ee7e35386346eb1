#!/bin/bash
# Nested instances found by Prometheus on their own: every nested instance
# that loads the module writes its URL into its job's memo in the parent;
# the root's /-/targets (http_sd) lists them at every depth with
# flux_jobid, flux_instance_level, flux_user and flux_parent_jobid; a real
# Prometheus configured by `flux prometheus scrape-config --nested` finds
# and scrapes them within a refresh, and forgets them when their jobs end,
# whether they unload cleanly or are killed. A hostile memo is left out.
. "$(dirname "$0")/lib.sh"
if ! command -v prometheus >/dev/null; then
    echo "1..0 # SKIP prometheus is not installed (Debian package prometheus)"
    exit 0
fi
[ -x "$REPO/target/release/flux-prometheus" ] || (cd "$REPO" && cargo build --release --quiet) >&2
run_inside_flux 2
export FLUX_EXEC_PATH_PREPEND=$REPO/target/release

plan 20

dir=$(mktemp -d)
pids=()
cleanup() {
    touch "$dir/stop"
    kill "${pids[@]}" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

# A job ID in decimal, whichever form it comes in (the module writes f58
# with ƒ; flux writes f where the locale has no UTF-8); "-" stays.
dec() { if [ "$1" = - ]; then echo -; else flux job id --to=dec "$1"; fi; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=1s
root=$(module_url)
targets_url=${root%/metrics}/-/targets
me=$(id -un)

is "$(curl -sf "$targets_url")" "[]" "no nested instance: /-/targets is an empty list"

# What each nested instance runs: load the module (as a site's modprobe
# would), start a child instance of the kind asked (flux batch or flux
# alloc), then wait for the test to say stop.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null
printf 'tls_server_config:\n  cert_file: %s\n  key_file: %s\n' "$dir/tls.crt" "$dir/tls.key" >"$dir/tls.yml"
cat >"$dir/level.sh" <<EOF
#!/bin/bash
web=""
[ "\$1" = tls ] && web="web-config=$dir/tls.yml"
flux module load --name=prometheus "$MODULE_SO" listen=127.0.0.1:0 poll-interval=1s \$web
echo "\$(flux getattr jobid) \$(flux module stats prometheus | jq -r .url)" >>"$dir/urls"
case \$1 in
batch) flux batch -n1 --quiet --output="$dir/batch-{{id}}.out" "$dir/level.sh" leaf >/dev/null ;;
alloc) flux alloc -n1 "$dir/level.sh" tls >/dev/null 2>&1 & ;;
esac
while [ ! -e "$dir/stop" ]; do sleep 0.2; done
flux module remove prometheus
EOF
chmod +x "$dir/level.sh"

# Level 1: a flux batch job whose instance runs a flux batch job, and a
# flux alloc whose instance runs a flux alloc with TLS.
batch=$(dec "$(flux batch -n1 --output="$dir/batch-{{id}}.out" "$dir/level.sh" batch)")
flux alloc -n1 "$dir/level.sh" alloc >"$dir/alloc.log" 2>&1 &
pids+=($!)

# The targets at the root, as "level jobid parent user scheme address"
# lines with decimal job IDs, sorted.
listed() {
    curl -sf "$targets_url" | jq -r '.[] | "\(.labels.flux_instance_level) \(.labels.flux_jobid) \(.labels.flux_parent_jobid // "-") \(.labels.flux_user) \(.labels.__scheme__) \(.targets[0])"' |
        while read -r level id parent rest; do echo "$level $(dec "$id") $(dec "$parent") $rest"; done | sort
}
# Waits up to $1 seconds for command $3 to print $2 lines.
wait_lines() {
    for _ in $(seq $(($1 * 5))); do
        [ "$("$3" | grep -c .)" = "$2" ] && return 0
        sleep 0.2
    done
    return 1
}
wait_listed() { wait_lines "$1" "$2" listed; }
ok "four nested instances, two levels deep, listed within 60 s" wait_listed 60 4
list=$(listed)
diag "$(tr '\n' ';' <<<"$list")"
alloc=$(flux jobs -no '{id.dec}' | grep -vx "$batch")
is "$(awk '$1 == 1' <<<"$list" | cut -d' ' -f2 | sort | tr '\n' ' ')" "$(printf '%s\n' "$batch" "$alloc" | sort | tr '\n' ' ')" \
    "level 1: the root's two jobs, by their IDs"
is "$(awk '$1 == 1 { print $3 }' <<<"$list" | sort -u)" "-" "level 1: no parent job ID (the root is no job)"
is "$(awk '$1 == 2 { print $3 }' <<<"$list" | sort | tr '\n' ' ')" "$(printf '%s\n' "$batch" "$alloc" | sort | tr '\n' ' ')" \
    "level 2: each names its parent's job ID"
is "$(awk '{ print $4 }' <<<"$list" | sort -u)" "$me" "every target's flux_user is the job owner"
is "$(awk '$5 == "https" { print $1 }' <<<"$list")" "2" "the level-2 instance with a TLS web-config is listed with scheme https"
# Each level-2 URL is one its own module reports.
ok "every listed address is one a nested module serves at" bash -c "
    for a in \$(awk '{ print \$6 }' <<<'$list'); do grep -q \"://\$a/metrics\" '$dir/urls' || exit 1; done"
ok "flux jobs shows the memo: {user.prometheus.url}" bash -c "flux jobs -no '{user.prometheus.url}' $batch | grep -q '^http://127.0.0.1:'"

# A hostile memo on a job of the root: left out, said once, nothing else
# breaks.
hostile=$(dec "$(flux submit --wait-event=start sleep 300)")
flux job memo "$hostile" 'prometheus={"url":"http://evil:1/x?y=<script>","descendants":"no"}'
flux job memo "$hostile" 'prometheus={"url":"javascript:alert(1)"}'
sleep 1
ok "a hostile memo is left out, and the four others stay" bash -c "[ \"\$(curl -sf '$targets_url' | jq length)\" = 4 ]"
refusals=$(flux dmesg | grep "left out of /-/targets")
is "$(grep -c . <<<"$refusals")" 1 "the hostile memo is logged once"
ok "the log names the job" grep -q "targets: ƒ$(flux job id --to=f58 "$hostile" | sed 's/^[fƒ]//')" <<<"$refusals"
flux cancel "$hostile"

# A real Prometheus, configured by flux prometheus scrape-config --nested
# (its 30 s refresh shortened for the test).
port=$(free_port)
{
    printf 'global:\n  scrape_interval: 1s\n'
    flux prometheus scrape-config --nested | sed 's/refresh_interval: 30s/refresh_interval: 2s/'
} >"$dir/prometheus.yml"
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" >"$dir/prometheus.log" 2>&1 &
pids+=($!)
prom=http://127.0.0.1:$port
for _ in $(seq 100); do curl -sf "$prom/-/ready" >/dev/null 2>&1 && break; sleep 0.2; done
# The flux-nested targets Prometheus has, as "level jobid parent scheme".
discovered() {
    curl -sf "$prom/api/v1/targets?state=active" | jq -r '.data.activeTargets[] | select(.labels.job == "flux-nested") |
        "\(.labels.flux_instance_level) \(.labels.flux_jobid) \(.labels.flux_parent_jobid // "-") \(.scrapeUrl | split(":")[0])"' | sort
}
wait_discovered() { wait_lines "$1" "$2" discovered; }
ok "Prometheus discovers the four through http_sd within a refresh" wait_discovered 10 4
is "$(discovered | awk '$4 == "https"' | grep -c .)" 1 "Prometheus scrapes the TLS instance over https"
# Series of the three plain-http instances, with the labels.
series() {
    curl -sf "$prom/api/v1/query" --data-urlencode 'query=flux_prometheus_build_info{job="flux-nested"}' |
        jq -r '.data.result[].metric | "\(.flux_instance_level) \(.flux_jobid) \(.flux_user)"' | sort
}
for _ in $(seq 50); do [ "$(series | grep -c .)" -ge 3 ] && break; sleep 0.2; done
is "$(series | grep -c " $me\$")" 3 "their series carry flux_instance_level, flux_jobid and flux_user"

# The batch job's instance is killed: it never unloads, its job ends, and
# it and its child drop out.
flux job kill --signal=SIGKILL "$batch"
flux job wait-event -t 30 "$batch" clean >/dev/null 2>&1
ok "a killed instance and its child drop out when its job ends" wait_listed 10 2
# Unloading the module withdraws the memo while the job runs on (and with
# it the instance below, which the unloaded one no longer relays).
FLUX_URI=$(flux uri --local "$alloc") flux module remove prometheus
ok "a module unloaded in a running instance withdraws it" wait_listed 10 0
is "$(flux jobs -no '{status}' "$alloc")" RUN "  ... while its job still runs"
# The rest end normally.
touch "$dir/stop"
ok "the rest end, and the list stays empty" bash -c "sleep 2; [ \"\$(curl -sf '$targets_url')\" = '[]' ]"
ok "Prometheus forgets them within a refresh" wait_discovered 10 0
# Modules loaded by hand are not unloaded by rc3.
flux module remove prometheus
done_testing
