/* The one call into mimalloc by an option's name, in C so that the C
 * compiler reads the option's number from the mimalloc.h the module is
 * built with (libmimalloc-sys declares no Rust constant for it, and the
 * numbers differ between mimalloc's versions). See src/os.rs. */
#include <mimalloc.h>

void flux_prometheus_release_heap_at_unload(void)
{
    mi_option_enable(mi_option_destroy_on_exit);
}
