//! The symbol the broker looks up in a module: `mod_main`, the only one a
//! module's shared object exports (include/flux_prometheus.h declares it).

/// Defines the broker module entry point (RFC 5), `int mod_main(flux_t *h,
/// int argc, char **argv)`, in the crate that builds the module's shared
/// object, around `start`, a [`ModuleStart`](crate::ModuleStart): the
/// broker calls it once, in the module's own thread, with the module
/// arguments; it returns 0, or -1 with errno set. See
/// [`run_module_main`](crate::run_module_main) for what happens between.
///
/// A macro, so that only the crate that asks for it exports the symbol
/// (a library defining it would put it in every shared object that links
/// the library).
#[macro_export]
macro_rules! module_main {
    ($start:path) => {
        /// The broker module entry point (RFC 5).
        ///
        /// "C-unwind": a thread cancellation by the broker may unwind
        /// through it.
        ///
        /// # Safety
        /// Called by the Flux broker with its module handle and argument
        /// vector.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub unsafe extern "C-unwind" fn mod_main(
            h: *mut $crate::sys::flux_t,
            argc: ::std::os::raw::c_int,
            argv: *mut *mut ::std::os::raw::c_char,
        ) -> ::std::os::raw::c_int {
            let start: $crate::ModuleStart = $start;
            // SAFETY: h and argv are as the broker passes them to mod_main.
            unsafe { $crate::run_module_main(h, argc, argv, start) }
        }
    };
}
