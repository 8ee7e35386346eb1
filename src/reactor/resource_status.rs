//! One `resource.status` answer shared by the collectors that read it (the
//! resources and nodes collectors), asked of the resource module again only
//! when its journal says something changed.
//!
//! Why: at 16,384 nodes each `resource.status` costs the broker several
//! milliseconds, and both collectors asked it at every poll of an idle
//! instance, where it had not changed. Its answer (R, drain reasons,
//! online, offline, torpid, exclude) changes only with an event of the
//! resource eventlog: `resource-define`, `resource-update`, `online`,
//! `offline`, `drain`, `undrain`, `torpid`, `lively`. These are the events
//! on which the resource module drops its own cached sets (flux-core's
//! src/modules/resource/status.c, `reslog_cb`), and `exclude` is set only
//! when resources are defined (a config reload does not change it, 0.78 to
//! 0.88). `resource.journal` streams every one of them, those not written
//! to the KVS (online, offline, torpid, lively) included.
//!
//! So the feed follows `resource.journal`. While it is open and read past
//! its backlog, an answer asked after its last event is the current one,
//! and is handed out again instead of asking.
//!
//! One exception is known: a rank with no broker behind it, which only an
//! instance faking its resources has (`fake-resources`, or R naming more
//! nodes than there are brokers). Draining such a rank changes the drain
//! state and then fails to post its event (flux-core 0.88, drain.c: the
//! rank has no host name), so the journal never says. The `R` that comes
//! with each `resource-define` event shows whether any rank lies beyond
//! the instance's brokers. Where one does, a drain state can change with
//! no event, but not with no request: once resources are defined only a
//! request changes it (`resource.drain`, `resource.undrain`, a config
//! reload that excludes ranks). So there a
//! kept answer is handed out again only after the resource module's own
//! count of the requests it has received (`resource.stats-get`, which
//! every module answers from its handle's message counters) has grown by
//! exactly the requests this module sent it: no other client's request,
//! hence no drain, came in since the count taken just before the answer
//! was asked. The count costs the resource module microseconds; at
//! 16,384 nodes `resource.status` costs it 2.4 ms (`scripts/bench-idle`).
//! Before an `R` has been seen nothing is kept. Where the journal cannot
//! be followed (the resource module reloading, an error), every ask goes
//! to the resource module, as before; asks made while one is in flight
//! share it. An answer is never kept longer than [`MAX_AGE`], so that a
//! change no event announces (a later flux-core's new field) shows within
//! that time.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::deferred::Deferred;
use super::subscription::{StreamEvent, Subscription};
use crate::model::error::ParseError;
use crate::model::idset::IdSet;
use crate::model::resources::Slice;
use crate::stats::ResourceStatusAsks;
use flux::{Error, Handle, Rpc};

pub const TOPIC: &str = "resource.status";
const JOURNAL: &str = "resource.journal";
/// The resource module's message counters.
const REQUEST_COUNT: &str = "resource.stats-get";
const SERVICE: &str = "resource";

/// The longest an answer is handed out again without asking.
pub const MAX_AGE: Duration = Duration::from_secs(60);

type Waiter = Box<dyn FnOnce(Result<String, Error>)>;

/// The feed: in the [`Context`](super::Context), shared by its collectors.
pub struct ResourceStatusFeed {
    inner: Rc<Inner>,
}

struct Inner {
    handle: Handle,
    /// The instance's brokers (ranks 0 to size - 1); None if unknown.
    size: Option<u32>,
    journal: Subscription,
    journal_started: Cell<bool>,
    /// The nodes the journal's events named, since its start.
    node_events: Cell<NodeEvents>,
    /// The same by rank, for the ranks any event named: each counts in
    /// [`NODE_EVENT_NAMES`]' order.
    events_by_rank: RefCell<BTreeMap<u32, [u64; 6]>>,
    freshness: RefCell<Freshness>,
    /// The ask in flight, and the journal's count of changes when it was
    /// sent.
    in_flight: RefCell<Option<(Rpc, u64)>>,
    /// The request count in flight: sent before an ask, or alone to learn
    /// whether the kept answer still holds.
    counting: RefCell<Option<(Rpc, u64)>>,
    requests: RefCell<RequestCount>,
    /// Hands a kept answer out from the reactor, not from inside `ask`.
    deliver: Deferred,
    waiters: RefCell<Vec<(u64, Waiter)>>,
    next_waiter: Cell<u64>,
}

