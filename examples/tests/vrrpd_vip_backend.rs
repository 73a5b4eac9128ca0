//! vrrpd's `vip_backend` other than netlink, in a namespace lab:
//! - `kind = "aws"`, `mode = "elastic-ip"`: two vrrpd (unicast VRRPv3, 100 ms) against a real
//!   EC2 API emulator, `moto_server`, running in the lab's client namespace. The Master
//!   associates the Elastic IP with its ENI (checked with DescribeAddresses), nothing goes on
//!   the interface; a graceful stop leaves the association alone (nothing to remove in this
//!   mode) until the Backup re-associates it, so the address always has a holder; a restarted
//!   higher-priority vrrpd takes it back.
//! - `kind = "aws"`, `mode = "elastic-ip-on-secondary"`: the same two vrrpd, the virtual
//!   address a secondary private address of the ENIs with the Elastic IP associated with it.
//!   The Master's ENI holds both (DescribeNetworkInterfaces, DescribeAddresses) and the address
//!   is on its interface; a graceful stop hands both over without leaving the Elastic IP
//!   unassociated, and the restarted higher-priority vrrpd takes them back.
//! - `kind = "exec"`: the add / remove scripts run with `ADDRESS/PREFIX INTERFACE`.
//!
//! Needs root, iproute2 and moto_server (`.ci/run` installs it); under `CI` a missing
//! prerequisite fails the test.

mod lab;
#[path = "../../ip-manager/tests/support/listeners.rs"]
mod listeners;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ip_manager::{Credentials, EC2_API_VERSION, QueryClient};
use lab::vrrp::{Lab, Mode, V3_IPV4_100MS};

/// Where moto listens: the client namespace's address, reachable from both hosts.
const MOTO: &str = "10.99.0.100:5000";

/// The AWS credentials moto takes, for the vrrpd that reach it.
const AWS_CREDENTIALS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
];

/// vrrpd on `host` with one instance: `extra` holds its priority, addresses and backend.
fn vrrpd(lab: &mut Lab, host: &str, run: &str, extra: &str) -> usize {
    lab.vrrpd_config(
        host,
        &format!("{host}-{run}"),
        &format!("[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nversion = 3\nadvert_interval = \"100ms\"\n{extra}"),
    )
}

/// Stops moto, when dropped before the lab: it may run under a launcher (a pyenv shim) that
/// the lab's kill does not reach, so the process that listens is stopped by PID.
struct Moto(String);

impl Drop for Moto {
    fn drop(&mut self) {
        let port = MOTO.rsplit(':').next().unwrap_or("5000");
        let mut ss = Command::new("ip");
        ss.args(["netns", "exec", &self.0, "ss"]);
        listeners::kill_listeners(ss, port);
    }
}

fn ec2() -> QueryClient {
    QueryClient::new(
        &format!("http://{MOTO}"),
        "us-east-1",
        "ec2",
        EC2_API_VERSION,
        Credentials::new(AWS_CREDENTIALS[0].1, AWS_CREDENTIALS[1].1),
    )
    .expect("client")
}

/// The text of the first `<tag>` in `body`, if any.
fn field(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find('<')? + start;
    Some(body[start..end].to_owned())
}

struct Vpc {
    eni_a: String,
    eni_b: String,
    allocation: String,
    public_ip: String,
}

