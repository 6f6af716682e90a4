//! What Postgres clients expect to find besides the frames: a `pg_catalog`
//! that reflects the real hives, boxes and frames, and the functions clients
//! call on connect (`version()`, `current_database()`, `pg_get_userbyid`,
//! `has_*_privilege`, `format_type`, …).
//!
//! Both come from the datafusion-postgres project's `datafusion-pg-catalog`
//! crate (see docs/decisions.md); this module wires them to Apiary: one
//! `pg_catalog` schema shared by every hive, and the functions registered in
//! each connection's session with that connection's database.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::activity::{StatActivity, StatGssapi};
use crate::builtin::Settings;
use crate::cancel::Cancels;
use crate::declared_columns::{DeclaredColumn, Part};
use crate::indexes;
use crate::information_schema::{self, InformationSchemas};
use crate::oid_arrays::OidArrayAgg;
use crate::origins;
use crate::pg_settings::{PgSettings, ShowAllSettings};
use crate::regclass;
use crate::regproc::{load_proc_oids, RegprocCasts};
use crate::roles::{self, RoleView, Roles};
use crate::types::postgres_schema;
use apiary_engine::catalog::provider::{HiveList, SystemSchemas};
use apiary_engine::catalog::Catalog;
use apiary_engine::postgres::keywords::{keywords, Keyword};
use apiary_engine::postgres::DeclaredTypes;
use arrow::array::{
    new_null_array, ArrayRef, AsArray, BooleanArray, Int16Array, Int16Builder, Int32Array,
    ListBuilder, RecordBatch, StringArray, StructArray,
};
use arrow::datatypes::{Field, Fields, Int64Type, SchemaRef};
use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{CatalogProviderList, SchemaProvider, TableFunctionImpl, TableProvider};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::Column;
use datafusion::datasource::{provider_as_source, MemTable, ViewTable};
use datafusion::error::DataFusionError;
use datafusion::error::Result as DfResult;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::functions::string::expr_fn::concat;
use datafusion::logical_expr::{
    col, create_udf, lit, ColumnarValue, Expr, JoinType, LogicalPlan, LogicalPlanBuilder,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::{
    self as pgc, array_bounds_udf, context::EmptyContextProvider, format_type,
    generate_series_arg_coercion::CoerceIntArgsToBigInt, has_privilege_udf,
    oid_type_planner::PgOidTypePlanner, quote_ident_udf, PgCatalogSchemaProvider,
    PgCatalogStaticTables,
};

/// The Postgres version Apiary speaks; drivers parse the leading number.
/// 15 is the oldest major that current clients support, so psql and
/// pg_dump 15, 16 and 17 all accept it (pg_dump refuses a server newer
/// than itself); it is also the release the differential suite compares
/// answers with (docs/decisions.md).
pub const SERVER_VERSION: &str = "15.0";

/// [`SERVER_VERSION`] as `server_version_num` reads.
pub const SERVER_VERSION_NUM: &str = "150000";

/// The `version()` banner: Postgres-shaped first, then who is answering.
pub fn version_banner() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (Apiary {}) on {}-linux, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

/// The node-wide Postgres catalog, built once at start.
pub struct PgCatalog {
    schema: Arc<dyn SchemaProvider>,
    information_schema: Arc<InformationSchemas>,
    cancels: Arc<Cancels>,
    /// Relation OIDs by (schema, name), read from `pg_class` again when a
    /// result column comes from a relation not in it yet.
    relation_oids: tokio::sync::Mutex<HashMap<(String, String), i32>>,
    /// The registry, for the frames' indexes (`pg_get_indexdef`).
    catalog: Arc<Catalog>,
}

impl PgCatalog {
    /// `cancels` lists the node's connections (`pg_stat_activity`) and
    /// cancels their statements (`pg_cancel_backend`).
    pub fn new(catalog: Arc<Catalog>, cancels: Arc<Cancels>) -> DfResult<Self> {
        let static_tables = Arc::new(PgCatalogStaticTables::try_new()?);
        let information_schema = Arc::new(InformationSchemas::new(catalog.clone()));
        let hives: Arc<dyn CatalogProviderList> = Arc::new(HiveList::new(catalog.clone()));
        let view = |stream: Arc<dyn PartitionStream>| -> DfResult<Arc<dyn TableProvider>> {
            Ok(Arc::new(StreamingTable::try_new(
                stream.schema().clone(),
                vec![stream],
            )?))
        };
        let schema = Arc::new(PgCatalogSchema {
            inner: Arc::new(PgCatalogSchemaProvider::try_new(
                hives,
                static_tables.clone(),
                EmptyContextProvider,
            )?),
            settings: view(Arc::new(PgSettings::new()))?,
            stat_activity: view(Arc::new(StatActivity::new(cancels.clone())))?,
            stat_gssapi: view(Arc::new(StatGssapi::new(cancels.clone())))?,
            roles: view(Arc::new(Roles::new(RoleView::Roles)))?,
            user: view(Arc::new(Roles::new(RoleView::User)))?,
            catalog: catalog.clone(),
        });
        load_proc_oids(&static_tables.pg_proc);
        Ok(PgCatalog {
            schema,
            information_schema,
            cancels,
            relation_oids: Default::default(),
            catalog,
        })
    }

    /// `plan`'s result columns as RowDescription sends them: each column
    /// that comes straight from a frame or a catalog marked with the
    /// relation's OID and its attribute number (see origins.rs); `None`
    /// when no column does. Unqualified names resolve in `hive`.`boxname`.
    pub async fn described(
        &self,
        plan: &LogicalPlan,
        hive: &str,
        boxname: &str,
    ) -> Option<SchemaRef> {
        let origins = origins::origins(plan);
        if origins.iter().all(Option::is_none) {
            return None;
        }
        let schema = postgres_schema(plan.schema().as_arrow());
        let mut oids = self.relation_oids.lock().await;
        let mut fields = Vec::with_capacity(origins.len());
        let mut read = false;
        for (field, origin) in schema.fields().iter().zip(origins) {
            let Some(origin) = origin else {
                fields.push(field.clone());
                continue;
            };
            let table = origin.table.resolve(hive, boxname);
            let key = (table.schema.to_string(), table.table.to_string());
            if !oids.contains_key(&key) && !read {
                read = true;
                if let Ok(current) = regclass::relation_oids(self.schema.as_ref()).await {
                    *oids = current;
                }
            }
            let mut metadata = field.metadata().clone();
            if let Some(oid) = oids.get(&key) {
                metadata.insert(origins::TABLE_OID_KEY.into(), oid.to_string());
                metadata.insert(origins::ATTNUM_KEY.into(), origin.attnum.to_string());
            }
            fields.push(Arc::new(field.as_ref().clone().with_metadata(metadata)));
        }
        Some(Arc::new(arrow::datatypes::Schema::new_with_metadata(
            fields,
            schema.metadata().clone(),
        )))
    }

    /// `pg_catalog` and `information_schema` as schemas of every hive.
    pub fn system_schemas(&self) -> SystemSchemas {
        Arc::new(vec![
            ("pg_catalog".to_string(), Arc::new(self.schema.clone())),
            (
                "information_schema".to_string(),
                self.information_schema.clone(),
            ),
        ])
    }

    /// Registers the Postgres functions in a connection's context;
    /// `current_database()` answers `database`, `pg_backend_pid()` the
    /// connection's `pid`, and `current_setting()` / `set_config()` read and
    /// write the connection's `settings`.
    pub fn install_functions(
        &self,
        ctx: &SessionContext,
        database: &str,
        pid: i32,
        settings: &Settings,
    ) {
        for function in [
            SettingFunction::current_setting,
            SettingFunction::set_config,
        ] {
            ctx.register_udf(ScalarUDF::from(function(settings.clone())));
        }
        ctx.register_udf(pgc::create_current_database_udf(database));
        // `pg_settings` reads the scanning connection's values from here.
        ctx.state_ref()
            .write()
            .config_mut()
            .set_extension(Arc::new(settings.clone()));
        ctx.register_udtf(
            "pg_show_all_settings",
            Arc::new(ShowAllSettings(settings.clone())),
        );
        ctx.register_udf(backend_signal(
            "pg_cancel_backend",
            &self.cancels,
            Cancels::cancel_backend,
        ));
        ctx.register_udf(backend_signal(
            "pg_terminate_backend",
            &self.cancels,
            Cancels::terminate_backend,
        ));
        // Frames have the default privileges and no triggers (pg_dump).
        ctx.register_udf(Answer::null("acldefault", DataType::Utf8));
        ctx.register_udf(Answer::null("pg_get_triggerdef", DataType::Utf8));
        // Sizes Apiary does not track per tablespace (psql's `\db+`), and
        // descriptions of extension members (`\dx+`).
        ctx.register_udf(Answer::null("pg_tablespace_size", DataType::Int64));
        ctx.register_udf(Answer::null("pg_describe_object", DataType::Utf8));
        // Tablespaces have no directory; the one encoding is UTF8 (psql's
        // `\db` and `\dO`).
        ctx.register_udf(Answer::always(
            "pg_tablespace_location",
            ScalarValue::Utf8(Some(String::new())),
        ));
        ctx.register_udf(Answer::always(
            "pg_char_to_encoding",
            ScalarValue::Int32(Some(6)),
        ));
        ctx.register_udf(constant(
            "getdatabaseencoding",
            ScalarValue::Utf8(Some("UTF8".to_string())),
        ));
        // No node is a standby: every one reads and writes the root.
        ctx.register_udf(constant(
            "pg_is_in_recovery",
            ScalarValue::Boolean(Some(false)),
        ));
        ctx.add_analyzer_rule(Arc::new(RegprocCasts::default()));
        ctx.register_udf(ScalarUDF::from(CurrentSchema::new("current_schema")));
        ctx.register_udf(ScalarUDF::from(CurrentSchema::new("current_schemas")));
        for name in [
            "has_table_privilege",
            "has_schema_privilege",
            "has_database_privilege",
            "has_any_column_privilege",
        ] {
            ctx.register_udf(has_privilege_udf::create_has_privilege_udf(name));
        }
        ctx.register_udf(pgc::create_pg_table_is_visible());
        // Every function, type and collation Apiary lists is on the search
        // path (frames have one collation; SQLAlchemy's reflection asks).
        for name in [
            "pg_function_is_visible",
            "pg_type_is_visible",
            "pg_collation_is_visible",
            "pg_conversion_is_visible",
            "pg_operator_is_visible",
            "pg_opclass_is_visible",
            "pg_opfamily_is_visible",
            "pg_statistics_obj_is_visible",
            "pg_ts_config_is_visible",
            "pg_ts_dict_is_visible",
            "pg_ts_parser_is_visible",
            "pg_ts_template_is_visible",
        ] {
            ctx.register_udf(Answer::always(name, ScalarValue::Boolean(Some(true))));
        }
        // One role does everything (`\du` in psql 15.20 and later asks).
        ctx.register_udf(Answer::always(
            "pg_has_role",
            ScalarValue::Boolean(Some(true)),
        ));
        ctx.register_udf(regclass::regclass(self.schema.clone()));
        ctx.register_udf(size_pretty());
        ctx.register_udf(crate::types::pg_typeof());
        ctx.register_udf(format_type::create_format_type_udf());
        // `current_user`, `session_user` and `user`: who connected, the
        // role that owns everything here (see roles.rs).
        let user = roles::current_user(settings);
        ctx.register_udf(constant(
            "session_user",
            ScalarValue::Utf8(Some(user.clone())),
        ));
        ctx.register_udf(userbyid(user));
        ctx.register_udtf("pg_get_keywords", Arc::new(Keywords));
        // Set-returning functions over what frames do not have (partitions
        // of a partitioned table, a text search parser's token types):
        // psql's `\dP+` and `\dFp+` join them.
        ctx.register_udtf(
            "pg_partition_tree",
            NoRows::new(&[
                ("relid", DataType::Int32),
                ("parentrelid", DataType::Int32),
                ("isleaf", DataType::Boolean),
                ("level", DataType::Int32),
            ]),
        );
        ctx.register_udtf(
            "ts_token_type",
            NoRows::new(&[
                ("tokid", DataType::Int32),
                ("alias", DataType::Utf8),
                ("description", DataType::Utf8),
            ]),
        );
        ctx.register_udf(pgc::create_pg_get_partkeydef_udf());
        ctx.register_udf(pgc::create_pg_relation_is_publishable_udf());
        ctx.register_udf(pgc::create_pg_get_statisticsobjdef_columns_udf());
        ctx.register_udf(encoding_to_char());
        ctx.register_udf(constant("pg_backend_pid", ScalarValue::Int32(Some(pid))));
        ctx.register_udf(pgc::create_pg_relation_size_udf());
        ctx.register_udf(pgc::create_pg_total_relation_size_udf());
        ctx.register_udf(pgc::create_pg_stat_get_numscans());
        ctx.register_udf(pgc::create_pg_get_constraintdef());
        ctx.register_udf(pgc::create_pg_get_partition_ancestors_udf());
        ctx.register_udf(quote_ident_udf::create_parse_ident_udf());
        ctx.register_udf(array_bounds_udf::create_array_upper_udf());
        ctx.register_udf(array_bounds_udf::create_array_lower_udf());
        ctx.register_udf(constant(
            "version",
            ScalarValue::Utf8(Some(version_banner())),
        ));
        // Connection pools (asyncpg) reset sessions with this on release.
        ctx.register_udf(constant(
            "pg_advisory_unlock_all",
            ScalarValue::Boolean(Some(true)),
        ));
        // Apiary has no user-defined types: `to_regtype('hstore')` finds none.
        ctx.register_udf(Answer::null("to_regtype", DataType::Int32));
        // Frames carry no comments, serial columns or indexes (SQLAlchemy's
        // reflection asks); functions and views have no SQL definitions
        // psql's `\df` or SQLAlchemy's `get_view_definition` could show,
        // and columns no defaults (`pg_get_expr` of pg_attrdef's, which
        // pgJDBC's `getColumns` reads as COLUMN_DEF).
        for name in [
            "obj_description",
            "col_description",
            "shobj_description",
            "pg_get_serial_sequence",
            "pg_get_function_result",
            "pg_get_function_arguments",
            "pg_get_function_identity_arguments",
            "pg_get_functiondef",
            "pg_get_function_sqlbody",
            "pg_get_viewdef",
            "pg_get_expr",
        ] {
            ctx.register_udf(Answer::null(name, DataType::Utf8));
        }
        ctx.register_udf(indexes::IndexDefinition::udf(self.catalog.clone()));
        // Sizes psql's `\dt+` and `\l+` show; unknown here, so empty.
        for name in ["pg_table_size", "pg_indexes_size", "pg_database_size"] {
            ctx.register_udf(Answer::null(name, DataType::Int64));
        }
        ctx.register_udf(like_escape());
        ctx.register_udf(ScalarUDF::from(JsonBuildObject::new()));
        ctx.register_udf(expand_index_keys());
        ctx.register_udaf(OidArrayAgg::udaf());

        // `'x'::regclass` and friends must parse; see the crate's docs.
        let state = ctx.state_ref();
        let current = state.read().clone();
        *state.write() = SessionStateBuilder::new_from_existing(current)
            .with_type_planner(Arc::new(DeclaredTypes::over(Arc::new(PgOidTypePlanner))))
            .build();
        CoerceIntArgsToBigInt::widen(ctx);
    }
}

/// A zero-argument function returning `value`.
fn constant(name: &str, value: ScalarValue) -> datafusion::logical_expr::ScalarUDF {
    create_udf(
        name,
        vec![],
        value.data_type(),
        Volatility::Stable,
        Arc::new(move |_| Ok(ColumnarValue::Scalar(value.clone()))),
    )
}

/// `pg_get_userbyid(oid)`: the connected user for OID 10, else a
/// predefined role's name.
fn userbyid(user: String) -> ScalarUDF {
    create_udf(
        "pg_get_userbyid",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let oids = ColumnarValue::values_to_arrays(args)?;
            let names: StringArray = oids[0]
                .as_primitive::<Int64Type>()
                .iter()
                .map(|oid| oid.map(|oid| roles::role_name(oid as i32, &user)))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(names)))
        }),
    )
}

