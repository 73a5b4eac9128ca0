//! The AWS backend against a real EC2 API emulator: `moto_server` (PyPI `moto[server]`, which
//! `.ci/run` installs) on a loopback port. The test builds a VPC, a subnet, two ENIs (the two
//! VRRP hosts), an Elastic IP and a route table through the API, moves the VIP each way in each
//! mode, and checks every move with the Describe calls.
//!
//! moto 5.2.x fidelity (what the assertions rely on): association / re-association and
//! `ReplaceRoute` behave like EC2. `AssignPrivateIpAddresses` ignores AllowReassignment (the
//! address stays on the old ENI as well), so the secondary-IP test asserts that the new ENI
//! holds it and that our `remove` (demotion) unassigns it from the old one. `AssociateAddress`
//! ignores PrivateIpAddress (the association reports the ENI's primary address) and a
//! reassigned secondary address does not take its Elastic IP along, so the Elastic-IP-on-a-
//! secondary test checks the association's ENI (the parameter is checked by a unit test).
#![cfg(feature = "aws")]

#[path = "support/listeners.rs"]
mod listeners;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ip_manager::{
    AwsManager, AwsMode, Credentials, EC2_API_VERSION, Error, IpManager, QueryClient, Vip,
};

/// moto_server on a free loopback port, stopped (by the PID that listens) on drop.
struct Moto {
    port: u16,
    child: Child,
}

impl Moto {
    fn start() -> Option<Moto> {
        Moto::start_with(&[])
    }

    fn start_with(env: &[(&str, &str)]) -> Option<Moto> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let moto = Moto { port, child };
        listeners::wait_listening(port, Duration::from_secs(30)).then_some(moto)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // The launcher may be a wrapper (a pyenv shim): stop the process that owns the socket.
        listeners::kill_listeners(Command::new("ss"), &self.port.to_string());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn skip(why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("CI must run the moto tests, but {why}");
    }
    eprintln!("\n*** SKIPPED aws_moto: {why} (CI=1 turns this into a failure) ***\n");
}

fn client(moto: &Moto) -> QueryClient {
    // moto accepts any key unless told to check; the signing is still real SigV4.
    QueryClient::new(
        &moto.endpoint(),
        "us-east-1",
        "ec2",
        EC2_API_VERSION,
        Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
    )
    .expect("client")
}

/// The text of the first `<tag>` in `body`.
fn field(body: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = body
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {body}"))
        + open.len();
    let end = body[start..].find('<').expect("closing tag") + start;
    body[start..end].to_owned()
}

struct Vpc {
    eni_a: String,
    eni_b: String,
    ip_a: String,
    allocation: String,
    route_table: String,
}

/// Makes a resource with `action` and returns its id: the text of `<tag>` in the answer.
async fn create(ec2: &QueryClient, action: &str, params: &[(&str, &str)], tag: &str) -> String {
    field(&ec2.call(action, params).await.expect(action), tag)
}

async fn build_vpc(ec2: &QueryClient) -> Vpc {
    let vpc = create(ec2, "CreateVpc", &[("CidrBlock", "10.0.0.0/16")], "vpcId").await;
    let subnet = create(
        ec2,
        "CreateSubnet",
        &[("VpcId", &vpc), ("CidrBlock", "10.0.1.0/24")],
        "subnetId",
    )
    .await;
    let eni = |ip: &'static str| {
        let subnet = subnet.clone();
        async move {
            let params = [("SubnetId", subnet.as_str()), ("PrivateIpAddress", ip)];
            create(ec2, "CreateNetworkInterface", &params, "networkInterfaceId").await
        }
    };
    let eni_a = eni("10.0.1.11").await;
    let eni_b = eni("10.0.1.12").await;
    let allocation = create(ec2, "AllocateAddress", &[("Domain", "vpc")], "allocationId").await;
    let route_table = create(ec2, "CreateRouteTable", &[("VpcId", &vpc)], "routeTableId").await;
    Vpc {
        eni_a,
        eni_b,
        ip_a: "10.0.1.11".into(),
        allocation,
        route_table,
    }
}

