//! [`Router`]: one virtual router instance as a sans-IO state machine (RFC 5798 §6, with
//! keepalived's Fault state, tracking and `preempt_delay`).
//!
//! Inputs: [`startup`](Router::startup), [`handle_packet`](Router::handle_packet),
//! [`handle_timeout`](Router::handle_timeout), [`set_tracker`](Router::set_tracker),
//! [`set_link`](Router::set_link), [`resign`](Router::resign), [`shutdown`](Router::shutdown),
//! each with the current
//! time. Outputs, pulled after every input until `None`: [`poll_transmit`](Router::poll_transmit),
//! [`poll_event`](Router::poll_event), and [`poll_timeout`](Router::poll_timeout), the instant
//! at which `handle_timeout` must be called next.

mod config;
mod event;
mod split_brain;
mod stats;
mod sync_group;
mod timers;

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use split_brain::SplitBrains;

pub use config::{Config, ConfigError, Tracker};
pub use event::{Event, Reason, State, Transmit};
pub use split_brain::{SPLIT_BRAIN_QUIET_INTERVALS, SplitBrainEnd};
pub use stats::Stats;
pub use sync_group::SyncGroup;
pub use timers::{master_down_interval, skew_time};

use crate::packet::{
    AddressFamily, AdvertInterval, AdvertisementBuilder, DropReason, IpHeader, MULTICAST_V4,
    MULTICAST_V6, Priority, ReceivePolicy, Version,
};

/// At most one [`Event::PacketDropped`] per drop reason in this interval.
pub const DROP_EVENT_INTERVAL: Duration = Duration::from_secs(10);

/// One virtual router (one VRID, one interface, one family). See the [module](self) docs for
/// the calling convention and the crate docs for a complete driver loop.
#[derive(Debug)]
pub struct Router {
    config: Config,
    policy: ReceivePolicy,
    state: State,
    /// Whether the operator wants it running (between `startup` and `shutdown`).
    running: bool,
    priority: Priority,
    master_adver_interval: AdvertInterval,
    advert_timer: Option<Instant>,
    master_down_timer: Option<Instant>,
    /// keepalived's preempt_delay: preemption allowed from this instant on.
    preempt_after: Option<Instant>,
    tracker_up: Vec<bool>,
    link_up: bool,
    /// The priority of the last advert heard while Backup (for `preempt_on_lower_advert`).
    master_priority: Option<Priority>,
    /// The address of the Master heard last while Backup (for [`Event::PreemptPending`]).
    master_address: Option<IpAddr>,
    /// Fault imposed by a sync group, cleared only by the group.
    sync_fault: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    /// Per drop reason: when the last `PacketDropped` went out, and the drops since.
    drop_reports: BTreeMap<DropReason, (Instant, u64)>,
    state_since: Option<Instant>,
    /// Other Masters heard while Master.
    split_brains: SplitBrains,
}