/// `pg_cancel_backend(pid)` or `pg_terminate_backend(pid)` over this
/// node's connections: true when one has the process id.
fn backend_signal(
    name: &str,
    cancels: &Arc<Cancels>,
    signal: fn(&Cancels, i32) -> bool,
) -> ScalarUDF {
    let cancels = cancels.clone();
    create_udf(
        name,
        vec![DataType::Int64],
        DataType::Boolean,
        Volatility::Volatile,
        Arc::new(move |args: &[ColumnarValue]| {
            let pids = ColumnarValue::values_to_arrays(args)?;
            let signalled: BooleanArray = pids[0]
                .as_primitive::<Int64Type>()
                .iter()
                .map(|pid| pid.map(|pid| i32::try_from(pid).is_ok_and(|pid| signal(&cancels, pid))))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(signalled)))
        }),
    )
}

/// The crate's `pg_catalog` with the `pg_class` columns it lacks and
/// clients read (SQLAlchemy's index reflection selects `reloptions`):
/// `relacl` and `reloptions`, NULL as for a relation without either; and
/// Apiary's own `pg_settings`, `pg_stat_activity`, `pg_stat_gssapi`,
/// `pg_roles` and `pg_user`.
#[derive(Debug)]
struct PgCatalogSchema {
    inner: Arc<dyn SchemaProvider>,
    settings: Arc<dyn TableProvider>,
    stat_activity: Arc<dyn TableProvider>,
    stat_gssapi: Arc<dyn TableProvider>,
    roles: Arc<dyn TableProvider>,
    user: Arc<dyn TableProvider>,
    /// The registry, for frames' declared column types.
    catalog: Arc<Catalog>,
}