/// moto_server, a client of it and a VPC built there, or `None` when the test is skipped.
async fn moto_with_vpc() -> Option<(Moto, QueryClient, Vpc)> {
    let Some(moto) = Moto::start() else {
        skip("moto_server is not installed or did not start (pip install 'moto[server]')");
        return None;
    };
    let ec2 = client(&moto);
    let vpc = build_vpc(&ec2).await;
    Some((moto, ec2, vpc))
}

/// The errors come back typed: `add` in `mode` with an Elastic IP that does not exist fails in
/// `AssociateAddress` naming the id, and `v6` (a manager of the test's) refuses an IPv6 VIP
/// before any call.
async fn errors_are_typed(
    moto: &Moto,
    mode: fn(String) -> AwsMode,
    eni: &str,
    vip: &Vip,
    v6: &AwsManager,
) {
    refuses_ipv6(v6).await;
    let bogus = AwsManager::new(client(moto), mode("eipalloc-00000000".into()), eni, None);
    match bogus.add(vip).await {
        Err(Error::Aws {
            action,
            code,
            message,
        }) => {
            assert_eq!(
                (action.as_str(), code.as_str()),
                ("AssociateAddress", "InvalidAllocationID.NotFound")
            );
            assert!(message.contains("eipalloc-00000000"), "{message}");
        }
        other => panic!("expected a typed AWS error, got {other:?}"),
    }
}

/// Managers of `mode` for host A (ENI a, private IP `ip_a`) and host B (ENI b).
fn hosts(moto: &Moto, vpc: &Vpc, mode: AwsMode, ip_a: Option<String>) -> (AwsManager, AwsManager) {
    let host = |eni: &str, ip| AwsManager::new(client(moto), mode.clone(), eni, ip);
    (host(&vpc.eni_a, ip_a), host(&vpc.eni_b, None))
}

/// Asserts that `holder` owns `vip` and `other` does not.
async fn owned_by_alone(vip: &Vip, holder: &AwsManager, other: &AwsManager) {
    let owns = async |m: &AwsManager| m.owns(vip).await.expect("owns");
    assert!(owns(holder).await && !owns(other).await);
}

/// `manager` refuses an IPv6 VIP before any call.
async fn refuses_ipv6(manager: &AwsManager) {
    let v6 = Vip::parse("fd99::1/128", "eth0").expect("vip");
    assert!(matches!(
        manager.add(&v6).await,
        Err(Error::InvalidVip { .. })
    ));
}

