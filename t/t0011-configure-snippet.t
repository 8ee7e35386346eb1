#!/bin/bash
# configure-snippet/ gives an autotools project --enable-prometheus: a
# minimal project including the snippet is configured, built and installed
# with DESTDIR, and the installed prometheus.so exports mod_main. Without the
# option nothing is built; with it but without cargo, configure stops and
# says why.
. "$(dirname "$0")/lib.sh"
for tool in autoreconf automake pkg-config nm; do
    if ! command -v $tool >/dev/null; then
        echo "1..0 # SKIP $tool is not installed (Debian packages autoconf, automake, pkg-config, binutils)"
        exit 0
    fi
done
if ! pkg-config --exists 'flux-core >= 0.78'; then
    echo "1..0 # SKIP flux-core (>= 0.78) is not installed (the snippet checks for it through pkg-config)"
    exit 0
fi
plan 7

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
proj=$dir/proj
mkdir -p "$proj/m4" "$proj/config"
ln -s "$REPO" "$proj/flux-prometheus"
cp "$REPO/configure-snippet/flux-prometheus.m4" "$proj/m4/"
cp "$REPO/configure-snippet/flux-prometheus.am" "$proj/config/"
cat >"$proj/configure.ac" <<'AC'
AC_INIT([snippet-demo], [1.0])
AC_CONFIG_MACRO_DIR([m4])
AC_CONFIG_AUX_DIR([config])
AM_INIT_AUTOMAKE([foreign -Wall -Werror])
FLUX_PROMETHEUS([flux-prometheus])
AC_CONFIG_FILES([Makefile])
AC_OUTPUT
AC
cat >"$proj/Makefile.am" <<'AM'
ACLOCAL_AMFLAGS = -I m4
include $(top_srcdir)/config/flux-prometheus.am
AM
check() { out=$("$@" 2>&1) || { diag "$(tail -5 <<<"$out")"; return 1; }; }

ok "autoreconf accepts the snippet (automake -Wall -Werror)" check bash -c "cd '$proj' && autoreconf -fi"
# The crate's own target directory: cargo then reuses what make check built.
target=(PROMETHEUS_CARGO_TARGET_DIR="$REPO/target")
ok "./configure --enable-prometheus && make" check bash -c "cd '$proj' && ./configure --enable-prometheus && make ${target[*]}"
ok "make install DESTDIR=..." check bash -c "cd '$proj' && make install DESTDIR='$dir/inst' ${target[*]}"
moddir=$(pkg-config --variable=fluxmoddir flux-core)
so=$dir/inst$moddir/prometheus.so
is "$(nm -D --defined-only "$so" 2>/dev/null | awk '$3 == "mod_main" { print $3 }')" mod_main \
    "installed as prometheus.so in flux-core's fluxmoddir, exporting mod_main"
ok "the flux prometheus command is installed in fluxcmddir" test -x "$dir/inst$(pkg-config --variable=fluxcmddir flux-core)/flux-prometheus"

ok "without --enable-prometheus nothing is built or installed" bash -c "
    cd '$proj' && make distclean >/dev/null 2>&1; ./configure >/dev/null 2>&1 && make >/dev/null 2>&1 &&
    make install DESTDIR='$dir/plain' >/dev/null 2>&1 &&
    test ! -e prometheus-target && test -z \"\$(find '$dir/plain' -type f 2>/dev/null)\""

# A PATH without cargo or rustc.
out=$(cd "$proj" && env -u CARGO -u RUSTC PATH=/usr/bin:/bin ./configure --enable-prometheus 2>&1); rc=$?
ok "with --enable-prometheus but no cargo, configure stops with a clear message" \
    test $rc -ne 0 -a -n "$(grep -- '--enable-prometheus needs cargo and rustc' <<<"$out")"
done_testing
