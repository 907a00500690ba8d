//! Which connections the portal serves: a sans-IO policy on a millisecond clock the caller
//! keeps, shared by the firmware (espconn callbacks) and the host portal (sockets).
//!
//! A connection gets one of `N` slots. Its request head must be complete
//! [`HEAD_DEADLINE_MS`] after it opened, its body [`BODY_DEADLINE_MS`] after the head, and its
//! answer must be out [`ANSWER_DEADLINE_MS`] after that: overall deadlines, so a client that
//! dribbles a byte at a time gains nothing by it (a per-byte idle timer restarts on every
//! byte). When every slot is taken, a newcomer takes over a slot whose connection has not
//! sent a byte (browsers open speculative connections they may never use), else one that has
//! not completed its request within [`GRACE_MS`]; only when no slot qualifies is the newcomer
//! refused. A connection whose request is complete is never taken over.
//!
//! Must never: take over a connection that is being answered, or let a slot outlive its
//! deadline once [`Admission::poll`] has run.

/// Slots of the firmware and the host portal.
pub const SLOTS: usize = 2;
/// A connection that has not completed its request this long after it opened may be taken
/// over by a newcomer (the bound: at most 5 s).
pub const GRACE_MS: u32 = 3_000;
/// A request head must be complete this long after the connection opened.
pub const HEAD_DEADLINE_MS: u32 = 10_000;
/// A request body must be complete this long after its head.
pub const BODY_DEADLINE_MS: u32 = 10_000;
/// An answer must be out this long after the request was complete.
pub const ANSWER_DEADLINE_MS: u32 = 10_000;

/// Where a slot's connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No connection.
    Free,
    /// Open, nothing received.
    Silent,
    /// Part of a request head received.
    Head,
    /// The head is complete, part of its body received.
    Body,
    /// The request is complete; its answer is being sent.
    Answering,
}

/// What to do with a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Serve it in this free slot.
    Slot(usize),
    /// Close the connection in this slot (drop what it sent) and serve the newcomer there.
    TakeOver(usize),
    /// Every slot is busy with a connection that may not be taken over: close the newcomer.
    Refuse,
}

/// Which deadline a connection missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expired {
    /// Its head was not complete in [`HEAD_DEADLINE_MS`].
    Head,
    /// Its body was not complete in [`BODY_DEADLINE_MS`].
    Body,
    /// Its answer was not out in [`ANSWER_DEADLINE_MS`].
    Answer,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    phase: Phase,
    /// When the connection opened.
    opened_ms: u64,
    /// When its current deadline started (open, head complete, request complete).
    since_ms: u64,
}

const FREE: Entry = Entry {
    phase: Phase::Free,
    opened_ms: 0,
    since_ms: 0,
};

/// The slots and their deadlines.
#[derive(Clone, Debug)]
pub struct Admission<const N: usize> {
    slots: [Entry; N],
}

impl<const N: usize> Default for Admission<N> {
    fn default() -> Self {
        Admission::new()
    }
}

impl<const N: usize> Admission<N> {
    /// Every slot free.
    pub const fn new() -> Admission<N> {
        Admission { slots: [FREE; N] }
    }

    /// A connection opened at `now_ms`: where it goes. With [`Admit::TakeOver`] the slot is
    /// already the newcomer's.
    pub fn open(&mut self, now_ms: u64) -> Admit {
        let fresh = Entry {
            phase: Phase::Silent,
            opened_ms: now_ms,
            since_ms: now_ms,
        };
        if let Some(i) = self.slots.iter().position(|e| e.phase == Phase::Free) {
            self.slots[i] = fresh;
            return Admit::Slot(i);
        }
        if cfg!(feature = "canary-per-byte-idle") {
            return Admit::Refuse;
        }
        let grace = u64::from(GRACE_MS);
        let oldest = |want: &dyn Fn(&Entry) -> bool| {
            self.slots
                .iter()
                .enumerate()
                .filter(|(_, e)| want(e))
                .min_by_key(|(_, e)| e.opened_ms)
                .map(|(i, _)| i)
        };
        let victim = oldest(&|e| e.phase == Phase::Silent).or_else(|| {
            oldest(&|e| {
                matches!(e.phase, Phase::Head | Phase::Body)
                    && now_ms.saturating_sub(e.opened_ms) >= grace
            })
        });
        match victim {
            Some(i) => {
                self.slots[i] = fresh;
                Admit::TakeOver(i)
            }
            None => Admit::Refuse,
        }
    }

