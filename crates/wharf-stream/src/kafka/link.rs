//! The cluster: errors naming it, the topic check at start-up, topic creation.

use std::sync::Arc;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use wharf_core::{Result, WharfError};

use super::url::KafkaTopicUrl;
use super::{ADAPTER, CONNECT_TIMEOUT};

pub(super) fn backend(url: &KafkaTopicUrl, what: &str, e: KafkaError) -> WharfError {
    WharfError::backend(ADAPTER, format!("{}: {what} failed", url.name()), Some(e.into()))
}

/// Asks the cluster for the topic's metadata, so a wrong address or a missing topic fails
/// when the worker starts.
pub(super) fn check_topic(client: &rdkafka::client::Client<impl ClientContext>, url: &KafkaTopicUrl) -> Result<()> {
    let metadata = client
        .fetch_metadata(Some(&url.topic), CONNECT_TIMEOUT)
        .map_err(|e| backend(url, &format!("reaching the brokers within {}s", CONNECT_TIMEOUT.as_secs()), e))?;
    match metadata.topics().iter().find(|t| t.name() == url.topic) {
        Some(topic) if topic.error().is_none() => Ok(()),
        _ => Err(WharfError::invalid(url.name(), format!("the cluster has no topic `{}`", url.topic))),
    }
}

/// Creates the topic named in `url` with `partitions` partitions (replication factor 1, for
/// a test or a single-broker cluster), unless it exists; answers whether it created it.
///
/// The source and sink never create topics themselves: on a real cluster the partition
/// count is the ceiling on parallel workers and the replication factor is the durability,
/// decisions that belong to whoever runs the cluster.
pub fn create_topic(url: &KafkaTopicUrl, partitions: i32) -> Result<bool> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &url.brokers)
        .create()
        .map_err(|e| backend(url, "creating the admin client", e))?;
    let topic = NewTopic::new(&url.topic, partitions.max(1), TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(CONNECT_TIMEOUT)).request_timeout(Some(CONNECT_TIMEOUT));
    let results =
        block_on(admin.create_topics([&topic], &options)).map_err(|e| backend(url, "creating the topic", e))?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(true),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(false),
        Some(Err((_, code))) => Err(backend(url, "creating the topic", KafkaError::AdminOp(code))),
        None => Err(WharfError::backend(
            ADAPTER,
            format!("{}: the cluster did not answer the topic creation", url.name()),
            None,
        )),
    }
}

/// Runs a future to completion on this thread. The admin client's futures are completed
/// by librdkafka's own polling thread, so no async runtime is needed — only a waker that
/// unparks this thread.
pub(super) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(value) => return value,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{KafkaSink, KafkaSource};
    use super::*;
    use std::time::Instant;

    #[test]
    fn an_unreachable_cluster_fails_at_open_naming_it() {
        // A port nothing listens on: the metadata request times out.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let url = KafkaTopicUrl::parse(&format!("kafka://127.0.0.1:{port}/rows?group=g&consumer=w1")).expect("parse");
        let started = Instant::now();
        let err = KafkaSource::open(&url).expect_err("no broker").to_string();
        assert!(err.contains(&format!("kafka://127.0.0.1:{port}/rows")), "{err}");
        assert!(err.contains("reaching the brokers"), "{err}");
        assert!(started.elapsed() < CONNECT_TIMEOUT * 3, "open waited {:?}", started.elapsed());
        let err = KafkaSink::open(&url, "w1").expect_err("no broker").to_string();
        assert!(err.contains("reaching the brokers"), "{err}");
    }
}