#[async_trait]
impl SchemaProvider for PgCatalogSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        names.extend(APIARY_TABLES.iter().map(|name| name.to_string()));
        names.sort();
        names.dedup();
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        match name {
            "pg_settings" => return Ok(Some(self.settings.clone())),
            "pg_stat_activity" => return Ok(Some(self.stat_activity.clone())),
            "pg_stat_gssapi" => return Ok(Some(self.stat_gssapi.clone())),
            "pg_roles" => return Ok(Some(self.roles.clone())),
            "pg_user" => return Ok(Some(self.user.clone())),
            "pg_indexes" => {
                let Some((pg_class, pg_namespace)) = self.frames_and_namespaces().await? else {
                    return Ok(None);
                };
                return indexes::pg_indexes(&self.catalog, pg_class, pg_namespace).map(Some);
            }
            _ => {}
        }
        let table = match self.inner.table(name).await? {
            Some(table) => Some(table),
            None => empty_catalog(name)?,
        };
        let Some(table) = self.shaped(name, table).await? else {
            return Ok(None);
        };
        // Every catalog row knows its catalog's OID (pg_dump reads it).
        match catalog_oid(name) {
            Some(oid) => {
                let tableoid = lit(ScalarValue::Int32(Some(oid))).alias("tableoid");
                reshaped(name, table, |_| None, vec![tableoid]).map(Some)
            }
            None => Ok(Some(table)),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        APIARY_TABLES.contains(&name) || self.inner.table_exist(name)
    }
}

/// The OID of a PostgreSQL system catalog (`pg_class` is 1259).
pub fn catalog_oid(name: &str) -> Option<i32> {
    CATALOG_OIDS
        .iter()
        .find(|(catalog, _)| *catalog == name)
        .map(|(_, oid)| *oid)
}

/// The OIDs of PostgreSQL 15's system catalogs, for their `tableoid`.
const CATALOG_OIDS: &[(&str, i32)] = &[
    ("pg_aggregate", 2600),
    ("pg_am", 2601),
    ("pg_amop", 2602),
    ("pg_amproc", 2603),
    ("pg_attrdef", 2604),
    ("pg_attribute", 1249),
    ("pg_auth_members", 1261),
    ("pg_authid", 1260),
    ("pg_cast", 2605),
    ("pg_class", 1259),
    ("pg_collation", 3456),
    ("pg_constraint", 2606),
    ("pg_conversion", 2607),
    ("pg_database", 1262),
    ("pg_db_role_setting", 2964),
    ("pg_default_acl", 826),
    ("pg_depend", 2608),
    ("pg_description", 2609),
    ("pg_enum", 3501),
    ("pg_event_trigger", 3466),
    ("pg_extension", 3079),
    ("pg_foreign_data_wrapper", 2328),
    ("pg_foreign_server", 1417),
    ("pg_foreign_table", 3118),
    ("pg_index", 2610),
    ("pg_inherits", 2611),
    ("pg_init_privs", 3394),
    ("pg_language", 2612),
    ("pg_largeobject", 2613),
    ("pg_largeobject_metadata", 2995),
    ("pg_namespace", 2615),
    ("pg_opclass", 2616),
    ("pg_operator", 2617),
    ("pg_opfamily", 2753),
    ("pg_parameter_acl", 6243),
    ("pg_partitioned_table", 3350),
    ("pg_policy", 3256),
    ("pg_proc", 1255),
    ("pg_publication", 6104),
    ("pg_publication_namespace", 6237),
    ("pg_publication_rel", 6106),
    ("pg_range", 3541),
    ("pg_replication_origin", 6000),
    ("pg_rewrite", 2618),
    ("pg_seclabel", 3596),
    ("pg_sequence", 2224),
    ("pg_shdepend", 1214),
    ("pg_shdescription", 2396),
    ("pg_shseclabel", 3592),
    ("pg_statistic", 2619),
    ("pg_statistic_ext", 3381),
    ("pg_statistic_ext_data", 3429),
    ("pg_subscription", 6100),
    ("pg_subscription_rel", 6102),
    ("pg_tablespace", 1213),
    ("pg_transform", 3576),
    ("pg_trigger", 2620),
    ("pg_ts_config", 3602),
    ("pg_ts_config_map", 3603),
    ("pg_ts_dict", 3600),
    ("pg_ts_parser", 3601),
    ("pg_ts_template", 3764),
    ("pg_type", 1247),
    ("pg_user_mapping", 1418),
];