    /// Bytes arrived on `slot`'s connection; `head_complete` says whether its request head
    /// is now complete. A slot that is free or answering is left as it is.
    pub fn received(&mut self, slot: usize, now_ms: u64, head_complete: bool) {
        let Some(e) = self.slots.get_mut(slot) else {
            return;
        };
        if cfg!(feature = "canary-per-byte-idle") && e.phase != Phase::Answering {
            e.since_ms = now_ms;
        }
        match (e.phase, head_complete) {
            (Phase::Silent, false) => e.phase = Phase::Head,
            (Phase::Silent | Phase::Head, true) => {
                e.phase = Phase::Body;
                e.since_ms = now_ms;
            }
            _ => {}
        }
    }

    /// `slot`'s request is complete: its answer is being sent (it can no longer be taken over).
    pub fn answering(&mut self, slot: usize, now_ms: u64) {
        if let Some(e) = self.slots.get_mut(slot)
            && e.phase != Phase::Free
        {
            e.phase = Phase::Answering;
            e.since_ms = now_ms;
        }
    }

    /// `slot`'s connection closed (or was closed): the slot is free.
    pub fn closed(&mut self, slot: usize) {
        if let Some(e) = self.slots.get_mut(slot) {
            *e = FREE;
        }
    }

    /// Where `slot` stands ([`Phase::Free`] for a slot that does not exist).
    pub fn phase(&self, slot: usize) -> Phase {
        self.slots.get(slot).map_or(Phase::Free, |e| e.phase)
    }

    /// Slots in use.
    pub fn open_count(&self) -> usize {
        self.slots.iter().filter(|e| e.phase != Phase::Free).count()
    }

    /// The first slot past its deadline at `now_ms`, which is freed: the caller closes its
    /// connection. Call until it returns `None`.
    pub fn poll(&mut self, now_ms: u64) -> Option<(usize, Expired)> {
        for (i, e) in self.slots.iter_mut().enumerate() {
            let Some((limit, expired)) = Self::deadline(e) else {
                continue;
            };
            if now_ms.saturating_sub(e.since_ms) >= u64::from(limit) {
                *e = FREE;
                return Some((i, expired));
            }
        }
        None
    }

    /// The earliest time at which [`poll`](Admission::poll) has something to report.
    pub fn next_deadline(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter_map(|e| Self::deadline(e).map(|(limit, _)| e.since_ms + u64::from(limit)))
            .min()
    }

