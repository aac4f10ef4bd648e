//! The source contract: what every input hands the pipeline, in order, so that one consume loop
//! ([`crate::run`]) reads files, stdin and Kafka alike.
//!
//! ```text
//!  Assigned(partitions) ─> Records(partition, records)* ─> End(partition)        a file, then the next file
//!                                                     └─> Lost(partition, range)  offsets the broker deleted
//!                                                     └─> Revoked(partitions)     a rebalance took them
//!  ... ─> Stopped(caught_up)                                                       nothing more comes
//! ```
//!
//! A source says which partitions it opens ([`Opening`]: identity, normalizer, first offset), hands over
//! their records in offset order, and hears back which offsets are durable ([`Source::durable`]: the
//! Kafka source commits them; a file's checkpoint is its chain head, so files ignore it). On a shutdown
//! the loop calls [`Source::stop`] and the source answers `Stopped`. [`Source::next`] is cancel-safe: the
//! loop selects on it beside its timers.
//!
//! Two sources implement it: [`FileInputs`] (every file input, one after the other, each read on its own
//! thread by [`crate::source`]) and [`KafkaInput`] (one consumer-group member, [`vigil_kafka`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::mpsc;
use vigil_kafka::{KafkaSource, SourceControl, SourceEvent};
use vigil_metrics::Metrics;
use vigil_normalize::{Normalizer, RawRecords};
use vigil_schema::PartitionId;

use crate::source::{ChainLookup, Chunk, InputFile, Oversized, ReadEvent, ReaderSettings, spawn_reader};
use crate::{Error, Result};

/// A partition a source opens: who it is, how its records are read, where its offsets start.
pub(crate) struct Opening {
    pub(crate) id: PartitionId,
    /// What the user named (a path, `-`, `kafka://brokers/topic/partition`).
    pub(crate) input: String,
    pub(crate) normalizer: Arc<dyn Normalizer>,
    /// File offsets (lines) count from 1, Kafka offsets from 0.
    pub(crate) first_offset: i64,
    /// Files: the chain head's last offset the reader checked the file against (the chain must still
    /// end there when the partition opens: else another process archives the same file).
    pub(crate) checked_against: Option<i64>,
    /// Let a batch's archive write run while the next batch is read (files with two or more threads;
    /// Kafka settles each write at once, so offsets commit promptly).
    pub(crate) overlap_archive: bool,
    /// The input ends (a file, not stdin nor Kafka): correlation rules may wait for its end.
    pub(crate) finite: bool,
}

/// Records of one partition, in offset order.
pub(crate) enum Records {
    /// Kafka messages.
    Messages(RawRecords),
    /// File lines or documents, each with the content mark through its end.
    Lines(Chunk),
    /// One file record over the size limit, kept whole.
    TooLarge(Oversized),
}

/// What a source hands the consume loop.
pub(crate) enum Event {
    /// Partitions opened (Kafka: possibly none, the member joined its group).
    Assigned(Vec<Opening>),
    /// Records of one partition.
    Records { partition: PartitionId, records: Records },
    /// Offsets `first..=last` were deleted by the broker before they were read.
    Lost { partition: PartitionId, first: i64, last: i64, reason: String },
    /// A file ended: its partition is done. `last_offset`: the last offset read (a trailing blank line
    /// included); `already_archived`: records at or before the chain head, not sent.
    End { partition: PartitionId, last_offset: i64, already_archived: u64 },
    /// A rebalance took partitions away: make their open batches durable (or, `lost`, drop them
    /// unwritten), then send on `done`.
    Revoked { partitions: Vec<PartitionId>, lost: bool, done: std::sync::mpsc::SyncSender<()> },
    /// Nothing more comes. `caught_up`: every input was read to its end (files) or to the end offsets
    /// seen at assignment (Kafka, `until_caught_up`).
    Stopped { caught_up: bool },
    /// The source failed; nothing follows.
    Failed(Error),
}

/// One of the pipeline's sources.
pub(crate) enum Source {
    Files(FileInputs),
    Kafka(KafkaInput),
}

impl Source {
    /// The next event (cancel-safe).
    pub(crate) async fn next(&mut self) -> Event {
        match self {
            Source::Files(files) => files.next().await,
            Source::Kafka(kafka) => kafka.next().await,
        }
    }

    /// How to open a partition that delivers records before it was announced (Kafka only).
    pub(crate) fn opening(&self, partition: &PartitionId) -> Result<Opening> {
        match self {
            Source::Kafka(kafka) => kafka.opening(partition),
            Source::Files(_) => Err(Error::Internal(format!("records of {partition}, which the reader never opened"))),
        }
    }

    /// Everything of `partition` before `next_offset` is durable in the archive.
    pub(crate) fn durable(&self, partition: &PartitionId, next_offset: i64) {
        if let Source::Kafka(kafka) = self {
            kafka.control.durable(partition, next_offset);
        }
    }

    /// A shutdown was requested: finish; `Stopped` follows.
    pub(crate) fn stop(&mut self) {
        match self {
            Source::Files(files) => files.stopping = true,
            Source::Kafka(kafka) => kafka.control.stop(),
        }
    }

    /// A live source (Kafka) never ends by itself: its batches close on their deadline whatever arrives,
    /// and its quiet partitions feed silence rules. A finite one (files) is read as fast as it comes.
    pub(crate) fn is_live(&self) -> bool {
        matches!(self, Source::Kafka(_))
    }
}

struct Reading {
    file: InputFile,
    normalizer: Arc<dyn Normalizer>,
    events: mpsc::Receiver<ReadEvent>,
    partition: Option<PartitionId>,
}

