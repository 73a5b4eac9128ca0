//! The configured backend as an [`IpManager`]: AWS ids, region and credentials resolved from
//! the config, the environment, then the instance metadata service (IMDSv2).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ip_manager::{
    AwsManager, AwsMode, Changes, Credentials, EC2_API_VERSION, ExecHook, ExecManager, Imds,
    IpManager, NetlinkManager, QueryClient, Reconcile, Vip,
};
use tracing::{info, warn};

use super::{AwsBackend, ExecBackend, VipBackend};

/// Why an instance's `vip_backend` could not start. Each names the instance and the fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An id or the region is neither configured nor known to the instance metadata service.
    #[error(
        "instance {instance}: vip_backend: {key} is not set and the instance metadata service did not answer ({source}): set {key} in vip_backend, or run on EC2 with IMDSv2 enabled"
    )]
    Identity {
        /// The instance's name.
        instance: String,
        /// The key to set (`network_interface_id`, `region`).
        key: &'static str,
        /// What the metadata service said.
        #[source]
        source: ip_manager::Error,
    },
    /// No credentials in the environment, no profile file, no instance role.
    #[error(
        "instance {instance}: vip_backend: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, an ~/.aws/credentials profile (AWS_PROFILE), or attach an instance role (environment: {environment}; instance metadata: {imds})"
    )]
    Credentials {
        /// The instance's name.
        instance: String,
        /// Why the environment and profile gave none.
        environment: ip_manager::Error,
        /// Why the metadata service gave none.
        imds: ip_manager::Error,
    },
    /// The EC2 client could not be built.
    #[error("instance {instance}: vip_backend: {source}")]
    Client {
        /// The instance's name.
        instance: String,
        /// The client's error.
        #[source]
        source: ip_manager::Error,
    },
}

/// The backend of instance `instance` as an [`IpManager`]; `netlink` serves `kind = "netlink"`
/// and the interface half of `mode = "secondary-ip"` and `mode = "elastic-ip-on-secondary"`.
pub(crate) async fn start(
    instance: &str,
    backend: &VipBackend,
    netlink: &Arc<NetlinkManager>,
) -> Result<Arc<dyn IpManager>, StartError> {
    match backend {
        VipBackend::Netlink => Ok(netlink.clone()),
        VipBackend::Exec(e) => Ok(Arc::new(exec(e))),
        VipBackend::Aws(a) => {
            let cloud: Arc<dyn IpManager> = Arc::new(aws(instance, a).await?);
            if matches!(
                a.mode,
                AwsMode::SecondaryIp | AwsMode::ElasticIpOnSecondary { .. }
            ) {
                // The VPC routes the address to the ENI; the host must also hold it (EC2 does
                // not configure a secondary address on the host), or the traffic is dropped.
                Ok(Arc::new(CloudAndInterface {
                    cloud,
                    interface: netlink.clone(),
                }))
            } else {
                Ok(cloud)
            }
        }
    }
}

fn exec(e: &ExecBackend) -> ExecManager {
    // `sh -c 'CMD "$@"' vrrpd ADDRESS/PREFIX INTERFACE`: the script gets the two arguments as
    // keepalived's scripts get theirs, after the ones written in the config.
    let hook = |command: &str| ExecHook::shell(format!("{command} \"$@\"")).timeout(e.timeout);
    ExecManager::new(hook(&e.add), hook(&e.remove))
}

/// How long role credentials from the metadata service are used before they are fetched
/// again. EC2 rotates them hours before they expire; a Backup idle for days must not take over
/// with expired ones.
const ROLE_CREDENTIALS_MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// The AWS manager, rebuilt with fresh role credentials when they come from the instance.
#[derive(Debug)]
struct Aws {
    settings: Settings,
    /// Set when the credentials are the instance role's: where to refresh them.
    imds: Option<Imds>,
    current: tokio::sync::Mutex<(Arc<AwsManager>, Instant)>,
    /// What the manager says about reconciliation (its mode's, the same for every refresh).
    reconcile: Reconcile,
}

#[derive(Debug)]
struct Settings {
    instance: String,
    mode: AwsMode,
    eni: String,
    private_ip: Option<String>,
    region: String,
    endpoint: Option<String>,
}

impl Settings {
    fn manager(&self, credentials: Credentials) -> Result<AwsManager, ip_manager::Error> {
        let ec2 = match &self.endpoint {
            Some(url) => QueryClient::new(url, &self.region, "ec2", EC2_API_VERSION, credentials)?,
            None => QueryClient::ec2(&self.region, credentials)?,
        };
        Ok(AwsManager::new(
            ec2,
            self.mode.clone(),
            self.eni.clone(),
            self.private_ip.clone(),
        ))
    }
}