/// A pending ask: dropping it (its round given up, its collector stopped)
/// withdraws its callback.
pub struct StatusAsk {
    feed: Weak<Inner>,
    id: u64,
}

impl Drop for StatusAsk {
    fn drop(&mut self) {
        if let Some(inner) = self.feed.upgrade() {
            inner.waiters.borrow_mut().retain(|(id, _)| *id != self.id);
        }
    }
}

impl ResourceStatusFeed {
    pub fn new(handle: Handle) -> Result<ResourceStatusFeed, Error> {
        let inner = Rc::new(Inner {
            handle,
            size: handle.size().ok(),
            journal: Subscription::new(JOURNAL, "resource"),
            journal_started: Cell::new(false),
            node_events: Cell::new(NodeEvents::default()),
            events_by_rank: RefCell::new(BTreeMap::new()),
            freshness: RefCell::new(Freshness::default()),
            in_flight: RefCell::new(None),
            counting: RefCell::new(None),
            requests: RefCell::new(RequestCount::default()),
            deliver: Deferred::new(),
            waiters: RefCell::new(Vec::new()),
            next_waiter: Cell::new(0),
        });
        let weak = Rc::downgrade(&inner);
        inner.deliver.start(handle, move || {
            if let Some(inner) = weak.upgrade() {
                deliver(&inner);
            }
        })?;
        Ok(ResourceStatusFeed { inner })
    }

    /// The current `resource.status` answer, to `on_answer` from the
    /// reactor: the kept one where the journal shows no change since it
    /// was asked, otherwise a new one. The journal is followed from the
    /// first ask on.
    pub fn ask(
        &self,
        on_answer: impl FnOnce(Result<String, Error>) + 'static,
    ) -> Result<StatusAsk, Error> {
        let inner = &self.inner;
        if !inner.journal_started.replace(true) {
            follow_journal(inner)?;
        }
        let id = inner.next_waiter.get();
        inner.next_waiter.set(id + 1);
        inner.waiters.borrow_mut().push((id, Box::new(on_answer)));
        let ask = StatusAsk {
            feed: Rc::downgrade(inner),
            id,
        };
        if busy(inner) {
            return Ok(ask);
        }
        let now = Instant::now();
        let freshness = inner.freshness.borrow();
        if freshness.kept(now, false).is_some() {
            drop(freshness);
            inner.deliver.arm_once(0.0);
            return Ok(ask);
        }
        let worth_counting = freshness.kept(now, true).is_some();
        drop(freshness);
        // Where the count cannot be sent, the answer is asked for instead.
        if !(worth_counting && count_requests(inner, true).is_ok()) {
            send(inner)?;
        }
        Ok(ask)
    }

    /// The nodes the resource journal's events have named since it began
    /// (its backlog included); none until the journal is followed.
    pub fn node_events(&self) -> NodeEvents {
        self.inner.node_events.get()
    }

    /// The same, counting only the ranks of `ranks` (a queue's, say).
    pub fn node_events_in(&self, ranks: &IdSet) -> NodeEvents {
        let mut sum = NodeEvents::default();
        for (rank, counts) in self.inner.events_by_rank.borrow().iter() {
            if ranks.contains(*rank) {
                sum.add(NodeEvents::from_counts(*counts));
            }
        }
        sum
    }

    /// The same by rank, for every rank an event named, in rank order.
    pub fn node_events_by_rank(&self) -> Vec<(u32, [u64; 6])> {
        self.inner
            .events_by_rank
            .borrow()
            .iter()
            .map(|(rank, counts)| (*rank, *counts))
            .collect()
    }

    /// Asks sent to the resource module, and answers handed out again
    /// without asking: for `flux module stats`.
    pub fn counts(&self) -> ResourceStatusAsks {
        let f = self.inner.freshness.borrow();
        ResourceStatusAsks {
            sent: f.sent,
            reused: f.reused,
            counted: f.counted,
        }
    }
}

