//! Request handlers: a service of the module's own (`NAME.stats-get`,
//! `NAME.config-reload`) whose requests go to a Rust closure.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_void};
use std::ptr;
use std::rc::Rc;

use super::callback::{cstring, Callback};
use super::lifecycle::CancelGuard;
use super::{sys, Error, Handle, Level};

type RequestCallback = Callback<dyn FnMut(&Request<'_>)>;

impl Handle {
    /// Serves requests whose topic matches `topic_glob`, from any user when
    /// `any_user` (as `flux module stats` needs), else from the owner only.
    pub fn handle_requests(
        &self,
        topic_glob: &str,
        any_user: bool,
        on_request: impl FnMut(&Request<'_>) + 'static,
    ) -> Result<MsgHandler, Error> {
        let glob = cstring(topic_glob)?;
        let callback: Rc<RequestCallback> = Rc::new(Callback {
            handle: *self,
            topic: topic_glob.to_string(),
            f: RefCell::new(on_request),
        });
        let arg = Box::into_raw(Box::new(callback));
        let matcher = sys::flux_match {
            typemask: sys::FLUX_MSGTYPE_REQUEST,
            matchtag: sys::FLUX_MATCHTAG_NONE,
            topic_glob: glob.as_ptr(),
        };
        // SAFETY: valid handle; the topic glob is copied by libflux; arg
        // outlives the handler (MsgHandler::drop).
        let mh = unsafe {
            sys::flux_msg_handler_create(
                self.raw.as_ptr(),
                matcher,
                Some(request_received),
                arg.cast(),
            )
        };
        if mh.is_null() {
            // SAFETY: arg is ours and was not handed over.
            unsafe { drop(Box::from_raw(arg)) };
            return Err(Error::last_os("flux_msg_handler_create"));
        }
        // SAFETY: mh is valid.
        unsafe {
            if any_user {
                sys::flux_msg_handler_allow_rolemask(mh, sys::FLUX_ROLE_USER);
            }
            sys::flux_msg_handler_start(mh);
        }
        Ok(MsgHandler {
            handler: mh,
            callback: arg,
        })
    }
}

unsafe extern "C" fn request_received(
    _h: *mut sys::flux_t,
    _mh: *mut sys::flux_msg_handler_t,
    msg: *const sys::flux_msg_t,
    arg: *mut c_void,
) {
    let _no_cancel = CancelGuard::new();
    // SAFETY: arg is the Rc<RequestCallback> handle_requests boxed; it lives
    // until MsgHandler::drop destroys the handler, so while this runs.
    let callback = Rc::clone(unsafe { &*(arg as *const Rc<RequestCallback>) });
    let request = Request {
        handle: callback.handle,
        msg,
        _borrow: std::marker::PhantomData,
    };
    callback.handle.guarded(&callback.topic, || {
        if let Ok(mut on_request) = callback.f.try_borrow_mut() {
            on_request(&request);
        }
    });
}

/// A registered request handler. Dropping it unregisters it.
pub struct MsgHandler {
    handler: *mut sys::flux_msg_handler_t,
    callback: *mut Rc<RequestCallback>,
}

impl Drop for MsgHandler {
    fn drop(&mut self) {
        // SAFETY: created together in Handle::handle_requests, freed only here.
        unsafe {
            sys::flux_msg_handler_destroy(self.handler);
            drop(Box::from_raw(self.callback));
        }
    }
}

/// A request being handled; valid only during the handler call.
pub struct Request<'a> {
    handle: Handle,
    msg: *const sys::flux_msg_t,
    _borrow: std::marker::PhantomData<&'a sys::flux_msg_t>,
}

impl Request<'_> {
    /// # Safety
    /// `msg` must be a request valid for the life of the returned value.
    pub(super) unsafe fn new(handle: Handle, msg: *const sys::flux_msg_t) -> Self {
        Request {
            handle,
            msg,
            _borrow: std::marker::PhantomData,
        }
    }

    /// The request's JSON payload, if it has one.
    pub fn payload(&self) -> Result<Option<String>, Error> {
        Ok(self.payload_str()?.map(Cow::into_owned))
    }

    /// The request's JSON payload, if it has one, read in place from the
    /// message where it is UTF-8 (a copy only where it is not): for a
    /// handler that reads a large payload once.
    pub fn payload_str(&self) -> Result<Option<Cow<'_, str>>, Error> {
        let mut s: *const c_char = ptr::null();
        // SAFETY: msg is valid for the duration of the handler call.
        if unsafe { sys::flux_request_decode(self.msg, ptr::null_mut(), &mut s) } < 0 {
            return Err(Error::last_os("flux_request_decode"));
        }
        if s.is_null() {
            return Ok(None);
        }
        // SAFETY: s points to the NUL-terminated payload inside msg, which
        // outlives &self (the handler call).
        let text = unsafe { CStr::from_ptr(s) };
        // `to_str` checks a word at a time where the text is ASCII; the
        // lossy path (only for what is not UTF-8) walks every byte.
        Ok(Some(match text.to_str() {
            Ok(valid) => Cow::Borrowed(valid),
            Err(_) => Cow::Owned(text.to_string_lossy().into_owned()),
        }))
    }

    /// The user who sent the request, as the broker vouches for it.
    pub fn userid(&self) -> Result<u32, Error> {
        let mut userid = 0u32;
        // SAFETY: msg is valid for the duration of the handler call;
        // userid is a valid out pointer.
        if unsafe { sys::flux_msg_get_userid(self.msg, &mut userid) } < 0 {
            return Err(Error::last_os("flux_msg_get_userid"));
        }
        Ok(userid)
    }

    pub fn respond(&self, json: &str) {
        let body = CString::new(json).unwrap_or_default();
        // SAFETY: valid handle, message and string.
        if unsafe { sys::flux_respond(self.handle.raw.as_ptr(), self.msg, body.as_ptr()) } < 0 {
            self.handle.log(
                Level::Err,
                &format!("error responding: {}", Error::last_os("flux_respond")),
            );
        }
    }

    pub fn respond_error(&self, errno: i32, message: &str) {
        let text = CString::new(message.replace('\0', "")).unwrap_or_default();
        // SAFETY: valid handle, message and string.
        if unsafe {
            sys::flux_respond_error(self.handle.raw.as_ptr(), self.msg, errno, text.as_ptr())
        } < 0
        {
            self.handle.log(
                Level::Err,
                &format!("error responding: {}", Error::last_os("flux_respond_error")),
            );
        }
    }
}
