//! apiary-gateway: every node's PostgreSQL wire protocol server.
//!
//! Where a connection goes: [`server::serve`] accepts it and hands it to
//! pgwire with Apiary's handlers. [`auth`] decides who may connect (SCRAM
//! users, or loopback only) and which hive the database names. [`handler`]
//! gives the connection its own engine `Session` and runs each statement:
//! Apiary commands, session builtins ([`builtin`]: `SET`, `SHOW`, `BEGIN`…),
//! `COPY FROM STDIN` ([`copy`]) and `COPY TO STDOUT` ([`copy_out`]), cursor
//! statements ([`cursor`]), or engine statements, whose Arrow results are
//! encoded by `arrow-pg`. [`compat`] rewrites client SQL so DataFusion
//! can plan it; [`pg`] adds `pg_catalog` and the functions clients call on
//! connect ([`regproc`] compares its `regproc` columns as OIDs),
//! [`information_schema`] the Postgres-shaped views of each hive;
//! [`sqlstate`] maps engine errors to SQLSTATEs.
//! The handlers hold no business logic: writes and DDL happen in the engine.

pub mod activity;
pub mod auth;
pub mod builtin;
pub mod cancel;
pub mod compat;
pub mod copy;
pub mod copy_out;
pub mod cursor;
pub mod declared_columns;
pub mod handler;
pub mod indexes;
pub mod information_schema;
pub mod oid_arrays;
pub mod origins;
pub mod pg;
pub mod pg_settings;
pub mod regclass;
pub mod regproc;
pub mod roles;
pub mod server;
pub mod sqlstate;
pub mod types;
pub mod wire_values;

pub use auth::Users;
pub use server::{serve, ServeConfig};