fn follow_journal(inner: &Rc<Inner>) -> Result<(), Error> {
    let weak = Rc::downgrade(inner);
    let again = Rc::downgrade(inner);
    inner.journal.start(
        inner.handle,
        // Each subscription reads the journal from its start again.
        move || {
            if let Some(inner) = again.upgrade() {
                inner.node_events.set(NodeEvents::default());
                inner.events_by_rank.borrow_mut().clear();
            }
            "{}".to_string()
        },
        move |event| {
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let mut freshness = inner.freshness.borrow_mut();
            match event {
                StreamEvent::Response(payload) => match journal_response(&payload) {
                    Ok(JournalResponse::Events {
                        highest_rank,
                        nodes,
                        named,
                    }) => {
                        let mut counted = inner.node_events.get();
                        counted.add(nodes);
                        inner.node_events.set(counted);
                        let mut by_rank = inner.events_by_rank.borrow_mut();
                        for (slot, ranks) in &named {
                            for rank in ranks.iter() {
                                by_rank.entry(rank).or_insert([0; 6])[*slot] += 1;
                            }
                        }
                        if let Some(highest) = highest_rank {
                            freshness.defined(inner.size.is_some_and(|size| highest < size));
                        }
                        freshness.changed();
                    }
                    Ok(JournalResponse::BacklogEnd) => {
                        freshness.caught_up();
                        inner.journal.healthy();
                    }
                    Err(_) => {
                        // Unreadable: trust nothing until read again.
                        freshness.lost();
                        inner.journal.drop_and_retry();
                    }
                },
                StreamEvent::Ended { .. } => freshness.lost(),
            }
        },
    )
}

/// Hands the kept answer to the waiters, or asks where a change came in
/// since [`ResourceStatusFeed::ask`] found it current.
fn deliver(inner: &Rc<Inner>) {
    hand_out_or_ask(inner, false);
}

/// Hands the kept answer to the waiters where it is current (`quiet`: the
/// request count has just shown no other client's request), or asks.
fn hand_out_or_ask(inner: &Rc<Inner>, quiet: bool) {
    let kept = inner
        .freshness
        .borrow()
        .kept(Instant::now(), quiet)
        .map(str::to_string);
    match kept {
        Some(answer) => {
            inner.freshness.borrow_mut().reused += 1;
            answer_all(inner, Ok(answer));
        }
        // An ask already out answers them all.
        None if inner.in_flight.borrow().is_some() => {}
        None => {
            if let Err(err) = send(inner) {
                answer_all(inner, Err(err));
            }
        }
    }
}

/// An ask or a request count is out.
fn busy(inner: &Inner) -> bool {
    inner.in_flight.borrow().is_some() || inner.counting.borrow().is_some()
}

/// Asks the resource module how many requests it has received. `alone`:
/// to learn whether the kept answer holds, and then hand it out or ask;
/// otherwise sent just before an ask, whose answer it is the base of.
fn count_requests(inner: &Rc<Inner>, alone: bool) -> Result<(), Error> {
    let weak = Rc::downgrade(inner);
    let handle = inner.handle;
    let rpc = handle.rpc(REQUEST_COUNT, "{}", false, move |answer| {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        // Dropping the Rpc inside its own continuation is safe (see
        // Handle::rpc).
        let sent = inner.counting.borrow_mut().take().map(|(_, sent)| sent);
        let quiet = match (
            answer
                .map_err(|e| e.message)
                .and_then(|p| requests_received(&p).map_err(|e| e.to_string())),
            sent,
        ) {
            (Ok(received), Some(sent)) => inner.requests.borrow_mut().counted(received, sent),
            _ => {
                inner.requests.borrow_mut().forget();
                false
            }
        };
        if alone {
            hand_out_or_ask(&inner, quiet);
        }
    })?;
    inner.freshness.borrow_mut().counted += 1;
    // The count just sent is among those the answer will show.
    let sent = handle.requests_sent_to(SERVICE);
    *inner.counting.borrow_mut() = Some((rpc, sent));
    Ok(())
}

