//! `vipctl`: add, remove, list and announce virtual addresses with `ip-manager`'s netlink
//! backend, the way vrrpd will on a takeover. Handy by hand, and the tool the namespace tests
//! drive.
//!
//! ```text
//! vipctl add INTERFACE ADDRESS/PREFIX [--announce | --announce-once]
//! vipctl remove INTERFACE ADDRESS/PREFIX
//! vipctl announce INTERFACE ADDRESS/PREFIX [--once]
//! vipctl list INTERFACE
//! ```
//!
//! `--announce` sends keepalived's sequence (5 gratuitous ARPs / unsolicited NAs now, 5 more
//! after 5 s); `--announce-once` only the first burst. Needs CAP_NET_ADMIN (and CAP_NET_RAW
//! to announce). Exit status: 0 done, 1 operation failed, 2 usage.

use std::process::ExitCode;

use ip_manager::{AnnounceConfig, Announcer, IpManager, NetlinkManager, Vip};

const USAGE: &str = "usage: vipctl add|remove|announce INTERFACE ADDRESS/PREFIX [--announce|--announce-once|--once]\n       vipctl list INTERFACE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vipctl: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("vipctl: {msg}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Op(e)) => {
            eprintln!("vipctl: {e}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Usage(String),
    Op(ip_manager::Error),
}

impl From<ip_manager::Error> for Failure {
    fn from(e: ip_manager::Error) -> Failure {
        Failure::Op(e)
    }
}

async fn run(args: &[String]) -> Result<(), Failure> {
    let (cmd, interface) = match args {
        [cmd, interface, ..] => (cmd.as_str(), interface.as_str()),
        _ => return Err(Failure::Usage("missing command or interface".into())),
    };
    let ips = NetlinkManager::new()?;
    if cmd == "list" {
        for vip in ips.list(interface).await? {
            println!("{vip}");
        }
        return Ok(());
    }
    let cidr = args
        .get(2)
        .ok_or_else(|| Failure::Usage(format!("{cmd} needs ADDRESS/PREFIX")))?;
    let vip = Vip::parse(cidr, interface)?;
    let flags: Vec<&str> = args[3..].iter().map(String::as_str).collect();
    let announce = match (cmd, flags.as_slice()) {
        ("add", []) | ("remove", []) => None,
        ("add", ["--announce"]) | ("announce", []) => Some(AnnounceConfig::default()),
        ("add", ["--announce-once"]) | ("announce", ["--once"]) => Some(AnnounceConfig {
            refresh_delay: None,
            ..AnnounceConfig::default()
        }),
        _ => {
            return Err(Failure::Usage(format!(
                "unexpected arguments for {cmd}: {flags:?}"
            )));
        }
    };
    match cmd {
        "add" => ips.add(&vip).await?,
        "remove" => ips.remove(&vip).await?,
        "announce" => {}
        other => return Err(Failure::Usage(format!("unknown command {other:?}"))),
    }
    if let Some(config) = announce {
        let announcer = Announcer::new(&ips, interface, config).await?;
        let sent = announcer.announce(&vip).await?;
        eprintln!("vipctl: {sent} announcements for {vip}");
    }
    Ok(())
}
