/* The C interface of the flux-prometheus broker module: only its entry
 * point, as the broker's module loader calls it (RFC 5). The module defines
 * it with the flux crate's module_main! (crates/flux/src/entry.rs).
 */

#ifndef FLUX_PROMETHEUS_H
#define FLUX_PROMETHEUS_H

#include <flux/core.h>

/* Called once, in the module's own thread, with the module arguments.
 * Returns 0, or -1 with errno set. A thread cancellation by the broker may
 * unwind through it.
 */
int mod_main (flux_t *h, int argc, char **argv);

#endif /* FLUX_PROMETHEUS_H */
