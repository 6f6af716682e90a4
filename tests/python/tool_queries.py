"""The catalog queries of BI tools and drivers, replayed by
tests/python/test_tool_replay.py against Apiary and a real PostgreSQL.

Each tool maps to an ordered list of steps, in the order the tool issues them
(connect first, then browsing).  Every query below was written for this suite:
it exercises the same catalog relations, columns, functions, operators, casts
and SQL constructs that the named tool sends, but it is not a copy of the
tool's text.

Placeholders
------------
``{schema}``  -- the schema holding the ``clicks`` table/frame
                 (``default`` on Apiary, ``public`` on PostgreSQL).
The table itself is always called ``clicks`` with columns
``id bigint, country text, amount double precision``.

Expectation keys (all given keys must hold; ``{schema}`` is substituted in
values too)
------------------------------------------------------------------------
ok        : True   -> the statement completes without error
min_rows  : N      -> at least N result rows
max_rows  : N      -> at most N result rows
columns   : [...]  -> these output column names are present (case-sensitive,
                      as PostgreSQL labels them)
contains  : {"column": c, "value": v} or a list of such dicts
                   -> some row has exactly text value v in column c
                      (booleans rendered as 't'/'f', as psql --csv prints them)
absent    : {"column": c, "value": v} -> no row has value v in column c
nonnull_where : {"where": {"column": c, "value": v}, "column": d}
                   -> a row with c = v exists and its column d is not NULL/empty

Multi-statement entries (pgAdmin session setup) are sent as one simple-query
batch; only the last statement's result is checked.
"""