async fn aws(instance: &str, a: &AwsBackend) -> Result<Aws, StartError> {
    let env_region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .ok()
        .filter(|r| !r.is_empty());
    let configured_region = a.region.clone().or(env_region);
    // The metadata service is asked only for what the config and environment leave open.
    let (eni, region) = match (a.network_interface_id.clone(), configured_region) {
        (Some(eni), Some(region)) => (eni, region),
        (eni, region) => {
            let key = if eni.is_none() {
                "network_interface_id"
            } else {
                "region"
            };
            let identity_error = |source| StartError::Identity {
                instance: instance.to_owned(),
                key,
                source,
            };
            let identity = Imds::new()
                .map_err(identity_error)?
                .identity()
                .await
                .map_err(identity_error)?;
            (
                eni.unwrap_or(identity.eni),
                region.unwrap_or(identity.region),
            )
        }
    };
    let (credentials, imds) = match Credentials::from_environment() {
        Ok(c) => (c, None),
        Err(environment) => {
            let from_role = match Imds::new() {
                Ok(imds) => imds.credentials().await.map(|c| (c, imds)),
                Err(e) => Err(e),
            };
            match from_role {
                Ok((c, imds)) => (c, Some(imds)),
                Err(imds) => {
                    return Err(StartError::Credentials {
                        instance: instance.to_owned(),
                        environment,
                        imds,
                    });
                }
            }
        }
    };
    let settings = Settings {
        instance: instance.to_owned(),
        mode: a.mode.clone(),
        eni,
        private_ip: a.private_ip.map(|ip| ip.to_string()),
        region,
        endpoint: a.endpoint.clone(),
    };
    let manager = settings
        .manager(credentials)
        .map_err(|source| StartError::Client {
            instance: instance.to_owned(),
            source,
        })?;
    info!(
        instance,
        mode = ?settings.mode,
        eni = %settings.eni,
        region = %settings.region,
        role_credentials = imds.is_some(),
        "AWS virtual address backend"
    );
    Ok(Aws {
        settings,
        imds,
        reconcile: manager.reconcile(),
        current: tokio::sync::Mutex::new((Arc::new(manager), Instant::now())),
    })
}

impl Aws {
    /// The manager, with role credentials fetched again once they are old. A failed refresh
    /// keeps the old ones (they are still valid for hours) and says so.
    async fn manager(&self) -> Arc<AwsManager> {
        let mut current = self.current.lock().await;
        if let Some(imds) = &self.imds
            && current.1.elapsed() > ROLE_CREDENTIALS_MAX_AGE
        {
            match imds
                .credentials()
                .await
                .and_then(|c| self.settings.manager(c))
            {
                Ok(m) => *current = (Arc::new(m), Instant::now()),
                Err(e) => warn!(
                    instance = %self.settings.instance,
                    "refreshing the instance role's credentials failed, keeping the current ones: {e}"
                ),
            }
        }
        current.0.clone()
    }
}

#[async_trait]
impl IpManager for Aws {
    async fn add(&self, vip: &Vip) -> Result<(), ip_manager::Error> {
        self.manager().await.add(vip).await
    }

    async fn remove(&self, vip: &Vip) -> Result<(), ip_manager::Error> {
        self.manager().await.remove(vip).await
    }

    async fn list(&self, interface: &str) -> Result<Vec<Vip>, ip_manager::Error> {
        self.manager().await.list(interface).await
    }

    async fn owns(&self, vip: &Vip) -> Result<bool, ip_manager::Error> {
        self.manager().await.owns(vip).await
    }

    fn reconcile(&self) -> Reconcile {
        self.reconcile
    }
}

/// `mode = "secondary-ip"` and `"elastic-ip-on-secondary"`: the VPC assigns the address to the
/// ENI (with the Elastic IP on it in the second), and the interface holds it.
struct CloudAndInterface {
    cloud: Arc<dyn IpManager>,
    interface: Arc<NetlinkManager>,
}

#[async_trait]
impl IpManager for CloudAndInterface {
    async fn add(&self, vip: &Vip) -> Result<(), ip_manager::Error> {
        self.cloud.add(vip).await?;
        self.interface.add(vip).await
    }

    async fn remove(&self, vip: &Vip) -> Result<(), ip_manager::Error> {
        // Off the interface first, whatever the API says: two hosts must not both answer.
        let local = self.interface.remove(vip).await;
        self.cloud.remove(vip).await?;
        local
    }

    async fn list(&self, interface: &str) -> Result<Vec<Vip>, ip_manager::Error> {
        self.interface.list(interface).await
    }

    async fn owns(&self, vip: &Vip) -> Result<bool, ip_manager::Error> {
        Ok(self.interface.owns(vip).await? || self.cloud.owns(vip).await?)
    }

    /// A Master needs both halves.
    async fn in_place(&self, vip: &Vip) -> Result<bool, ip_manager::Error> {
        Ok(self.interface.owns(vip).await? && self.cloud.in_place(vip).await?)
    }

    /// The interface's notifications and the cloud's period. Exclusive whatever the cloud
    /// says: the interface half must leave a Backup (a cloud half kept on purpose stays, and
    /// the reconciler does not try again).
    fn reconcile(&self) -> Reconcile {
        let cloud = self.cloud.reconcile();
        let both = Reconcile::notified();
        match cloud.poll {
            Some(period) => both.and_polled(period),
            None => both,
        }
    }

    fn watch(&self) -> Result<Option<Changes>, ip_manager::Error> {
        self.interface.watch()
    }
}