/// Catalogs Apiary adds to the crate's: its own views, and catalogs that
/// are empty here (no transforms, security labels, user mappings or text
/// search configuration maps).
pub const APIARY_TABLES: [&str; 8] = [
    "pg_stat_activity",
    "pg_indexes",
    "pg_user",
    "pg_settings",
    "pg_transform",
    "pg_seclabels",
    "pg_user_mappings",
    "pg_ts_config_map",
];

/// A catalog the crate lacks and Apiary has nothing in.
fn empty_catalog(name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
    let columns: &[(&str, DataType)] = match name {
        "pg_transform" => &[
            ("oid", DataType::Int32),
            ("trftype", DataType::Int32),
            ("trflang", DataType::Int32),
            ("trffromsql", DataType::Int32),
            ("trftosql", DataType::Int32),
        ],
        "pg_ts_config_map" => &[
            ("mapcfg", DataType::Int32),
            ("maptokentype", DataType::Int32),
            ("mapseqno", DataType::Int32),
            ("mapdict", DataType::Int32),
        ],
        "pg_user_mappings" => &[
            ("umid", DataType::Int32),
            ("srvid", DataType::Int32),
            ("srvname", DataType::Utf8),
            ("umuser", DataType::Int32),
            ("usename", DataType::Utf8),
            ("umoptions", DataType::new_list(DataType::Utf8, true)),
        ],
        "pg_seclabels" => &[
            ("objoid", DataType::Int32),
            ("classoid", DataType::Int32),
            ("objsubid", DataType::Int32),
            ("objtype", DataType::Utf8),
            ("objnamespace", DataType::Int32),
            ("objname", DataType::Utf8),
            ("provider", DataType::Utf8),
            ("label", DataType::Utf8),
        ],
        _ => return Ok(None),
    };
    let schema = Arc::new(arrow::datatypes::Schema::new(
        columns
            .iter()
            .map(|(column, data_type)| Field::new(*column, data_type.clone(), true))
            .collect::<Vec<_>>(),
    ));
    Ok(Some(Arc::new(MemTable::try_new(schema, vec![vec![]])?)))
}

impl PgCatalogSchema {
    /// The crate's `pg_class` and `pg_namespace`, which list the frames of
    /// the connection's hive.
    async fn frames_and_namespaces(
        &self,
    ) -> DfResult<Option<(Arc<dyn TableProvider>, Arc<dyn TableProvider>)>> {
        Ok(
            match (
                self.inner.table("pg_class").await?,
                self.inner.table("pg_namespace").await?,
            ) {
                (Some(pg_class), Some(pg_namespace)) => Some((pg_class, pg_namespace)),
                _ => None,
            },
        )
    }

    /// `pg_type` as PostgreSQL 15 has it: each frame with its row type (a
    /// composite type, `typrelid` the frame) and that type's array type,
    /// as pgJDBC's `getUDTs` and `getTypeInfo` list them, shaped after the
    /// rows of `pg_class`'s own types; without the crate's rows for views
    /// newer than 15.
    async fn types(&self, pg_type: Arc<dyn TableProvider>) -> DfResult<Arc<dyn TableProvider>> {
        let Some(pg_class) = self.inner.table("pg_class").await? else {
            return Ok(pg_type);
        };
        let newer = NEWER_THAN_15.iter().map(|name| lit(*name)).collect();
        let system =
            LogicalPlanBuilder::scan("pg_type", provider_as_source(pg_type.clone()), None)?
                .filter(col("typname").in_list(newer, true))?
                .build()?;
        let frame_oid = || col("c.oid");
        let of_frames = |template: &str, computed: &dyn Fn(&str) -> Option<Expr>| {
            let columns: Vec<Expr> = pg_type
                .schema()
                .fields()
                .iter()
                .map(|f| {
                    let name = f.name().as_str();
                    computed(name)
                        .unwrap_or_else(|| col(Column::new(Some("t"), name)))
                        .alias(name)
                })
                .collect();
            LogicalPlanBuilder::scan("c", provider_as_source(pg_class.clone()), None)?
                .cross_join(
                    LogicalPlanBuilder::scan("t", provider_as_source(pg_type.clone()), None)?
                        .filter(col("typname").eq(lit(template)))?
                        .build()?,
                )?
                .project(columns)?
                .build()
        };
        let row_types = of_frames("pg_class", &|column| match column {
            "oid" => Some(frame_oid() + lit(ROW_TYPE_OID_OFFSET)),
            "typname" => Some(col("c.relname")),
            "typnamespace" => Some(col("c.relnamespace")),
            "typrelid" => Some(frame_oid()),
            "typarray" => Some(frame_oid() + lit(ARRAY_TYPE_OID_OFFSET)),
            _ => None,
        })?;
        let array_types = of_frames("_pg_class", &|column| match column {
            "oid" => Some(frame_oid() + lit(ARRAY_TYPE_OID_OFFSET)),
            "typname" => Some(concat(vec![lit("_"), col("c.relname")])),
            "typnamespace" => Some(col("c.relnamespace")),
            "typelem" => Some(frame_oid() + lit(ROW_TYPE_OID_OFFSET)),
            _ => None,
        })?;
        let plan = LogicalPlanBuilder::from(system)
            .union(row_types)?
            .union(array_types)?
            .build()?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }

    /// `pg_attribute` with frames' declared types (`varchar(20)`,
    /// `numeric(10,2)`; see declared_columns.rs), found through the
    /// column's relation and namespace; and its option and ACL arrays as
    /// NULL arrays (pg_dump's `array_to_string(attoptions, ', ')`).
    async fn attributes(
        &self,
        pg_attribute: Arc<dyn TableProvider>,
    ) -> DfResult<Arc<dyn TableProvider>> {
        let (Some(pg_class), Some(pg_namespace)) = (
            self.inner.table("pg_class").await?,
            self.inner.table("pg_namespace").await?,
        ) else {
            return Ok(pg_attribute);
        };
        let relations = LogicalPlanBuilder::scan("c", provider_as_source(pg_class), None)?
            .project(vec![
                col("c.oid").alias("rel_oid"),
                col("c.relname").alias("rel_name"),
                col("c.relnamespace").alias("rel_namespace"),
            ])?
            .build()?;
        let namespaces = LogicalPlanBuilder::scan("n", provider_as_source(pg_namespace), None)?
            .project(vec![
                col("n.oid").alias("ns_oid"),
                col("n.nspname").alias("ns_name"),
            ])?
            .build()?;
        let declared = |part| {
            ScalarUDF::from(DeclaredColumn::new(self.catalog.clone(), part)).call(vec![
                col("ns_name"),
                col("rel_name"),
                col("a.attname"),
                col(match part {
                    Part::TypeOid => "a.atttypid",
                    Part::TypeModifier => "a.atttypmod",
                }),
            ])
        };
        let nulls = null_array(DataType::Utf8)?;
        let columns: Vec<Expr> = pg_attribute
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let name = f.name().as_str();
                match name {
                    "atttypid" => declared(Part::TypeOid).alias(name),
                    "atttypmod" => declared(Part::TypeModifier).alias(name),
                    "attacl" | "attoptions" | "attfdwoptions" => nulls.clone().alias(name),
                    _ => col(format!("a.{name}")).alias(name),
                }
            })
            .collect();
        let plan = LogicalPlanBuilder::scan("a", provider_as_source(pg_attribute), None)?
            .join(
                relations,
                JoinType::Left,
                (vec!["a.attrelid"], vec!["rel_oid"]),
                None,
            )?
            .join(
                namespaces,
                JoinType::Left,
                (vec!["rel_namespace"], vec!["ns_oid"]),
                None,
            )?
            .project(columns)?
            .build()?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }

    /// The catalog `name` as Apiary shows it, from the crate's `table`.
    async fn shaped(
        &self,
        name: &str,
        table: Option<Arc<dyn TableProvider>>,
    ) -> DfResult<Option<Arc<dyn TableProvider>>> {
        match table {
            Some(pg_class) if name == "pg_class" => {
                let nulls = null_array(DataType::Utf8)?;
                let added = vec![nulls.clone().alias("relacl"), nulls.alias("reloptions")];
                // Frames belong to the one role (OID 10) that owns everything,
                // each has its row type (see `types`), and those with
                // indexes say so (psql's `\d` then lists them).
                let indexed: Vec<Expr> = indexes::indexed_frames(&self.catalog)
                    .into_iter()
                    .map(lit)
                    .collect();
                let owner = |column: &str| match column {
                    "relowner" => Some(lit(ScalarValue::Int32(Some(10))).alias(column)),
                    "reltype" => Some((col("oid") + lit(ROW_TYPE_OID_OFFSET)).alias(column)),
                    "relhasindex" if !indexed.is_empty() => {
                        Some(col("relname").in_list(indexed.clone(), false).alias(column))
                    }
                    _ => None,
                };
                let frames = reshaped(name, pg_class, owner, added)?;
                let system = system_relations(&frames.schema(), |schema, relation| match schema {
                    "pg_catalog" => self.table_exist(relation),
                    _ => information_schema::VIEWS
                        .iter()
                        .any(|(view, _)| *view == relation),
                })?;
                let with_system = with_rows(name, frames, system)?;
                let Some((crate_class, pg_namespace)) = self.frames_and_namespaces().await? else {
                    return Ok(Some(with_system));
                };
                indexes::with_index_relations(&self.catalog, with_system, crate_class, pg_namespace)
                    .await
                    .map(Some)
            }
            Some(pg_index) if name == "pg_index" => {
                let Some((pg_class, pg_namespace)) = self.frames_and_namespaces().await? else {
                    return Ok(Some(pg_index));
                };
                indexes::pg_index(&self.catalog, pg_index, pg_class, pg_namespace)
                    .await
                    .map(Some)
            }
            Some(pg_namespace) if name == "pg_namespace" => {
                let system = system_namespaces(&pg_namespace.schema())?;
                null_arrays(name, with_rows(name, pg_namespace, system)?).map(Some)
            }
            Some(pg_type) if name == "pg_type" => {
                self.types(null_arrays(name, pg_type)?).await.map(Some)
            }
            Some(table) if NULL_ARRAYS.iter().any(|(catalog, _)| *catalog == name) => {
                null_arrays(name, table).map(Some)
            }
            // PostgreSQL 15 calls `colllocale` `colliculocale` (psql 15's `\dO`).
            Some(pg_collation) if name == "pg_collation" => {
                let renamed = col("colllocale").alias("colliculocale");
                reshaped(name, pg_collation, |_| None, vec![renamed]).map(Some)
            }
            // The crate's rows are the rules of Postgres's system views,
            // which `pg_class` does not list; frames have no rules.
            Some(pg_rewrite) if name == "pg_rewrite" => Ok(Some(Arc::new(MemTable::try_new(
                pg_rewrite.schema(),
                vec![vec![]],
            )?))),
            Some(pg_attribute) if name == "pg_attribute" => {
                self.attributes(pg_attribute).await.map(Some)
            }
            // The vectors of a catalog with no rows are NULL arrays.
            Some(table) if name == "pg_partitioned_table" => {
                let ints = null_array(DataType::Int32)?;
                let as_array = |column: &str| match column {
                    "partattrs" | "partclass" | "partcollation" => Some(ints.clone().alias(column)),
                    _ => None,
                };
                reshaped(name, table, as_array, vec![]).map(Some)
            }
            // `conkey`/`confkey` are `int2[]` (Metabase's foreign keys:
            // `attnum = ANY(conkey)`); the crate keeps them as text.
            Some(pg_constraint) if name == "pg_constraint" => {
                let int2_array = ScalarUDF::from(Int2Array::new());
                let as_array = |column: &str| match column {
                    "conkey" | "confkey" => Some(
                        int2_array
                            .call(vec![col(Column::new_unqualified(column))])
                            .alias(column),
                    ),
                    _ => None,
                };
                reshaped(name, pg_constraint, as_array, vec![]).map(Some)
            }
            other => Ok(other),
        }
    }
}

/// `table` with `rows` after its own.
pub(crate) fn with_rows(
    name: &str,
    table: Arc<dyn TableProvider>,
    rows: RecordBatch,
) -> DfResult<Arc<dyn TableProvider>> {
    let added = MemTable::try_new(rows.schema(), vec![vec![rows]])?;
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(table), None)?
        .union(
            LogicalPlanBuilder::scan(
                format!("{name}_system"),
                provider_as_source(Arc::new(added)),
                None,
            )?
            .build()?,
        )?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// Array columns of PostgreSQL's catalogs that the crate holds as text:
/// NULL arrays here, as for objects with default privileges and no options.
/// psql reads them with `array_to_string` (`\dn+`, `\df+`, `\dT+`, `\ddp`,
/// `\des+`, `\drds`) or `= ANY` (`\dX`); pg_dump compares `proacl` with
/// `initprivs`.
const NULL_ARRAYS: &[(&str, &str)] = &[
    ("pg_namespace", "nspacl"),
    ("pg_db_role_setting", "setconfig"),
    ("pg_proc", "proacl"),
    ("pg_proc", "proconfig"),
    ("pg_init_privs", "initprivs"),
    ("pg_type", "typacl"),
    ("pg_default_acl", "defaclacl"),
    ("pg_foreign_server", "srvacl"),
    ("pg_foreign_server", "srvoptions"),
    ("pg_foreign_data_wrapper", "fdwacl"),
    ("pg_foreign_data_wrapper", "fdwoptions"),
    ("pg_foreign_table", "ftoptions"),
    ("pg_user_mapping", "umoptions"),
    ("pg_language", "lanacl"),
    ("pg_tablespace", "spcacl"),
    ("pg_tablespace", "spcoptions"),
    ("pg_statistic_ext", "stxkind"),
];

