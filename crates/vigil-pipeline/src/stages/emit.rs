//! Stage 4, **emit**: alerts and dead letters reach their outputs (NDJSON synced, or Kafka
//! acknowledged; see [`crate::sink`]) before the batch's manifest entry is written. A crash in between
//! replays the range, and deterministic alert ids let downstream drop the repeats.

use std::time::Instant;

use vigil_normalize::NormalizedBatch;
use vigil_rules::{Alert, format_time_us};

use super::batch::{ClosedBatch, Partition};
use crate::Result;
use crate::run::Pipeline;
use crate::sink::DeadLetterOrigin;

impl Pipeline {
    /// Sends `alerts` and the batch's dead letters to the outputs.
    pub(crate) async fn emit(
        &mut self,
        part: &Partition,
        batch: &ClosedBatch,
        normalized: &NormalizedBatch,
        alerts: &[Alert],
    ) -> Result<()> {
        let stage = Instant::now();
        let ingest_time = format_time_us(batch.ingest_time_us);
        let origin = DeadLetterOrigin {
            normalizer: batch.normalizer.as_ref(),
            partition: &part.id,
            input: &part.input,
            ingest_time: &ingest_time,
        };
        let sent = match self.alerts.alerts(alerts).await {
            Ok(()) => self.dead_letters.dead_letters(&normalized.dead_letters, &origin).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            self.metrics.error("emit", 1);
            return Err(e);
        }
        self.stages.emit += stage.elapsed();
        self.metrics.stage("emit", stage.elapsed());
        self.metrics.alerts_sent(alerts.len() as u64, batch.opened_at.elapsed());
        Ok(())
    }
}
