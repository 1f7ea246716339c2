// The per-backend half of `backend::copy_end`: included at the end of
// `backend/store.rs` (`include!`), so it is compiled once per backend like
// the rest of that file and reads rows with the store's own row types and
// `into_domain` conversions (one decoding for the API and the copier).
// Writing goes through `WriteRecords`, implemented per connection type in
// `copy_end/sqlite_write.rs` and `copy_end/pg_write.rs`.

mod copy_end {
    use super::*;
    use crate::backend::copy_end::Table as CopyTable;
    use crate::backend::copy_end::{at_row, Checkpoint, CopyEnd, CopyLock, Key, Record, Snapshot};
    use crate::backend::copy_end::SourcePage;
    use crate::backend::copy_end::{drop_index_sql, is_index_definition, secondary_indexes_sql};
    use crate::backend::copy_end::{written_digest_sql, IndexedRef, WriteRecords, Written};

    diesel::table! {
        /// The copier's checkpoint in a target: one row per table. Created
        /// by the copier and dropped once the copy has verified; never part
        /// of the migrations or the schema modules.
        hsk_copy_checkpoint (table_name) {
            table_name -> Text,
            copy_id -> Text,
            source -> Text,
            last_key -> Nullable<Text>,
            last_pos -> Nullable<BigInt>,
            rows_done -> BigInt,
            digest -> Text,
            done -> Bool,
        }
    }

    diesel::table! {
        /// The secondary indexes a copy dropped from the target, to build
        /// again once the rows are in (one sort per index is much cheaper
        /// than a million insertions into it, which is why restore tools
        /// load data before indexes). Lives as long as the checkpoint.
        hsk_copy_index (name) {
            name -> Text,
            definition -> Text,
        }
    }

    const CREATE_INDEX_LIST: &str = "CREATE TABLE hsk_copy_index (\
        name TEXT PRIMARY KEY NOT NULL, definition TEXT NOT NULL)";

    #[derive(Queryable, QueryableByName, Selectable, Insertable)]
    #[diesel(table_name = hsk_copy_index, check_for_backend(DbBackend))]
    struct IndexRow {
        name: String,
        definition: String,
    }

    /// The secondary indexes (no primary key or unique constraint behind
    /// them) on the copied tables, with the statements that create them.
    fn secondary_indexes(c: &mut Conn) -> StorageResult<Vec<IndexRow>> {
        let sql = secondary_indexes_sql(BACKEND);
        diesel::sql_query(sql)
            .load(c)
            .map_err(|e| from_diesel(e, "secondary indexes"))
    }

    const CREATE_CHECKPOINT: &str = "CREATE TABLE hsk_copy_checkpoint (\
        table_name TEXT PRIMARY KEY NOT NULL, copy_id TEXT NOT NULL, source TEXT NOT NULL, \
        last_key TEXT, last_pos BIGINT, rows_done BIGINT NOT NULL, digest TEXT NOT NULL, \
        done BOOLEAN NOT NULL)";

    #[derive(Queryable, Selectable, Insertable, AsChangeset)]
    #[diesel(table_name = hsk_copy_checkpoint, check_for_backend(DbBackend))]
    #[diesel(treat_none_as_default_value = false, treat_none_as_null = true)]
    struct CheckpointRow {
        table_name: String,
        copy_id: String,
        source: String,
        last_key: Option<String>,
        last_pos: Option<i64>,
        rows_done: i64,
        digest: String,
        done: bool,
    }

    impl CheckpointRow {
        fn new(c: &Checkpoint) -> Self {
            CheckpointRow {
                table_name: c.table.name().to_string(),
                copy_id: c.copy_id.clone(),
                source: c.source.clone(),
                last_key: c.last_key.as_ref().map(|k| k.id.clone()),
                last_pos: c.last_key.as_ref().and_then(|k| k.pos),
                rows_done: i64::try_from(c.rows).unwrap_or(i64::MAX),
                digest: format!("{:032x}", c.digest),
                done: c.done,
            }
        }