#[tokio::test]
async fn vip_moves_in_every_mode_and_errors_are_typed() {
    let Some((moto, ec2, vpc)) = moto_with_vpc().await else {
        return;
    };
    let vip = Vip::parse("10.0.1.50/32", "eth0").expect("vip");
    // The answer to a `Describe*` call for the resource `id` (by its filter key `key`).
    let describe = async |action: &str, key: &str, id: &str| {
        ec2.call(action, &[(key, id)]).await.expect(action)
    };

    // Elastic IP: A takes it, then B takes it over (AllowReassociation), each checked with
    // DescribeAddresses.
    let allocation_id = vpc.allocation.clone();
    let mode = AwsMode::ElasticIp { allocation_id };
    let (a, b) = hosts(&moto, &vpc, mode, Some(vpc.ip_a.clone()));
    a.add(&vip).await.expect("A associates");
    let desc = describe("DescribeAddresses", "AllocationId.1", &vpc.allocation).await;
    assert_eq!(field(&desc, "networkInterfaceId"), vpc.eni_a);
    assert_eq!(field(&desc, "privateIpAddress"), vpc.ip_a);
    assert!(a.owns(&vip).await.expect("owns"));
    b.add(&vip).await.expect("B re-associates");
    let desc = describe("DescribeAddresses", "AllocationId.1", &vpc.allocation).await;
    assert_eq!(field(&desc, "networkInterfaceId"), vpc.eni_b);
    owned_by_alone(&vip, &b, &a).await;
    b.add(&vip).await.expect("idempotent");

    // Secondary private IP: B assigns it; A's demotion unassigns it from A.
    let (sa, sb) = hosts(&moto, &vpc, AwsMode::SecondaryIp, None);
    sa.add(&vip).await.expect("A assigns");
    assert!(sa.owns(&vip).await.expect("owns"));
    sb.add(&vip)
        .await
        .expect("B assigns with AllowReassignment");
    assert!(
        sb.owns(&vip).await.expect("owns"),
        "the new ENI holds the VIP"
    );
    sa.remove(&vip).await.expect("A's demotion");
    let desc = describe(
        "DescribeNetworkInterfaces",
        "NetworkInterfaceId.1",
        &vpc.eni_a,
    )
    .await;
    assert!(
        !desc.contains("10.0.1.50"),
        "A's ENI no longer holds the VIP: {desc}"
    );
    sa.remove(&vip).await.expect("idempotent remove");

    // Route table: the VIP's /32 points at A (created), then at B (replaced).
    let route_table_id = vpc.route_table.clone();
    let (ra, rb) = hosts(&moto, &vpc, AwsMode::RouteTable { route_table_id }, None);
    ra.add(&vip).await.expect("A creates the route");
    assert!(ra.owns(&vip).await.expect("owns"));
    rb.add(&vip).await.expect("B replaces it");
    let desc = describe("DescribeRouteTables", "RouteTableId.1", &vpc.route_table).await;
    assert!(
        desc.contains("<destinationCidrBlock>10.0.1.50/32</destinationCidrBlock>"),
        "{desc}"
    );
    owned_by_alone(&vip, &rb, &ra).await;

    // Errors come back typed, naming the id; IPv6 is refused before any call.
    let eip = |allocation_id| AwsMode::ElasticIp { allocation_id };
    errors_are_typed(&moto, eip, &vpc.eni_a, &vip, &sa).await;
}

#[tokio::test]
async fn elastic_ip_on_a_secondary_address_moves_with_it_in_turns() {
    let Some((moto, ec2, vpc)) = moto_with_vpc().await else {
        return;
    };
    let vip = Vip::parse("10.0.1.50/24", "eth0").expect("vip");
    let allocation_id = vpc.allocation.clone();
    let (a, b) = hosts(
        &moto,
        &vpc,
        AwsMode::ElasticIpOnSecondary { allocation_id },
        None,
    );
    // Who the Elastic IP is on, and whether each ENI holds the VIP, from the Describe calls.
    let state = async || {
        let eip = ec2
            .call("DescribeAddresses", &[("AllocationId.1", &vpc.allocation)])
            .await
            .expect("DescribeAddresses");
        let holds = async |eni: &str| {
            ec2.call(
                "DescribeNetworkInterfaces",
                &[("NetworkInterfaceId.1", eni)],
            )
            .await
            .expect("DescribeNetworkInterfaces")
            .contains("<privateIpAddress>10.0.1.50</privateIpAddress>")
        };
        (
            field(&eip, "networkInterfaceId"),
            holds(&vpc.eni_a).await,
            holds(&vpc.eni_b).await,
        )
    };

    a.add(&vip).await.expect("A takes both");
    assert_eq!(state().await, (vpc.eni_a.clone(), true, false));
    owned_by_alone(&vip, &a, &b).await;
    a.add(&vip).await.expect("idempotent");

    // A leaves first (a graceful stop): the Elastic IP is still on A, so the secondary address
    // stays: unassigning it would leave the public address with no holder.
    a.remove(&vip).await.expect("A leaves Master");
    assert_eq!(state().await, (vpc.eni_a.clone(), true, false));

    // B takes both; A's next remove drops the copy moto leaves on A.
    b.add(&vip).await.expect("B takes both");
    let (holder, _, on_b) = state().await;
    assert_eq!((holder.as_str(), on_b), (vpc.eni_b.as_str(), true));
    owned_by_alone(&vip, &b, &a).await;
    a.remove(&vip).await.expect("A's demotion");
    assert_eq!(state().await, (vpc.eni_b.clone(), false, true));
    a.remove(&vip).await.expect("idempotent remove");

    // And back: A takes both over while B still holds them, then B's demotion cleans up.
    a.add(&vip).await.expect("A takes both back");
    assert_eq!(state().await, (vpc.eni_a.clone(), true, true));
    b.remove(&vip).await.expect("B's demotion");
    assert_eq!(state().await, (vpc.eni_a.clone(), true, false));
    owned_by_alone(&vip, &a, &b).await;

    // Errors come back typed, naming the id; IPv6 is refused before any call.
    let on_secondary = |allocation_id| AwsMode::ElasticIpOnSecondary { allocation_id };
    errors_are_typed(&moto, on_secondary, &vpc.eni_b, &vip, &b).await;
}

