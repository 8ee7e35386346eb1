/* The control of scripts/bench-shell-plugin (BENCH_CONTROL=1): a job-shell
 * plugin that does only what the prometheus plugin must, append one event
 * of the same size to the job's exec.eventlog at shell.finish, holding
 * the shell open until the commit is answered. What it costs the shell
 * and the broker is what the one event the job's record takes costs,
 * whatever plugin appends it. Built by the bench with the C compiler
 * against the installed flux-core; not installed.
 */
#define FLUX_SHELL_PLUGIN_NAME "append-only"
#include <flux/core.h>
#include <flux/shell.h>
#include <stdio.h>
#include <time.h>

static void committed (flux_future_t *f, void *arg)
{
    flux_shell_t *shell = arg;
    flux_future_destroy (f);
    flux_shell_remove_completion_ref (shell, "append-only");
}

static int finish (flux_plugin_t *p,
                   const char *topic,
                   flux_plugin_arg_t *args,
                   void *data)
{
    flux_shell_t *shell = flux_plugin_get_shell (p);
    flux_t *h = flux_shell_get_flux (shell);
    flux_kvs_txn_t *txn;
    flux_future_t *f = NULL;
    struct timespec now;
    char entry[1024];

    clock_gettime (CLOCK_REALTIME, &now);
    snprintf (entry,
              sizeof (entry),
              "{\"timestamp\":%.6f,\"name\":\"prometheus.usage\","
              "\"context\":{\"version\":1,\"nodes\":[{\"rank\":0,"
              "\"hostname\":\"host\",\"cores\":1,\"gpus\":0,"
              "\"cpu_seconds\":0.001,\"wall_seconds\":1.0,"
              "\"peak_memory_bytes\":1234567,\"source\":\"rusage\","
              "\"processes\":1}],\"missing\":[]}}\n",
              now.tv_sec + now.tv_nsec / 1e9);
    if (!(txn = flux_kvs_txn_create ()))
        return -1;
    if (flux_kvs_txn_put (txn, FLUX_KVS_APPEND, "exec.eventlog", entry) < 0
        || !(f = flux_kvs_commit (h, NULL, 0, txn))
        || flux_future_then (f, -1., committed, shell) < 0) {
        flux_future_destroy (f);
        flux_kvs_txn_destroy (txn);
        return -1;
    }
    flux_kvs_txn_destroy (txn);
    flux_shell_add_completion_ref (shell, "append-only");
    return 0;
}

int flux_plugin_init (flux_plugin_t *p)
{
    if (flux_plugin_set_name (p, "append-only") < 0)
        return -1;
    return flux_plugin_add_handler (p, "shell.finish", finish, NULL);
}
