//! The nested instances below this one ([`Nested`]), as the jobflow
//! collector reads their memos in the job-manager journal it follows. A
//! change is published, shortly after, to the HTTP thread as the
//! `http_sd` list (`/-/targets`) and to whoever else listens (the module
//! passes its subtree up to its parent instance).
//!
//! No work is done here while no nested instance runs: the journal brings
//! `memo` events only when some job writes one, and a `clean` event costs
//! one lookup in an empty map.

use std::cell::{RefCell, RefMut};
use std::rc::Rc;
use std::sync::Arc;

use super::deferred::Deferred;
use crate::exposition::Shared;
use crate::model::nested::{http_sd, Descendant, Nested};
use crate::names::Names;
use flux::{Error, Handle, Level};

/// Memos that arrive within this many seconds are published together (a
/// `flux batch` of many instances starting at once).
const PUBLISH_DELAY: f64 = 0.2;

/// Called with the list after each published change.
type Listener = Box<dyn Fn(&Nested)>;

pub struct NestedFeed {
    model: RefCell<Nested>,
    publish: Deferred,
    listeners: RefCell<Vec<Listener>>,
}

impl NestedFeed {
    /// The feed of an instance at `level`, whose own job in its parent is
    /// `own_jobid` (None at the top).
    pub fn new(level: u32, own_jobid: Option<String>, names: Names) -> Rc<NestedFeed> {
        // A name not known yet is the uid until the instance's next memo.
        let user_name = move |uid: u32| names.label(uid);
        Rc::new(NestedFeed {
            model: RefCell::new(Nested::new(level, own_jobid, Box::new(user_name))),
            publish: Deferred::new(),
            listeners: RefCell::new(Vec::new()),
        })
    }

    /// Publishes to `shared` from now on.
    pub fn start(self: &Rc<Self>, handle: Handle, shared: Arc<Shared>) -> Result<(), Error> {
        let weak = Rc::downgrade(self);
        self.publish.start(handle, move || {
            let Some(feed) = weak.upgrade() else { return };
            let model = feed.model.borrow();
            shared.set_targets(http_sd(model.targets()));
            for listener in feed.listeners.borrow().iter() {
                listener(&model);
            }
        })
    }

    /// The list, for the journal follower to change.
    pub fn model_mut(&self) -> RefMut<'_, Nested> {
        self.model.borrow_mut()
    }

    /// After the journal follower changed the list: says each new refusal
    /// once, and publishes the change.
    pub fn settle(&self, handle: Handle) {
        let news = self.model.borrow_mut().take_news();
        for why in news.refused {
            handle.log(
                Level::Warning,
                &format!("nested instance left out of /-/targets: {why}"),
            );
        }
        if news.changed {
            self.publish.arm_once(PUBLISH_DELAY);
        }
    }

    /// Every instance below this one, as this one passes them up.
    pub fn descendants(&self) -> Vec<Descendant> {
        self.model.borrow().descendants()
    }

    /// Calls `listener` with the list after each published change.
    pub fn listen(&self, listener: impl Fn(&Nested) + 'static) {
        self.listeners.borrow_mut().push(Box::new(listener));
    }
}