#[tokio::test]
async fn sigv4_signing_is_checked_and_a_wrong_secret_is_refused() {
    // moto checks signatures once its first N calls (unauthenticated, to set up IAM) are used.
    let Some(moto) = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]) else {
        return skip("moto_server is not installed or did not start (pip install 'moto[server]')");
    };
    let bootstrap = Credentials::new("AKIAIOSFODNN7EXAMPLE", "bootstrap");
    let iam = QueryClient::new(
        &moto.endpoint(),
        "us-east-1",
        "iam",
        "2010-05-08",
        bootstrap,
    )
    .expect("client");
    iam.call("CreateUser", &[("UserName", "ha")])
        .await
        .expect("CreateUser");
    let key = iam
        .call("CreateAccessKey", &[("UserName", "ha")])
        .await
        .expect("CreateAccessKey");
    let policy =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    iam.call(
        "PutUserPolicy",
        &[
            ("UserName", "ha"),
            ("PolicyName", "all"),
            ("PolicyDocument", policy),
        ],
    )
    .await
    .expect("PutUserPolicy");
    let (id, secret) = (field(&key, "AccessKeyId"), field(&key, "SecretAccessKey"));

    let good = QueryClient::new(
        &moto.endpoint(),
        "us-east-1",
        "ec2",
        EC2_API_VERSION,
        Credentials::new(&id, &secret),
    )
    .expect("client");
    good.call("DescribeVpcs", &[])
        .await
        .expect("a correctly signed call is accepted");

    let wrong = Credentials::new(&id, "not-the-secret");
    let bad = QueryClient::new(&moto.endpoint(), "us-east-1", "ec2", EC2_API_VERSION, wrong)
        .expect("client");
    match bad.call("DescribeVpcs", &[]).await {
        Err(Error::Aws { code, message, .. }) => {
            assert_eq!(code, "AuthFailure", "{message}");
            assert!(
                !message.contains("not-the-secret"),
                "the secret must not appear in errors"
            );
        }
        other => panic!("a wrong secret must be refused, got {other:?}"),
    }
}