/// The ENIs are the hosts' interfaces: their subnet is the lab's, their addresses the hosts'.
async fn build_vpc() -> Vpc {
    let ec2 = ec2();
    let call = async |action: &str, params: &[(&str, &str)], tag: &str| {
        let body = ec2
            .call(action, params)
            .await
            .unwrap_or_else(|e| panic!("{action}: {e}"));
        field(&body, tag).unwrap_or_else(|| panic!("no <{tag}> in {body}"))
    };
    let vpc = call("CreateVpc", &[("CidrBlock", "10.99.0.0/16")], "vpcId").await;
    let subnet = call(
        "CreateSubnet",
        &[("VpcId", &vpc), ("CidrBlock", "10.99.0.0/24")],
        "subnetId",
    )
    .await;
    let eni = async |ip: &str| {
        call(
            "CreateNetworkInterface",
            &[("SubnetId", &subnet), ("PrivateIpAddress", ip)],
            "networkInterfaceId",
        )
        .await
    };
    let eni_a = eni("10.99.0.11").await;
    let eni_b = eni("10.99.0.12").await;
    let allocated = ec2
        .call("AllocateAddress", &[("Domain", "vpc")])
        .await
        .expect("AllocateAddress");
    Vpc {
        eni_a,
        eni_b,
        allocation: field(&allocated, "allocationId").expect("allocationId"),
        public_ip: field(&allocated, "publicIp").expect("publicIp"),
    }
}

/// The ENI the Elastic IP is associated with (`None`: unassociated).
fn holder(ns: &str, allocation: &str) -> Option<String> {
    let allocation = allocation.to_owned();
    lab::in_namespace(ns, move || async move {
        let body = ec2()
            .call("DescribeAddresses", &[("AllocationId.1", &allocation)])
            .await
            .expect("DescribeAddresses");
        field(&body, "networkInterfaceId")
    })
}

/// Whether the ENI `eni` holds `address` as one of its private addresses.
fn eni_holds(ns: &str, eni: &str, address: &str) -> bool {
    let (eni, address) = (
        eni.to_owned(),
        format!("<privateIpAddress>{address}</privateIpAddress>"),
    );
    lab::in_namespace(ns, move || async move {
        ec2()
            .call(
                "DescribeNetworkInterfaces",
                &[("NetworkInterfaceId.1", &eni)],
            )
            .await
            .expect("DescribeNetworkInterfaces")
            .contains(&address)
    })
}

