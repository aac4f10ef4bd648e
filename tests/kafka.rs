//! A real Kafka-protocol broker for tests: each [`Broker`] is its own tansu process (started by
//! `deploy/local/kafka.sh` in a temporary directory, sqlite storage, a free loopback port), so tests
//! run in parallel and may stop and restart their broker. Clients are rdkafka's, with the bundled
//! librdkafka.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::repo;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A tansu broker of one test.
pub struct Broker {
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

/// A message read back: key, value, headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key as text.
    pub key: String,
    /// Value.
    pub value: Vec<u8>,
    /// Headers as text.
    pub headers: Vec<(String, String)>,
}

fn script() -> PathBuf {
    repo().join("deploy/local/kafka.sh")
}

impl Broker {
    /// Starts a broker, or returns `None` (after saying so) when tansu is not installed and
    /// `VIGIL_REQUIRE_KAFKA` is unset. `scripts/test.sh` installs it and sets `VIGIL_REQUIRE_KAFKA=1`.
    pub fn start() -> Option<Broker> {
        Self::start_with(false)
    }

    /// Like [`Broker::start`]; `authentication` makes the broker require SASL logins.
    pub fn start_with(authentication: bool) -> Option<Broker> {
        if !crate::service_installed("kafka.sh", "VIGIL_REQUIRE_KAFKA", "Kafka broker (tansu)") {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut broker = Broker { dir, address: String::new() };
        let mut cmd = broker.command("start");
        if authentication {
            cmd.env("VIGIL_KAFKA_AUTH", "1");
        }
        let out = cmd.output().expect("kafka.sh runs");
        assert!(out.status.success(), "kafka.sh start failed: {}", String::from_utf8_lossy(&out.stderr));
        broker.address = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Some(broker)
    }

    fn command(&self, verb: &str) -> Command {
        let mut cmd = Command::new(script());
        cmd.arg(verb).env("VIGIL_KAFKA_DIR", self.dir.path());
        cmd
    }

    /// Stops the broker (its data stays).
    pub fn stop(&self) {
        let out = self.command("stop").output().expect("kafka.sh runs");
        assert!(out.status.success(), "kafka.sh stop failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&self) {
        let out = self.command("start").output().expect("kafka.sh runs");
        assert!(out.status.success(), "kafka.sh start failed: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), self.address, "same address after restart");
    }

    /// Creates a topic.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let out = self.command("topic").arg(name).arg(partitions.to_string()).output().expect("kafka.sh runs");
        assert!(out.status.success(), "creating topic {name} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.address);
        c
    }

    /// Produces `values` round-robin over `partitions` partitions (value `i` to partition `i % partitions`)
    /// and waits for every acknowledgement.
    pub fn produce(&self, topic: &str, partitions: i32, values: &[Vec<u8>]) {
        let producer: FutureProducer =
            self.client().set("linger.ms", "20").set("enable.idempotence", "true").create().expect("producer");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            for (c, chunk) in values.chunks(5000).enumerate() {
                let sends = chunk.iter().enumerate().map(|(i, v)| {
                    let partition = ((c * 5000 + i) % partitions as usize) as i32;
                    producer.send(FutureRecord::<(), _>::to(topic).partition(partition).payload(v), TIMEOUT)
                });
                for result in futures::future::join_all(sends).await {
                    result.expect("produced");
                }
            }
        });
    }

    /// End offsets (high watermarks) of partitions `0..partitions`.
    pub fn end_offsets(&self, topic: &str, partitions: i32) -> Vec<i64> {
        let consumer: BaseConsumer = self.client().set("group.id", "vigil-test-peek").create().expect("consumer");
        (0..partitions).map(|p| consumer.fetch_watermarks(topic, p, TIMEOUT).expect("watermarks").1).collect()
    }

    /// Offsets committed by `group` for partitions `0..partitions` (-1 when none; -2 each when the broker
    /// did not answer, e.g. right after a restart).
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
        let consumer: BaseConsumer = self.client().set("group.id", group).create().expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        let committed = match consumer.committed_offsets(tpl, TIMEOUT) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("committed offsets of {group}: {e}");
                return vec![-2; partitions as usize];
            }
        };
        (0..partitions)
            .map(|p| match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(n)) => n,
                _ => -1,
            })
            .collect()
    }

    /// Every message of a topic, read from the beginning up to the end offsets.
    pub fn read_all(&self, topic: &str, partitions: i32) -> Vec<Received> {
        let ends = self.end_offsets(topic, partitions);
        let consumer: BaseConsumer = self.client().set("group.id", "vigil-test-read").create().expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
        }
        consumer.assign(&tpl).expect("assign");
        let mut out = Vec::new();
        let mut next = vec![0i64; partitions as usize];
        let mut idle = 0;
        while next.iter().zip(&ends).any(|(n, e)| n < e) && idle < 1200 {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    idle = 0;
                    next[m.partition() as usize] = m.offset() + 1;
                    let headers = m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|x| {
                                    (
                                        x.key.to_string(),
                                        String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    out.push(Received {
                        partition: m.partition(),
                        offset: m.offset(),
                        key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                        value: m.payload().unwrap_or_default().to_vec(),
                        headers,
                    });
                }
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => idle += 1,
            }
        }
        out
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.command("stop").output();
        if std::thread::panicking() {
            // A failed test shows what the broker said last.
            let log = std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- last lines of the broker's log ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}
