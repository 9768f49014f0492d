//! The scheduler: Ballista's, with a session builder that registers Wharf's functions.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::{SchedulerConfig, TaskDistributionPolicy};
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use wharf_datafusion::datafusion::prelude::SessionConfig;
use wharf_datafusion::WharfUdfs;

use crate::{session_state, Error, Result};

/// What `wharf-ballista scheduler` is told on its command line.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address to listen on (`127.0.0.1`, or `0.0.0.0` for every interface).
    pub bind_host: String,
    /// Port of the gRPC service clients and executors connect to.
    pub port: u16,
    /// The host name executors and clients reach this scheduler by.
    pub external_host: String,
    /// Push tasks to executors (Ballista's default), or let executors poll for them.
    pub policy: TaskSchedulingPolicy,
    /// With push scheduling: fill one executor's slots first (`false`, Ballista's default) or
    /// deal tasks out to the executors in turn (`true`).
    pub round_robin: bool,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            bind_host: "127.0.0.1".into(),
            port: 50050,
            external_host: "localhost".into(),
            policy: TaskSchedulingPolicy::PushStaged,
            round_robin: false,
        }
    }
}

/// Ballista's scheduler configuration for `options`, with a session builder that registers
/// `udfs` in every client session the scheduler makes: that session decodes the logical plans
/// clients send, so `wharf_predict` must resolve there, and the scheduler's planning of the job
/// loads the model (the plan-time checks run again, against the scheduler's registry).
pub fn scheduler_config(options: &SchedulerOptions, udfs: &WharfUdfs) -> SchedulerConfig {
    let udfs = udfs.clone();
    let distribution =
        if options.round_robin { TaskDistributionPolicy::RoundRobin } else { TaskDistributionPolicy::Bias };
    SchedulerConfig { bind_host: options.bind_host.clone(), ..SchedulerConfig::default() }
        .with_hostname(options.external_host.clone())
        .with_port(options.port)
        .with_scheduler_policy(options.policy)
        .with_task_distribution(distribution)
        .with_override_session_builder(Arc::new(move |config: SessionConfig| session_state(&udfs, config)))
}

/// Runs the scheduler until `shutdown` completes (or the service fails).
///
/// The port is bound before anything else, so "address in use" is reported as such rather
/// than as a transport error from inside the gRPC service.
pub async fn run_scheduler(
    options: &SchedulerOptions,
    udfs: &WharfUdfs,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let address = format!("{}:{}", options.bind_host, options.port);
    let socket: SocketAddr = address
        .parse()
        .map_err(|e| Error::Listen { address: address.clone(), message: format!("not an IP address and port: {e}") })?;
    let listener = tokio::net::TcpListener::bind(socket)
        .await
        .map_err(|e| Error::Listen { address: address.clone(), message: e.to_string() })?;
    tracing::info!("wharf-ballista scheduler listening on {address}");
    let config = scheduler_config(options, udfs);
    config.validate()?;
    let cluster = BallistaCluster::new_from_config(&config).await?;
    let scheduler = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config)).await?;
    tokio::select! {
        served = start_grpc_service_with_listener(listener, scheduler) => Ok(served?),
        () = shutdown => Ok(()),
    }
}
