#!/bin/bash
# make install / make uninstall into a DESTDIR: the files land in flux-core's
# own directories (from its pkg-config file), the module is stripped with
# its debug info beside it, a new instance that searches the DESTDIR loads
# the module by name through its modprobe entry, `flux prometheus status`
# and `flux module reload prometheus` work there, and uninstall removes
# exactly what install put there. Where pkg-config does not know flux-core,
# the flux on PATH leads to it; without either, make install refuses with a
# message naming pkg-config and PKG_CONFIG_PATH.
. "$(dirname "$0")/lib.sh"
if ! flux=$(find_flux); then
    echo "1..0 # SKIP flux-core is not installed (no flux on PATH or via pkg-config)"
    exit 0
fi
plan 15
cd "$REPO" || exit 1
dest=$(mktemp -d)
conf=$(mktemp -d)
trap 'rm -rf "$dest" "$conf"' EXIT
# A file of flux's own in a directory the install shares: uninstall must
# leave it.
moddir=$(pkg-config --variable=fluxmoddir flux-core)
cmddir=$(pkg-config --variable=fluxcmddir flux-core)
confdir=$(pkg-config --variable=fluxconfdir flux-core)
mkdir -p "$dest$moddir" && touch "$dest$moddir/someone-elses.so"

ok "make install DESTDIR=… succeeds" bash -c "make -s install DESTDIR='$dest' >/dev/null"
ok "the module is in fluxmoddir as prometheus.so" test -x "$dest$moddir/prometheus.so"
ok "the command is in fluxcmddir" test -x "$dest$cmddir/flux-prometheus"
plugindir=$(pkg-config --variable=fluxshellpluginpath flux-core | cut -d: -f1)
ok "the job-shell plugin is in the shell's plugin path as prometheus.so" test -x "$dest$plugindir/prometheus.so"
ok "the modprobe entry is in fluxconfdir" \
    test -f "$dest$confdir/modprobe/modprobe.d/prometheus.toml" -a -f "$dest$confdir/modprobe/rc1.d/prometheus.py"
ok "dashboard, alerts and adapter rules are under share/flux-prometheus" \
    test -f "$dest$(pkg-config --variable=datarootdir flux-core)/flux-prometheus/grafana/flux-dashboard.json"
ok "the installed module carries no debug info but a debuglink to it" bash -c "
    ! readelf -S '$dest$moddir/prometheus.so' | grep -q debug_info &&
    readelf --string-dump=.gnu_debuglink '$dest$moddir/prometheus.so' | grep -q prometheus.so.debug &&
    readelf -S \"\$(find '$dest' -name prometheus.so.debug)\" | grep -q debug_info"
size=$(stat -c %s "$dest$moddir/prometheus.so")
ok "the installed module is small ($size bytes)" test "$size" -lt 10000000

# A new instance that searches the DESTDIR as it would search the prefix.
out=$(PATH=$(dirname "$flux"):$PATH; modprobe_also_reads "$dest$confdir/modprobe"
    FLUX_MODULE_PATH_PREPEND="$dest$moddir" FLUX_EXEC_PATH_PREPEND="$dest$cmddir" \
    "$flux" start "$(listen_config "$conf" 127.0.0.1:0)" bash -c '
        flux module list | awk "\$1 == \"prometheus\" { print \"loaded\" }"
        flux prometheus status | head -1
        flux module reload prometheus && echo reloaded
        flux module stats prometheus | jq -r .url' 2>&1)
ok "a new flux start loads the module by name" grep -qx loaded <<<"$out"
ok "flux prometheus status works there" grep -q "^prometheus module .* serving http://127.0.0.1:" <<<"$out"
ok "flux module reload prometheus works there" grep -qx reloaded <<<"$out"
[ "$FAILED" = 0 ] || diag "$out"

make -s uninstall DESTDIR="$dest" >/dev/null
left=$(cd "$dest" && find . -type f | sort)
is "$left" "./${moddir#/}/someone-elses.so" "make uninstall removes what make install put there, and nothing else"
ok "and leaves no directory of its own" test ! -e "$dest$(pkg-config --variable=datarootdir flux-core)/flux-prometheus"

# pkg-config told nothing: the flux on PATH leads to flux-core.pc in its
# prefix, as for a flux-core installed in a prefix of its own.
listed=$(PATH=$(dirname "$flux"):$PATH PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR=/nonexistent scripts/install list 2>&1)
ok "with pkg-config blind to flux-core, install finds it through the flux on PATH" \
    grep -qx "$moddir/prometheus.so" <<<"$listed"
[ "$FAILED" = 0 ] || diag "$listed"

# Neither pkg-config nor a flux on PATH: a PATH of the system's own
# commands without flux.
nopath=$(mktemp -d)
for f in /usr/local/bin/* /usr/bin/* /bin/*; do
    name=${f##*/}
    [ "$name" = flux ] || [ -e "$nopath/$name" ] || ln -s "$f" "$nopath/$name"
done
err=$(PATH=$nopath PKG_CONFIG_PATH=/nonexistent PKG_CONFIG_LIBDIR=/nonexistent scripts/install install 2>&1 >/dev/null)
rm -rf "$nopath"
ok "without flux-core found, install refuses naming pkg-config and PKG_CONFIG_PATH" \
    bash -c '[[ "$1" == *pkg-config* && "$1" == *PKG_CONFIG_PATH* ]]' _ "$err"
done_testing