impl Router {
    /// A router in [`State::Initialize`]; nothing happens until [`startup`](Self::startup).
    /// Every tracker starts up and the link starts up.
    pub fn new(config: Config) -> Result<Router, ConfigError> {
        config.validate()?;
        let policy = ReceivePolicy {
            version: config.version,
            checksum: config.checksum,
            authentication: config.authentication,
            require_link_local_first: false,
        };
        let mut router = Router {
            policy,
            state: State::Initialize,
            running: false,
            priority: config.priority,
            master_adver_interval: config.advert_interval,
            advert_timer: None,
            master_down_timer: None,
            preempt_after: None,
            tracker_up: vec![true; config.trackers.len()],
            link_up: true,
            master_priority: None,
            master_address: None,
            sync_fault: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            drop_reports: BTreeMap::new(),
            state_since: None,
            split_brains: SplitBrains::default(),
            config,
        };
        router.priority = router.effective_priority();
        Ok(router)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The effective priority: the base priority plus the weights of the tracked objects in
    /// their weighted state, clamped to 1..=254; 255 for the address owner, always.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// Master_Adver_Interval: learned from the Master's adverts in VRRPv3, the local
    /// Advertisement_Interval otherwise.
    pub fn master_adver_interval(&self) -> AdvertInterval {
        self.master_adver_interval
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The last reported state of each tracked object, by its position in
    /// [`Config::trackers`] (all up until [`set_tracker`](Self::set_tracker) says otherwise).
    pub fn trackers_up(&self) -> &[bool] {
        &self.tracker_up
    }

    /// The last reported link state (up until [`set_link`](Self::set_link) says otherwise).
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// Starts the router (RFC 5798 §6.4.1 Startup): the address owner becomes Master at once,
    /// any other router Backup, or Fault if a weight-0 tracker or the link is down.
    pub fn startup(&mut self, now: Instant) {
        self.account(now);
        if self.state != State::Initialize {
            return;
        }
        self.running = true;
        if let Some(cause) = self.fault_cause() {
            self.enter_fault(now, cause);
        } else if self.config.priority.is_owner() {
            self.become_master(now, Reason::AddressOwner);
        } else {
            self.become_backup(now, Reason::Startup);
        }
    }

    /// Stops the router (§6.4.2/§6.4.3 Shutdown): a Master sends an advert with priority 0 so
    /// that a Backup takes over after Skew_Time, then every state goes to Initialize.
    pub fn shutdown(&mut self, now: Instant) {
        self.account(now);
        self.running = false;
        if self.state == State::Master {
            self.send_advert(Priority::SHUTDOWN);
        }
        self.transition(now, State::Initialize, Reason::Shutdown);
    }

    /// Steps down on purpose while Master: an advert with priority 0 goes out, so that a
    /// Backup takes over after Skew_Time (as on [`shutdown`](Self::shutdown)), but the router
    /// keeps running as Backup ([`Reason::Resigned`]): if nobody takes over, it becomes Master
    /// again when Master_Down_Timer runs out. Returns whether it was Master.
    ///
    /// This is the second half of a drained preemption: a preempting Backup that waits out
    /// its [`Config::preempt_delay`] announces itself with [`Event::PreemptPending`]; the
    /// Master's owner, told of it (over a channel of its own: VRRP has no message for it),
    /// finishes its connections and then resigns, instead of being cut off mid-request.
    pub fn resign(&mut self, now: Instant) -> bool {
        self.account(now);
        if self.state != State::Master {
            return false;
        }
        self.send_advert(Priority::SHUTDOWN);
        self.become_backup(now, Reason::Resigned);
        true
    }

    /// Feeds one received VRRP message. `ip` holds what the socket reported: source,
    /// destination (needed for the pseudo-header checksum) and TTL / hop limit.
    ///
    /// A packet that fails a check is dropped and counted in [`stats`](Self::stats) by its
    /// [`DropReason`]; it never changes the state.
    pub fn handle_packet(&mut self, now: Instant, ip: IpHeader, bytes: &[u8]) {
        self.account(now);
        self.stats.received += 1;
        let adv = match self.policy.accept(&ip, bytes) {
            Ok(a) => a.advertisement,
            Err(e) => return self.dropped(now, e.reason(), ip.source, || e.to_string()),
        };
        let drop = if adv.vrid() != self.config.vrid {
            Some(DropReason::OtherVrid)
        } else if ip.source == self.config.primary_address {
            Some(DropReason::OwnAdvert)
        } else if !self.config.unicast_peers.is_empty()
            && !self.config.unicast_peers.contains(&ip.source)
        {
            Some(DropReason::UnknownSource)
        } else if self.config.version == Version::V2
            && adv.advert_interval() != self.config.advert_interval
        {
            Some(DropReason::IntervalMismatch)
        } else {
            None
        };
        if let Some(reason) = drop {
            let ours = self.config.advert_interval;
            return self.dropped(now, reason, ip.source, || match reason {
                DropReason::OtherVrid => format!("for VRID {}", adv.vrid()),
                DropReason::UnknownSource => "the sender is not one of unicast_peers".into(),
                DropReason::IntervalMismatch => format!(
                    "advert interval {} differs from ours ({}): VRRPv2 routers must agree",
                    adv.advert_interval(),
                    ours
                ),
                other => other.as_str().to_owned(),
            });
        }
        self.stats.accepted += 1;
        let theirs = adv.priority();
        match self.state {
            State::Initialize | State::Fault => {}
            State::Backup => self.backup_receives(now, ip.source, theirs, adv.advert_interval()),
            State::Master => self.master_receives(now, ip.source, theirs, adv.advert_interval()),
        }
    }

    /// Counts a drop and reports it, rate-limited (see [`Event::PacketDropped`]).
    fn dropped(
        &mut self,
        now: Instant,
        reason: DropReason,
        source: IpAddr,
        detail: impl FnOnce() -> String,
    ) {
        self.stats.drop(reason);
        if reason == DropReason::OwnAdvert {
            return;
        }
        let suppressed = match self.drop_reports.get_mut(&reason) {
            Some((last, since)) if now.saturating_duration_since(*last) < DROP_EVENT_INTERVAL => {
                *since += 1;
                return;
            }
            Some((last, since)) => {
                *last = now;
                std::mem::take(since)
            }
            None => {
                self.drop_reports.insert(reason, (now, 0));
                0
            }
        };
        self.events.push_back(Event::PacketDropped {
            reason,
            source,
            detail: detail(),
            suppressed,
        });
    }

    /// Fires the timers due at `now` (call it at [`poll_timeout`](Self::poll_timeout)'s
    /// instant; calling it early or twice is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.account(now);
        if self.state == State::Master {
            self.split_brains.expire(now, &mut self.events);
            self.stats.split_brains_open = self.split_brains.open() as u64;
        }
        match self.state {
            State::Master if self.advert_timer.is_some_and(|t| t <= now) => {
                self.send_advert(self.priority);
                self.advert_timer = Some(now + self.config.advert_interval.as_duration());
            }
            State::Backup if self.master_down_timer.is_some_and(|t| t <= now) => {
                self.become_master(now, Reason::MasterDown);
            }
            _ => {}
        }
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) must be called, if any.
    /// Changes after every input.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Master => match (self.advert_timer, self.split_brains.deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            State::Backup => self.master_down_timer,
            State::Initialize | State::Fault => None,
        }
    }

    /// The next advertisement to send. Drain it after every input.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event. Drain it after every input.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Reports the state of tracked object `index` (its position in [`Config::trackers`]).
    /// Out-of-range indexes are ignored. The effective priority is recomputed; a Master
    /// advertises a new priority at once; a weight-0 tracker down means Fault.
    pub fn set_tracker(&mut self, now: Instant, index: usize, up: bool) {
        if let Some(t) = self.tracker_up.get_mut(index) {
            *t = up;
        }
        self.reevaluate(now);
    }

    /// Reports the interface's link state: down means Fault, up clears it.
    pub fn set_link(&mut self, now: Instant, up: bool) {
        self.link_up = up;
        self.reevaluate(now);
    }

    // ---- state machine -------------------------------------------------------------------

    /// §6.4.2 "If an ADVERTISEMENT is received" while Backup.
    fn backup_receives(
        &mut self,
        now: Instant,
        master: IpAddr,
        theirs: Priority,
        interval: AdvertInterval,
    ) {
        if theirs.is_shutdown() {
            self.master_down_timer = Some(now + self.skew_time());
            return;
        }
        self.master_priority = Some(theirs);
        self.master_address = Some(master);
        let lower = theirs < self.priority;
        if lower && self.config.preempt && !self.preempt_delay_pending(now) {
            if self.config.preempt_on_lower_advert {
                let reason = Reason::LowerPriorityMaster {
                    master,
                    priority: theirs,
                };
                self.become_master(now, reason);
            }
            // Otherwise discard: Master_Down_Timer runs out and this router takes over.
            return;
        }
        if self.config.version == Version::V3 {
            self.master_adver_interval = interval;
        }
        self.master_down_timer = Some(now + self.master_down_interval());
    }

    /// keepalived's preempt_delay: lower-priority Masters are tolerated for this long after
    /// the first one was seen. The wait's start is told ([`Event::PreemptPending`]).
    fn preempt_delay_pending(&mut self, now: Instant) -> bool {
        let delay = self.config.preempt_delay;
        if delay.is_zero() {
            return false;
        }
        let after = match self.preempt_after {
            Some(after) => after,
            None => {
                let after = now + delay;
                self.preempt_after = Some(after);
                if let (Some(master), Some(priority)) = (self.master_address, self.master_priority)
                {
                    self.events.push_back(Event::PreemptPending {
                        master,
                        priority,
                        delay,
                    });
                }
                after
            }
        };
        now < after
    }

    /// §6.4.3 "If an ADVERTISEMENT is received" while Master.
    fn master_receives(
        &mut self,
        now: Instant,
        from: IpAddr,
        theirs: Priority,
        interval: AdvertInterval,
    ) {
        if theirs.is_shutdown() {
            self.events.extend(self.split_brains.resigned(now, from));
            self.stats.split_brains_open = self.split_brains.open() as u64;
            self.send_advert(self.priority);
            self.advert_timer = Some(now + self.config.advert_interval.as_duration());
            return;
        }
        let wins = theirs > self.priority
            || (theirs == self.priority && from > self.config.primary_address);
        if wins {
            if self.config.version == Version::V3 {
                self.master_adver_interval = interval;
            }
            self.transition(
                now,
                State::Backup,
                Reason::Preempted {
                    by: from,
                    priority: theirs,
                },
            );
            self.master_down_timer = Some(now + self.master_down_interval());
            self.master_priority = Some(theirs);
        } else {
            let interval = interval
                .as_duration()
                .max(self.config.advert_interval.as_duration());
            if let Some(told) = self.split_brains.heard(now, from, theirs, interval) {
                self.stats.split_brains += 1;
                self.events.push_back(told);
            }
            self.stats.split_brains_open = self.split_brains.open() as u64;
            if self.config.preempt {
                // A lower-priority router thinks it is Master (it missed us): answer at once
                // so it steps down now rather than at our next advert (keepalived does too).
                self.send_advert(self.priority);
                self.advert_timer = Some(now + self.config.advert_interval.as_duration());
            }
        }
    }

    fn become_master(&mut self, now: Instant, reason: Reason) {
        self.transition(now, State::Master, reason);
        self.split_brains.became_master(now);
        self.stats.became_master += 1;
        self.master_adver_interval = self.config.advert_interval;
        self.send_advert(self.priority);
        self.advert_timer = Some(now + self.config.advert_interval.as_duration());
    }

    fn become_backup(&mut self, now: Instant, reason: Reason) {
        self.transition(now, State::Backup, reason);
        self.master_adver_interval = self.config.advert_interval;
        self.master_down_timer = Some(now + self.master_down_interval());
    }

    fn enter_fault(&mut self, now: Instant, cause: String) {
        if self.state == State::Master {
            // Hand over at once rather than after Master_Down_Interval (keepalived does too).
            self.send_advert(Priority::SHUTDOWN);
        }
        self.transition(now, State::Fault, Reason::Fault { cause });
    }

    /// Recomputes priority and fault after a tracker or link change.
    fn reevaluate(&mut self, now: Instant) {
        self.account(now);
        let priority = self.effective_priority();
        if priority != self.priority {
            self.events.push_back(Event::PriorityChanged {
                from: self.priority,
                to: priority,
            });
            self.priority = priority;
            if self.state == State::Master {
                self.send_advert(priority);
                self.advert_timer = Some(now + self.config.advert_interval.as_duration());
            }
            // Risen above the Master heard last: with preempt_on_lower_advert, take over now
            // rather than at its next advert.
            if self.state == State::Backup
                && self.running
                && self.config.preempt
                && self.config.preempt_on_lower_advert
                && let Some(master) = self.master_priority
                && master < priority
                && !master.is_shutdown()
                && self.fault_cause().is_none()
                && !self.preempt_delay_pending(now)
            {
                let reason = Reason::OutranksMaster { priority: master };
                self.become_master(now, reason);
            }
        }
        if !self.running {
            return;
        }
        match (self.fault_cause(), self.state) {
            (Some(cause), s) if s != State::Fault => self.enter_fault(now, cause),
            (None, State::Fault) if !self.sync_fault => {
                if self.config.priority.is_owner() {
                    self.become_master(now, Reason::FaultCleared);
                } else {
                    self.become_backup(now, Reason::FaultCleared);
                }
            }
            _ => {}
        }
    }

    fn transition(&mut self, now: Instant, to: State, reason: Reason) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        if from == State::Master {
            self.split_brains.left_master(now, &mut self.events);
            self.stats.split_brains_open = 0;
        }
        self.stats.transitions += 1;
        self.advert_timer = None;
        self.master_down_timer = None;
        self.preempt_after = None;
        self.master_priority = None;
        self.master_address = None;
        self.state_since = Some(now);
        self.events
            .push_back(Event::StateChanged { from, to, reason });
    }

    /// Applies a sync group's decision (keepalived `vrrp_sync_group`): another member,
    /// `member`, went to `to` on its own account, and this router follows. Entering Master or
    /// Backup is refused while one of this router's own faults holds; a Fault imposed by the
    /// group is left only when the group returns to Backup or Master. [`SyncGroup`] applies it
    /// to routers it owns; a daemon whose members run in different drivers calls it for them
    /// (the tokio driver's `Command::Follow`).
    pub fn follow(&mut self, now: Instant, to: State, member: &str) {
        self.account(now);
        if !self.running || self.state == to {
            return;
        }
        let reason = Reason::SyncGroup {
            member: member.to_owned(),
        };
        match to {
            State::Master if self.fault_cause().is_none() => {
                self.sync_fault = false;
                self.become_master(now, reason);
            }
            State::Backup if self.fault_cause().is_none() => {
                self.sync_fault = false;
                self.become_backup(now, reason);
            }
            State::Fault => {
                self.sync_fault = true;
                if self.state == State::Master {
                    self.send_advert(Priority::SHUTDOWN);
                }
                self.transition(now, State::Fault, reason);
            }
            _ => {}
        }
    }

    // ---- derived values ------------------------------------------------------------------

    fn effective_priority(&self) -> Priority {
        if self.config.priority.is_owner() {
            return Priority::OWNER;
        }
        let adjust: i32 = self
            .config
            .trackers
            .iter()
            .zip(&self.tracker_up)
            .map(|(t, &up)| match (t.weight.signum(), up) {
                (1, true) | (-1, false) => i32::from(t.weight),
                _ => 0,
            })
            .sum();
        let p = (i32::from(self.config.priority.get()) + adjust).clamp(1, 254);
        Priority::new(u8::try_from(p).unwrap_or(254))
    }

    fn fault_cause(&self) -> Option<String> {
        if !self.link_up {
            return Some("link".to_owned());
        }
        self.config
            .trackers
            .iter()
            .zip(&self.tracker_up)
            .find(|(t, up)| t.weight == 0 && !**up)
            .map(|(t, _)| t.name.clone())
    }

    fn skew_time(&self) -> Duration {
        skew_time(
            self.config.version,
            self.priority,
            self.master_adver_interval,
        )
    }

    fn master_down_interval(&self) -> Duration {
        master_down_interval(
            self.config.version,
            self.priority,
            self.master_adver_interval,
        )
    }

    // ---- output --------------------------------------------------------------------------

    fn send_advert(&mut self, priority: Priority) {
        let source = self.config.primary_address;
        let group = match self.config.family() {
            AddressFamily::Ipv4 => IpAddr::V4(MULTICAST_V4),
            AddressFamily::Ipv6 => IpAddr::V6(MULTICAST_V6),
        };
        let builder = AdvertisementBuilder::new(
            self.config.version,
            self.config.vrid,
            &self.config.virtual_addresses,
        )
        .priority(priority)
        .advert_interval(self.config.advert_interval)
        .authentication(self.config.authentication);
        let destinations: &[IpAddr] = if self.config.unicast_peers.is_empty() {
            std::slice::from_ref(&group)
        } else {
            &self.config.unicast_peers
        };
        for &destination in destinations {
            let mut buf = BytesMut::with_capacity(builder.encoded_len());
            // Config::validate() checked every field the encoder checks.
            if builder
                .encode(source, destination, self.config.checksum, &mut buf)
                .is_ok()
            {
                self.stats.sent += 1;
                self.transmits.push_back(Transmit {
                    source,
                    destination,
                    payload: buf.freeze(),
                });
            }
        }
    }

    /// Adds the time since the last input to the current state's total.
    fn account(&mut self, now: Instant) {
        if let Some(since) = self.state_since {
            self.stats.time_in[self.state.index()] += now.saturating_duration_since(since);
        }
        self.state_since = Some(now);
    }
}