fn send(inner: &Rc<Inner>) -> Result<(), Error> {
    // Where a change can come with no event, the request count just before
    // the ask is what later counts are held against.
    if inner.freshness.borrow().every_rank_has_a_broker != Some(true)
        && inner.counting.borrow().is_none()
        && count_requests(inner, false).is_err()
    {
        inner.requests.borrow_mut().forget();
    }
    let weak = Rc::downgrade(inner);
    let changes = inner.freshness.borrow().changes;
    let rpc = inner.handle.rpc(TOPIC, "{}", false, move |answer| {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        // Dropping the Rpc inside its own continuation is safe (see
        // Handle::rpc).
        let sent_at = inner.in_flight.borrow_mut().take().map(|(_, c)| c);
        if let (Ok(payload), Some(changes)) = (&answer, sent_at) {
            inner
                .freshness
                .borrow_mut()
                .keep(payload.clone(), changes, Instant::now());
        }
        answer_all(&inner, answer);
    })?;
    inner.freshness.borrow_mut().sent += 1;
    *inner.in_flight.borrow_mut() = Some((rpc, changes));
    Ok(())
}

/// Hands `answer` to every waiter. They are taken out first: a callback
/// may ask again or drop its own ask.
fn answer_all(inner: &Inner, answer: Result<String, Error>) {
    let waiters = std::mem::take(&mut *inner.waiters.borrow_mut());
    for (_, waiter) in waiters {
        waiter(answer.clone());
    }
}

/// Whether a kept answer is current: the journal's view of changes.
#[derive(Debug, Default)]
pub struct Freshness {
    /// Responses of the journal and its openings and ends so far: any
    /// change to it after an ask was sent means its answer may be old.
    changes: u64,
    /// The journal is open and its backlog has been read.
    live: bool,
    /// Whether every rank of the last R the journal showed has a broker:
    /// None until one is seen.
    every_rank_has_a_broker: Option<bool>,
    /// The last answer, the count of changes when it was asked, and when
    /// it came.
    kept: Option<(String, u64, Instant)>,
    reused: u64,
    sent: u64,
    /// Request counts asked of the resource module.
    counted: u64,
}

impl Freshness {
    /// An event came in (or the backlog is still being read).
    pub fn changed(&mut self) {
        self.changes += 1;
    }

    /// The journal's backlog has been read: from here on, every change is
    /// an event.
    pub fn caught_up(&mut self) {
        self.changes += 1;
        self.live = true;
    }

    /// Resources were defined: whether every rank has a broker, so that
    /// every change to them is an event.
    pub fn defined(&mut self, every_rank_has_a_broker: bool) {
        self.every_rank_has_a_broker = Some(every_rank_has_a_broker);
    }

    /// The journal ended or could not be read.
    pub fn lost(&mut self) {
        self.changes += 1;
        self.live = false;
    }

    /// Keeps `answer`, asked when the count of changes was `changes`.
    pub fn keep(&mut self, answer: String, changes: u64, now: Instant) {
        self.kept = Some((answer, changes, now));
    }

    /// The kept answer, where it is current at `now`. Where some rank has
    /// no broker, only when `quiet`: a request count has just shown that no
    /// other client's request came in since the answer was asked.
    pub fn kept(&self, now: Instant, quiet: bool) -> Option<&str> {
        let (answer, changes, at) = self.kept.as_ref()?;
        let announced = match self.every_rank_has_a_broker {
            Some(true) => true,
            Some(false) => quiet,
            None => false,
        };
        (self.live && announced && *changes == self.changes && now.duration_since(*at) < MAX_AGE)
            .then_some(answer.as_str())
    }
}

/// The resource module's count of the requests it has received, against
/// this module's count of those it sent there, at the last request count:
/// where the two grew alike, no other client's request came in between.
/// Both are compared modulo 2^32: the module's counters are C ints, and
/// `flux module stats --clear` zeroes them (which shows as another
/// client's request: the kept answer is not used).
#[derive(Debug, Default)]
pub struct RequestCount {
    last: Option<(u32, u32)>,
}

impl RequestCount {
    /// A count came back: the resource module had `received` requests when
    /// this module had sent it `sent`, the count itself among both. True
    /// where no other client's request came in since the last count.
    pub fn counted(&mut self, received: u32, sent: u64) -> bool {
        let sent = sent as u32;
        let quiet = self
            .last
            .is_some_and(|(r, s)| received.wrapping_sub(r) == sent.wrapping_sub(s));
        self.last = Some((received, sent));
        quiet
    }

    /// A count failed: the next one has nothing to be held against.
    pub fn forget(&mut self) {
        self.last = None;
    }
}