/// Every file input (stdin included), read one after the other.
pub(crate) struct FileInputs {
    files: VecDeque<(InputFile, Arc<dyn Normalizer>)>,
    reading: Option<Reading>,
    settings: ReaderSettings,
    lookup: ChainLookup,
    overlap_archive: bool,
    metrics: Metrics,
    stopping: bool,
}

impl FileInputs {
    /// The files, each with its normalizer; `lookup` finds a chain's head (the file's identity).
    pub(crate) fn new(
        files: Vec<(InputFile, Arc<dyn Normalizer>)>,
        settings: ReaderSettings,
        lookup: ChainLookup,
        overlap_archive: bool,
        metrics: Metrics,
    ) -> Self {
        FileInputs { files: files.into(), reading: None, settings, lookup, overlap_archive, metrics, stopping: false }
    }

    async fn next(&mut self) -> Event {
        loop {
            if self.stopping {
                // What was read is made durable by the loop; the rest is read on the next run.
                self.reading = None;
                return Event::Stopped { caught_up: false };
            }
            let Some(reading) = self.reading.as_mut() else {
                let Some((file, normalizer)) = self.files.pop_front() else {
                    return Event::Stopped { caught_up: true };
                };
                let events = spawn_reader(file.clone(), normalizer.framing(), self.settings, self.lookup.clone());
                self.reading = Some(Reading { file, normalizer, events, partition: None });
                continue;
            };
            let event = reading.events.recv().await;
            let display = &reading.file.display;
            let partition = reading.partition.clone();
            return match (event, partition) {
                (Some(ReadEvent::Start { ingest_source, resume_after }), None) => {
                    let id = PartitionId::new(ingest_source, 0);
                    reading.partition = Some(id.clone());
                    Event::Assigned(vec![Opening {
                        id,
                        input: display.clone(),
                        normalizer: reading.normalizer.clone(),
                        first_offset: 1,
                        checked_against: Some(resume_after),
                        overlap_archive: self.overlap_archive,
                        finite: reading.file.path.is_some(),
                    }])
                }
                (Some(ReadEvent::Chunk(chunk)), Some(partition)) => {
                    Event::Records { partition, records: Records::Lines(chunk) }
                }
                (Some(ReadEvent::TooLarge(record)), Some(partition)) => {
                    Event::Records { partition, records: Records::TooLarge(record) }
                }
                (Some(ReadEvent::End { last_offset, already_archived }), Some(partition)) => {
                    self.reading = None;
                    Event::End { partition, last_offset, already_archived }
                }
                (Some(ReadEvent::Failed(e)), _) => {
                    self.metrics.error("read", 1);
                    Event::Failed(e)
                }
                (None, None) => Event::Failed(Error::Internal(format!("reader of {display} ended before starting"))),
                (Some(ReadEvent::Start { .. }), Some(_)) | (None, Some(_)) => {
                    Event::Failed(Error::Internal(format!("reader of {display} stopped without an end")))
                }
                (Some(_), None) => Event::Failed(Error::Internal(format!("reader of {display} sent records first"))),
            };
        }
    }
}

/// Which normalizer reads which topic: exact names first, then `^` patterns in config order.
pub(crate) struct TopicRoutes {
    pub(crate) exact: HashMap<String, Arc<dyn Normalizer>>,
    pub(crate) patterns: Vec<(regex::Regex, Arc<dyn Normalizer>)>,
}

impl TopicRoutes {
    fn route(&self, topic: &str) -> Option<Arc<dyn Normalizer>> {
        self.exact
            .get(topic)
            .cloned()
            .or_else(|| self.patterns.iter().find(|(re, _)| re.is_match(topic)).map(|(_, n)| n.clone()))
    }
}

/// The Kafka inputs, through one consumer-group member.
pub(crate) struct KafkaInput {
    pub(crate) source: KafkaSource,
    pub(crate) control: SourceControl,
    pub(crate) routes: TopicRoutes,
    /// The brokers, as the partitions' inputs name them.
    pub(crate) brokers: String,
}

impl KafkaInput {
    fn opening(&self, partition: &PartitionId) -> Result<Opening> {
        let topic = partition.source();
        let normalizer = self
            .routes
            .route(topic)
            .ok_or_else(|| Error::Internal(format!("topic {topic} matches no input although subscribed")))?;
        Ok(Opening {
            id: partition.clone(),
            input: format!("kafka://{}/{topic}/{}", self.brokers, partition.partition),
            normalizer,
            first_offset: 0,
            checked_against: None,
            overlap_archive: false,
            finite: false,
        })
    }

    async fn next(&mut self) -> Event {
        match self.source.events.recv().await {
            Some(SourceEvent::Assigned { partitions }) => {
                match partitions.iter().map(|p| self.opening(p)).collect::<Result<Vec<Opening>>>() {
                    Ok(openings) => Event::Assigned(openings),
                    Err(e) => Event::Failed(e),
                }
            }
            Some(SourceEvent::Records { partition, records }) => {
                Event::Records { partition, records: Records::Messages(records) }
            }
            Some(SourceEvent::Lost { partition, first, last, reason }) => {
                Event::Lost { partition, first, last, reason }
            }
            Some(SourceEvent::Revoked { partitions, lost, done }) => Event::Revoked { partitions, lost, done },
            Some(SourceEvent::Stopped { caught_up }) => Event::Stopped { caught_up },
            Some(SourceEvent::Failed(e)) => Event::Failed(e.into()),
            None => Event::Failed(Error::Internal("the Kafka source stopped without saying why".into())),
        }
    }
}