/// `table` (the catalog `name`) with its [`NULL_ARRAYS`] columns that the
/// crate holds as text replaced by NULL arrays.
fn null_arrays(name: &str, table: Arc<dyn TableProvider>) -> DfResult<Arc<dyn TableProvider>> {
    let schema = table.schema();
    let nulls = null_array(DataType::Utf8)?;
    let as_array = |column: &str| {
        let listed = NULL_ARRAYS.contains(&(name, column));
        let text = schema
            .field_with_name(column)
            .is_ok_and(|f| f.data_type() == &DataType::Utf8);
        (listed && text).then(|| nulls.clone().alias(column))
    };
    reshaped(name, table, as_array, vec![])
}

/// A NULL array of `element`s: the value of the catalogs' ACL, option
/// and vector columns, which frames never have.
fn null_array(element: DataType) -> DfResult<Expr> {
    Ok(lit(ScalarValue::try_from(DataType::new_list(
        element, true,
    ))?))
}

/// `table` under `name` with some columns computed (`replace` gives their
/// expression) and `added` columns after its own.
fn reshaped(
    name: &str,
    table: Arc<dyn TableProvider>,
    replace: impl Fn(&str) -> Option<Expr>,
    added: Vec<Expr>,
) -> DfResult<Arc<dyn TableProvider>> {
    let mut columns: Vec<Expr> = table
        .schema()
        .fields()
        .iter()
        .map(|f| replace(f.name()).unwrap_or_else(|| col(Column::new_unqualified(f.name()))))
        .collect();
    columns.extend(added);
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(table), None)?
        .project(columns)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// Reads the crate's text form of an `int2[]` (`[2, 20, 3]`) as an array.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Int2Array {
    signature: Signature,
}

impl Int2Array {
    fn new() -> Self {
        Int2Array {
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Int2Array {
    fn name(&self) -> &str {
        "apiary_int2_array"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::new_list(DataType::Int16, true))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let texts = ColumnarValue::values_to_arrays(&args.args)?;
        let mut arrays = ListBuilder::new(Int16Builder::new());
        for text in texts[0].as_string::<i32>() {
            match text {
                Some(text) => {
                    let keys = text
                        .split(|c: char| !(c.is_ascii_digit() || c == '-'))
                        .filter_map(|key| key.parse::<i16>().ok());
                    arrays.append_value(keys.map(Some));
                }
                None => arrays.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(arrays.finish())))
    }
}

/// The system schemas' `pg_namespace` rows, with the OIDs the crate's
/// catalog rows point at: `pg_type.typnamespace` and `pg_proc.pronamespace`
/// are `pg_catalog` (11) or `information_schema` (13283, its OID in the
/// PostgreSQL the crate's rows come from). Npgsql loads types by joining
/// them; pg_dump fails on a namespace it cannot find.
fn system_namespaces(schema: &SchemaRef) -> DfResult<RecordBatch> {
    const ROWS: [(i32, &str); 3] = [
        (PG_CATALOG_OID, "pg_catalog"),
        (99, "pg_toast"),
        (INFORMATION_SCHEMA_OID, "information_schema"),
    ];
    let columns = schema
        .fields()
        .iter()
        .map(|field| -> ArrayRef {
            match field.name().as_str() {
                "oid" => Arc::new(Int32Array::from_iter_values(ROWS.map(|(oid, _)| oid))),
                "nspname" => Arc::new(StringArray::from_iter_values(ROWS.map(|(_, name)| name))),
                "nspowner" => Arc::new(Int32Array::from(vec![10; ROWS.len()])),
                _ => new_null_array(field.data_type(), ROWS.len()),
            }
        })
        .collect();
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// A frame's row type's OID is the frame's plus this, its array type's
/// plus [`ARRAY_TYPE_OID_OFFSET`]: far above the OIDs the catalog crate
/// hands out from 16384, and below 2^31 as an `oid` column holds them.
const ROW_TYPE_OID_OFFSET: i32 = 1 << 29;
const ARRAY_TYPE_OID_OFFSET: i32 = 1 << 30;

/// The crate's `pg_type` rows for views PostgreSQL 15 lacks, and their
/// array types.
const NEWER_THAN_15: [&str; 6] = [
    "pg_stat_checkpointer",
    "_pg_stat_checkpointer",
    "pg_stat_io",
    "_pg_stat_io",
    "pg_wait_events",
    "_pg_wait_events",
];

/// The OID of the `pg_catalog` namespace.
const PG_CATALOG_OID: i32 = 11;
/// The OID of `information_schema` in the PostgreSQL the crate's catalog
/// rows come from.
const INFORMATION_SCHEMA_OID: i32 = 13283;

/// PostgreSQL 15's own tables and views, `oid schema name relkind` a line.
const SYSTEM_RELATIONS: &str = include_str!("system_relations.txt");

/// `pg_class` rows for the system tables and views Apiary serves (those
/// `served(schema, name)` accepts), with PostgreSQL 15's OIDs. pgAdmin
/// tells the system schemas by them (`relname = 'pg_class' AND
/// relnamespace = n.oid`), and `\dS` lists them.
fn system_relations(
    schema: &SchemaRef,
    served: impl Fn(&str, &str) -> bool,
) -> DfResult<RecordBatch> {
    type Row = (i32, i32, &'static str, &'static str);
    let rows: Vec<Row> = SYSTEM_RELATIONS
        .lines()
        .filter_map(|line| {
            let [oid, namespace, name, kind] = line.split(' ').collect::<Vec<_>>()[..] else {
                return None;
            };
            let namespace_oid = match namespace {
                "pg_catalog" => PG_CATALOG_OID,
                _ => INFORMATION_SCHEMA_OID,
            };
            let oid = oid.parse().ok()?;
            served(namespace, name).then_some((oid, namespace_oid, name, kind))
        })
        .collect();
    let ints = |value: fn(&Row) -> i32| -> ArrayRef {
        Arc::new(Int32Array::from_iter_values(rows.iter().map(value)))
    };
    let texts = |value: fn(&Row) -> &'static str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(value)))
    };
    let columns = schema
        .fields()
        .iter()
        .map(|field| -> DfResult<ArrayRef> {
            Ok(match field.name().as_str() {
                "oid" => ints(|row| row.0),
                "relnamespace" => ints(|row| row.1),
                "relname" => texts(|row| row.2),
                "relkind" => texts(|row| row.3),
                "relowner" => ints(|_| 10),
                "relpersistence" => texts(|_| "p"),
                "relreplident" => texts(|_| "n"),
                "relispopulated" => Arc::new(BooleanArray::from(vec![true; rows.len()])),
                _ if field.is_nullable() => new_null_array(field.data_type(), rows.len()),
                _ if field.data_type() == &DataType::Utf8 => texts(|_| ""),
                _ => ScalarValue::new_zero(field.data_type())?.to_array_of_size(rows.len())?,
            })
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Postgres's `like_escape(pattern, escape)`: the pattern rewritten to use
/// the backslash as its escape character, the only one DataFusion's LIKE
/// knows. An empty `escape` turns escaping off.
fn like_escape() -> ScalarUDF {
    create_udf(
        "like_escape",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let patterns = arrays[0].as_string::<i32>();
            let escapes = arrays[1].as_string::<i32>();
            let converted: StringArray = patterns
                .iter()
                .zip(escapes.iter())
                .map(|(pattern, escape)| Some(backslash_escaped(pattern?, escape?)))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(converted)))
        }),
    )
}

fn backslash_escaped(pattern: &str, escape: &str) -> String {
    let escape = escape.chars().next();
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            if let Some(next) = chars.next() {
                out.push('\\');
                out.push(next);
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out
}

/// A function that gives one fixed answer whatever its arguments: for what
/// clients ask about that frames do not have, or that is always so here.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Answer {
    name: &'static str,
    value: ScalarValue,
    signature: Signature,
}

impl Answer {
    fn always(name: &'static str, value: ScalarValue) -> ScalarUDF {
        ScalarUDF::from(Answer {
            name,
            value,
            signature: Signature::variadic_any(Volatility::Stable),
        })
    }

