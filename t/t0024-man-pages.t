#!/bin/bash
# The man pages: make install puts flux-prometheus(1),
# flux-config-prometheus(5) and flux-prometheus-metrics(7) into flux-core's
# mandir, where man finds them by name, and they render without warnings.
. "$(dirname "$0")/lib.sh"
if ! find_flux >/dev/null; then
    echo "1..0 # SKIP flux-core is not installed (no flux on PATH or via pkg-config)"
    exit 0
fi
if ! command -v man >/dev/null; then
    echo "1..0 # SKIP man is not installed (Debian package man-db)"
    exit 0
fi
plan 7
cd "$REPO" || exit 1
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
mandir=$(pkg-config --variable=mandir flux-core)

ok "make install DESTDIR=… succeeds" bash -c "make -s install DESTDIR='$dest' >/dev/null"
export MANPATH=$dest$mandir
is "$(man -w flux-prometheus)" "$dest$mandir/man1/flux-prometheus.1" "man -w flux-prometheus finds the command's page"
is "$(man -w 5 flux-config-prometheus)" "$dest$mandir/man5/flux-config-prometheus.5" \
    "man -w 5 flux-config-prometheus finds the configuration's page"
is "$(man -w 7 flux-prometheus-metrics)" "$dest$mandir/man7/flux-prometheus-metrics.7" \
    "man -w 7 flux-prometheus-metrics finds the metrics page"
warnings=$(for page in flux-prometheus flux-config-prometheus flux-prometheus-metrics; do
    MANWIDTH=80 man --warnings "$page" 2>&1 >/dev/null
done)
is "$warnings" "" "the three pages render without a warning"
page=$(MANWIDTH=200 man flux-prometheus 2>/dev/null)
ok "flux-prometheus(1) describes every subcommand" bash -c '
    for c in reload healthy ready status scrape-config targets jobstats metrics; do
        grep -q "^ *$c\\b" <<<"$1" || { echo "missing $c"; exit 1; }
    done' _ "$page"
page=$(MANWIDTH=200 man 5 flux-config-prometheus 2>/dev/null)
ok "flux-config-prometheus(5) describes every module argument" bash -c '
    keys=$(sed -n "/^const MODULE_KEYS/,/^];/s/^ *\"\([a-z-]*\)\",/\1/p" src/config.rs
        sed -n "s/^ *key: \"\([a-z-]*\)\",/\1/p" src/collectors/*.rs)
    [ "$(wc -w <<<"$keys")" -ge 12 ] || { echo "found only: $keys"; exit 1; }
    for k in $keys; do
        grep -q "^ *$k = " <<<"$1" || { echo "missing $k"; exit 1; }
    done' _ "$page"
done_testing
