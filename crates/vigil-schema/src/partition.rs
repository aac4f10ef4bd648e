//! [`PartitionId`]: the one name of a source partition, used as the key everywhere a partition is kept
//! (the pipeline's open batches, metrics and health, rule state, the Kafka source's events).
//!
//! A source partition is one input file (`file-<fingerprint>`, partition 0) or one Kafka topic
//! partition (`topic`, n). Each has its own manifest chain in the archive and its own rule state.

use std::fmt;
use std::sync::Arc;

/// One source partition: its ingest source (a file's chain name or a Kafka topic) and partition number.
/// Displays as `source/partition`, the form logs and metrics labels use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId {
    /// The ingest source: `file-<fingerprint>` or the Kafka topic.
    pub source: Arc<str>,
    /// The partition: 0 for a file, the topic partition for Kafka.
    pub partition: i32,
}

impl PartitionId {
    /// The partition `partition` of `source`.
    pub fn new(source: impl Into<Arc<str>>, partition: i32) -> Self {
        PartitionId { source: source.into(), partition }
    }

    /// The ingest source (file chain name or Kafka topic).
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.source, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::PartitionId;

    #[test]
    fn orders_by_source_then_partition_and_displays_as_a_path() {
        let mut ids = [PartitionId::new("b", 0), PartitionId::new("a", 2), PartitionId::new("a", 10)];
        ids.sort();
        let shown: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["a/2", "a/10", "b/0"]);
    }
}