    /// NULL of type `result`.
    fn null(name: &'static str, result: DataType) -> ScalarUDF {
        let value = ScalarValue::try_from(&result).unwrap_or(ScalarValue::Null);
        Self::always(name, value)
    }
}

impl ScalarUDFImpl for Answer {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(self.value.data_type())
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value.clone()))
    }
}

/// `information_schema._pg_expandarray(indkey)`, which pgJDBC's
/// `getPrimaryKeys` calls on `pg_index.indkey`. Postgres returns one
/// `(x, n)` row per key; here it is a scalar giving the first key and its
/// position. That is exact for the single-column keys of the exported system
/// catalogs, and frames have no indexes, so a frame's keys are never asked.
fn expand_index_keys() -> ScalarUDF {
    let fields = Fields::from(vec![
        Field::new("x", DataType::Int16, true),
        Field::new("n", DataType::Int32, true),
    ]);
    let result = DataType::Struct(fields.clone());
    create_udf(
        "_pg_expandarray",
        vec![DataType::Utf8],
        result,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let keys = ColumnarValue::values_to_arrays(args)?;
            let keys = keys[0]
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| {
                    DataFusionError::Plan("_pg_expandarray takes an int2vector".into())
                })?;
            let first: Int16Array = keys
                .iter()
                .map(|k| k.and_then(|k| k.split_whitespace().next()?.parse::<i16>().ok()))
                .collect();
            let position: Int32Array = first.iter().map(|k| k.map(|_| 1)).collect();
            Ok(ColumnarValue::Array(Arc::new(StructArray::new(
                fields.clone(),
                vec![Arc::new(first), Arc::new(position)],
                None,
            ))))
        }),
    )
}

/// `current_setting(name [, missing_ok])` and `set_config(name, value,
/// is_local)` over a connection's [`Settings`], which `SET` and `SHOW` use
/// too. Apiary has no transactions, so `is_local` changes nothing.
#[derive(Debug)]
struct SettingFunction {
    name: &'static str,
    signature: Signature,
    settings: Settings,
}

impl SettingFunction {
    fn current_setting(settings: Settings) -> Self {
        SettingFunction {
            name: "current_setting",
            signature: Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Utf8]),
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
                ],
                Volatility::Stable,
            ),
            settings,
        }
    }

    fn set_config(settings: Settings) -> Self {
        SettingFunction {
            name: "set_config",
            signature: Signature::exact(
                vec![DataType::Utf8, DataType::Utf8, DataType::Boolean],
                Volatility::Volatile,
            ),
            settings,
        }
    }

    fn value(&self, args: &[ScalarValue]) -> DfResult<Option<String>> {
        let text = |i: usize| args.get(i).and_then(scalar_text);
        let Some(name) = text(0) else {
            return Ok(None);
        };
        if self.name == "set_config" {
            let value = text(1).unwrap_or_default();
            self.settings
                .set(&name, &value)
                .map_err(|e| DataFusionError::Execution(e.to_string()))?;
            return Ok(Some(value));
        }
        let missing_ok = matches!(args.get(1), Some(ScalarValue::Boolean(Some(true))));
        match self.settings.get(&name) {
            Some(value) => Ok(Some(value)),
            None if missing_ok => Ok(None),
            None => Err(DataFusionError::Execution(format!(
                "unrecognized configuration parameter \"{name}\""
            ))),
        }
    }
}

impl PartialEq for SettingFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.settings.is_shared_with(&other.settings)
    }
}

impl Eq for SettingFunction {}

impl Hash for SettingFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for SettingFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let mut out = Vec::with_capacity(args.number_rows);
        for row in 0..args.number_rows {
            let values = arrays
                .iter()
                .map(|array| ScalarValue::try_from_array(array, row))
                .collect::<DfResult<Vec<_>>>()?;
            out.push(self.value(&values)?);
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
    }
}

/// `current_schema()` is the connection's current box (Postgres's first
/// schema on the search path); `current_schemas(implicit)` lists it, after
/// `pg_catalog` when `implicit` is true.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CurrentSchema {
    name: &'static str,
    signature: Signature,
}

impl CurrentSchema {
    fn new(name: &'static str) -> Self {
        let arguments = if name == "current_schemas" {
            vec![DataType::Boolean]
        } else {
            vec![]
        };
        CurrentSchema {
            name,
            signature: Signature::exact(arguments, Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for CurrentSchema {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(if self.name == "current_schemas" {
            DataType::new_list(DataType::Utf8, true)
        } else {
            DataType::Utf8
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let current = args.config_options.catalog.default_schema.clone();
        if self.name == "current_schema" {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(current))));
        }
        let implicit = matches!(
            args.args.first(),
            Some(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))
        );
        let mut schemas = Vec::new();
        if implicit {
            schemas.push("pg_catalog".to_string());
        }
        schemas.push(current);
        let list = SingleRowListArrayBuilder::new(Arc::new(StringArray::from(schemas)));
        Ok(ColumnarValue::Scalar(list.build_list_scalar()))
    }
}

/// `pg_size_pretty(bytes)`, which psql's `\dt+` and `\l+` show sizes with.
fn size_pretty() -> ScalarUDF {
    ScalarUDF::from(SizePretty {
        signature: Signature::numeric(1, Volatility::Immutable),
    })
}

/// `pg_size_pretty(bigint)` and `pg_size_pretty(numeric)` (psql's `\dP+`
/// sums sizes, and a sum of `bigint` is `numeric`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct SizePretty {
    signature: Signature,
}

impl ScalarUDFImpl for SizePretty {
    fn name(&self) -> &str {
        "pg_size_pretty"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let sizes = arrow::compute::cast(&arrays[0], &DataType::Int64)?;
        let text: StringArray = sizes
            .as_primitive::<Int64Type>()
            .iter()
            .map(|size| size.map(pretty_size))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(text)))
    }
}

