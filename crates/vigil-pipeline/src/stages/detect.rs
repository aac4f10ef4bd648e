//! Stage 3, **detect**: the rule engine runs the pack over the batch's events with the partition's own
//! rule state (its stateful rules' windows, sequences and keys), releasing what it holds when the batch
//! ends the input. The engine's own findings are counted here: a rule quarantined on this batch
//! (`rule_failed`), events dated too far ahead (`event_time_in_future`) and events that reached a
//! stateful rule late (below its watermark).

use std::time::Instant;

use vigil_normalize::NormalizedBatch;
use vigil_rules::Alert;

use super::batch::Partition;
use crate::Result;
use crate::run::Pipeline;

impl Pipeline {
    /// The alerts of `normalized`.
    pub(crate) async fn detect(&mut self, part: &mut Partition, normalized: &NormalizedBatch) -> Result<Vec<Alert>> {
        let stage = Instant::now();
        let state = &mut part.rules.state;
        let late_before = self.engine.counters(state);
        let mut alerts: Vec<Alert> = self.engine.evaluate(state, &normalized.batches).await?;
        if part.end_of_input {
            alerts.extend(self.engine.finish(state));
        }
        for (rule, counters) in self.engine.counters(state) {
            let late = counters.late.saturating_sub(late_before.get(&rule).map_or(0, |c| c.late));
            if late > 0 {
                self.metrics.late(&rule, late);
            }
        }
        for alert in &alerts {
            match alert.rule_id.as_str() {
                vigil_rules::budget::RULE_FAILED => {
                    let rule = alert.fields.get("rule").and_then(|v| v.as_str()).unwrap_or_default();
                    self.metrics.rule_quarantined(rule);
                    self.metrics.error("rules", 1);
                }
                vigil_rules::budget::EVENT_TIME_IN_FUTURE => {
                    let n = alert.fields.get("count").and_then(|v| v.as_u64()).unwrap_or_default();
                    part.summary.future_dated += n;
                    self.metrics.future_dated(&part.id, n);
                }
                _ => {}
            }
        }
        self.stages.rules += stage.elapsed();
        self.metrics.stage("rules", stage.elapsed());
        Ok(alerts)
    }
}