/// The requests a module has received, from its `stats-get` answer
/// (`{"tx": {...}, "rx": {"request": N, ...}}`, flux-core's method.c).
pub fn requests_received(payload: &str) -> Result<u32, ParseError> {
    #[derive(Deserialize)]
    struct Counters {
        rx: Received,
    }
    #[derive(Deserialize)]
    struct Received {
        // A C int: past 2^31 it shows negative; its low 32 bits still
        // count on, which is what the comparison uses.
        request: i64,
    }
    serde_json::from_str::<Counters>(payload)
        .map(|c| c.rx.request as u32)
        .map_err(|e| ParseError::malformed(REQUEST_COUNT, e))
}

/// Nodes named by the resource journal's events since the resource module
/// began it (the instance's start, or the resource module's last load):
/// each event counts the ranks of its idset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeEvents {
    pub drain: u64,
    pub undrain: u64,
    pub offline: u64,
    pub online: u64,
    pub torpid: u64,
    pub lively: u64,
}

/// The resource journal's events counted, in [`NodeEvents::by_name`]'s
/// order.
pub const NODE_EVENT_NAMES: [&str; 6] =
    ["drain", "undrain", "offline", "online", "torpid", "lively"];

impl NodeEvents {
    /// From counts in [`NODE_EVENT_NAMES`]' order.
    pub fn from_counts(c: [u64; 6]) -> NodeEvents {
        NodeEvents {
            drain: c[0],
            undrain: c[1],
            offline: c[2],
            online: c[3],
            torpid: c[4],
            lively: c[5],
        }
    }

