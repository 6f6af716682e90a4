//! `array_agg` of OIDs is an `oid[]`.
//!
//! Catalog OID columns are `int4`s that carry their Postgres type in the
//! field's metadata (arrow-pg's [`PG_OID_ALIAS_KEY`]). DataFusion's
//! `array_agg` builds its list from the input's data type alone, so
//! `array_agg(atttypid)` was described as `int4[]` where Postgres sends
//! `oid[]`. That matters to asyncpg, which decodes only `oid[]` and
//! `text[]` without introspecting the type first: an `int4[]` column in
//! its own introspection query recurses. [`OidArrayAgg`] is DataFusion's
//! `array_agg`, with the input's OID kind on its result field.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::functions_aggregate::array_agg::array_agg_udaf;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, GroupsAccumulator, ReversedUDAF,
    Signature,
};
use datafusion_postgres::arrow_pg::datatypes::PG_OID_ALIAS_KEY;

/// DataFusion's `array_agg`, keeping an OID input's kind; see the
/// module's documentation.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct OidArrayAgg {
    inner: Arc<AggregateUDF>,
}

impl OidArrayAgg {
    pub fn udaf() -> AggregateUDF {
        AggregateUDF::from(OidArrayAgg {
            inner: array_agg_udaf(),
        })
    }
}

impl AggregateUDFImpl for OidArrayAgg {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        let field = self.inner.return_field(arg_fields)?;
        let kind = arg_fields
            .first()
            .and_then(|arg| arg.metadata().get(PG_OID_ALIAS_KEY));
        Ok(match kind {
            Some(kind) => {
                let mut metadata = field.metadata().clone();
                metadata.insert(PG_OID_ALIAS_KEY.to_string(), kind.clone());
                Arc::new(Field::clone(&field).with_metadata(metadata))
            }
            None => field,
        })
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.inner().order_sensitivity()
    }

    fn with_beneficial_ordering(
        self: Arc<Self>,
        beneficial_ordering: bool,
    ) -> Result<Option<Arc<dyn AggregateUDFImpl>>> {
        let ordered = self
            .inner
            .inner()
            .clone()
            .with_beneficial_ordering(beneficial_ordering)?;
        Ok(ordered.map(|inner| {
            Arc::new(OidArrayAgg {
                inner: Arc::new(AggregateUDF::new_from_shared_impl(inner)),
            }) as Arc<dyn AggregateUDFImpl>
        }))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.accumulator(args)
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Reversed(Arc::new(OidArrayAgg::udaf()))
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        self.inner.create_groups_accumulator(args)
    }

    fn supports_null_handling_clause(&self) -> bool {
        self.inner.inner().supports_null_handling_clause()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}
