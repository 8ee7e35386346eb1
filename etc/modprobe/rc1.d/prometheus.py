# flux-prometheus: load the module at instance start under flux-modprobe(1).
# Install as /etc/flux/modprobe/rc1.d/prometheus.py, with
# modprobe.d/prometheus.toml, which says where and when it runs.


def setup(context):
    context.load_modules(["prometheus"])
