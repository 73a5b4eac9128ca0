//! The `NoBackend` error counts what is configured and why each member is out, so that a
//! 503 logged with it says "3 configured, 3 down" and not "0 configured".

use std::convert::Infallible;

use lb_core::balance::BalanceError;
use lb_core::{AdminState, BackendSet, Balance, Health, LeastConnections, NoBackend, PickContext};
use tower::discover::ServiceList;
use tower::{Service, ServiceExt};

/// One call through `service`; `poll_ready` must succeed (no backend fails the call).
async fn call<S: Service<()>>(service: &mut S) -> Result<S::Response, S::Error>
where
    S::Error: std::fmt::Debug,
{
    service
        .ready()
        .await
        .expect("ready: no backend fails the call, not poll_ready")
        .call(())
        .await
}

#[tokio::test]
async fn all_three_upstreams_down_says_3_configured_3_down() {
    let upstreams = ["web1", "web2", "web3"]
        .map(|name| tower::service_fn(move |_: ()| async move { Ok::<_, Infallible>(name) }));
    let mut balance = Balance::new(ServiceList::new(upstreams), LeastConnections::new());
    call(&mut balance).await.expect("served");
    let set = balance.backends().clone();
    for key in 0..3 {
        set.set_health(&key, Health::Down).expect("a member");
    }
    let err = call(&mut balance).await.expect_err("nothing is up");
    assert!(
        matches!(
            err,
            BalanceError::NoBackend(NoBackend::NoneAvailable {
                members: 3,
                down: 3,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "no backend available: 3 configured, 3 down"
    );
}

#[test]
fn each_member_is_counted_under_one_reason_maintenance_drain_down_weight_0() {
    let set = BackendSet::new(LeastConnections::new());
    for name in ["m", "d", "down", "w0", "down-and-drained"] {
        set.insert(name, 1).expect("a new name");
    }
    set.set_admin(&"m", AdminState::Maintenance)
        .expect("member");
    set.set_admin(&"d", AdminState::Drain).expect("member");
    set.set_health(&"down", Health::Down).expect("member");
    set.set_weight(&"w0", 0).expect("member");
    set.set_health(&"down-and-drained", Health::Down)
        .expect("member");
    set.set_admin(&"down-and-drained", AdminState::Drain)
        .expect("member");
    let err = set
        .pick(&PickContext::default())
        .expect_err("none available");
    assert_eq!(
        err.to_string(),
        "no backend available: 5 configured, 1 in maintenance, 2 drained, 1 down, 1 at weight 0"
    );
    let empty = BackendSet::<&str, _>::new(LeastConnections::new());
    assert_eq!(
        empty
            .pick(&PickContext::default())
            .expect_err("no member")
            .to_string(),
        "no backend available: 0 configured"
    );
}
