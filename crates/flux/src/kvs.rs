//! The KVS from the reactor: appending to a key (an eventlog), putting a
//! value, and looking one up, each answered by a callback.

use std::ptr;

use super::callback::cstring;
use super::rpc::Response;
use super::{sys, Error, Handle, Rpc};

impl Handle {
    /// Appends `value` to `key` in the handle's KVS namespace (in a job
    /// shell, the job's own), and calls `on_done` from the reactor once the
    /// commit is done or has failed. Dropping the returned [`Rpc`] before
    /// then abandons the wait, not the commit.
    pub fn kvs_append(
        &self,
        key: &str,
        value: &str,
        on_done: impl FnOnce(Result<(), Error>) + 'static,
    ) -> Result<Rpc, Error> {
        self.kvs_commit_one(key, value, sys::FLUX_KVS_APPEND, on_done)
    }

    /// Puts `json` (a JSON value's text) at `key` in the handle's KVS
    /// namespace, as [`kvs_append`](Self::kvs_append) appends.
    pub fn kvs_put(
        &self,
        key: &str,
        json: &str,
        on_done: impl FnOnce(Result<(), Error>) + 'static,
    ) -> Result<Rpc, Error> {
        self.kvs_commit_one(key, json, 0, on_done)
    }

    /// Looks `key` up in the handle's KVS namespace, and calls `on_value`
    /// from the reactor with its value (JSON text), None where there is no
    /// such key, or the error.
    pub fn kvs_lookup(
        &self,
        key: &str,
        on_value: impl FnOnce(Result<Option<String>, Error>) + 'static,
    ) -> Result<Rpc, Error> {
        let ckey = cstring(key)?;
        // SAFETY: valid handle; a NULL namespace is the handle's own; the
        // key is NUL-terminated and copied into the request.
        let f = unsafe { sys::flux_kvs_lookup(self.raw.as_ptr(), ptr::null(), 0, ckey.as_ptr()) };
        if f.is_null() {
            return Err(Error::last_os("flux_kvs_lookup"));
        }
        let mut once = Some(on_value);
        let topic = format!("kvs lookup of {key}");
        // SAFETY: f is a new lookup future of ours, read by
        // flux_kvs_lookup_get.
        unsafe {
            self.then(f, &topic, Response::KvsValue, None, move |result| {
                if let Some(on_value) = once.take() {
                    on_value(match result {
                        Ok(value) => Ok(Some(value)),
                        Err(e) if e.errno == libc::ENOENT => Ok(None),
                        Err(e) => Err(e),
                    });
                }
            })
        }
    }

    /// Commits one operation (`flags`: 0 to put, `FLUX_KVS_APPEND`).
    fn kvs_commit_one(
        &self,
        key: &str,
        value: &str,
        flags: i32,
        on_done: impl FnOnce(Result<(), Error>) + 'static,
    ) -> Result<Rpc, Error> {
        let ckey = cstring(key)?;
        let cvalue = cstring(value)?;
        // SAFETY: creates a transaction of our own, destroyed below.
        let txn = unsafe { sys::flux_kvs_txn_create() };
        if txn.is_null() {
            return Err(Error::last_os("flux_kvs_txn_create"));
        }
        // SAFETY: txn is valid; key and value are NUL-terminated and copied.
        let f = if unsafe { sys::flux_kvs_txn_put(txn, flags, ckey.as_ptr(), cvalue.as_ptr()) } < 0
        {
            Err(Error::last_os("flux_kvs_txn_put"))
        } else {
            // SAFETY: valid handle and transaction; a NULL namespace is the
            // handle's own. The request is encoded before this returns.
            let f = unsafe { sys::flux_kvs_commit(self.raw.as_ptr(), ptr::null(), 0, txn) };
            if f.is_null() {
                Err(Error::last_os("flux_kvs_commit"))
            } else {
                Ok(f)
            }
        };
        // SAFETY: txn is ours, and the commit no longer needs it.
        unsafe { sys::flux_kvs_txn_destroy(txn) };
        let f = f?;
        let mut once = Some(on_done);
        let topic = format!("kvs commit of {key}");
        // SAFETY: f is a new future of ours, read by flux_future_get.
        unsafe {
            self.then(f, &topic, Response::Fulfilled, None, move |result| {
                if let Some(on_done) = once.take() {
                    on_done(result.map(|_| ()));
                }
            })
        }
    }
}
