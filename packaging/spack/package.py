# Copyright flux-prometheus developers.
# SPDX-License-Identifier: LGPL-3.0-only
#
# Spack recipe for flux-prometheus, beside spack's flux-core and flux-sched.
# Copy this directory into a spack repo as packages/flux-prometheus/, then
# build a checkout of this repository with
#   spack develop --path /path/to/flux-prometheus flux-prometheus@main
#   spack install flux-prometheus
# (or set `git` below to the site's mirror of the repository). make install
# takes its directories from flux-core's pkg-config file; PREFIX puts them
# under this package's prefix (spack keeps each package in its own), and the
# run environment below tells flux where to find them.

from spack.package import *


class FluxPrometheus(MakefilePackage):
    """Prometheus exporter for Flux, as a broker module: job, queue,
    resource and broker metrics from an embedded HTTP exporter, the
    `flux prometheus` command, a flux-modprobe entry, and Prometheus,
    alerting, prometheus-adapter and Grafana files."""

    homepage = "https://flux-framework.org"

    license("LGPL-3.0-only")

    version("main", branch="main")

    depends_on("rust@1.85:", type="build")
    depends_on("llvm", type="build")  # libclang, for bindgen
    depends_on("pkgconfig", type="build")
    depends_on("binutils", type="build")
    depends_on("py-sphinx", type="build")  # the man pages
    depends_on("flux-core@0.78:", type=("build", "link", "run"))

    def build(self, spec, prefix):
        cargo = which("cargo")
        cargo("build", "--release", "--locked")

    def install(self, spec, prefix):
        make("install", f"PREFIX={prefix}")

    def setup_run_environment(self, env):
        fluxmoddir = self._under_prefix("fluxmoddir")
        fluxcmddir = self._under_prefix("fluxcmddir")
        env.prepend_path("FLUX_MODULE_PATH_PREPEND", fluxmoddir)
        env.prepend_path("FLUX_EXEC_PATH_PREPEND", fluxcmddir)
        fluxconfdir = self._under_prefix("fluxconfdir")
        env.prepend_path("FLUX_MODPROBE_PATH_APPEND", join_path(fluxconfdir, "modprobe"))

    def _under_prefix(self, variable):
        pkg_config = which("pkg-config")
        return pkg_config(
            f"--define-variable=prefix={self.prefix}",
            f"--variable={variable}",
            "flux-core",
            output=str,
        ).strip()