/// Desired versus actual in a VPC (issue 20): EC2 notifies nothing, so the reconciler re-reads
/// the association on its period. A Master's Elastic IP moved to another ENI behind its back
/// comes back (reported `Restored`); after the demotion the Elastic IP stays with its last
/// holder on purpose, and the reconciler leaves it there (the mode is not exclusive). A
/// secondary address found on a Backup's ENI (exclusive) is unassigned.
#[cfg(feature = "vrrp")]
#[tokio::test]
async fn a_masters_elastic_ip_moved_away_is_taken_back_on_the_next_read() {
    use ip_manager::failover::{FailoverEvent, VipApplier};
    use std::sync::Arc;
    use vrrp_core::{Event, Reason, State};

    let Some((moto, _ec2, vpc)) = moto_with_vpc().await else {
        return;
    };
    let vip = Vip::parse("10.0.1.50/32", "eth0").expect("vip");
    let period = Duration::from_millis(200);
    let eip = |eni: &str| {
        AwsManager::new(
            client(&moto),
            AwsMode::ElasticIp {
                allocation_id: vpc.allocation.clone(),
            },
            eni,
            None,
        )
        .reconcile_every(period)
    };
    let a = Arc::new(eip(&vpc.eni_a));
    let other = eip(&vpc.eni_b);
    let changed = |from, to| Event::StateChanged {
        from,
        to,
        reason: Reason::MasterDown,
    };
    // The VIP of the first report `pick` accepts, within 5 s each; a failure report fails.
    let until = async |read: &mut tokio::sync::mpsc::Receiver<FailoverEvent>,
                       what: &str,
                       pick: fn(FailoverEvent) -> Option<Vip>| {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(5), read.recv())
                .await
                .unwrap_or_else(|_| panic!("{what} within 5 s"))
                .expect("reports");
            if let FailoverEvent::Failed { error, .. } = &event {
                panic!("{error}");
            }
            if let Some(v) = pick(event) {
                return v;
            }
        }
    };

    let (reports, mut read) = tokio::sync::mpsc::channel(64);
    let mut applier = VipApplier::new(a.clone(), vec![vip.clone()]).reports(reports);
    applier.reconcile().expect("a runtime");
    applier.apply(changed(State::Backup, State::Master)).await;
    assert!(a.owns(&vip).await.expect("owns"));
    // Someone associates the Elastic IP elsewhere (the console, another tool).
    let moved = Instant::now();
    other.add(&vip).await.expect("moved away");
    let v = until(&mut read, "the Elastic IP taken back", |e| match e {
        FailoverEvent::Restored(v) => Some(v),
        _ => None,
    })
    .await;
    assert_eq!(v, vip);
    eprintln!(
        "Elastic IP moved away from the Master: taken back after {:?} (period {period:?})",
        moved.elapsed()
    );
    assert!(a.owns(&vip).await.expect("owns") && !other.owns(&vip).await.expect("owns"));
    let stats = applier.reconcile_counters().expect("polled").stats();
    assert_eq!(stats.restored, 1, "{stats:?}");

    // Demoted: the Elastic IP stays here until the next Master takes it, and the reconciler
    // leaves it alone.
    applier.apply(changed(State::Master, State::Backup)).await;
    tokio::time::sleep(period * 5).await;
    assert!(
        a.owns(&vip).await.expect("owns"),
        "left with its last holder"
    );
    let stats = applier.reconcile_counters().expect("polled").stats();
    assert_eq!((stats.restored, stats.stale_removed), (1, 0), "{stats:?}");
    drop(applier);

    // Secondary address: exclusive. One left on A's ENI while A is a Backup is unassigned.
    let sec = Arc::new(
        AwsManager::new(client(&moto), AwsMode::SecondaryIp, &vpc.eni_a, None)
            .reconcile_every(period),
    );
    sec.add(&vip).await.expect("a leftover");
    let (reports, mut read) = tokio::sync::mpsc::channel(64);
    let mut backup = VipApplier::new(sec.clone(), vec![vip.clone()]).reports(reports);
    backup.reconcile().expect("a runtime");
    backup
        .apply(changed(State::Initialize, State::Backup))
        .await;
    let v = until(&mut read, "the leftover unassigned", |e| match e {
        FailoverEvent::StaleRemoved(v) => Some(v),
        _ => None,
    })
    .await;
    assert_eq!(v, vip);
    assert!(!sec.owns(&vip).await.expect("owns"));
}
