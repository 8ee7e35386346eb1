#!/bin/bash
# The packages, built where their tools are installed: an RPM (rpmbuild -bb)
# and a Debian package (dpkg-buildpackage), whose file lists must put each
# file in flux-core's own directories and which must require flux-core; the
# .deb is then installed on this machine, where a new instance loads the
# module by name, and removed again. The spack recipe must at least be
# valid Python.
. "$(dirname "$0")/lib.sh"
if ! find_flux >/dev/null; then
    echo "1..0 # SKIP flux-core is not installed (no flux on PATH or via pkg-config)"
    exit 0
fi
cd "$REPO" || exit 1
plan 11
version=$(awk -F'"' '/^version *=/ { print $2; exit }' Cargo.toml)
moddir=$(pkg-config --variable=fluxmoddir flux-core)
cmddir=$(pkg-config --variable=fluxcmddir flux-core)
confdir=$(pkg-config --variable=fluxconfdir flux-core)
datadir=$(pkg-config --variable=datarootdir flux-core)/flux-prometheus
mandir=$(pkg-config --variable=mandir flux-core)
plugindir=$(pkg-config --variable=fluxshellpluginpath flux-core | cut -d: -f1)
# The files every package must carry, where flux looks for them.
expected=$(printf '%s\n' "$moddir/prometheus.so" "$cmddir/flux-prometheus" "$plugindir/prometheus.so" \
    "$confdir/modprobe/modprobe.d/prometheus.toml" "$confdir/modprobe/rc1.d/prometheus.py" \
    "$datadir/grafana/flux-dashboard.json" "$datadir/prometheus/flux-alerts.yml" \
    "$mandir/man1/flux-prometheus.1" "$mandir/man5/flux-config-prometheus.5" \
    "$mandir/man7/flux-prometheus-metrics.7" | sort)
work=$(mktemp -d)
installed_deb=""
# Whatever happens, a .deb this test installed does not stay installed.
trap 'rm -rf "$work"; [ -z "$installed_deb" ] || dpkg -P flux-prometheus >/dev/null 2>&1' EXIT
# The package builds share this tree's cargo target directory.
export CARGO_TARGET_DIR=$REPO/target
# The sources as a user's clone has them (tracked and new files).
git ls-files -co --exclude-standard -z | tar --null -T - -cf "$work/src.tar" --transform "s|^|flux-prometheus-$version/|"

if command -v rpmbuild >/dev/null; then
    gzip -c "$work/src.tar" >"$work/flux-prometheus-$version.tar.gz"
    # --nodeps: the build requirements name RPM packages, and flux-core is
    # not one here.
    rpmbuild -bb --nodeps --define "_topdir $work/rpm" --define "_sourcedir $work" \
        packaging/rpm/flux-prometheus.spec >"$work/rpmbuild.log" 2>&1
    rpm=$(ls "$work"/rpm/RPMS/*/flux-prometheus-"$version"-*.rpm 2>/dev/null | grep -v debuginfo | head -1)
    ok "rpmbuild -bb builds the RPM" test -f "$rpm"
    [ -f "$rpm" ] || diag "$(tail -20 "$work/rpmbuild.log")"
    got=$(rpm -qlp "$rpm" 2>/dev/null | grep -xF -f <(echo "$expected") | sort)
    is "$got" "$expected" "the RPM puts the module, command, modprobe entry, kit and man pages in flux-core's directories"
    ok "the RPM requires flux-core" bash -c "rpm -qp --requires '$rpm' 2>/dev/null | grep -q '^flux-core >= 0.78.0'"
    ok "the debuginfo RPM carries the split debug info" bash -c \
        "rpm -qlp '$work'/rpm/RPMS/*/flux-prometheus-debuginfo-*.rpm | grep -q 'prometheus.so.debug\$'"
else
    for i in 1 2 3 4; do ok "# SKIP rpmbuild is not installed (Debian package rpm)" true; done
fi

if command -v dpkg-buildpackage >/dev/null; then
    mkdir -p "$work/deb" && tar -xf "$work/src.tar" -C "$work/deb"
    (cd "$work/deb/flux-prometheus-$version" && dpkg-buildpackage -b -uc -us -d) >"$work/dpkg.log" 2>&1
    deb=$(ls "$work"/deb/flux-prometheus_"$version"_*.deb 2>/dev/null | head -1)
    ok "dpkg-buildpackage builds the .deb" test -f "$deb"
    [ -f "$deb" ] || diag "$(tail -20 "$work/dpkg.log")"
    got=$(dpkg-deb -c "$deb" 2>/dev/null | awk '{ print substr($6, 2) }' | grep -xF -f <(echo "$expected") | sort)
    is "$got" "$expected" "the .deb puts the module, command, modprobe entry, kit and man pages in flux-core's directories"
    ok "the .deb depends on flux-core" bash -c "dpkg-deb -f '$deb' Depends | grep -q 'flux-core (>= 0.78.0)'"
    # Installed on this machine: only as root, only where flux-core lives in
    # /usr (where the package puts its files), and only where no
    # flux-prometheus package is installed already.
    if [ "$(id -u)" = 0 ] && [ "$(pkg-config --variable=prefix flux-core)" = /usr ] &&
        ! dpkg-query -W -f '${db:Status-Abbrev}' flux-prometheus 2>/dev/null | grep -q .; then
        # flux-core was not installed from a Debian package here, so its
        # dependency cannot be satisfied through dpkg.
        installed_deb=$deb
        dpkg -i --force-depends "$deb" >"$work/install.log" 2>&1
        out=$(flux start "$(listen_config "$work" 127.0.0.1:0)" bash -c '
            flux module list | awk "\$1 == \"prometheus\" { print \"loaded\" }"
            flux module reload prometheus && echo reloaded
            curl -sf --max-time 5 "$(flux module stats prometheus | jq -r .url)" | grep -q ^flux_prometheus_build_info && echo scraped' 2>&1)
        # Purged, not just removed: its modprobe entry is a conffile, and
        # left behind it would make every new instance try to load a module
        # that is gone.
        dpkg -P flux-prometheus >>"$work/install.log" 2>&1 && installed_deb=""
        ok "installed .deb: a new flux start loads the module by name" grep -qx loaded <<<"$out"
        ok "installed .deb: flux module reload prometheus works, and it serves" \
            bash -c 'grep -qx reloaded <<<"$1" && grep -qx scraped <<<"$1"' _ "$out"
        [ "$FAILED" = 0 ] || diag "$out $(cat "$work/install.log")"
        ok "dpkg -P removes the module and its modprobe entry again" \
            test ! -e "$moddir/prometheus.so" -a ! -e "$confdir/modprobe/modprobe.d/prometheus.toml"
    else
        for i in 1 2 3; do ok "# SKIP the .deb is installed only as root, with flux-core in /usr and no flux-prometheus package installed" true; done
    fi
else
    for i in 1 2 3 4 5 6; do ok "# SKIP dpkg-buildpackage is not installed (Debian package dpkg-dev)" true; done
fi

ok "the spack recipe is valid Python" /usr/bin/python3 -c \
    "import ast, sys; ast.parse(open(sys.argv[1]).read())" packaging/spack/package.py
done_testing
