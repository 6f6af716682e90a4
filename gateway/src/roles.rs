//! The roles a connection sees: the user it connected as is the superuser
//! that owns every hive, box and frame (OID 10, Postgres's bootstrap
//! superuser), beside Postgres's predefined roles. Apiary has one set of
//! rights (see docs/postgres.md, "Users"), so tools that look up the
//! current role (pgAdmin, `psql`'s `\du`, pg_dump's owners) find it.

use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef, BooleanArray, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::streaming::PartitionStream;

use crate::activity::one_batch;
use crate::builtin::Settings;

/// The OID of the connected user's role.
pub const USER_OID: i32 = 10;

/// PostgreSQL's predefined roles, as its `pg_authid` lists them.
const PREDEFINED: [(i32, &str); 15] = [
    (3373, "pg_monitor"),
    (3374, "pg_read_all_settings"),
    (3375, "pg_read_all_stats"),
    (3377, "pg_stat_scan_tables"),
    (4200, "pg_signal_backend"),
    (4544, "pg_checkpoint"),
    (4550, "pg_use_reserved_connections"),
    (4569, "pg_read_server_files"),
    (4570, "pg_write_server_files"),
    (4571, "pg_execute_server_program"),
    (6171, "pg_database_owner"),
    (6181, "pg_read_all_data"),
    (6182, "pg_write_all_data"),
    (6304, "pg_create_subscription"),
    (6337, "pg_maintain"),
];

/// The connection's user, from its settings (the startup `user`).
pub fn current_user(settings: &Settings) -> String {
    settings.get("user").unwrap_or_else(|| "apiary".to_string())
}

/// The name of the role with `oid`, as `pg_get_userbyid` gives it.
pub fn role_name(oid: i32, user: &str) -> String {
    if oid == USER_OID {
        return user.to_string();
    }
    PREDEFINED
        .iter()
        .find(|(known, _)| *known == oid)
        .map_or_else(
            || format!("unknown (OID={oid})"),
            |(_, name)| name.to_string(),
        )
}

/// Which catalog a [`Roles`] stream answers.
#[derive(Debug, Clone, Copy)]
pub enum RoleView {
    /// `pg_roles`: every role.
    Roles,
    /// `pg_user`: the roles that can log in (the connected user).
    User,
}

/// `pg_roles` or `pg_user` for the scanning connection.
#[derive(Debug)]
pub struct Roles {
    view: RoleView,
    schema: SchemaRef,
}

impl Roles {
    pub fn new(view: RoleView) -> Self {
        let flag = |name: &str| Field::new(name, DataType::Boolean, true);
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let int = |name: &str| Field::new(name, DataType::Int32, true);
        let until = |name: &str| {
            Field::new(
                name,
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            )
        };
        let config = |name: &str| Field::new(name, DataType::new_list(DataType::Utf8, true), true);
        let fields = match view {
            RoleView::Roles => vec![
                text("rolname"),
                flag("rolsuper"),
                flag("rolinherit"),
                flag("rolcreaterole"),
                flag("rolcreatedb"),
                flag("rolcanlogin"),
                flag("rolreplication"),
                int("rolconnlimit"),
                text("rolpassword"),
                until("rolvaliduntil"),
                flag("rolbypassrls"),
                config("rolconfig"),
                int("oid"),
            ],
            RoleView::User => vec![
                text("usename"),
                int("usesysid"),
                flag("usecreatedb"),
                flag("usesuper"),
                flag("userepl"),
                flag("usebypassrls"),
                text("passwd"),
                until("valuntil"),
                config("useconfig"),
            ],
        };
        Roles {
            view,
            schema: Arc::new(Schema::new(fields)),
        }
    }

    fn batch(&self, user: &str) -> datafusion::error::Result<RecordBatch> {
        let mut rows: Vec<(i32, String)> = vec![(USER_OID, user.to_string())];
        if matches!(self.view, RoleView::Roles) {
            rows.extend(
                PREDEFINED
                    .iter()
                    .map(|(oid, name)| (*oid, name.to_string())),
            );
        }
        let n = rows.len();
        let superuser: BooleanArray = rows.iter().map(|(oid, _)| Some(*oid == USER_OID)).collect();
        let columns: Vec<ArrayRef> = self
            .schema
            .fields()
            .iter()
            .map(|field| -> ArrayRef {
                match field.name().as_str() {
                    "rolname" | "usename" => Arc::new(
                        rows.iter()
                            .map(|(_, name)| Some(name.as_str()))
                            .collect::<StringArray>(),
                    ),
                    "oid" | "usesysid" => Arc::new(
                        rows.iter()
                            .map(|(oid, _)| Some(*oid))
                            .collect::<Int32Array>(),
                    ),
                    "rolinherit" => Arc::new(BooleanArray::from(vec![true; n])),
                    "rolconnlimit" => Arc::new(Int32Array::from(vec![-1; n])),
                    "rolpassword" | "passwd" => Arc::new(StringArray::from(vec!["********"; n])),
                    name if field.data_type() == &DataType::Boolean && name != "rolinherit" => {
                        Arc::new(superuser.clone())
                    }
                    _ => new_null_array(field.data_type(), n),
                }
            })
            .collect();
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl PartitionStream for Roles {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let user = ctx
            .session_config()
            .get_extension::<Settings>()
            .map_or_else(|| "apiary".to_string(), |settings| current_user(&settings));
        one_batch(&self.schema, self.batch(&user))
    }
}
