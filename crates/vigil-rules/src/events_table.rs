//! The `events` table the rules query: a provider whose batches are swapped in per micro-batch, so each
//! rule is planned once and only its physical plan is made per batch.

use std::sync::{Arc, RwLock};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::{Error, Result};

/// The `events` table: batches swapped in per micro-batch.
#[derive(Debug)]
pub(crate) struct EventsTable {
    pub(crate) schema: SchemaRef,
    partitions: RwLock<Arc<Vec<Vec<RecordBatch>>>>,
}

impl EventsTable {
    pub(crate) fn new(schema: SchemaRef) -> Self {
        EventsTable { schema, partitions: RwLock::new(Arc::new(Vec::new())) }
    }

    pub(crate) fn set(&self, partitions: Vec<Vec<RecordBatch>>) -> Result<()> {
        *self.partitions.write().map_err(|_| Error::Eval {
            rule: "(engine)".into(),
            source: DataFusionError::Internal("events table lock poisoned".into()),
        })? = Arc::new(partitions);
        Ok(())
    }
}

#[async_trait]
impl TableProvider for EventsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let partitions =
            self.partitions.read().map_err(|_| DataFusionError::Internal("events table lock poisoned".into()))?.clone();
        let exec = MemorySourceConfig::try_new_exec(&partitions, self.schema.clone(), projection.cloned())?;
        Ok(exec)
    }
}
