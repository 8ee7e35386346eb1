#!/bin/bash
# The files in etc/ load the module at instance start, by themselves: the
# flux-modprobe entry (modprobe.d/prometheus.toml + rc1.d/prometheus.py) and
# the legacy rc1.d script. Each test starts its own instance with the files
# on the search paths flux reads, and the module on the broker's module path
# by name, as `make install` leaves it.
. "$(dirname "$0")/lib.sh"
if ! flux=$(find_flux); then
    echo "1..0 # SKIP flux-core is not installed (no flux on PATH or via pkg-config)"
    exit 0
fi
[ -f "$MODULE_SO" ] || (cd "$REPO" && cargo build --release --quiet) >&2

plan 8

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/modules" "$dir/modprobe/modprobe.d" "$dir/modprobe/rc1.d" "$dir/legacy/rc1.d" "$dir/legacy/rc3.d"
ln -s "$MODULE_SO" "$dir/modules/prometheus.so"
cp "$REPO/etc/modprobe/modprobe.d/prometheus.toml" "$dir/modprobe/modprobe.d/"
cp "$REPO/etc/modprobe/rc1.d/prometheus.py" "$dir/modprobe/rc1.d/"
cp "$REPO/etc/rc1.d/prometheus" "$dir/legacy/rc1.d/"
cp "$REPO/etc/rc3.d/prometheus" "$dir/legacy/rc3.d/"

# What a started instance shows: the ranks the module runs on, whether it
# came after job-list and resource, and whether it answers.
inspect='
    for r in 0 1; do flux exec -r $r flux module list | awk -v r=$r "\$1 == \"prometheus\" { print \"loaded on rank\", r }"; done
    url=$(flux module stats prometheus | jq -r .url)
    curl -sf --max-time 5 "$url" | grep -q "^flux_prometheus_build_info" && echo "scrape ok"
'

rc=0
out=$(FLUX_MODPROBE_PATH_APPEND="$dir/modprobe" FLUX_MODULE_PATH_PREPEND="$dir/modules" \
    "$flux" start --test-size=2 bash -c "$inspect
        flux modprobe show prometheus 2>/dev/null | jq -r '.after | join(\",\")'" 2>&1) || rc=$?
diag "$out"
is "$rc" 0 "modprobe entry: the instance shuts down cleanly (rc3 unloads the module)"
ok "modprobe entry: loaded by itself on rank 0" grep -qx "loaded on rank 0" <<<"$out"
ok "modprobe entry: not loaded on other ranks" bash -c '! grep -qx "loaded on rank 1" <<<"$1"' _ "$out"
ok "modprobe entry: serving metrics (default listen address)" grep -qx "scrape ok" <<<"$out"
ok "modprobe entry: ordered after resource, job-manager and job-list" grep -qx "resource,job-manager,job-list" <<<"$out"

rc=0
out=$(FLUX_RC_EXTRA="$dir/legacy" FLUX_MODULE_PATH_PREPEND="$dir/modules" \
    FLUX_PROMETHEUS_ARGS="listen=127.0.0.1:0" \
    "$flux" start --test-size=2 bash -c "$inspect" 2>&1) || rc=$?
diag "$out"
is "$rc" 0 "legacy scripts: the instance shuts down cleanly (rc3.d unloads the module)"
ok "legacy rc1.d script: loaded on rank 0 only" test "$(grep -c "^loaded on rank" <<<"$out")-$(grep -c "^loaded on rank 0" <<<"$out")" = 1-1
ok "legacy rc1.d script: serving metrics with FLUX_PROMETHEUS_ARGS" grep -qx "scrape ok" <<<"$out"
done_testing
