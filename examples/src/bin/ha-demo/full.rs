//! The whole story in network namespaces: two balancer hosts `h1` (priority 150) and `h2`
//! (100) run hald (VRRP and the HTTP balancer in one process) sharing 10.99.0.200, three
//! backends run in `be`, and the client in `cl` sends HTTP load at the virtual address while
//! five things happen to the stack, one after the other:
//! 1. a backend is killed: the balancers retry elsewhere (`redispatch`), then mark it down;
//! 2. the Master's balancer is SIGKILLed: no priority 0, the peer takes over after
//!    Master_Down_Interval; the killed host comes back as Backup (`preempt = false`);
//! 3. the (new) Master's host loses its link: the other takes over after Master_Down_Interval;
//!    the link comes back;
//! 4. a planned handover: SIGTERM to the Master, which drains its clients first;
//! 5. the backend comes back.
//!
//! The hosts, the backends and the client are this binary run again in their namespaces
//! (`--balancer CONFIG`, `--backend ADDRESS NAME`, `--load ADDRESS`): one build.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use crate::load::{CLIENTS, Outcome, RATE};
use crate::logs;
use crate::netns::{Guard, Lab, LabError};
use crate::scenarios::{Figures, Narrator, Scenario};
use crate::story::{CLIENT, Line, Node, VIP, VIP_PREFIX, VRID, advert_interval};

/// The balancer hosts: the Master-to-be and the Backup.
pub(crate) const HOSTS: [Node; 2] = [
    Node {
        name: "h1",
        address: Ipv4Addr::new(10, 99, 0, 11),
        priority: 150,
    },
    Node {
        name: "h2",
        address: Ipv4Addr::new(10, 99, 0, 12),
        priority: 100,
    },
];

/// The backends' names and addresses (namespace `be`), each on [`BACKEND_PORT`].
pub(crate) const BACKENDS: [(&str, Ipv4Addr); 3] = [
    ("s1", Ipv4Addr::new(10, 99, 0, 21)),
    ("s2", Ipv4Addr::new(10, 99, 0, 22)),
    ("s3", Ipv4Addr::new(10, 99, 0, 23)),
];
pub(crate) const BACKEND_PORT: u16 = 8080;
/// The backend the story kills and brings back.
const VICTIM: usize = 1;

/// The balanced service: port 80 on the virtual address.
pub(crate) fn service() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(VIP, 80))
}

/// The listener both balancers (and the loopback half's lbd) run: HTTP on `bind` over
/// `servers`, TCP checks every 200 ms (2 to rise, 2 to fall), a failed connection retried
/// on another server (`redispatch`).
pub(crate) fn listener(bind: SocketAddr, servers: &[(&str, SocketAddr)]) -> String {
    let servers: Vec<String> = servers
        .iter()
        .map(|(name, addr)| format!("{{ name = \"{name}\", addr = \"{addr}\" }}"))
        .collect();
    format!(
        "[[listen]]\nname = \"web\"\nbind = \"{bind}\"\nmode = \"http\"\nretries = 3\nredispatch = true\ncheck = {{ tcp = true, interval = \"200ms\", rise = 2, fall = 2 }}\nservers = [{}]\n",
        servers.join(", ")
    )
}

/// hald's file for `host`: VI_1 (VRRPv3 at 100 ms) on the virtual address, tracking the
/// listener (every server down: FAULT), drained for up to 5 s on a planned handover.
fn hald_config(host: &Node, preempt: bool) -> String {
    let servers: Vec<(&str, SocketAddr)> = BACKENDS
        .iter()
        .map(|(name, ip)| (*name, SocketAddr::V4(SocketAddrV4::new(*ip, BACKEND_PORT))))
        .collect();
    format!(
        "# ha-demo: {name}\n[hald]\ndrain = \"5s\"\n\n[[hald.track]]\ninstance = \"VI_1\"\nlistener = \"web\"\nall_down = 0\n\n[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = {vrid}\npriority = {priority}\nversion = 3\nadvert_interval = \"{ms}ms\"\npreempt = {preempt}\nvirtual_addresses = [\"{VIP}/{VIP_PREFIX}\"]\n\n{listener}",
        name = host.name,
        vrid = VRID.get(),
        priority = host.priority,
        ms = advert_interval().as_duration().as_millis(),
        listener = listener(service(), &servers),
    )
}

/// How the whole story went.
pub(crate) struct Story {
    /// The timeline, in order.
    pub(crate) lines: Vec<Line>,
    /// Each scenario and what the load saw in it.
    pub(crate) scenarios: Vec<(Scenario, Figures)>,
}