    fn deadline(e: &Entry) -> Option<(u32, Expired)> {
        match e.phase {
            Phase::Free => None,
            Phase::Silent | Phase::Head => Some((HEAD_DEADLINE_MS, Expired::Head)),
            Phase::Body => Some((BODY_DEADLINE_MS, Expired::Body)),
            Phase::Answering => Some((ANSWER_DEADLINE_MS, Expired::Answer)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = GRACE_MS as u64;

    /// A slowloris client that dribbles a header byte every 2 s and 20 idle connections:
    /// a normal `GET /` is still admitted at once and served well within the grace.
    #[test]
    fn slowloris_and_twenty_idle_connections_do_not_delay_a_get() {
        let mut a = Admission::<SLOTS>::new();
        let Admit::Slot(slow) = a.open(0) else {
            panic!("a free slot")
        };
        a.received(slow, 0, false);
        for i in 0..20 {
            let admit = a.open(100 + i);
            assert_ne!(admit, Admit::Refuse, "idle connection {i}");
            assert_ne!(admit, Admit::TakeOver(slow), "a fresh slowloris is kept");
        }
        // The slowloris keeps dribbling; the GET arrives 1 s in, before any grace has run out.
        for t in (0..1000).step_by(200) {
            a.received(slow, t, false);
            assert_eq!(a.poll(t), None);
        }
        let get = match a.open(1000) {
            Admit::Slot(i) | Admit::TakeOver(i) => i,
            Admit::Refuse => panic!("the GET was refused"),
        };
        assert_ne!(get, slow);
        a.received(get, 1001, true);
        a.answering(get, 1002);
        assert_eq!(a.phase(get), Phase::Answering);
        // The dribbling does not extend the slowloris's deadline.
        let mut t = 1000;
        let expired = loop {
            t += 2000;
            a.received(slow, t, false);
            if let Some(e) = a.poll(t) {
                break e;
            }
            assert!(t < 60_000, "the slowloris is never closed");
        };
        assert_eq!(expired, (slow, Expired::Head));
        assert!(t >= u64::from(HEAD_DEADLINE_MS) && t < u64::from(HEAD_DEADLINE_MS) + 2000);
    }

    #[test]
    fn two_slowloris_clients_give_way_after_the_grace() {
        let mut a = Admission::<2>::new();
        for t in [0, 10] {
            let Admit::Slot(i) = a.open(t) else { panic!() };
            a.received(i, t, false);
        }
        assert_eq!(a.open(G - 1), Admit::Refuse, "both still within the grace");
        assert_eq!(a.open(G), Admit::TakeOver(0), "the oldest past the grace");
        assert_eq!(a.phase(0), Phase::Silent);
    }

    #[test]
    fn a_silent_connection_gives_way_first_and_an_answered_one_never() {
        let mut a = Admission::<2>::new();
        assert_eq!(a.open(0), Admit::Slot(0));
        a.received(0, 5, true);
        a.answering(0, 6);
        assert_eq!(a.open(10), Admit::Slot(1));
        assert_eq!(a.open(20), Admit::TakeOver(1), "silent: taken over at once");
        a.received(1, 30, false);
        assert_eq!(a.open(10 * G), Admit::TakeOver(1), "past the grace");
        a.received(1, 10 * G, true);
        assert_eq!(a.open(10 * G + 1), Admit::Refuse, "a body within the grace");
        assert_eq!(
            a.open(11 * G),
            Admit::TakeOver(1),
            "a slow body past the grace"
        );
        a.received(1, 11 * G + 2, true);
        a.answering(1, 11 * G + 3);
        assert_eq!(a.open(20 * G), Admit::Refuse, "both are being answered");
    }

    #[test]
    fn each_phase_has_its_own_overall_deadline() {
        let mut a = Admission::<1>::new();
        let h = u64::from(HEAD_DEADLINE_MS);
        let b = u64::from(BODY_DEADLINE_MS);
        let w = u64::from(ANSWER_DEADLINE_MS);
        a.open(0);
        assert_eq!(a.next_deadline(), Some(h));
        a.received(0, h - 1, true);
        assert_eq!(a.poll(h), None, "the head came in time");
        assert_eq!(a.next_deadline(), Some(h - 1 + b));
        a.answering(0, h);
        assert_eq!(a.poll(h + w - 1), None);
        assert_eq!(a.poll(h + w), Some((0, Expired::Answer)));
        assert_eq!(a.phase(0), Phase::Free);
        assert_eq!(a.poll(h + w), None);
        a.open(0);
        a.received(0, 1, true);
        assert_eq!(a.poll(1 + b), Some((0, Expired::Body)));
    }

    #[test]
    fn out_of_range_slots_are_ignored() {
        let mut a = Admission::<1>::new();
        a.received(7, 0, true);
        a.answering(7, 0);
        a.closed(7);
        assert_eq!(a.phase(7), Phase::Free);
        assert_eq!(a.open_count(), 0);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Op {
            Open,
            Received(usize, bool),
            Answering(usize),
            Closed(usize),
            Wait(u64),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                Just(Op::Open),
                (0..3usize, any::<bool>()).prop_map(|(s, h)| Op::Received(s, h)),
                (0..3usize).prop_map(Op::Answering),
                (0..3usize).prop_map(Op::Closed),
                (0..4000u64).prop_map(Op::Wait),
            ]
        }

        proptest! {
            /// Whatever clients do, after `poll` no slot is past its deadline, a newcomer is
            /// refused only when every slot holds a connection that may not be taken over, and
            /// an answering connection is never taken over.
            #[test]
            fn deadlines_hold_and_refusals_are_justified(ops in proptest::collection::vec(op(), 1..200)) {
                let mut a = Admission::<2>::new();
                let mut now = 0u64;
                for op in ops {
                    match op {
                        Op::Open => {
                            let before = a.clone();
                            match a.open(now) {
                                Admit::Slot(i) => prop_assert_eq!(before.phase(i), Phase::Free),
                                Admit::TakeOver(i) => {
                                    let p = before.phase(i);
                                    prop_assert!(p == Phase::Silent || p == Phase::Head || p == Phase::Body);
                                    prop_assert!(p == Phase::Silent
                                        || now - before.slots[i].opened_ms >= G);
                                }
                                Admit::Refuse => {
                                    for e in &before.slots {
                                        prop_assert!(e.phase == Phase::Answering
                                            || e.phase == Phase::Body && now - e.opened_ms < G
                                            || e.phase == Phase::Head && now - e.opened_ms < G);
                                    }
                                }
                            }
                        }
                        Op::Received(s, h) => a.received(s, now, h),
                        Op::Answering(s) => a.answering(s, now),
                        Op::Closed(s) => a.closed(s),
                        Op::Wait(ms) => now += ms,
                    }
                    while a.poll(now).is_some() {}
                    if let Some(next) = a.next_deadline() {
                        prop_assert!(next > now);
                    }
                }
            }
        }
    }
}
