# flux-prometheus.m4: an --enable-prometheus option for autotools trees
# (flux-core, flux-sched style) that builds the flux-prometheus broker module
# with cargo and installs it as prometheus.so in flux-core's module directory.
#
# In configure.ac (with this file in the tree's m4 directory):
#   FLUX_PROMETHEUS([path/to/flux-prometheus])
# and in the Makefile.am that builds it:
#   include $(top_srcdir)/config/flux-prometheus.am
#
# The argument is the flux-prometheus source directory, relative to
# $srcdir (default: flux-prometheus). Without --enable-prometheus nothing is
# checked or built.
#
# Substitutes: CARGO, RUSTC, FLUX_PROMETHEUS_SRCDIR, FLUX_PROMETHEUS_MODDIR
# (--with-prometheus-moddir, else pkg-config's fluxmoddir of flux-core),
# FLUX_PROMETHEUS_CMDDIR (fluxcmddir, for the `flux prometheus` command);
# defines the automake conditional ENABLE_PROMETHEUS.

AC_DEFUN([FLUX_PROMETHEUS], [
    AC_ARG_ENABLE([prometheus],
        [AS_HELP_STRING([--enable-prometheus],
            [build the flux-prometheus broker module (needs cargo and rustc)])],
        [], [enable_prometheus=no])
    AC_ARG_WITH([prometheus-moddir],
        [AS_HELP_STRING([--with-prometheus-moddir=DIR],
            [install prometheus.so in DIR (default: flux-core's fluxmoddir)])],
        [], [with_prometheus_moddir=])
    AS_IF([test "x$enable_prometheus" != "xno"], [
        AC_ARG_VAR([CARGO], [the cargo used to build flux-prometheus])
        AC_ARG_VAR([RUSTC], [the rustc cargo uses])
        AC_PATH_PROG([CARGO], [cargo])
        AC_PATH_PROG([RUSTC], [rustc])
        AS_IF([test -z "$CARGO" || test -z "$RUSTC"],
            [AC_MSG_ERROR([--enable-prometheus needs cargo and rustc (Rust 1.80 or later): install them (for example with rustup) or set CARGO and RUSTC])])
        FLUX_PROMETHEUS_SRCDIR='$(abs_top_srcdir)/m4_default([$1], [flux-prometheus])'
        AS_IF([test ! -f "$srcdir/m4_default([$1], [flux-prometheus])/Cargo.toml"],
            [AC_MSG_ERROR([--enable-prometheus: no flux-prometheus sources (Cargo.toml) in $srcdir/m4_default([$1], [flux-prometheus])])])
        PKG_PROG_PKG_CONFIG
        PKG_CHECK_MODULES([FLUX_PROMETHEUS_FLUX_CORE], [flux-core >= 0.78], [],
            [AC_MSG_ERROR([--enable-prometheus needs flux-core 0.78 or later, found through pkg-config: $FLUX_PROMETHEUS_FLUX_CORE_PKG_ERRORS])])
        AS_IF([test -n "$with_prometheus_moddir"],
            [FLUX_PROMETHEUS_MODDIR=$with_prometheus_moddir],
            [PKG_CHECK_VAR([FLUX_PROMETHEUS_MODDIR], [flux-core], [fluxmoddir], [],
                [AC_MSG_ERROR([--enable-prometheus: flux-core's pkg-config file has no fluxmoddir; use --with-prometheus-moddir=DIR])])])
        PKG_CHECK_VAR([FLUX_PROMETHEUS_CMDDIR], [flux-core], [fluxcmddir], [],
            [FLUX_PROMETHEUS_CMDDIR='$(libexecdir)/flux/cmd'])
        AC_MSG_NOTICE([flux-prometheus: prometheus.so goes to $FLUX_PROMETHEUS_MODDIR, flux-prometheus to $FLUX_PROMETHEUS_CMDDIR])
    ])
    AC_SUBST([FLUX_PROMETHEUS_SRCDIR])
    AC_SUBST([FLUX_PROMETHEUS_MODDIR])
    AC_SUBST([FLUX_PROMETHEUS_CMDDIR])
    AM_CONDITIONAL([ENABLE_PROMETHEUS], [test "x$enable_prometheus" != "xno"])
])