    /// The event names counted, with their counts.
    pub fn by_name(&self) -> [(&'static str, u64); 6] {
        [
            ("drain", self.drain),
            ("undrain", self.undrain),
            ("offline", self.offline),
            ("online", self.online),
            ("torpid", self.torpid),
            ("lively", self.lively),
        ]
    }

    pub fn add(&mut self, other: NodeEvents) {
        self.drain += other.drain;
        self.undrain += other.undrain;
        self.offline += other.offline;
        self.online += other.online;
        self.torpid += other.torpid;
        self.lively += other.lively;
    }
}

/// What one response of `resource.journal` says.
#[derive(Debug, PartialEq)]
pub enum JournalResponse {
    /// One or more events (of the backlog, or new); with a
    /// `resource-define`, the highest rank of the R that comes with it;
    /// and the nodes its drain, undrain, offline, online, torpid and
    /// lively events name.
    Events {
        highest_rank: Option<u32>,
        nodes: NodeEvents,
        /// Each event's ranks, by its place in [`NODE_EVENT_NAMES`].
        named: Vec<(usize, IdSet)>,
    },
    /// The empty response that ends the backlog.
    BacklogEnd,
}

/// Reads one response: `{"events": [...]}`, with `R` beside a
/// `resource-define` event.
pub fn journal_response(payload: &str) -> Result<JournalResponse, ParseError> {
    #[derive(Deserialize)]
    struct Response<'a> {
        #[serde(borrow)]
        events: Vec<Event<'a>>,
        #[serde(rename = "R", borrow)]
        r: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Event<'a> {
        #[serde(borrow)]
        name: std::borrow::Cow<'a, str>,
        #[serde(default, borrow)]
        context: Option<Context<'a>>,
    }
    #[derive(Deserialize)]
    struct Context<'a> {
        #[serde(default, borrow)]
        idset: Option<std::borrow::Cow<'a, str>>,
    }
    let response: Response =
        serde_json::from_str(payload).map_err(|e| ParseError::malformed(JOURNAL, e))?;
    if response.events.is_empty() {
        return Ok(JournalResponse::BacklogEnd);
    }
    let mut counts = [0u64; 6];
    let mut named = Vec::new();
    for event in &response.events {
        let Some(slot) = NODE_EVENT_NAMES.iter().position(|n| *n == event.name) else {
            continue;
        };
        let ranks = event
            .context
            .as_ref()
            .and_then(|c| c.idset.as_deref())
            .unwrap_or("");
        let ranks = IdSet::parse(ranks).map_err(|e| e.within(JOURNAL))?;
        counts[slot] += ranks.count();
        named.push((slot, ranks));
    }
    let nodes = NodeEvents::from_counts(counts);
    let highest_rank = match response.r {
        Some(r) => Slice::all_of(r)
            .map_err(|e| e.within(JOURNAL))?
            .iter()
            .filter_map(|slice| slice.ranks.iter().last())
            .max(),
        None => None,
    };
    Ok(JournalResponse::Events {
        highest_rank,
        nodes,
        named,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_kept_only_while_the_journal_shows_no_change() {
        let now = Instant::now();
        let mut f = Freshness::default();
        f.defined(true);
        f.changed(); // the backlog
        let asked_during_backlog = f.changes;
        f.caught_up();
        f.keep("old".into(), asked_during_backlog, now);
        assert_eq!(
            f.kept(now, false),
            None,
            "asked before the backlog was read"
        );
        f.keep("a".into(), f.changes, now);
        assert_eq!(f.kept(now, false), Some("a"));
        f.changed(); // a node drained
        assert_eq!(f.kept(now, false), None);
        f.keep("b".into(), f.changes, now);
        assert_eq!(f.kept(now + Duration::from_secs(59), false), Some("b"));
        assert_eq!(f.kept(now + MAX_AGE, false), None, "too old");
        f.lost();
        f.keep("c".into(), f.changes, now);
        assert_eq!(f.kept(now, false), None, "no journal: nothing is kept");
    }

    #[test]
    fn an_event_sent_while_an_ask_is_out_makes_its_answer_old() {
        let now = Instant::now();
        let mut f = Freshness::default();
        f.defined(true);
        f.caught_up();
        let sent = f.changes;
        f.changed(); // the event comes before the answer
        f.keep("answer".into(), sent, now);
        assert_eq!(f.kept(now, false), None);
    }

    #[test]
    fn where_a_rank_has_no_broker_an_answer_is_kept_only_while_no_other_request_came_in() {
        // A drain of a rank with no broker posts no event (fake resources).
        let now = Instant::now();
        let mut f = Freshness::default();
        f.caught_up();
        f.keep("a".into(), f.changes, now);
        assert_eq!(f.kept(now, true), None, "no R seen yet");
        f.defined(false);
        f.keep("a".into(), f.changes, now);
        assert_eq!(f.kept(now, false), None, "ranks beyond the brokers");
        assert_eq!(f.kept(now, true), Some("a"), "no other request since");
        assert_eq!(f.kept(now + MAX_AGE, true), None, "too old");
        f.changed();
        assert_eq!(f.kept(now, true), None, "an event all the same");
        f.defined(true);
        f.keep("b".into(), f.changes, now);
        assert_eq!(f.kept(now, false), Some("b"));
    }

    #[test]
    fn a_request_count_is_quiet_only_when_it_grew_by_this_modules_own_requests() {
        let mut c = RequestCount::default();
        assert!(!c.counted(40, 7), "nothing to hold it against");
        // This module sent a status ask and the next count: 2 requests.
        assert!(c.counted(42, 9));
        // Another client's drain came in between.
        assert!(!c.counted(45, 11));
        assert!(c.counted(46, 12), "held against the last count");
        // flux module stats --clear zeroed the module's counters.
        assert!(!c.counted(1, 13));
        assert!(c.counted(2, 14));
        // The module's C int counter wraps; so does the comparison.
        let mut c = RequestCount::default();
        c.counted(u32::MAX, u64::from(u32::MAX) + 5);
        assert!(c.counted(1, u64::from(u32::MAX) + 7));
        c.forget();
        assert!(!c.counted(2, u64::from(u32::MAX) + 8), "forgotten");
    }

    #[test]
    fn the_request_count_is_read_from_a_modules_stats_get() {
        let answer = r#"{"tx": {"request": 3, "response": 120, "event": 0, "control": 0}, "rx": {"request": 131, "response": 2, "event": 5, "control": 0}}"#;
        assert_eq!(requests_received(answer), Ok(131));
        let wrapped = r#"{"tx": {}, "rx": {"request": -2147483647}}"#;
        assert_eq!(requests_received(wrapped), Ok(2_147_483_649));
        let err = requests_received(r#"{"tx": {}}"#).unwrap_err().to_string();
        assert!(
            err.starts_with("resource.stats-get: malformed response: missing field `rx`"),
            "{err}"
        );
    }
}
