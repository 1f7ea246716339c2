//! The grants an application role needs on a store, run by its owner:
//! `USAGE` on the schema, `SELECT`, `INSERT`, `UPDATE`, `DELETE` on the
//! store's tables, `SELECT` on Diesel's bookkeeping table (the check at
//! open reads it), `USAGE` on sequences the tables own, `EXECUTE` on the
//! functions their triggers call. Nothing more: no `CREATE` on the schema,
//! no ownership, so the role can neither change the schema nor drop a
//! table. Every name in a statement is quoted (`quote_ident`); the role's
//! is checked first (`grants::check_role_name`).

use diesel::sql_types::{Array, Bool, Text};
use diesel::{QueryableByName, RunQueryDsl};

use super::{connect, open, write_tx, Conn};
use crate::backend::{from_diesel, SchemaOnOpen};
use crate::config::{PgUrl, StorageConfig};
use crate::error::{StorageError, StorageResult};
use crate::grants::{quote_ident, GrantReport};
use crate::schema_info::committed_fingerprint;
use crate::types::Backend;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    flag: bool,
}

/// The store's tables, as this build's committed fingerprint lists them.
fn store_tables() -> Vec<String> {
    committed_fingerprint(Backend::Postgres)
        .lines()
        .filter_map(|line| line.strip_prefix("table "))
        .map(str::to_string)
        .collect()
}

/// Grants `role` what the store needs on the database `url` names (its
/// schema: the URL's `search_path`, else the default), in one transaction.
/// `role` was checked by the caller (`grants::check_role_name`).
pub(crate) fn grant_application_role(url: &PgUrl, role: &str) -> StorageResult<GrantReport> {
    // The schema must be this build's: the owner migrates first, and the
    // grants name the tables this build expects.
    drop(open(
        url,
        &StorageConfig::default().pool_size(1),
        SchemaOnOpen::Check,
    )?);
    let mut conn = connect(url)?;
    write_tx(&mut conn, |c| grant(c, role))
}

fn grant(c: &mut Conn, role: &str) -> StorageResult<GrantReport> {
    let exists: Flag =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS flag")
            .bind::<Text, _>(role)
            .get_result(c)
            .map_err(|e| from_diesel(e, "roles"))?;
    if !exists.flag {
        return Err(StorageError::NotFound(format!(
            "role {role:?} (create it first, as a role with CREATEROLE: \
             CREATE ROLE {} LOGIN PASSWORD '...')",
            quote_ident(role)
        )));
    }
    let tables = store_tables();
    let not_owned: Vec<Name> = diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relname = ANY($1) \
         AND NOT pg_has_role(current_user, c.relowner, 'USAGE') ORDER BY 1",
    )
    .bind::<Array<Text>, _>(&tables)
    .load(c)
    .map_err(|e| from_diesel(e, "table owners"))?;
    if let Some(table) = not_owned.first() {
        return Err(StorageError::validation(format!(
            "grants must be given by the role that owns the store's tables (the one that \
             ran the migrations); the current role does not own table {}",
            table.name
        )));
    }
    let schema: Name = diesel::sql_query("SELECT current_schema()::text AS name")
        .get_result(c)
        .map_err(|e| from_diesel(e, "current schema"))?;
    let schema = schema.name;
    let sequences: Vec<Name> = diesel::sql_query(
        "SELECT DISTINCT s.relname::text AS name FROM pg_class s \
         JOIN pg_namespace n ON n.oid = s.relnamespace \
         JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid \
           AND d.refclassid = 'pg_class'::regclass \
         JOIN pg_class t ON t.oid = d.refobjid \
         WHERE s.relkind = 'S' AND n.nspname = current_schema() AND t.relname = ANY($1) \
         ORDER BY 1",
    )
    .bind::<Array<Text>, _>(&tables)
    .load(c)
    .map_err(|e| from_diesel(e, "sequences"))?;
    // `format('%I ...')` quotes as the server does.
    let functions: Vec<Name> = diesel::sql_query(
        "SELECT DISTINCT format('%I.%I(%s)', pn.nspname, p.proname, \
           pg_get_function_identity_arguments(p.oid)) AS name \
         FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_proc p ON p.oid = tg.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace \
         WHERE NOT tg.tgisinternal AND n.nspname = current_schema() AND c.relname = ANY($1) \
         ORDER BY 1",
    )
    .bind::<Array<Text>, _>(&tables)
    .load(c)
    .map_err(|e| from_diesel(e, "trigger functions"))?;

    let to = quote_ident(role);
    let qualified = |name: &str| format!("{}.{}", quote_ident(&schema), quote_ident(name));
    let list = |names: &[String]| {
        names
            .iter()
            .map(|n| qualified(n))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sequences: Vec<String> = sequences.into_iter().map(|s| s.name).collect();
    let functions: Vec<String> = functions.into_iter().map(|f| f.name).collect();
    let read_only_tables = vec!["__diesel_schema_migrations".to_string()];
    let mut statements = vec![
        format!("GRANT USAGE ON SCHEMA {} TO {to}", quote_ident(&schema)),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {} TO {to}",
            list(&tables)
        ),
        format!("GRANT SELECT ON TABLE {} TO {to}", list(&read_only_tables)),
    ];
    if !sequences.is_empty() {
        statements.push(format!(
            "GRANT USAGE ON SEQUENCE {} TO {to}",
            list(&sequences)
        ));
    }
    if !functions.is_empty() {
        statements.push(format!(
            "GRANT EXECUTE ON FUNCTION {} TO {to}",
            functions.join(", ")
        ));
    }
    for statement in &statements {
        diesel::sql_query(statement)
            .execute(c)
            .map_err(|e| from_diesel(e, &format!("grant to role {role:?}")))?;
    }
    Ok(GrantReport {
        role: role.to_string(),
        schema,
        tables,
        read_only_tables,
        sequences,
        functions,
        statements,
    })
}