/// Postgres's rounding: bytes below 10 kB, then each unit below 20 of the
/// next, rounded half away from zero (`dbsize.c`).
fn pretty_size(bytes: i64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes.unsigned_abs() < 10 * 1024 {
        return format!("{bytes} bytes");
    }
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    // In half-units of kB.
    let mut size = bytes / 512;
    for (i, unit) in UNITS.iter().enumerate() {
        if i == UNITS.len() - 1 || size.unsigned_abs() < 20 * 1024 - 1 {
            return format!("{} {unit}", half_rounded(size));
        }
        size /= 1024;
    }
    format!("{bytes} bytes")
}

/// `pg_encoding_to_char(encoding)`: Postgres's name for an encoding number.
/// Apiary's databases are all UTF8 (6).
fn encoding_to_char() -> ScalarUDF {
    create_udf(
        "pg_encoding_to_char",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let numbers = arrays[0].as_primitive::<Int64Type>();
            let names: StringArray = numbers
                .iter()
                .map(|number| {
                    number.map(|n| match n {
                        0 => "SQL_ASCII",
                        6 => "UTF8",
                        8 => "LATIN1",
                        _ => "",
                    })
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(names)))
        }),
    )
}

/// `json_build_object(key, value, …)`: a JSON object as text, one per row.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
}

impl JsonBuildObject {
    fn new() -> Self {
        JsonBuildObject {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if !args.args.len().is_multiple_of(2) {
            return Err(DataFusionError::Plan(
                "json_build_object takes key/value pairs: an even number of arguments".into(),
            ));
        }
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let mut object = serde_json::Map::new();
            for pair in arrays.chunks(2) {
                let key = ScalarValue::try_from_array(&pair[0], row)?;
                let value = ScalarValue::try_from_array(&pair[1], row)?;
                object.insert(scalar_text(&key).unwrap_or_default(), scalar_json(&value));
            }
            out.push(serde_json::Value::Object(object).to_string());
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
    }
}

fn scalar_text(value: &ScalarValue) -> Option<String> {
    (!value.is_null()).then(|| match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.clone(),
        other => other.to_string(),
    })
}

fn scalar_json(value: &ScalarValue) -> serde_json::Value {
    match value {
        v if v.is_null() => serde_json::Value::Null,
        ScalarValue::Boolean(Some(b)) => serde_json::Value::Bool(*b),
        ScalarValue::Int8(_)
        | ScalarValue::Int16(_)
        | ScalarValue::Int32(_)
        | ScalarValue::Int64(_)
        | ScalarValue::UInt8(_)
        | ScalarValue::UInt16(_)
        | ScalarValue::UInt32(_)
        | ScalarValue::UInt64(_)
        | ScalarValue::Float32(_)
        | ScalarValue::Float64(_) => serde_json::from_str(&value.to_string())
            .unwrap_or_else(|_| serde_json::Value::String(value.to_string())),
        other => serde_json::Value::String(scalar_text(other).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_pg_size_pretty_writes_them() {
        assert_eq!(pretty_size(0), "0 bytes");
        assert_eq!(pretty_size(10_239), "10239 bytes");
        assert_eq!(pretty_size(10_240), "10 kB");
        assert_eq!(pretty_size(1_536_000), "1500 kB");
        assert_eq!(pretty_size(20 * 1024 * 1024), "20 MB");
        assert_eq!(pretty_size(5 * 1024 * 1024 * 1024), "5120 MB");
        assert_eq!(pretty_size(30 * 1024 * 1024 * 1024), "30 GB");
        assert_eq!(pretty_size(-20_000), "-20 kB");
    }

    #[test]
    fn like_patterns_are_rewritten_to_the_backslash_escape() {
        assert_eq!(backslash_escaped("pg/_%", "/"), "pg\\_%");
        assert_eq!(backslash_escaped("a//b", "/"), "a\\/b");
        assert_eq!(backslash_escaped("c:\\x_", "/"), "c:\\\\x_");
        assert_eq!(backslash_escaped("a\\_", ""), "a\\\\_");
    }

    #[tokio::test]
    async fn json_build_object_makes_one_object_per_row() {
        let ctx = SessionContext::new();
        ctx.register_udf(ScalarUDF::from(JsonBuildObject::new()));
        ctx.register_udf(expand_index_keys());
        let batches = ctx
            .sql("SELECT json_build_object('a', 1, 'b', 'x', 'c', NULL, 'd', true, 'e', 2.5) AS j")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let column = batches[0].column(0);
        let text = column
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(0);
        assert_eq!(text, r#"{"a":1,"b":"x","c":null,"d":true,"e":2.5}"#);
        assert!(ctx
            .sql("SELECT json_build_object('a')")
            .await
            .unwrap()
            .collect()
            .await
            .is_err());
    }

    #[tokio::test]
    async fn parenthesised_field_access_reads_a_struct_field() {
        let ctx = SessionContext::new();
        ctx.register_udf(expand_index_keys());
        let sql = "SELECT (_pg_expandarray('3 1')).x AS x, (_pg_expandarray('3 1')).n AS n";
        let mut statement = datafusion::sql::parser::DFParser::parse_sql(sql)
            .unwrap()
            .pop_front()
            .unwrap();
        let datafusion::sql::parser::Statement::Statement(inner) = &mut statement else {
            panic!("a plain statement");
        };
        crate::compat::rewrite_field_access(inner);
        let plan = ctx.state().statement_to_plan(statement).await.unwrap();
        let batches = ctx
            .execute_logical_plan(plan)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let column = |i: usize| batches[0].column(i).clone();
        let x = column(0);
        let n = column(1);
        assert_eq!(x.as_any().downcast_ref::<Int16Array>().unwrap().value(0), 3);
        assert_eq!(n.as_any().downcast_ref::<Int32Array>().unwrap().value(0), 1);
    }
}

/// `pg_get_keywords()`: PostgreSQL 15's keywords (see the engine's
/// `postgres::keywords`), matching the server version clients are told.
#[derive(Debug)]
struct Keywords;

/// A set-returning function with no rows, whatever its arguments.
#[derive(Debug)]
struct NoRows {
    schema: SchemaRef,
}

impl NoRows {
    fn new(columns: &[(&str, DataType)]) -> Arc<Self> {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, data_type)| Field::new(*name, data_type.clone(), true))
            .collect();
        Arc::new(NoRows {
            schema: Arc::new(arrow::datatypes::Schema::new(fields)),
        })
    }
}

impl TableFunctionImpl for NoRows {
    fn call(&self, _args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        Ok(Arc::new(MemTable::try_new(
            self.schema.clone(),
            vec![vec![]],
        )?))
    }
}

impl TableFunctionImpl for Keywords {
    fn call(&self, _args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        let keywords = keywords();
        let text = |value: fn(&Keyword) -> String| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(keywords.iter().map(value)))
        };
        let columns = vec![
            text(|k| k.word.to_string()),
            text(|k| k.category.to_string()),
            Arc::new(BooleanArray::from_iter(
                keywords.iter().map(|k| Some(k.bare_label)),
            )) as ArrayRef,
            text(|k| k.category_description().to_string()),
            text(|k| k.bare_label_description().to_string()),
        ];
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            Field::new("word", DataType::Utf8, false),
            Field::new("catcode", DataType::Utf8, false),
            Field::new("barelabel", DataType::Boolean, false),
            Field::new("catdesc", DataType::Utf8, false),
            Field::new("baredesc", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}