/// Waits up to `within` for `log` to have a line containing all of `needles` logged after
/// `after` (seconds since the epoch).
fn wait_log(
    lab: &Lab,
    log: &str,
    after: f64,
    needles: &[&str],
    within: Duration,
) -> Result<(), LabError> {
    let what = format!("{log} did not log {needles:?}");
    lab.wait_for(within, &what, || {
        logs::events(&lab.log(log), needles[0])
            .iter()
            .any(|(at, text)| *at > after && needles.iter().all(|n| text.contains(n)))
    })
}

/// Waits up to `within` for `log` to show VI_1 entering `state` after `after`.
fn wait_state(
    lab: &Lab,
    log: &str,
    after: f64,
    state: &str,
    within: Duration,
) -> Result<(), LabError> {
    let what = format!("{log} shows no change to {state}");
    lab.wait_for(within, &what, || {
        logs::changes(&lab.log(log))
            .iter()
            .any(|c| c.at > after && c.to == state)
    })
}

/// Builds the lab and runs the whole story in it. The caller tears the lab down afterwards.
pub(crate) fn run(lab: &Lab) -> Result<Story, LabError> {
    let _guard = Guard(lab);
    let mut n = Narrator::new();
    let [h1, h2] = HOSTS;
    let backend_ips: Vec<Ipv4Addr> = BACKENDS.iter().map(|b| b.1).collect();
    lab.build(&[
        (h1.name, &[h1.address]),
        (h2.name, &[h2.address]),
        ("be", &backend_ips),
        ("cl", &[CLIENT]),
    ])?;
    n.say(format!(
        "namespaces up: {} (bridge), {} and {} (balancer hosts), {} (backends), {} (client)",
        lab.ns("sw"),
        lab.ns(h1.name),
        lab.ns(h2.name),
        lab.ns("be"),
        lab.ns("cl")
    ));
    let exe = Lab::exe()?;
    let backend = |(name, ip): (&str, Ipv4Addr), log: &str| -> Result<usize, LabError> {
        let addr = SocketAddrV4::new(ip, BACKEND_PORT).to_string();
        let i = lab.spawn("be", &exe, &["--backend", &addr, name], log)?;
        let what = format!("backend {name} did not start");
        lab.wait_for(Duration::from_secs(5), &what, || {
            lab.log(log).contains("listening")
        })?;
        Ok(i)
    };
    let mut victim = 0;
    for (i, b) in BACKENDS.into_iter().enumerate() {
        let process = backend(b, &format!("{}.log", b.0))?;
        if i == VICTIM {
            victim = process;
        }
    }
    n.say(format!(
        "backends {} answer on port {BACKEND_PORT} of {} (namespace {})",
        BACKENDS.map(|b| b.0).join(", "),
        BACKENDS.map(|b| b.1.to_string()).join(", "),
        lab.ns("be")
    ));
    // `name` is also its log's and its file's.
    let balancer = |host: &Node, name: &str, preempt: bool| -> Result<usize, LabError> {
        let config = lab.write(&format!("{name}.toml"), &hald_config(host, preempt))?;
        let config = config.display().to_string();
        lab.spawn(
            host.name,
            &exe,
            &["--balancer", &config],
            &format!("{name}.log"),
        )
    };
    n.say(format!("{}: hald in {}", h1.starts(), lab.ns(h1.name)));
    let h1_process = balancer(&h1, "h1", true)?;
    lab.wait_vip(h1.name, Duration::from_secs(5))?;
    n.say(format!("{}: hald in {}", h2.starts(), lab.ns(h2.name)));
    balancer(&h2, "h2", true)?;
    wait_state(lab, "h2.log", 0.0, "Backup", Duration::from_secs(5))?;
    // The servers pass their first checks (rise 2 at 200 ms) on both hosts.
    std::thread::sleep(Duration::from_secs(1));
    let load = lab.spawn("cl", &exe, &["--load", &service().to_string()], "load.log")?;
    n.say(format!(
        "the client ({CLIENT}): {CLIENTS} keep-alive HTTP clients, {RATE} GET/s each to http://{}/",
        service()
    ));
    std::thread::sleep(Duration::from_secs(2));

    let (victim_name, _) = BACKENDS[VICTIM];
    n.scenario(
        "backend_killed",
        format!("backend {victim_name} killed"),
        " (SIGKILL)",
        None,
    );
    let t = crate::load::now();
    lab.stop(victim, "-KILL", Duration::from_secs(3), victim_name)?;
    let about_victim = format!("server {victim_name} ");
    // The balancer logging `log` marks the victim `state` after `t`.
    let marked = |log: &str, state: &str, t: f64| {
        let state = format!("marked {state}");
        wait_log(
            lab,
            log,
            t,
            &[&about_victim, &state],
            Duration::from_secs(5),
        )
    };
    marked("h1.log", "down", t)?;
    std::thread::sleep(Duration::from_secs(2));

    n.scenario(
        "balancer_killed",
        "Master's balancer killed".into(),
        ": h1's hald SIGKILLed, no priority-0 advert",
        None,
    );
    // h1's hald (process `i`) stops on `signal` within `within`, h2 takes the address.
    let h1_stops = |i: usize, signal: &str, within: Duration| {
        lab.stop(i, signal, within, "h1's hald")?;
        lab.wait_vip(h2.name, Duration::from_secs(3))?;
        std::thread::sleep(Duration::from_secs(2));
        Ok::<_, LabError>(())
    };
    h1_stops(h1_process, "-KILL", Duration::from_secs(3))?;
    n.say("h1's hald restarted with preempt = false: back as Backup, h2 stays Master".into());
    // The host whose balancer logs `log` rejoins as Backup after `t`, its checks run.
    let rejoined = |log: &str, t: f64| {
        wait_state(lab, log, t, "Backup", Duration::from_secs(5))?;
        std::thread::sleep(Duration::from_secs(1));
        Ok::<_, LabError>(())
    };
    let t = crate::load::now();
    let h1_again = balancer(&h1, "h1-again", false)?;
    rejoined("h1-again.log", t)?;

    n.scenario(
        "link_cut",
        "Master host's link cut".into(),
        ": h2's eth0 down",
        None,
    );
    lab.link(h2.name, false)?;
    lab.wait_vip(h1.name, Duration::from_secs(3))?;
    std::thread::sleep(Duration::from_millis(2500));
    n.say("h2's link back".into());
    let t = crate::load::now();
    lab.link(h2.name, true)?;
    rejoined("h2.log", t)?;

    n.scenario(
        "handover",
        "planned handover".into(),
        ": SIGTERM to h1's hald, the Master",
        None,
    );
    h1_stops(h1_again, "-TERM", Duration::from_secs(10))?;

    n.scenario(
        "backend_back",
        format!("backend {victim_name} back"),
        "",
        Some(victim_name),
    );
    let t = crate::load::now();
    backend(BACKENDS[VICTIM], &format!("{victim_name}-again.log"))?;
    marked("h2.log", "up", t)?;
    std::thread::sleep(Duration::from_millis(1500));
    n.end();
    lab.signal(load, "-KILL", Duration::from_secs(3));
    n.say("the load stops".into());

    let outcomes = Outcome::parse(&lab.log("load.log"));
    for (host, log) in [("h1", "h1.log"), ("h1", "h1-again.log"), ("h2", "h2.log")] {
        let text = lab.log(log);
        for c in logs::changes(&text) {
            n.said(
                c.at,
                format!("{host}: {} -> {} ({})", c.from, c.to, c.reason),
            );
        }
        let told: Vec<(f64, String)> = logs::events(&text, &about_victim)
            .into_iter()
            .chain(logs::events(&text, "connections drained"))
            .collect();
        for (at, message) in told {
            n.said(at, format!("{host}: {message}"));
        }
    }
    let (lines, scenarios) = n.finish(&outcomes);
    Ok(Story { lines, scenarios })
}