        fn into_checkpoint(self) -> StorageResult<Checkpoint> {
            let bad = |what: &str| {
                StorageError::Serialization(format!(
                    "the copy checkpoint of table {:?} has a bad {what}",
                    self.table_name
                ))
            };
            Ok(Checkpoint {
                table: CopyTable::from_name(&self.table_name).ok_or_else(|| bad("table name"))?,
                digest: u128::from_str_radix(&self.digest, 16).map_err(|_| bad("digest"))?,
                rows: u64::try_from(self.rows_done).map_err(|_| bad("row count"))?,
                last_key: self.last_key.map(|id| Key {
                    id,
                    pos: self.last_pos,
                }),
                copy_id: self.copy_id,
                source: self.source,
                done: self.done,
            })
        }
    }

    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }

    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }

    /// A kind of object in the store's schema.
    #[derive(Clone, Copy)]
    enum Object {
        Table,
        Index,
    }

    /// Whether the store's schema has a table (or index) of this name.
    fn exists(c: &mut Conn, kind: Object, name: &str) -> StorageResult<bool> {
        // SQLite's `type` and PostgreSQL's `relkind` for each kind.
        let (sqlite_type, pg_relkind) = match kind {
            Object::Table => ("table", "r"),
            Object::Index => ("index", "i"),
        };
        let (sql, kind) = match BACKEND {
            Backend::Sqlite => (
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = ? AND name = ?",
                sqlite_type,
            ),
            Backend::Postgres => (
                "SELECT COUNT(*) AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace \
                 WHERE c.relkind = $1::\"char\" AND s.nspname = current_schema() AND c.relname = $2",
                pg_relkind,
            ),
        };
        let found: Found = diesel::sql_query(sql)
            .bind::<diesel::sql_types::Text, _>(kind)
            .bind::<diesel::sql_types::Text, _>(name)
            .get_result(c)
            .map_err(|e| from_diesel(e, name))?;
        Ok(found.n > 0)
    }

    fn uuid_key(table: CopyTable, key: &Key) -> StorageResult<DbUuid> {
        Uuid::parse_str(&key.id).map(DbUuid).map_err(|e| {
            StorageError::Serialization(format!("bad {} key {key}: {e}", table.name()))
        })
    }

    /// One page of a table whose key is its `id` column: rows after
    /// `after`, in key order, decoded, checked and pushed onto `$out`. A
    /// row Diesel cannot decode fails the page; the page is then read
    /// again key by key to name the row.
    macro_rules! page_by_id {
        ($conn:expr, $out:expr, $tag:expr, $table:ident, $row:ty, $variant:ident, $after:expr, $limit:expr, $key_ty:ty, $key_of:expr, $key_value:expr) => {{
            let table: CopyTable = $tag;
            let what = table.name();
            let mut query = $table::table
                .select(<$row>::as_select())
                .order($table::id)
                .limit($limit)
                .into_boxed();
            if let Some(after) = $after {
                query = query.filter($table::id.gt($key_value(after)?));
            }
            // Row by row from the statement into `$out`: no vector of
            // rows per page (see `checked`).
            let loaded = match query
                .load_iter::<$row, diesel::connection::DefaultLoadingMode>($conn)
            {
                Ok(rows) => {
                    let mut loaded = Ok(());
                    for row in rows {
                        let row = match row {
                            Ok(row) => row,
                            Err(e) => {
                                loaded = Err(e);
                                break;
                            }
                        };
                        let key: Key = $key_of(&row);
                        let record = row
                            .into_domain()
                            .map(Record::$variant)
                            .map_err(|e| at_row(table, &key.to_string(), e))?;
                        record
                            .check()
                            .map_err(|e| at_row(table, &key.to_string(), e))?;
                        $out.push(record);
                    }
                    loaded
                }
                Err(e) => Err(e),
            };
            match loaded {
                Ok(()) => Ok(()),
                Err(page_err @ diesel::result::Error::DeserializationError(_)) => {
                    let mut keys = $table::table
                        .select($table::id)
                        .order($table::id)
                        .limit($limit)
                        .into_boxed();
                    if let Some(after) = $after {
                        keys = keys.filter($table::id.gt($key_value(after)?));
                    }
                    let after_text =
                        $after.map_or("the start".to_string(), |k: &Key| k.to_string());
                    let keys: Vec<$key_ty> = keys.load($conn).map_err(|e| {
                        at_row(table, &format!("after {after_text}"), from_diesel(e, what))
                    })?;
                    for key in keys {
                        if let Err(e) = $table::table
                            .find(key.clone())
                            .select(<$row>::as_select())
                            .first::<$row>($conn)
                        {
                            return Err(at_row(table, &format!("{key:?}"), from_diesel(e, what)));
                        }
                    }
                    Err(at_row(
                        table,
                        &format!("after {after_text}"),
                        from_diesel(page_err, what),
                    ))
                }
                Err(other) => Err(from_diesel(other, what)),
            }
        }};
    }

    /// A page of rows decoded into records, each checked and pushed onto
    /// `out` (an error names the row's key; one that cannot be decoded
    /// names the table). Pushed, not collected: collecting would reuse the
    /// rows' allocation and shrink it to the records' size, a copy of the
    /// page each time; and `out` is a page the copy had done with, reused,
    /// so no page-sized block is allocated or freed per page (with glibc,
    /// each such block makes the allocator merge every small block freed
    /// since, which the next page's small allocations then pay for).
    fn checked<R>(
        table: CopyTable,
        rows: Vec<R>,
        out: &mut Vec<Record>,
        decode: impl Fn(R) -> StorageResult<Record>,
    ) -> StorageResult<()> {
        for row in rows {
            let record = decode(row).map_err(|e| at_row(table, "in page", e))?;
            record
                .check()
                .map_err(|e| at_row(table, &record.key().to_string(), e))?;
            out.push(record);
        }
        Ok(())
    }

    struct Snap<'c>(&'c mut Conn);

    impl Snap<'_> {
        /// [`Snapshot::page`], onto `out`.
        fn page_into(
            &mut self,
            table: CopyTable,
            after: Option<&Key>,
            limit: usize,
            out: &mut Vec<Record>,
        ) -> StorageResult<()> {
            let conn = &mut *self.0;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let text_key = |k: &Key| -> StorageResult<String> { Ok(k.id.clone()) };
            let uuid_of = |k: &Key| uuid_key(table, k);
            match table {
                CopyTable::Workspaces => page_by_id!(
                    conn,
                    out,
                    table,
                    workspaces,
                    WorkspaceRow,
                    Workspace,
                    after,
                    limit,
                    String,
                    |r: &WorkspaceRow| Key::id(&r.id),
                    text_key
                ),
                CopyTable::Documents => page_by_id!(
                    conn,
                    out,
                    table,
                    documents,
                    DocumentRow,
                    Document,
                    after,
                    limit,
                    String,
                    |r: &DocumentRow| Key::id(&r.id),
                    text_key
                ),
                CopyTable::Blocks => page_by_id!(
                    conn,
                    out,
                    table,
                    blocks,
                    BlockRow,
                    Block,
                    after,
                    limit,
                    String,
                    |r: &BlockRow| Key::id(&r.id),
                    text_key
                ),
                CopyTable::Canvases => page_by_id!(
                    conn,
                    out,
                    table,
                    canvases,
                    CanvasRow,
                    Canvas,
                    after,
                    limit,
                    String,
                    |r: &CanvasRow| Key::id(&r.id),
                    text_key
                ),
                CopyTable::CanvasNodes => page_by_id!(
                    conn,
                    out,
                    table,
                    canvas_nodes,
                    NodeRow,
                    Node,
                    after,
                    limit,
                    String,
                    |r: &NodeRow| Key::id(&r.id),
                    text_key
                ),
                CopyTable::CanvasEdges => page_by_id!(
                    conn,
                    out,
                    table,
                    canvas_edges,
                    EdgeRow,
                    Edge,
                    after,
                    limit,
                    String,
                    |r: &EdgeRow| Key::id(&r.id),
                    text_key
                ),
                CopyTable::AiJobs => page_by_id!(
                    conn,
                    out,
                    table,
                    ai_jobs,
                    AiJobRow,
                    Job,
                    after,
                    limit,
                    DbUuid,
                    |r: &AiJobRow| Key::uuid(r.id.0),
                    uuid_of
                ),
                CopyTable::WorkflowRuns => page_by_id!(
                    conn,
                    out,
                    table,
                    workflow_runs,
                    RunRow,
                    Run,
                    after,
                    limit,
                    DbUuid,
                    |r: &RunRow| Key::uuid(r.id.0),
                    uuid_of
                ),
                CopyTable::WorkflowNodeExecutions => page_by_id!(
                    conn,
                    out,
                    table,
                    workflow_node_executions,
                    ExecutionRow,
                    Execution,
                    after,
                    limit,
                    DbUuid,
                    |r: &ExecutionRow| Key::uuid(r.id.0),
                    uuid_of
                ),
                CopyTable::KernelEvents => {
                    let mut query = kernel_events::table
                        .select(KernelEventRow::as_select())
                        .order(kernel_events::event_sequence)
                        .limit(limit)
                        .into_boxed();
                    if let Some(after) = after {
                        query = query
                            .filter(kernel_events::event_sequence.gt(after.pos.unwrap_or(i64::MIN)));
                    }
                    let rows: Vec<KernelEventRow> =
                        query.load(conn).map_err(|e| from_diesel(e, table.name()))?;
                    checked(table, rows, out, |row| row.into_domain().map(Record::KernelEvent))
                }
                CopyTable::KernelSessionRuns => {
                    let mut query = kernel_session_runs::table
                        .select(SessionRunRow::as_select())
                        .order(kernel_session_runs::session_run_id)
                        .limit(limit)
                        .into_boxed();
                    if let Some(after) = after {
                        query = query.filter(kernel_session_runs::session_run_id.gt(after.id.clone()));
                    }
                    let rows: Vec<SessionRunRow> =
                        query.load(conn).map_err(|e| from_diesel(e, table.name()))?;
                    checked(table, rows, out, |row| row.into_domain().map(Record::SessionRun))
                }
                CopyTable::KernelSessionClaims => {
                    let mut query = kernel_session_claims::table
                        .select(ClaimRow::as_select())
                        .order((kernel_session_claims::session_run_id, kernel_session_claims::attempt))
                        .limit(limit)
                        .into_boxed();
                    if let Some(after) = after {
                        // A row-value comparison, answered from the primary
                        // key (see the entity refs below).
                        query = query.filter(
                            diesel::dsl::sql::<diesel::sql_types::Bool>("(session_run_id, attempt) > (")
                                .bind::<diesel::sql_types::Text, _>(after.id.clone())
                                .sql(", ")
                                .bind::<diesel::sql_types::BigInt, _>(after.pos.unwrap_or(i64::MIN))
                                .sql(")"),
                        );
                    }
                    let rows: Vec<ClaimRow> =
                        query.load(conn).map_err(|e| from_diesel(e, table.name()))?;
                    checked(table, rows, out, |row| row.into_domain().map(Record::SessionClaim))
                }
                CopyTable::AiJobEntityRefs => {
                    use ai_job_entity_refs::dsl as r;
                    let mut query = r::ai_job_entity_refs
                        .select((
                            r::job_id,
                            r::position,
                            r::entity_id,
                            r::entity_kind,
                            r::created_at,
                        ))
                        .order((r::job_id, r::position))
                        .limit(limit)
                        .into_boxed();
                    if let Some(after) = after {
                        // A row-value comparison, which both backends
                        // answer from the primary key (`a > x OR (a = x AND
                        // b > y)` is a filter over the whole index on
                        // PostgreSQL: each page scanned from the start).
                        type SqlUuid = <r::job_id as diesel::Expression>::SqlType;
                        let job = uuid_key(table, after)?;
                        let pos = after.pos.unwrap_or(i64::MIN);
                        query = query.filter(
                            diesel::dsl::sql::<diesel::sql_types::Bool>("(job_id, position) > (")
                                .bind::<SqlUuid, _>(job)
                                .sql(", ")
                                .bind::<diesel::sql_types::BigInt, _>(pos)
                                .sql(")"),
                        );
                    }
                    let rows: Vec<(DbUuid, i64, String, String, DbTime)> =
                        query.load(conn).map_err(|e| from_diesel(e, table.name()))?;
                    checked(
                        table,
                        rows,
                        out,
                        |(job_id, position, entity_id, entity_kind, created_at)| {
                            Ok(Record::Ref(IndexedRef {
                                job_id: job_id.0,
                                position,
                                entity_id,
                                entity_kind,
                                created_at: created_at.0,
                            }))
                        },
                    )
                }
            }
        }

    }

    impl Snapshot for Snap<'_> {
        fn page(
            &mut self,
            table: CopyTable,
            after: Option<&Key>,
            limit: usize,
        ) -> StorageResult<Vec<Record>> {
            let mut records = Vec::new();
            self.page_into(table, after, limit, &mut records)?;
            Ok(records)
        }

        fn source_page_into(
            &mut self,
            table: CopyTable,
            after: Option<&Key>,
            limit: usize,
            mut buffer: Vec<Record>,
        ) -> StorageResult<SourcePage> {
            buffer.clear();
            self.page_into(table, after, limit, &mut buffer)?;
            Ok(SourcePage::of(buffer, limit))
        }

        fn count(&mut self, table: CopyTable) -> StorageResult<u64> {
            let conn = &mut *self.0;
            macro_rules! count {
                ($t:ident) => {
                    $t::table.count().get_result::<i64>(conn)
                };
            }
            let n = match table {
                CopyTable::Workspaces => count!(workspaces),
                CopyTable::Documents => count!(documents),
                CopyTable::Blocks => count!(blocks),
                CopyTable::Canvases => count!(canvases),
                CopyTable::CanvasNodes => count!(canvas_nodes),
                CopyTable::CanvasEdges => count!(canvas_edges),
                CopyTable::AiJobs => count!(ai_jobs),
                CopyTable::AiJobEntityRefs => count!(ai_job_entity_refs),
                CopyTable::WorkflowRuns => count!(workflow_runs),
                CopyTable::WorkflowNodeExecutions => count!(workflow_node_executions),
                CopyTable::KernelEvents => count!(kernel_events),
                CopyTable::KernelSessionRuns => count!(kernel_session_runs),
                CopyTable::KernelSessionClaims => count!(kernel_session_claims),
            }
            .map_err(|e| from_diesel(e, table.name()))?;
            Ok(u64::try_from(n).unwrap_or(0))
        }

        fn written_digest(
            &mut self,
            table: CopyTable,
            after: Option<&Key>,
            until: Option<&Key>,
        ) -> StorageResult<Option<(u64, [u8; 32])>> {
            #[derive(QueryableByName)]
            struct RangeDigest {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                rows: i64,
                #[diesel(sql_type = diesel::sql_types::Binary)]
                digest: Vec<u8>,
            }
            if BACKEND != Backend::Postgres {
                return Ok(None);
            }
            let sql = written_digest_sql(table, after.is_some(), until.is_some());
            let mut query = diesel::sql_query(sql).into_boxed::<DbBackend>();
            for key in after.into_iter().chain(until) {
                for value in key.column_values(table) {
                    query = query.bind::<diesel::sql_types::Text, _>(value);
                }
            }
            let found: RangeDigest = query
                .get_result(&mut *self.0)
                .map_err(|e| from_diesel(e, &format!("{} digest", table.name())))?;
            Ok(<[u8; 32]>::try_from(found.digest.as_slice())
                .ok()
                .map(|digest| (u64::try_from(found.rows).unwrap_or(0), digest)))
        }
    }

    /// A session advisory lock on a PostgreSQL target, held by a pooled
    /// connection for as long as the copy runs (and released by the server
    /// if the copier dies).
    struct AdvisoryLock(PooledConn);

    const COPY_LOCK_KEY: &str =
        "hashtextextended('handshake-storage copy ' || current_schema(), 0)";

    /// On PostgreSQL, that the copy lock is still held: it lives on a
    /// connection of its own, and if that connection ends (a terminated
    /// backend, a lost network) the server releases the lock; the copy
    /// must then stop rather than go on writing unguarded.
    /// A page's commit does not wait for its WAL to reach the disk
    /// (`synchronous_commit = off` for the page's transaction; any role may
    /// set it). A server crash may then lose the last pages committed, and
    /// with them the checkpoint rows of the same transactions, so a resume
    /// writes them again; nothing is half-kept. The copy's last
    /// transactions (the indexes, dropping the checkpoint) commit as the
    /// server is configured, and flushing their WAL flushes every page's
    /// before them: a copy that has returned is as durable as any commit.
    fn page_commits_without_flush(c: &mut Conn) -> StorageResult<()> {
        if BACKEND != Backend::Postgres {
            return Ok(());
        }
        diesel::sql_query("SET LOCAL synchronous_commit = off")
            .execute(c)
            .map(drop)
            .map_err(|e| from_diesel(e, "synchronous_commit"))
    }

    fn still_locked(c: &mut Conn) -> StorageResult<()> {
        if BACKEND != Backend::Postgres {
            return Ok(());
        }
        let held: Locked = diesel::sql_query(format!(
            "SELECT EXISTS (SELECT 1 FROM pg_locks, (SELECT {COPY_LOCK_KEY} AS k) AS copy_key \
             WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND classid::bigint = (copy_key.k >> 32) & 4294967295 \
             AND objid::bigint = copy_key.k & 4294967295) AS locked"
        ))
        .get_result(c)
        .map_err(|e| from_diesel(e, "copy lock"))?;
        if held.locked {
            Ok(())
        } else {
            Err(StorageError::Database(
                "the copy lost its lock on the target (the connection holding it ended): \
                 rerun with resume to finish"
                    .into(),
            ))
        }
    }

    impl Drop for AdvisoryLock {
        fn drop(&mut self) {
            // Best effort: a connection that failed is dropped by the pool,
            // and the server then releases the lock itself.
            let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({COPY_LOCK_KEY})"))
                .execute(&mut *self.0);
        }
    }

    impl CopyEnd for Store {
        fn snapshot(
            &self,
            f: &mut dyn FnMut(&mut dyn Snapshot) -> StorageResult<()>,
        ) -> StorageResult<()> {
            let mut conn = self.conn()?;
            read_tx(&mut conn, |c| f(&mut Snap(c)))
        }

        fn write_batch(
            &self,
            table: CopyTable,
            records: &[Record],
            refs: &[Record],
            progress: &[Checkpoint],
        ) -> StorageResult<Vec<Written>> {
            let mut conn = self.conn()?;
            write_tx(&mut conn, |c| {
                page_commits_without_flush(c)?;
                still_locked(c)?;
                let written = if records.is_empty() {
                    Vec::new()
                } else {
                    c.write_records(table, records, Some(refs), true)?
                };
                for checkpoint in progress {
                    let row = CheckpointRow::new(checkpoint);
                    diesel::update(hsk_copy_checkpoint::table.find(&row.table_name))
                        .set(&row)
                        .execute(c)
                        .map_err(|e| from_diesel(e, "copy checkpoint"))?;
                }
                Ok(written)
            })
        }

        fn checkpoints(&self) -> StorageResult<Option<Vec<Checkpoint>>> {
            let mut conn = self.conn()?;
            if !exists(&mut conn, Object::Table, "hsk_copy_checkpoint")? {
                return Ok(None);
            }
            let rows: Vec<CheckpointRow> = hsk_copy_checkpoint::table
                .select(CheckpointRow::as_select())
                .load(&mut *conn)
                .map_err(|e| from_diesel(e, "copy checkpoint"))?;
            rows.into_iter()
                .map(CheckpointRow::into_checkpoint)
                .collect::<StorageResult<_>>()
                .map(Some)
        }

        fn start_checkpoint(&self, checkpoints: &[Checkpoint]) -> StorageResult<()> {
            let mut conn = self.conn()?;
            write_tx(&mut conn, |c| {
                if exists(c, Object::Table, "hsk_copy_index")? {
                    return Err(StorageError::validation(
                        "the target holds the index list of an unfinished copy (table \
                         hsk_copy_index) but no checkpoint: restore its indexes from that \
                         list, or copy into an empty database",
                    ));
                }
                // A role that may not create tables (an application role
                // with only its grants) cannot keep a checkpoint: copying
                // into a store is the owner's job.
                diesel::sql_query(CREATE_CHECKPOINT).execute(c).map_err(|e| {
                    from_diesel(
                        e,
                        "copy checkpoint (the copier creates table hsk_copy_checkpoint in \
                         the target: copy into this database as its owner)",
                    )
                })?;
                let rows: Vec<CheckpointRow> = checkpoints.iter().map(CheckpointRow::new).collect();
                diesel::insert_into(hsk_copy_checkpoint::table)
                    .values(&rows)
                    .execute(c)
                    .map_err(|e| from_diesel(e, "copy checkpoint"))?;
                let indexes = secondary_indexes(c)?;
                diesel::sql_query(CREATE_INDEX_LIST)
                    .execute(c)
                    .map_err(|e| from_diesel(e, "copy index list"))?;
                diesel::insert_into(hsk_copy_index::table)
                    .values(&indexes)
                    .execute(c)
                    .map_err(|e| from_diesel(e, "copy index list"))?;
                for index in &indexes {
                    diesel::sql_query(drop_index_sql(&index.name))
                        .execute(c)
                        .map_err(|e| from_diesel(e, &index.name))?;
                }
                Ok(())
            })
        }

        fn restore_indexes(&self) -> StorageResult<()> {
            let mut conn = self.conn()?;
            write_tx(&mut conn, |c| {
                if !exists(c, Object::Table, "hsk_copy_index")? {
                    return Ok(());
                }
                let indexes: Vec<IndexRow> = hsk_copy_index::table
                    .select(IndexRow::as_select())
                    .order(hsk_copy_index::name)
                    .load(c)
                    .map_err(|e| from_diesel(e, "copy index list"))?;
                for index in &indexes {
                    if exists(c, Object::Index, &index.name)? {
                        continue; // built by hand while the copy was stopped
                    }
                    if !is_index_definition(&index.name, &index.definition) {
                        return Err(StorageError::Serialization(format!(
                            "the copy's index list holds {:?} for index {:?}, which is not \
                             its CREATE INDEX statement",
                            index.definition, index.name
                        )));
                    }
                    diesel::sql_query(&index.definition)
                        .execute(c)
                        .map_err(|e| from_diesel(e, &index.name))?;
                }
                diesel::sql_query("DROP TABLE hsk_copy_index")
                    .execute(c)
                    .map(drop)
                    .map_err(|e| from_diesel(e, "copy index list"))
            })
        }

        fn drop_checkpoint(&self) -> StorageResult<()> {
            diesel::sql_query("DROP TABLE IF EXISTS hsk_copy_checkpoint")
                .execute(&mut *self.conn()?)
                .map(drop)
                .map_err(|e| from_diesel(e, "copy checkpoint"))
        }

        fn verifiers(&self) -> usize {
            match BACKEND {
                Backend::Postgres => 1,
                Backend::Sqlite => 2,
            }
        }

        fn lock_copies(&self) -> StorageResult<Option<CopyLock>> {
            if BACKEND != Backend::Postgres {
                return Ok(None);
            }
            let mut conn = self.conn()?;
            let got: Locked = diesel::sql_query(format!(
                "SELECT pg_try_advisory_lock({COPY_LOCK_KEY}) AS locked"
            ))
            .get_result(&mut *conn)
            .map_err(|e| from_diesel(e, "copy lock"))?;
            if !got.locked {
                return Err(StorageError::Conflict(
                    "another copy into this database is running".into(),
                ));
            }
            Ok(Some(Box::new(AdvisoryLock(conn))))
        }
    }
}