TOOLS = {
    # ------------------------------------------------------------------
    # Npgsql: what NpgsqlConnection.Open() sends on the first physical
    # connection (version + type loading batch), the pooled-connection
    # reset, and GetColumnSchema() which DataReader.GetSchemaTable() uses.
    # ------------------------------------------------------------------
    "npgsql": [
        {
            "step": "Open(): server version (first statement of the type-loading batch)",
            "sql": "SELECT version();",
            "expect": {"min_rows": 1, "columns": ["version"]},
        },
        {
            "step": "Open(): load all types; arrays recognised by typreceive=array_recv, "
                    "range/multirange element via pg_range, domains via typbasetype",
            "sql": r"""
SELECT ns.nspname, t.oid, t.typname, t.typtype, t.typnotnull, t.elemtypoid
FROM (
    SELECT b.oid, b.typnamespace, b.typname, b.typtype, b.typrelid, b.typnotnull, b.relkind,
           et.oid AS elemtypoid, et.typname AS elemtypname, ecls.relkind AS elemrelkind,
           CASE WHEN eproc.proname = 'array_recv' THEN 'a' ELSE et.typtype END AS elemtyptype
    FROM (
        SELECT pt.oid, pt.typnamespace, pt.typname, pt.typrelid, pt.typnotnull, cls.relkind,
               pt.typelem AS elemoid,
               CASE WHEN rp.proname = 'array_recv' THEN 'a' ELSE pt.typtype END AS typtype,
               CASE
                   WHEN rp.proname = 'array_recv' THEN pt.typelem
                   WHEN pt.typtype = 'r' THEN rng.rngsubtype
                   WHEN pt.typtype = 'm' THEN (SELECT r2.rngtypid FROM pg_range r2 WHERE r2.rngmultitypid = pt.oid)
                   WHEN pt.typtype = 'd' THEN pt.typbasetype
               END AS elemtypoid
        FROM pg_type AS pt
        LEFT JOIN pg_class AS cls ON cls.oid = pt.typrelid
        LEFT JOIN pg_proc AS rp ON rp.oid = pt.typreceive
        LEFT JOIN pg_range AS rng ON rng.rngtypid = pt.oid
    ) AS b
    LEFT JOIN pg_type AS et ON et.oid = b.elemtypoid
    LEFT JOIN pg_class AS ecls ON ecls.oid = et.typrelid
    LEFT JOIN pg_proc AS eproc ON eproc.oid = et.typreceive
) AS t
JOIN pg_namespace AS ns ON ns.oid = t.typnamespace
WHERE t.typtype IN ('b', 'r', 'm', 'e', 'd')
   OR (t.typtype = 'c' AND t.relkind = 'c')
   OR (t.typtype = 'p' AND t.typname IN ('record', 'void'))
   OR (t.typtype = 'a' AND (t.elemtyptype IN ('b', 'r', 'm', 'e', 'd')
                            OR (t.elemtyptype = 'p' AND t.elemtypname IN ('record', 'void'))
                            OR (t.elemtyptype = 'c' AND t.elemrelkind = 'c')))
ORDER BY CASE
    WHEN t.typtype IN ('b', 'e', 'p') THEN 0
    WHEN t.typtype = 'r' THEN 1
    WHEN t.typtype = 'm' THEN 2
    WHEN t.typtype = 'c' THEN 3
    WHEN t.typtype = 'd' AND t.elemtyptype <> 'a' THEN 4
    WHEN t.typtype = 'a' THEN 5
    WHEN t.typtype = 'd' AND t.elemtyptype = 'a' THEN 6
END;
""",
            "expect": {"min_rows": 20,
                       "columns": ["nspname", "oid", "typname", "typtype", "typnotnull", "elemtypoid"],
                       "contains": [{"column": "typname", "value": "int8"},
                                    {"column": "typname", "value": "_int8"},
                                    {"column": "typtype", "value": "a"}],
                       "nonnull_where": {"where": {"column": "typname", "value": "int4multirange"},
                                         "column": "elemtypoid"}},
        },
        {
            "step": "Open(): fields of free-standing composite types",
            "sql": r"""
SELECT ty.oid, att.attname, att.atttypid
FROM pg_type AS ty
JOIN pg_namespace AS ns ON ns.oid = ty.typnamespace
JOIN pg_class AS cl ON cl.oid = ty.typrelid
JOIN pg_attribute AS att ON att.attrelid = ty.typrelid
WHERE ty.typtype = 'c' AND cl.relkind = 'c'
  AND att.attnum > 0 AND NOT att.attisdropped
ORDER BY ty.oid, att.attnum;
""",
            "expect": {"columns": ["oid", "attname", "atttypid"]},
        },
        {
            "step": "Open(): enum labels (ORDER BY output name 'oid' that is also an input column of pg_enum)",
            "sql": r"""
SELECT t.oid, e.enumlabel
FROM pg_catalog.pg_enum AS e
INNER JOIN pg_catalog.pg_type AS t ON t.oid = e.enumtypid
ORDER BY oid, e.enumsortorder;
""",
            "expect": {"columns": ["oid", "enumlabel"]},
        },
        {
            "step": "pooled connection returned/reused: session reset",
            "sql": "DISCARD ALL",
            "expect": {"ok": True},
        },
        {
            "step": "GetColumnSchema()/GetSchemaTable(): column facts incl. identity, default, "
                    "PK via ANY(indkey), single-column unique via indkey[0]",
            "sql": r"""
SELECT ty.oid AS typoid, n.nspname, c.relname, a.attname, a.attrelid, a.attnum, a.attnotnull,
       a.attidentity <> '' AS isidentity,
       CASE WHEN ty.typtype = 'd' THEN ty.typtypmod ELSE a.atttypmod END AS typmod,
       CASE WHEN a.atthasdef
            THEN (SELECT pg_get_expr(d.adbin, c.oid) FROM pg_attrdef d
                  WHERE d.adrelid = c.oid AND d.adnum = a.attnum)
       END AS default_expr,
       CASE WHEN isc.is_updatable = 'YES' THEN true ELSE false END AS is_updatable,
       EXISTS (SELECT 1 FROM pg_index ix
               WHERE ix.indrelid = c.oid AND ix.indisprimary AND a.attnum = ANY (ix.indkey)) AS isprimarykey,
       EXISTS (SELECT 1 FROM pg_index ix
               WHERE ix.indrelid = c.oid AND ix.indisunique AND ix.indnkeyatts = 1
                 AND a.attnum = ix.indkey[0]) AS isunique
FROM pg_attribute AS a
JOIN pg_type AS ty ON ty.oid = a.atttypid
JOIN pg_class AS c ON c.oid = a.attrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
LEFT OUTER JOIN information_schema.columns AS isc
     ON isc.table_schema = n.nspname AND isc.table_name = c.relname AND isc.column_name = a.attname
WHERE a.atttypid <> 0
  AND c.relkind IN ('r', 'v', 'm')
  AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND a.attnum > 0
  AND (c.relname = 'clicks' AND n.nspname = '{schema}')
ORDER BY a.attnum;
""",
            "expect": {"min_rows": 3, "max_rows": 3,
                       "contains": [{"column": "attname", "value": "amount"},
                                    {"column": "isprimarykey", "value": "f"}]},
        },
    ],

    # ------------------------------------------------------------------
    # pgAdmin 4: connection initialisation batch, then object browser
    # (Databases -> Schemas -> Tables -> Columns).
    # ------------------------------------------------------------------
    "pgadmin": [
        {
            "step": "connect: session setup batch (DateStyle, notices, encoding, bytea_output via pg_settings)",
            "sql": "SET DateStyle = ISO; SET client_min_messages = notice; SET client_encoding = 'UTF8'; "
                   "SELECT set_config('bytea_output', 'hex', false) AS bytea_output "
                   "FROM pg_catalog.pg_settings WHERE name = 'bytea_output';",
            "expect": {"contains": {"column": "bytea_output", "value": "hex"}},
        },
        {
            "step": "connect: current database facts (encoding name, CREATE privilege)",
            "sql": r"""
SELECT d.oid AS did, d.datname, d.datallowconn,
       pg_catalog.pg_encoding_to_char(d.encoding) AS serverencoding,
       pg_catalog.has_database_privilege(d.oid, 'CREATE') AS cancreate,
       d.datistemplate
FROM pg_catalog.pg_database d
WHERE d.datname = current_database();
""",
            "expect": {"min_rows": 1, "max_rows": 1,
                       "contains": {"column": "serverencoding", "value": "UTF8"}},
        },
        {
            "step": "connect (server >= 12): GSSAPI status of own backend",
            "sql": r"""
SELECT g.gss_authenticated, g.encrypted
FROM pg_catalog.pg_stat_gssapi g
WHERE g.pid = pg_catalog.pg_backend_pid();
""",
            "expect": {"min_rows": 1, "columns": ["gss_authenticated", "encrypted"]},
        },
        {
            "step": "connect: current role capabilities incl. recursive role membership in ARRAY(subquery)",
            "sql": r"""
SELECT r.oid AS id, r.rolname AS name, r.rolsuper AS is_superuser,
       CASE WHEN r.rolsuper THEN true ELSE r.rolcreaterole END AS can_create_role,
       CASE WHEN r.rolsuper THEN true ELSE r.rolcreatedb END AS can_create_db,
       CASE WHEN 'pg_signal_backend' = ANY (ARRAY(
                WITH RECURSIVE memberships AS (
                    SELECT pr.oid, pr.rolname FROM pg_catalog.pg_roles pr WHERE pr.oid = r.oid
                    UNION ALL
                    SELECT am.roleid, g.rolname
                    FROM memberships m
                    JOIN pg_catalog.pg_auth_members am ON am.member = m.oid
                    JOIN pg_catalog.pg_roles g ON g.oid = am.roleid)
                SELECT rolname FROM memberships))
            THEN true ELSE false END AS can_signal_backend
FROM pg_catalog.pg_roles AS r
WHERE r.rolname = current_user;
""",
            "expect": {"min_rows": 1, "max_rows": 1,
                       "columns": ["id", "name", "is_superuser", "can_signal_backend"]},
        },
        {
            "step": "browser: Databases node (tablespace + shared description)",
            "sql": r"""
SELECT d.oid AS did, d.datname AS name, ts.spcname, d.datallowconn,
       d.datistemplate AS is_template,
       pg_catalog.has_database_privilege(d.oid, 'CREATE') AS cancreate,
       d.datdba AS owner, sd.description,
       d.datname = current_database() AS is_current
FROM pg_catalog.pg_database d
LEFT OUTER JOIN pg_catalog.pg_tablespace ts ON ts.oid = d.dattablespace
LEFT OUTER JOIN pg_catalog.pg_shdescription sd
     ON sd.objoid = d.oid AND sd.classoid = 'pg_database'::regclass
WHERE d.oid > 16383::OID OR d.datname IN ('postgres', 'edb')
ORDER BY d.datname;
""",
            "expect": {"contains": {"column": "is_current", "value": "t"}},
        },
        {
            "step": "browser: Schemas node (hides pg_* and the pg_catalog/information_schema catalogs)",
            "sql": r"""
SELECT n.oid, n.nspname AS name,
       pg_catalog.has_schema_privilege(n.oid, 'CREATE') AS can_create,
       pg_catalog.has_schema_privilege(n.oid, 'USAGE') AS has_usage,
       ds.description
FROM pg_catalog.pg_namespace n
LEFT OUTER JOIN pg_catalog.pg_description ds
     ON ds.objoid = n.oid AND ds.classoid = 'pg_namespace'::regclass
WHERE n.nspname NOT LIKE E'pg\\_%'
  AND NOT (
        (n.nspname = 'pg_catalog' AND EXISTS
            (SELECT 1 FROM pg_catalog.pg_class WHERE relname = 'pg_class' AND relnamespace = n.oid LIMIT 1))
     OR (n.nspname = 'information_schema' AND EXISTS
            (SELECT 1 FROM pg_catalog.pg_class WHERE relname = 'tables' AND relnamespace = n.oid LIMIT 1)))
ORDER BY n.nspname;
""",
            "expect": {"contains": {"column": "name", "value": "{schema}"},
                       "absent": {"column": "name", "value": "information_schema"}},
        },
        {
            "step": "browser: Tables node (trigger / inheritance counts as scalar subqueries)",
            "sql": r"""
SELECT c.oid, c.relname AS name,
       (SELECT count(*) FROM pg_catalog.pg_trigger tg WHERE tg.tgrelid = c.oid) AS triggercount,
       (SELECT count(*) FROM pg_catalog.pg_trigger tg WHERE tg.tgrelid = c.oid AND tg.tgenabled = 'O') AS has_enable_triggers,
       (SELECT count(1) FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid LIMIT 1) AS is_inherits,
       (SELECT count(1) FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid LIMIT 1) AS is_inherited
FROM pg_catalog.pg_class c
WHERE c.relkind IN ('r', 's', 't', 'p')
  AND c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = '{schema}')
ORDER BY c.relname;
""",
            "expect": {"contains": [{"column": "name", "value": "clicks"},
                                    {"column": "triggercount", "value": "0"}]},
        },
        {
            "step": "browser: Columns node (format_type, attrdef, owned sequences via pg_depend, PK index, comments)",
            "sql": r"""
SELECT DISTINCT a.attname AS name, a.attnum AS position,
       pg_catalog.format_type(ty.oid, NULL) AS datatype,
       a.attnotnull AS not_null,
       CASE WHEN a.atthasdef OR a.attidentity <> '' THEN true
            WHEN ty.typdefault IS NOT NULL THEN true
            ELSE false END AS has_default_val,
       ds.description, sq.seqtypid
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace
JOIN pg_catalog.pg_class cl ON cl.oid = a.attrelid
JOIN pg_catalog.pg_namespace rn ON rn.oid = cl.relnamespace
LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid = ty.typelem
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT OUTER JOIN (pg_catalog.pg_depend dp
                 JOIN pg_catalog.pg_class sc
                   ON dp.classid = 'pg_class'::regclass AND dp.objid = sc.oid AND sc.relkind = 'S')
     ON dp.refobjid = a.attrelid AND dp.refobjsubid = a.attnum
LEFT OUTER JOIN pg_catalog.pg_namespace sn ON sn.oid = sc.relnamespace
LEFT OUTER JOIN pg_catalog.pg_index pk ON pk.indrelid = a.attrelid AND pk.indisprimary
LEFT OUTER JOIN pg_catalog.pg_description ds
     ON ds.objoid = a.attrelid AND ds.objsubid = a.attnum AND ds.classoid = 'pg_class'::regclass
LEFT OUTER JOIN pg_catalog.pg_sequence sq ON sq.seqrelid = sc.oid
WHERE cl.relname = 'clicks' AND rn.nspname = '{schema}'
  AND a.attnum > 0
  AND a.attisdropped IS FALSE
ORDER BY a.attnum;
""",
            "expect": {"min_rows": 3, "max_rows": 3,
                       "contains": [{"column": "name", "value": "amount"},
                                    {"column": "datatype", "value": "double precision"}]},
        },
    ],

    # ------------------------------------------------------------------
    # Metabase (postgres driver): DB timezone, schema discovery (pgjdbc
    # getSchemas), table privilege check, table sync, field sync, FK sync,
    # enum discovery.
    # ------------------------------------------------------------------
    "metabase": [
        {
            "step": "db-default-timezone",
            "sql": "SHOW timezone;",
            "expect": {"min_rows": 1, "max_rows": 1},
        },
        {
            "step": "syncable schemas (pgjdbc DatabaseMetaData.getSchemas: temp-schema filter with current_schemas(true)[1])",
            "sql": r"""
SELECT n.nspname AS table_schem, NULL AS table_catalog
FROM pg_catalog.pg_namespace n
WHERE n.nspname <> 'pg_toast'
  AND (n.nspname !~ '^pg_temp_' OR n.nspname = (pg_catalog.current_schemas(true))[1])
  AND (n.nspname !~ '^pg_toast_temp_'
       OR n.nspname = replace((pg_catalog.current_schemas(true))[1], 'pg_temp_', 'pg_toast_temp_'))
ORDER BY table_schem;
""",
            "expect": {"contains": {"column": "table_schem", "value": "{schema}"}},
        },
        {
            "step": "current-user table privileges (pg_tables/pg_views/pg_matviews, has_table_privilege on quoted names, "
                    "keyword column labels)",
            "sql": r"""
WITH relations AS (
    SELECT schemaname, tablename AS objectname FROM pg_catalog.pg_tables
    UNION
    SELECT schemaname, viewname AS objectname FROM pg_catalog.pg_views
    UNION
    SELECT schemaname, matviewname AS objectname FROM pg_catalog.pg_matviews
), table_privileges AS (
    SELECT NULL AS role, r.schemaname AS schema, r.objectname AS table,
           pg_catalog.has_table_privilege(current_user,
               '"' || replace(r.schemaname, '"', '""') || '"."' || replace(r.objectname, '"', '""') || '"',
               'UPDATE') AS update,
           pg_catalog.has_table_privilege(current_user,
               '"' || replace(r.schemaname, '"', '""') || '"."' || replace(r.objectname, '"', '""') || '"',
               'SELECT') AS select,
           pg_catalog.has_table_privilege(current_user,
               '"' || replace(r.schemaname, '"', '""') || '"."' || replace(r.objectname, '"', '""') || '"',
               'INSERT') AS insert,
           pg_catalog.has_table_privilege(current_user,
               '"' || replace(r.schemaname, '"', '""') || '"."' || replace(r.objectname, '"', '""') || '"',
               'DELETE') AS delete
    FROM relations r
    WHERE r.schemaname !~ '^pg_'
      AND r.schemaname <> 'information_schema'
      AND pg_catalog.has_schema_privilege(current_user, r.schemaname, 'USAGE')
)
SELECT tp.* FROM table_privileges tp
WHERE tp.select OR tp.update OR tp.insert OR tp.delete;
""",
            "expect": {"contains": [{"column": "table", "value": "clicks"},
                                    {"column": "select", "value": "t"}]},
        },
        {
            "step": "describe-database: table sync (relkind CASE, description, pg_stat_user_tables row estimate)",
            "sql": r"""
SELECT n.nspname AS "schema", c.relname AS "name",
       CASE c.relkind
           WHEN 'r' THEN 'TABLE'
           WHEN 'p' THEN 'PARTITIONED TABLE'
           WHEN 'v' THEN 'VIEW'
           WHEN 'f' THEN 'FOREIGN TABLE'
           WHEN 'm' THEN 'MATERIALIZED VIEW'
           ELSE NULL
       END AS "type",
       d.description AS "description",
       st.n_live_tup AS "estimated_row_count"
FROM pg_catalog.pg_class c
INNER JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid
LEFT JOIN pg_catalog.pg_description d
     ON c.oid = d.objoid AND d.objsubid = 0 AND d.classoid = 'pg_class'::regclass
LEFT JOIN pg_stat_user_tables st ON n.nspname = st.schemaname AND c.relname = st.relname
WHERE c.relnamespace = n.oid
  AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND c.relkind IN ('r', 'p', 'v', 'f', 'm')
  AND n.nspname IN ('{schema}')
ORDER BY "type" ASC, "schema" ASC, "name" ASC;
""",
            "expect": {"contains": [{"column": "name", "value": "clicks"},
                                    {"column": "type", "value": "TABLE"}]},
        },
        {
            "step": "describe-fields: field sync (information_schema.columns + PK join, format(), "
                    "col_description(format('%I.%I')::regclass::oid), UNION ALL matview columns, ORDER BY quoted labels)",
            "sql": r"""
SELECT c.column_name AS "name",
       CASE WHEN c.udt_schema IN ('public', 'pg_catalog') THEN format('%s', c.udt_name)
            ELSE format('"%s"."%s"', c.udt_schema, c.udt_name) END AS "database-type",
       c.ordinal_position - 1 AS "database-position",
       c.table_schema AS "table-schema",
       c.table_name AS "table-name",
       pk.column_name IS NOT NULL AS "pk?",
       col_description(CAST(CAST(format('%I.%I', CAST(c.table_schema AS text), CAST(c.table_name AS text)) AS regclass) AS oid),
                       c.ordinal_position) AS "field-comment",
       ((c.column_default IS NULL OR lower(c.column_default) = 'null')
        AND c.is_nullable = 'NO'
        AND NOT ((c.column_default IS NOT NULL AND c.column_default LIKE '%nextval(%') OR c.is_identity <> 'NO'))
           AS "database-required",
       ((c.column_default IS NOT NULL AND c.column_default LIKE '%nextval(%') OR c.is_identity <> 'NO')
           AS "database-is-auto-increment"
FROM information_schema.columns AS c
LEFT JOIN (SELECT tc.table_schema, tc.table_name, kc.column_name
           FROM information_schema.table_constraints AS tc
           INNER JOIN information_schema.key_column_usage AS kc
                   ON tc.constraint_name = kc.constraint_name
                  AND tc.table_schema = kc.table_schema
                  AND tc.table_name = kc.table_name
           WHERE tc.constraint_type = 'PRIMARY KEY') AS pk
       ON c.table_schema = pk.table_schema AND c.table_name = pk.table_name AND c.column_name = pk.column_name
WHERE c.table_schema !~ '^information_schema|catalog_history|pg_'
  AND c.table_schema IN ('{schema}')
  AND c.table_name IN ('clicks')
UNION ALL
SELECT pa.attname AS "name",
       CASE WHEN ptn.nspname IN ('public', 'pg_catalog') THEN format('%s', pt.typname)
            ELSE format('"%s"."%s"', ptn.nspname, pt.typname) END AS "database-type",
       pa.attnum - 1 AS "database-position",
       pn.nspname AS "table-schema",
       pc.relname AS "table-name",
       FALSE AS "pk?",
       NULL AS "field-comment",
       FALSE AS "database-required",
       FALSE AS "database-is-auto-increment"
FROM pg_catalog.pg_class AS pc
INNER JOIN pg_catalog.pg_namespace AS pn ON pn.oid = pc.relnamespace
INNER JOIN pg_catalog.pg_attribute AS pa ON pa.attrelid = pc.oid
INNER JOIN pg_catalog.pg_type AS pt ON pt.oid = pa.atttypid
INNER JOIN pg_catalog.pg_namespace AS ptn ON ptn.oid = pt.typnamespace
WHERE pc.relkind = 'm' AND pa.attnum >= 1
  AND pn.nspname IN ('{schema}') AND pc.relname IN ('clicks')
ORDER BY "table-schema" ASC, "table-name" ASC, "database-position" ASC;
""",
            "expect": {"min_rows": 3, "max_rows": 3,
                       "contains": [{"column": "name", "value": "amount"},
                                    {"column": "database-type", "value": "float8"},
                                    {"column": "pk?", "value": "f"}]},
        },
        {
            "step": "describe-fks: FK sync (pg_constraint x2 pg_attribute with attnum = ANY(conkey/confkey), 'f'::char)",
            "sql": r"""
SELECT fk_ns.nspname AS "fk-table-schema", fk_table.relname AS "fk-table-name",
       fk_column.attname AS "fk-column-name",
       pk_ns.nspname AS "pk-table-schema", pk_table.relname AS "pk-table-name",
       pk_column.attname AS "pk-column-name"
FROM pg_constraint AS c
INNER JOIN pg_class AS fk_table ON c.conrelid = fk_table.oid
INNER JOIN pg_namespace AS fk_ns ON c.connamespace = fk_ns.oid
INNER JOIN pg_attribute AS fk_column ON c.conrelid = fk_column.attrelid
INNER JOIN pg_class AS pk_table ON c.confrelid = pk_table.oid
INNER JOIN pg_namespace AS pk_ns ON pk_table.relnamespace = pk_ns.oid
INNER JOIN pg_attribute AS pk_column ON c.confrelid = pk_column.attrelid
WHERE fk_ns.nspname !~ '^information_schema|catalog_history|pg_'
  AND c.contype = 'f'::char
  AND fk_column.attnum = ANY(c.conkey)
  AND pk_column.attnum = ANY(c.confkey)
  AND fk_ns.nspname IN ('{schema}')
ORDER BY "fk-table-schema" ASC, "fk-table-name" ASC;
""",
            "expect": {"columns": ["fk-table-schema", "fk-table-name", "fk-column-name",
                                   "pk-table-schema", "pk-table-name", "pk-column-name"]},
        },
        {
            "step": "describe-fields pre-process: enum type discovery (IN (SELECT DISTINCT ... FROM pg_enum))",
            "sql": r"""
SELECT n.nspname, t.typname
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.oid IN (SELECT DISTINCT e.enumtypid FROM pg_enum e);
""",
            "expect": {"columns": ["nspname", "typname"]},
        },
    ],

    # ------------------------------------------------------------------
    # Grafana PostgreSQL datasource: health check, version / TimescaleDB
    # auto-detection, and the visual query builder's schema, table and
    # column pickers (search_path-aware).
    # ------------------------------------------------------------------
    "grafana": [
        {
            "step": "datasource health check",
            "sql": "SELECT 1;",
            "expect": {"min_rows": 1},
        },
        {
            "step": "auto-detect server version (current_setting(...)::int/100)",
            "sql": "SELECT current_setting('server_version_num')::int / 100 AS version;",
            "expect": {"min_rows": 1, "columns": ["version"]},
        },
        {
            "step": "auto-detect TimescaleDB",
            "sql": "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb';",
            "expect": {"columns": ["extversion"]},
        },
        {
            "step": "query builder: schema picker",
            "sql": r"""
SELECT s.schema_name AS "name"
FROM information_schema.schemata s
WHERE s.schema_name NOT IN ('information_schema', 'pg_catalog', 'pg_toast',
                            '_timescaledb_cache', '_timescaledb_catalog', '_timescaledb_internal',
                            '_timescaledb_config', 'timescaledb_information', 'timescaledb_experimental')
ORDER BY s.schema_name;
""",
            "expect": {"contains": {"column": "name", "value": "{schema}"},
                       "absent": {"column": "name", "value": "pg_catalog"}},
        },
        {
            "step": "query builder: table picker without schema (unqualified when schema is on search_path: "
                    "string_to_array/generate_series/array_lower/array_upper/s[i]/trim/bare `user`)",
            "sql": r"""
SELECT CASE
         WHEN quote_ident(t.table_schema) IN (
               SELECT CASE WHEN trim(parts[k]) = '"$user"' THEN user ELSE trim(parts[k]) END
               FROM generate_series(array_lower(string_to_array(current_setting('search_path'), ','), 1),
                                    array_upper(string_to_array(current_setting('search_path'), ','), 1)) AS k,
                    string_to_array(current_setting('search_path'), ',') AS parts)
         THEN quote_ident(t.table_name)
         ELSE quote_ident(t.table_schema) || '.' || quote_ident(t.table_name)
       END AS "table"
FROM information_schema.tables t
WHERE quote_ident(t.table_schema) NOT IN ('information_schema', 'pg_catalog',
        '_timescaledb_cache', '_timescaledb_catalog', '_timescaledb_internal', '_timescaledb_config',
        'timescaledb_information', 'timescaledb_experimental')
ORDER BY CASE
           WHEN quote_ident(t.table_schema) IN (
                 SELECT CASE WHEN trim(parts[k]) = '"$user"' THEN user ELSE trim(parts[k]) END
                 FROM generate_series(array_lower(string_to_array(current_setting('search_path'), ','), 1),
                                      array_upper(string_to_array(current_setting('search_path'), ','), 1)) AS k,
                      string_to_array(current_setting('search_path'), ',') AS parts)
           THEN 0 ELSE 1 END, 1;
""",
            "expect": {"contains": {"column": "table", "value": "clicks"}},
        },
        {
            "step": "query builder: table picker for a chosen schema (quote_ident comparison)",
            "sql": r"""
SELECT quote_ident(t.table_name) AS "table"
FROM information_schema.tables t
WHERE quote_ident(t.table_schema) = quote_ident('{schema}')
ORDER BY 1;
""",
            "expect": {"contains": {"column": "table", "value": "clicks"}},
        },
        {
            "step": "query builder: column picker (parse_ident, array_length, (parse_ident(..))[n], CASE in WHERE, "
                    "search_path constraint)",
            "sql": r"""
SELECT quote_ident(c.column_name) AS "column", c.data_type AS "type"
FROM information_schema.columns c
WHERE CASE
        WHEN array_length(parse_ident('clicks'), 1) = 2
        THEN quote_ident(c.table_schema) = (parse_ident('clicks'))[1]
             AND quote_ident(c.table_name) = (parse_ident('clicks'))[2]
        ELSE quote_ident(c.table_name) = 'clicks'
             AND quote_ident(c.table_schema) IN (
                   SELECT CASE WHEN trim(parts[k]) = '"$user"' THEN user ELSE trim(parts[k]) END
                   FROM generate_series(array_lower(string_to_array(current_setting('search_path'), ','), 1),
                                        array_upper(string_to_array(current_setting('search_path'), ','), 1)) AS k,
                        string_to_array(current_setting('search_path'), ',') AS parts)
      END;
""",
            "expect": {"min_rows": 3, "max_rows": 3,
                       "contains": [{"column": "column", "value": "amount"},
                                    {"column": "type", "value": "double precision"}]},
        },
    ],

    # ------------------------------------------------------------------
    # DBeaver (PostgreSQL driver on pgjdbc): connect, keywords, then
    # navigator: databases, schemas, tables, columns, data types,
    # constraints.
    # ------------------------------------------------------------------
    "dbeaver": [
        {
            "step": "connect: active schema and user",
            "sql": "SELECT current_schema(), session_user;",
            "expect": {"min_rows": 1, "columns": ["current_schema", "session_user"],
                       "contains": {"column": "current_schema", "value": "{schema}"}},
        },
        {
            "step": "set active schema from the toolbar (SET search_path to a quoted identifier, then read it back; "
                    "the setting must round-trip in quote_ident form as PostgreSQL prints it)",
            "sql": "SET search_path = \"{schema}\"; "
                   "SELECT current_schema() AS current_schema, current_setting('search_path') AS search_path, "
                   "current_setting('search_path') = quote_ident('{schema}') AS sp_quoted_ok;",
            "expect": {"contains": [{"column": "current_schema", "value": "{schema}"},
                                    {"column": "sp_quoted_ok", "value": "t"}]},
        },
        {
            "step": "connect: SQL keywords via pgjdbc getSQLKeywords (string_agg over pg_get_keywords(), <> ALL text[] literal)",
            "sql": r"""
SELECT string_agg(kw.word, ',') AS keywords
FROM pg_catalog.pg_get_keywords() AS kw
WHERE kw.word <> ALL ('{a,abs,absolute,action,select,table}'::text[]);
""",
            "expect": {"min_rows": 1, "max_rows": 1},
        },
        {
            "step": "navigator: databases (qualified star db.*)",
            "sql": r"""
SELECT db.oid, db.*
FROM pg_catalog.pg_database db
WHERE db.datallowconn AND NOT db.datistemplate
ORDER BY db.datname;
""",
            "expect": {"min_rows": 1, "columns": ["oid", "datname"]},
        },
        {
            "step": "navigator: schemas with comments",
            "sql": r"""
SELECT n.oid, n.*, d.description
FROM pg_catalog.pg_namespace n
LEFT OUTER JOIN pg_catalog.pg_description d
     ON d.objoid = n.oid AND d.objsubid = 0 AND d.classoid = 'pg_namespace'::regclass
ORDER BY n.nspname;
""",
            "expect": {"contains": {"column": "nspname", "value": "{schema}"}},
        },
        {
            "step": "navigator: tables of a schema (c.*, pg_get_expr(relpartbound), pg_get_partkeydef)",
            "sql": r"""
SELECT c.oid, c.*, d.description,
       pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS partition_expr,
       pg_catalog.pg_get_partkeydef(c.oid) AS partition_key
FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_description d
     ON d.objoid = c.oid AND d.objsubid = 0 AND d.classoid = 'pg_class'::regclass
WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = '{schema}')
  AND c.relkind NOT IN ('i', 'I', 'c');
""",
            "expect": {"contains": {"column": "relname", "value": "clicks"}},
        },
        {
            "step": "navigator: table columns (a.*, pg_get_expr(adbin, adrelid, true), identity deps via pg_depend)",
            "sql": r"""
SELECT c.relname, a.*, pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) AS def_value,
       dsc.description, dep.objid
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid = c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid = ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid = dsc.objoid AND a.attnum = dsc.objsubid)
LEFT OUTER JOIN pg_depend dep
     ON dep.refobjid = a.attrelid AND dep.deptype = 'i'
    AND dep.refobjsubid = a.attnum AND dep.classid = dep.refclassid
WHERE NOT a.attisdropped
  AND c.relkind NOT IN ('i', 'I', 'c')
  AND c.oid = (SELECT cc.oid FROM pg_catalog.pg_class cc
               JOIN pg_catalog.pg_namespace nn ON nn.oid = cc.relnamespace
               WHERE nn.nspname = '{schema}' AND cc.relname = 'clicks')
ORDER BY a.attnum;
""",
            "expect": {"min_rows": 3,
                       "contains": [{"column": "attname", "value": "amount"},
                                    {"column": "relname", "value": "clicks"}]},
        },
        {
            "step": "data type cache: all types (t.*, format_type(nullif(typbasetype,0), typtypmod))",
            "sql": r"""
SELECT t.oid, t.*, c.relkind,
       format_type(nullif(t.typbasetype, 0), t.typtypmod) AS base_type_name,
       d.description
FROM pg_catalog.pg_type t
LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid = t.typelem
LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid = d.objoid
WHERE t.typname IS NOT NULL
  AND (c.relkind IS NULL OR c.relkind = 'c')
  AND (et.typcategory IS NULL OR et.typcategory <> 'C');
""",
            "expect": {"min_rows": 20, "contains": {"column": "typname", "value": "int8"}},
        },
        {
            "step": "navigator: constraints of a schema (c.*, quoted function name \"substring\", pg_get_constraintdef)",
            "sql": r"""
SELECT c.oid, c.*, t.relname AS tabrelname, rt.relnamespace AS refnamespace, d.description,
       CASE WHEN c.contype = 'c' THEN "substring"(pg_get_constraintdef(c.oid), 7) ELSE NULL END AS consrc_copy
FROM pg_catalog.pg_constraint c
INNER JOIN pg_catalog.pg_class t ON t.oid = c.conrelid
LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid = c.confrelid
LEFT OUTER JOIN pg_catalog.pg_description d
     ON d.objoid = c.oid AND d.objsubid = 0 AND d.classoid = 'pg_constraint'::regclass
WHERE t.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = '{schema}')
ORDER BY c.oid;
""",
            "expect": {"columns": ["oid", "conname", "contype", "tabrelname", "consrc_copy"]},
        },
    ],

    # ------------------------------------------------------------------
    # Superset: SQLAlchemy 2.x PostgreSQL dialect first-connect probes and
    # Inspector reflection (schemas, tables, columns, pk, fks, indexes).
    # ------------------------------------------------------------------
    "superset": [
        {
            "step": "first connect: isolation level probe (SHOW with multi-word name)",
            "sql": "SHOW TRANSACTION ISOLATION LEVEL;",
            "expect": {"min_rows": 1, "max_rows": 1},
        },
        {
            "step": "first connect: server version string and default schema",
            "sql": "SELECT pg_catalog.version() AS server_version, current_schema() AS default_schema;",
            "expect": {"min_rows": 1, "contains": {"column": "default_schema", "value": "{schema}"}},
        },
        {
            "step": "Inspector.get_schema_names (NOT LIKE ... ESCAPE)",
            "sql": r"""
SELECT pg_catalog.pg_namespace.nspname
FROM pg_catalog.pg_namespace
WHERE pg_catalog.pg_namespace.nspname NOT LIKE 'pg/_%' ESCAPE '/'
ORDER BY pg_catalog.pg_namespace.nspname;
""",
            "expect": {"contains": {"column": "nspname", "value": "{schema}"},
                       "absent": {"column": "nspname", "value": "pg_catalog"}},
        },
        {
            "step": "Inspector.get_table_names (relkind = ANY(ARRAY[...]), relpersistence, fully qualified column refs)",
            "sql": r"""
SELECT pg_catalog.pg_class.relname
FROM pg_catalog.pg_class
JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p'])
  AND pg_catalog.pg_class.relpersistence != 't'
  AND pg_catalog.pg_namespace.nspname = '{schema}';
""",
            "expect": {"contains": {"column": "relname", "value": "clicks"}},
        },
        {
            "step": "Inspector.get_columns (format_type, correlated pg_attrdef subquery, attgenerated, identity via "
                    "json_build_object + pg_get_serial_sequence(attrelid::regclass::text, ..)::regclass)",
            "sql": r"""
SELECT c.relname AS table_name, a.attname AS name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS format_type,
       (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid)
          FROM pg_catalog.pg_attrdef d
         WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef) AS "default",
       a.attnotnull AS not_null,
       ds.description AS comment,
       a.attgenerated AS generated,
       (SELECT json_build_object('always', a.attidentity = 'a', 'start', s.seqstart,
                                 'increment', s.seqincrement, 'minvalue', s.seqmin,
                                 'maxvalue', s.seqmax, 'cache', s.seqcache, 'cycle', s.seqcycle)
          FROM pg_catalog.pg_sequence s
         WHERE a.attidentity != ''
           AND s.seqrelid = CAST(pg_catalog.pg_get_serial_sequence(
                                     CAST(CAST(a.attrelid AS REGCLASS) AS TEXT), a.attname) AS REGCLASS)
       ) AS identity_options
FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_attribute a
     ON c.oid = a.attrelid AND a.attnum > 0 AND NOT a.attisdropped
LEFT OUTER JOIN pg_catalog.pg_description ds
     ON ds.objoid = a.attrelid AND ds.objsubid = a.attnum
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm'])
  AND n.nspname = '{schema}' AND c.relname IN ('clicks')
ORDER BY c.relname, a.attnum;
""",
            "expect": {"min_rows": 3, "max_rows": 3,
                       "contains": [{"column": "name", "value": "amount"},
                                    {"column": "format_type", "value": "double precision"}]},
        },
        {
            "step": "Inspector.get_pk_constraint (unnest(conkey) + generate_subscripts, array_agg(... ORDER BY), obj_description)",
            "sql": r"""
SELECT k.conrelid, array_agg(CAST(a.attname AS TEXT) ORDER BY k.ord) AS cols,
       k.conname, min(k.description) AS description
FROM (SELECT con.conrelid, con.conname,
             unnest(con.conkey) AS attnum,
             generate_subscripts(con.conkey, 1) AS ord,
             pg_catalog.obj_description(con.oid, 'pg_constraint') AS description
        FROM pg_catalog.pg_constraint con
       WHERE con.contype = 'p'
         AND con.conrelid IN (SELECT c.oid FROM pg_catalog.pg_class c
                              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                              WHERE n.nspname = '{schema}' AND c.relname = 'clicks')) AS k
JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.attnum
GROUP BY k.conrelid, k.conname;
""",
            "expect": {"columns": ["conrelid", "cols", "conname", "description"]},
        },
        {
            "step": "Inspector.get_foreign_keys (pg_get_constraintdef(oid, true), referred schema)",
            "sql": r"""
SELECT c.relname, con.conname,
       CASE WHEN con.oid IS NOT NULL THEN pg_catalog.pg_get_constraintdef(con.oid, true) END AS condef,
       rn.nspname AS referred_schema, ds.description
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT OUTER JOIN pg_catalog.pg_constraint con ON con.conrelid = c.oid AND con.contype = 'f'
LEFT OUTER JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
LEFT OUTER JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
LEFT OUTER JOIN pg_catalog.pg_description ds ON ds.objoid = con.oid
WHERE c.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm'])
  AND n.nspname = '{schema}' AND c.relname IN ('clicks')
ORDER BY c.relname, con.conname;
""",
            "expect": {"contains": {"column": "relname", "value": "clicks"}},
        },
        {
            "step": "Inspector.get_indexes (unnest(indkey) + generate_subscripts(indkey, 1) in a derived table, "
                    "pg_get_indexdef(oid, ord + 1, true) for expression columns, indnkeyatts, pg_am, indpred)",
            "sql": r"""
SELECT ks.indrelid, ic.relname AS index_name, ix.indisunique, ix.indnkeyatts, ks.ord,
       CASE WHEN ks.attnum = 0 THEN pg_catalog.pg_get_indexdef(ks.indexrelid, ks.ord + 1, true)
            ELSE CAST(a.attname AS text) END AS element,
       am.amname,
       pg_catalog.pg_get_expr(ix.indpred, ix.indrelid) AS filter_definition,
       con.contype AS constraint_type,
       ic.reloptions
FROM (SELECT i.indexrelid, i.indrelid,
             unnest(i.indkey) AS attnum,
             generate_subscripts(i.indkey, 1) AS ord
        FROM pg_catalog.pg_index i
       WHERE NOT i.indisprimary
         AND i.indrelid IN (SELECT c.oid FROM pg_catalog.pg_class c
                            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                            WHERE n.nspname = '{schema}' AND c.relname = 'clicks')) AS ks
JOIN pg_catalog.pg_index ix ON ix.indexrelid = ks.indexrelid
JOIN pg_catalog.pg_class ic ON ic.oid = ks.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
LEFT OUTER JOIN pg_catalog.pg_attribute a ON a.attrelid = ks.indrelid AND a.attnum = ks.attnum
LEFT OUTER JOIN pg_catalog.pg_constraint con
     ON con.conindid = ks.indexrelid AND con.contype IN ('p', 'u', 'x')
ORDER BY ic.relname, ks.ord;
""",
            "expect": {"columns": ["indrelid", "index_name", "indisunique", "element", "amname"]},
        },
    ],

    # ------------------------------------------------------------------
    # Power BI Desktop PostgreSQL connector (bundled Npgsql 4.0.x): type
    # loading of that Npgsql generation, then the Navigator's
    # information_schema queries.
    # ------------------------------------------------------------------
    "powerbi": [
        {
            "step": "Npgsql 4.0 type loading (INNER JOIN pg_proc on typreceive, oidvectorrecv, CASE mixing oid and 0)",
            "sql": r"""
SELECT ns.nspname, t.typname, t.oid, t.typrelid, t.typbasetype,
       CASE WHEN rp.proname = 'array_recv' THEN 'a' ELSE t.typtype END AS type,
       CASE WHEN rp.proname = 'array_recv' THEN t.typelem
            WHEN t.typtype = 'r' THEN r.rngsubtype
            ELSE 0 END AS elemoid,
       CASE WHEN rp.proname IN ('array_recv', 'oidvectorrecv') THEN 3
            WHEN t.typtype = 'r' THEN 2
            WHEN t.typtype = 'd' THEN 1
            ELSE 0 END AS ord
FROM pg_type AS t
JOIN pg_namespace AS ns ON ns.oid = t.typnamespace
JOIN pg_proc AS rp ON rp.oid = t.typreceive
LEFT OUTER JOIN pg_class AS cls ON cls.oid = t.typrelid
LEFT OUTER JOIN pg_type AS et ON et.oid = t.typelem
LEFT OUTER JOIN pg_class AS ecls ON ecls.oid = et.typrelid
LEFT OUTER JOIN pg_range AS r ON r.rngtypid = t.oid
WHERE t.typtype IN ('b', 'r', 'e', 'd')
   OR (t.typtype = 'c' AND cls.relkind = 'c')
   OR (rp.proname = 'array_recv' AND (et.typtype IN ('b', 'r', 'e', 'd')
                                      OR (et.typtype = 'p' AND et.typname = 'record')
                                      OR (et.typtype = 'c' AND ecls.relkind = 'c')))
   OR (t.typtype = 'p' AND t.typname IN ('record', 'void'))
ORDER BY ord;
""",
            "expect": {"min_rows": 20,
                       "contains": [{"column": "typname", "value": "int8"},
                                    {"column": "type", "value": "a"}]},
        },
        {
            "step": "Navigator: list tables and views (upper-case unquoted identifiers fold to lower case)",
            "sql": r"""
SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE
FROM INFORMATION_SCHEMA.TABLES
WHERE TABLE_SCHEMA NOT IN ('information_schema', 'pg_catalog')
ORDER BY TABLE_SCHEMA, TABLE_NAME;
""",
            "expect": {"contains": [{"column": "table_name", "value": "clicks"},
                                    {"column": "table_type", "value": "BASE TABLE"}]},
        },
        {
            "step": "Navigator: columns of the selected table",
            "sql": r"""
SELECT COLUMN_NAME, ORDINAL_POSITION, IS_NULLABLE,
       CASE WHEN DATA_TYPE LIKE '%unsigned%' THEN DATA_TYPE || ' unsigned' ELSE DATA_TYPE END AS DATA_TYPE
FROM INFORMATION_SCHEMA.COLUMNS
WHERE TABLE_SCHEMA = '{schema}' AND TABLE_NAME = 'clicks'
ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION;
""",
            "expect": {"min_rows": 3, "max_rows": 3,
                       "contains": [{"column": "column_name", "value": "amount"},
                                    {"column": "data_type", "value": "double precision"}]},
        },
        {
            "step": "Navigator: server character set",
            "sql": "SELECT CHARACTER_SET_NAME FROM INFORMATION_SCHEMA.CHARACTER_SETS;",
            "expect": {"min_rows": 1, "contains": {"column": "character_set_name", "value": "UTF8"}},
        },
        {
            "step": "Navigator: relationships (DISTINCT derived table over REFERENTIAL_CONSTRAINTS, KEY_COLUMN_USAGE x2, "
                    "|| name building, ORDER BY alias)",
            "sql": r"""
SELECT PK.TABLE_SCHEMA AS PK_TABLE_SCHEMA, PK.TABLE_NAME AS PK_TABLE_NAME,
       PK.COLUMN_NAME AS PK_COLUMN_NAME, FK.COLUMN_NAME AS FK_COLUMN_NAME,
       FK.ORDINAL_POSITION AS ORDINAL,
       RC.CONSTRAINT_SCHEMA || '_' || 'clicks' || '_' || PK.TABLE_NAME || '_' || RC.CONSTRAINT_NAME AS FK_NAME
FROM (SELECT DISTINCT CONSTRAINT_CATALOG, CONSTRAINT_SCHEMA, UNIQUE_CONSTRAINT_SCHEMA,
                      CONSTRAINT_NAME, UNIQUE_CONSTRAINT_NAME
        FROM INFORMATION_SCHEMA.REFERENTIAL_CONSTRAINTS) RC
INNER JOIN INFORMATION_SCHEMA.KEY_COLUMN_USAGE FK
        ON RC.CONSTRAINT_SCHEMA = FK.CONSTRAINT_SCHEMA AND RC.CONSTRAINT_NAME = FK.CONSTRAINT_NAME
INNER JOIN INFORMATION_SCHEMA.KEY_COLUMN_USAGE PK
        ON RC.UNIQUE_CONSTRAINT_SCHEMA = PK.CONSTRAINT_SCHEMA AND RC.UNIQUE_CONSTRAINT_NAME = PK.CONSTRAINT_NAME
       AND PK.ORDINAL_POSITION = FK.ORDINAL_POSITION
WHERE FK.TABLE_SCHEMA = '{schema}' AND FK.TABLE_NAME = 'clicks'
ORDER BY FK_NAME, FK.ORDINAL_POSITION;
""",
            "expect": {"columns": ["pk_table_schema", "pk_table_name", "pk_column_name",
                                   "fk_column_name", "ordinal", "fk_name"]},
        },
        {
            "step": "Navigator: primary key / unique keys (TABLE_CONSTRAINTS x KEY_COLUMN_USAGE, ORDER BY expression)",
            "sql": r"""
SELECT I.CONSTRAINT_SCHEMA || '_' || I.CONSTRAINT_NAME AS INDEX_NAME,
       II.COLUMN_NAME, II.ORDINAL_POSITION,
       CASE WHEN I.CONSTRAINT_TYPE = 'PRIMARY KEY' THEN 'Y' ELSE 'N' END AS PRIMARY_KEY
FROM INFORMATION_SCHEMA.TABLE_CONSTRAINTS I
INNER JOIN INFORMATION_SCHEMA.KEY_COLUMN_USAGE II
        ON I.CONSTRAINT_SCHEMA = II.CONSTRAINT_SCHEMA AND I.CONSTRAINT_NAME = II.CONSTRAINT_NAME
       AND I.TABLE_SCHEMA = II.TABLE_SCHEMA AND I.TABLE_NAME = II.TABLE_NAME
WHERE I.TABLE_SCHEMA = '{schema}' AND I.TABLE_NAME = 'clicks'
  AND I.CONSTRAINT_TYPE IN ('PRIMARY KEY', 'UNIQUE')
ORDER BY I.CONSTRAINT_SCHEMA || '_' || I.CONSTRAINT_NAME, II.TABLE_SCHEMA, II.TABLE_NAME, II.ORDINAL_POSITION;
""",
            "expect": {"columns": ["index_name", "column_name", "ordinal_position", "primary_key"]},
        },
    ],
}