/// The report: the timeline, the table, the theory, and the `result:` line.
pub(crate) fn report(story: &Story) -> String {
    let mut out = crate::story::timeline(&story.lines);
    out.push_str(&crate::scenarios::table(&story.scenarios));
    let [h1, h2] = HOSTS;
    let mdi = |h: &Node| crate::story::ms(crate::story::master_down_interval(h.priority));
    let _ = writeln!(
        out,
        "\nTheory (RFC 5798 §6.4.2): a Backup takes over when it has heard no advert for\n\
         Master_Down_Interval = 3 x {} + Skew_Time: {} for {} (priority {}), {} for {} ({}),\n\
         counted from the last advert, which left up to one interval before the failure.\n\
         - A killed balancer leaves its host holding the address with nothing listening: its\n\
         \x20\x20kernel refuses new connections (the failed requests) until the new Master's\n\
         \x20\x20gratuitous ARPs move the client. A cut link only loses what was in flight; TCP\n\
         \x20\x20resends it, to the new Master, which resets it.\n\
         - A planned handover drains first (`Connection: close`, new SYNs ignored), then sends\n\
         \x20\x20priority 0: the Backup is Master a Skew_Time later. No request fails; the clients\n\
         \x20\x20told to close wait for their SYN to be sent again (1 s), to the new Master: the gap.\n\
         - A killed backend is retried on another server (`redispatch`) until the checks mark\n\
         \x20\x20it down (2 failed checks at 200 ms); back, it takes requests after 2 good ones.",
        crate::story::ms(advert_interval().as_duration()),
        mdi(&h2),
        h2.name,
        h2.priority,
        mdi(&h1),
        h1.name,
        h1.priority,
    );
    let _ = writeln!(
        out,
        "result: mode=namespaces{} master_down_interval={:.4}s",
        crate::scenarios::result_fields(&story.scenarios),
        crate::story::master_down_interval(h2.priority).as_secs_f64()
    );
    out
}