/// Polls the Elastic IP's holder until it is `eni` (every holder seen on the way is returned).
fn wait_holder(
    lab: &Lab,
    vpc: &Vpc,
    eni: &str,
    within: Duration,
) -> (Duration, Vec<Option<String>>) {
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let h = holder(&lab.ns("cl"), &vpc.allocation);
        if seen.last() != Some(&h) {
            seen.push(h.clone());
        }
        if h.as_deref() == Some(eni) {
            return (started.elapsed(), seen);
        }
        assert!(
            started.elapsed() < within,
            "the Elastic IP is not on {eni} after {within:?} (holders seen: {seen:?}); logs in {}",
            lab.dir.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `test` (`tag` names its namespaces) in a lab with moto_server in its client namespace
/// and a VPC built there, or skips it.
fn in_cloud_lab(test: &str, tag: &str, run: impl FnOnce(&mut Lab, &Vpc)) {
    let Some(netlab) = lab::netlab_or_skip(test, &[("ip", "-V"), ("moto_server", "--help")]) else {
        return;
    };
    let mut lab = Lab::new(netlab, tag);
    lab.envs = AWS_CREDENTIALS.to_vec();
    let port = MOTO.rsplit(':').next().unwrap_or("5000");
    lab.spawn("cl", "moto_server", "moto.log", |c| {
        c.args(["-H", "10.99.0.100", "-p", port]);
    });
    // Dropped before the lab, while its namespaces still exist.
    let _moto = Moto(lab.ns("cl"));
    let ready = lab::in_namespace(&lab.ns("cl"), || async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(MOTO).await.is_err() {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    });
    assert!(ready, "moto_server did not start: {}", lab.log("moto.log"));
    let vpc = lab::in_namespace(&lab.ns("cl"), build_vpc);
    run(&mut lab, &vpc);
}

/// The instance of `host` (h1: priority 101 on the first ENI, h2: 100 on the second) with the
/// Elastic IP in `mode`, moving `address`.
fn instance(vpc: &Vpc, mode: &str, address: &str, host: &str) -> String {
    let (priority, me, peer, eni) = if host == "h1" {
        (101, "10.99.0.11", "10.99.0.12", &vpc.eni_a)
    } else {
        (100, "10.99.0.12", "10.99.0.11", &vpc.eni_b)
    };
    format!(
        "priority = {priority}\nvirtual_addresses = [\"{address}\"]\nunicast_source = \"{me}\"\nunicast_peers = [\"{peer}\"]\nvip_backend = {{ kind = \"aws\", mode = \"{mode}\", allocation_id = \"{}\", network_interface_id = \"{eni}\", region = \"us-east-1\", endpoint = \"http://{MOTO}\" }}\n",
        vpc.allocation
    )
}

#[test]
fn the_master_holds_the_elastic_ip_and_a_graceful_stop_hands_it_over_without_a_gap() {
    let test = "the_master_holds_the_elastic_ip_and_a_graceful_stop_hands_it_over_without_a_gap";
    in_cloud_lab(test, "aw", |lab, vpc| {
        let address = format!("{}/32", vpc.public_ip);
        let h1 = instance(vpc, "elastic-ip", &address, "h1");
        let h2 = instance(vpc, "elastic-ip", &address, "h2");

        let first = vrrpd(lab, "h1", "1", &h1);
        let (took, _) = wait_holder(lab, vpc, &vpc.eni_a, Duration::from_secs(5));
        eprintln!("h1 Master: the Elastic IP on its ENI {took:?} after the start");
        vrrpd(lab, "h2", "1", &h2);
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(
            holder(&lab.ns("cl"), &vpc.allocation).as_deref(),
            Some(vpc.eni_a.as_str()),
            "h2 stays Backup and leaves the Elastic IP alone; logs in {}",
            lab.dir.display()
        );
        for host in ["h1", "h2"] {
            assert!(
                !lab.addresses(host).contains(&vpc.public_ip),
                "the aws backend puts nothing on the interface: {}",
                lab.addresses(host)
            );
        }
        // Graceful stop: priority 0, h1 leaves Master without a call (elastic-ip has nothing to
        // remove), h2 re-associates after Skew_Time. The address never goes unassociated.
        let stopped = Instant::now();
        lab.stop(first);
        let (took, seen) = wait_holder(lab, vpc, &vpc.eni_b, Duration::from_secs(5));
        let handover = stopped.elapsed();
        assert!(
            seen.iter().all(Option::is_some),
            "the Elastic IP was left unassociated on the way: {seen:?}"
        );
        assert!(handover < Duration::from_secs(2), "{handover:?}");
        let log = lab.log("h1-1.vrrpd.log");
        assert!(
            log.contains("to=Master") && log.contains("to=Initialize"),
            "{log}"
        );
        eprintln!(
            "graceful stop of h1: the Elastic IP on h2's ENI {took:?} later (holders seen: {seen:?})"
        );
        // Restarted, h1 preempts and takes it back.
        vrrpd(lab, "h1", "2", &h1);
        let (back, _) = wait_holder(lab, vpc, &vpc.eni_a, Duration::from_secs(5));
        eprintln!("h1 restarted: the Elastic IP back on its ENI {back:?} later");
        let h2_log = lab.log("h2-1.vrrpd.log");
        assert!(h2_log.contains("AWS virtual address backend"), "{h2_log}");
    });
}

#[test]
fn an_elastic_ip_on_a_secondary_address_moves_with_it_and_the_address_is_on_the_masters_interface()
{
    let test = "an_elastic_ip_on_a_secondary_address_moves_with_it_and_the_address_is_on_the_masters_interface";
    in_cloud_lab(test, "as", |lab, vpc| {
        // The lab's VIP (what `wait_vip` looks for) is the secondary private address.
        let address = lab.mode.vip();
        let private = address.split('/').next().unwrap_or_default();
        let mode = "elastic-ip-on-secondary";
        let (h1, h2) = (
            instance(vpc, mode, address, "h1"),
            instance(vpc, mode, address, "h2"),
        );
        let ns = lab.ns("cl");
        // The Elastic IP on `eni`, `eni` holding the address, and the address on `host` alone.
        let both_on = |lab: &Lab, host: &str, eni: &str| -> (Duration, Vec<Option<String>>) {
            let (took, seen) = wait_holder(lab, vpc, eni, Duration::from_secs(5));
            lab.wait_vip(host, Mode::other(host), Duration::from_secs(5));
            assert!(
                eni_holds(&ns, eni, private),
                "{eni} does not hold {private}; logs in {}",
                lab.dir.display()
            );
            (took, seen)
        };

        let first = vrrpd(lab, "h1", "1", &h1);
        let (took, _) = both_on(lab, "h1", &vpc.eni_a);
        eprintln!("h1 Master: the Elastic IP and {private} on its ENI {took:?} after the start");
        vrrpd(lab, "h2", "1", &h2);
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(
            holder(&ns, &vpc.allocation).as_deref(),
            Some(vpc.eni_a.as_str()),
            "h2 stays Backup and leaves the Elastic IP alone; logs in {}",
            lab.dir.display()
        );
        assert!(!lab.has_vip("h2") && !eni_holds(&ns, &vpc.eni_b, private));

        // Graceful stop: h1 takes the address off its interface and leaves the VPC side (the
        // Elastic IP is still on its ENI); h2 reassigns the address and re-associates the Elastic
        // IP, which is never unassociated on the way.
        let stopped = Instant::now();
        lab.stop(first);
        let (took, seen) = both_on(lab, "h2", &vpc.eni_b);
        let handover = stopped.elapsed();
        assert!(
            seen.iter().all(Option::is_some),
            "the Elastic IP was left unassociated on the way: {seen:?}"
        );
        assert!(handover < Duration::from_secs(3), "{handover:?}");
        eprintln!(
            "graceful stop of h1: the Elastic IP and {private} on h2's ENI and interface {took:?} later (holders seen: {seen:?})"
        );
        // Restarted, h1 preempts and takes both back.
        vrrpd(lab, "h1", "2", &h1);
        let (back, _) = both_on(lab, "h1", &vpc.eni_a);
        eprintln!("h1 restarted: the Elastic IP and {private} back {back:?} later");
        let log = lab.log("h2-1.vrrpd.log");
        assert!(log.contains("ElasticIpOnSecondary"), "{log}");
    });
}

#[test]
fn exec_scripts_get_the_address_and_interface_on_takeover_and_stop() {
    let test = "exec_scripts_get_the_address_and_interface_on_takeover_and_stop";
    let Some(mut lab) = Lab::or_skip(test, "ex", V3_IPV4_100MS) else {
        return;
    };
    lab.envs = AWS_CREDENTIALS.to_vec();
    let calls = lab.dir.join("calls");
    let script = lab.dir.join("vip.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$*\" >> {}\n", calls.display()),
    )
    .expect("script");
    let _ = Command::new("chmod").arg("+x").arg(&script).status();
    let s = script.display();
    let daemon = vrrpd(
        &mut lab,
        "h1",
        "1",
        &format!(
            "virtual_addresses = [\"10.99.0.200/24\"]\nvip_backend = {{ kind = \"exec\", add = \"{s} add\", remove = \"{s} remove\", timeout = \"5s\" }}\n"
        ),
    );
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let started = Instant::now();
    while !read(&calls).contains("add") {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no add call; log: {}",
            lab.log("h1-1.vrrpd.log")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !lab.addresses("h1").contains("10.99.0.200"),
        "the exec backend leaves the interface to the script"
    );
    lab.stop(daemon);
    assert_eq!(
        read(&calls),
        "add 10.99.0.200/24 eth0\nremove 10.99.0.200/24 eth0\n"
    );
}
