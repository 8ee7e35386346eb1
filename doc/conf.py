# Sphinx configuration for flux-prometheus's man pages, laid out as
# flux-core lays out its own (doc/man1, doc/man5, doc/man7):
#   sphinx-build -b man doc target/man
# (scripts/man; make install and the packages install the result).

project = "flux-prometheus"
author = "flux-prometheus contributors"
copyright = "Lawrence Livermore National Security, LLC and flux-prometheus contributors"

master_doc = "index"
source_suffix = ".rst"
exclude_patterns = ["_build"]

extensions = ["sphinx.ext.extlinks"]

# :man1:`flux-jobs` and friends, as flux-core's pages write them.
extlinks = {
    "man1": ("https://flux-framework.readthedocs.io/projects/flux-core/en/latest/man1/%s.html", "%s(1)"),
    "man5": ("https://flux-framework.readthedocs.io/projects/flux-core/en/latest/man5/%s.html", "%s(5)"),
    "man7": ("https://flux-framework.readthedocs.io/projects/flux-core/en/latest/man7/%s.html", "%s(7)"),
}

# (source start file, name, description, authors, manual section).
man_pages = [
    ("man1/flux-prometheus", "flux-prometheus",
     "run the Prometheus side of a Flux instance's prometheus module", [author], 1),
    ("man5/flux-config-prometheus", "flux-config-prometheus",
     "configure the prometheus broker module", [author], 5),
    ("man7/flux-prometheus-metrics", "flux-prometheus-metrics",
     "the metrics the prometheus broker module exports", [author], 7),
]
man_show_urls = False
man_make_section_directory = False
