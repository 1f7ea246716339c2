// The kernel ledger and session queue: included at the end of
// `backend/store.rs` (`include!`), so it is compiled once per backend like
// the rest of that file, against that backend's schema module and
// connection. `docs/kernel.md` says what it guarantees and why it is built
// this way.

mod kernel_store {
    use super::*;
    use crate::kernel;

    /// A ledger row.
    #[derive(Debug, Clone, Queryable, Selectable, Insertable)]
    #[diesel(table_name = kernel_events, check_for_backend(DbBackend))]
    #[diesel(treat_none_as_default_value = false)]
    pub(in crate::backend) struct KernelEventRow {
        event_sequence: i64,
        event_id: String,
        event_version: String,
        kernel_task_run_id: String,
        session_run_id: String,
        aggregate_type: String,
        aggregate_id: String,
        idempotency_key: String,
        event_type: String,
        actor_kind: String,
        actor_id: String,
        causation_id: Option<String>,
        correlation_id: Option<String>,
        source_component: String,
        payload: DbJson,
        payload_hash: String,
        created_at: DbTime,
    }

    impl KernelEventRow {
        pub(in crate::backend) fn into_domain(self) -> StorageResult<KernelEvent> {
            Ok(KernelEvent {
                event_id: self.event_id,
                event_sequence: self.event_sequence,
                event_version: self.event_version,
                kernel_task_run_id: self.kernel_task_run_id,
                session_run_id: self.session_run_id,
                aggregate_type: self.aggregate_type,
                aggregate_id: self.aggregate_id,
                idempotency_key: self.idempotency_key,
                event_type: self.event_type,
                actor: KernelActor {
                    kind: self.actor_kind.parse()?,
                    id: self.actor_id,
                },
                causation_id: self.causation_id,
                correlation_id: self.correlation_id,
                source_component: self.source_component,
                payload: self.payload.0,
                payload_hash: self.payload_hash,
                created_at: self.created_at.0,
            })
        }

        fn new(event: NewKernelEvent, sequence: i64, at: DateTime<Utc>) -> Self {
            KernelEventRow {
                event_sequence: sequence,
                event_id: format!("KE-{}", crate::ids::new_uuid()),
                payload_hash: kernel::payload_hash(&event.payload),
                event_version: event.event_version,
                kernel_task_run_id: event.kernel_task_run_id,
                session_run_id: event.session_run_id,
                aggregate_type: event.aggregate_type,
                aggregate_id: event.aggregate_id,
                idempotency_key: event.idempotency_key,
                event_type: event.event_type,
                actor_kind: event.actor.kind.as_str().to_string(),
                actor_id: event.actor.id,
                causation_id: event.causation_id,
                correlation_id: event.correlation_id,
                source_component: event.source_component,
                payload: DbJson(event.payload),
                created_at: DbTime(at),
            }
        }
    }

    /// Now on the database's clock, at microsecond precision. SQLite's
    /// clock is the host's (it runs in this process) and has milliseconds.
    pub(in crate::backend) fn db_now(conn: &mut Conn) -> StorageResult<DateTime<Utc>> {
        #[derive(QueryableByName)]
        struct Now {
            #[diesel(sql_type = <kernel_events::created_at as diesel::Expression>::SqlType)]
            now: DbTime,
        }
        let sql = match BACKEND {
            Backend::Sqlite => {
                "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00:00' AS now"
            }
            Backend::Postgres => "SELECT date_trunc('microseconds', clock_timestamp()) AS now",
        };
        let now: Now = diesel::sql_query(sql)
            .cache_prepared()
            .get_result(conn)
            .map_err(|e| from_diesel(e, "database clock"))?;
        Ok(now.now.0)
    }

    /// Serialises appends to the ledger until the transaction ends, so
    /// that sequence order is commit order (docs/kernel.md, "The tail").
    /// On PostgreSQL a transaction-scoped advisory lock keyed by the
    /// schema, released only after the commit is visible; SQLite's write
    /// transaction (`BEGIN IMMEDIATE`) already admits one writer at a time.
    pub(in crate::backend) fn lock_ledger(conn: &mut Conn) -> StorageResult<()> {
        if BACKEND == Backend::Postgres {
            // Loaded, not executed: Diesel runs `execute` through a
            // reference, whose `is_safe_to_cache_prepared` ignores
            // `cache_prepared()`, so the statement would be prepared anew
            // on every call (hence a row to load).
            #[derive(QueryableByName)]
            struct Locked {
                #[diesel(sql_type = diesel::sql_types::Bool)]
                #[allow(dead_code)]
                locked: bool,
            }
            let _: Locked = diesel::sql_query(
                "SELECT true AS locked FROM pg_advisory_xact_lock(hashtextextended(\
                 'handshake-storage kernel ledger ' || current_schema(), 0))",
            )
            .cache_prepared()
            .get_result(conn)
            .map_err(|e| from_diesel(e, "kernel ledger lock"))?;
        }
        Ok(())
    }

    /// The stored event with this idempotency key, if any (the key is
    /// unique). No `LIMIT`: SQLite (3.53) treats a bound LIMIT as bearing
    /// on the plan and prepares the statement anew on every call, which
    /// cost an append on SQLite about twice the raw SQL's time.
    fn find_by_key(conn: &mut Conn, key: &str) -> StorageResult<Option<KernelEvent>> {
        kernel_events::table
            .filter(kernel_events::idempotency_key.eq(key))
            .select(KernelEventRow::as_select())
            .get_result(conn)
            .optional()
            .map_err(|e| from_diesel(e, &format!("kernel event {key:?}")))?
            .map(KernelEventRow::into_domain)
            .transpose()
    }

    /// The stored event if it has the same content as `event`, else
    /// `Conflict` naming the key and the fields that differ.
    fn same_or_conflict(stored: KernelEvent, event: &NewKernelEvent) -> StorageResult<KernelEvent> {
        let differing = kernel::differing_fields(&stored, event);
        if differing.is_empty() {
            return Ok(stored);
        }
        Err(StorageError::Conflict(format!(
            "kernel event idempotency_key {:?} is already in the ledger (event {}) with other \
             content: {} differ",
            event.idempotency_key,
            stored.event_id,
            differing.join(", ")
        )))
    }

    /// Appends one validated event inside the caller's transaction, which
    /// holds [`lock_ledger`]: the existing event for its key when the
    /// content is the same, a new one with the next sequence otherwise.
    /// The INSERT does nothing on a key clash and the row is then read,
    /// so even without the lock the first writer's row is what every
    /// caller gets.
    pub(in crate::backend) fn append_in_tx(
        conn: &mut Conn,
        event: NewKernelEvent,
        at: DateTime<Utc>,
    ) -> StorageResult<KernelEvent> {
        if let Some(stored) = find_by_key(conn, &event.idempotency_key)? {
            return same_or_conflict(stored, &event);
        }
        let last: Option<i64> = kernel_events::table
            .select(diesel::dsl::max(kernel_events::event_sequence))
            .get_result(conn)
            .map_err(|e| from_diesel(e, "kernel ledger"))?;
        let sequence = last.unwrap_or(0).checked_add(1).ok_or_else(|| {
            StorageError::Conflict("the kernel ledger has used every sequence number".into())
        })?;
        let key = event.idempotency_key.clone();
        let row = KernelEventRow::new(event.clone(), sequence, at);
        let inserted = diesel::insert_into(kernel_events::table)
            .values(&row)
            .on_conflict(kernel_events::idempotency_key)
            .do_nothing()
            .execute(conn)
            .map_err(|e| from_diesel(e, &format!("kernel event {key:?}")))?;
        if inserted == 0 {
            let stored = find_by_key(conn, &key)?.ok_or_else(|| {
                StorageError::Database(format!(
                    "kernel event {key:?} clashed on insert but cannot be read"
                ))
            })?;
            return same_or_conflict(stored, &event);
        }
        row.into_domain()
    }

    impl Store {
        /// Appends `events` in one transaction under the ledger lock;
        /// `link` sets each event's causation from the events before it.
        pub(in crate::backend) fn append_kernel_batch(
            &self,
            events: Vec<NewKernelEvent>,
            link_causation: bool,
        ) -> StorageResult<Vec<KernelEvent>> {
            for event in &events {
                kernel::validate_new_event(event)?;
            }
            let mut conn = self.conn()?;
            write_tx(&mut conn, |conn| {
                lock_ledger(conn)?;
                let at = db_now(conn)?;
                let mut out: Vec<KernelEvent> = Vec::with_capacity(events.len());
                for mut event in events {
                    if link_causation {
                        if let Some(previous) = out.last() {
                            event.causation_id = Some(previous.event_id.clone());
                        }
                    }
                    out.push(append_in_tx(conn, event, at)?);
                }
                Ok(out)
            })
        }

        pub(in crate::backend) fn kernel_events_where(
            &self,
            session_run_id: Option<&str>,
            aggregate: Option<(&str, &str)>,
            after: Option<(i64, u32)>,
        ) -> StorageResult<Vec<KernelEvent>> {
            let mut query = kernel_events::table
                .select(KernelEventRow::as_select())
                .order(kernel_events::event_sequence)
                .into_boxed();
            if let Some(id) = session_run_id {
                validate::key("session_run_id", id)?;
                query = query.filter(kernel_events::session_run_id.eq(id.to_string()));
            }
            if let Some((kind, id)) = aggregate {
                validate::key("aggregate_type", kind)?;
                validate::key("aggregate_id", id)?;
                query = query
                    .filter(kernel_events::aggregate_type.eq(kind.to_string()))
                    .filter(kernel_events::aggregate_id.eq(id.to_string()));
            }
            if let Some((after_sequence, limit)) = after {
                if after_sequence < 0 {
                    return Err(StorageError::validation(format!(
                        "after_sequence must not be negative, got {after_sequence}"
                    )));
                }
                if limit == 0 {
                    return Err(StorageError::validation("limit must be at least 1"));
                }
                query = query
                    .filter(kernel_events::event_sequence.gt(after_sequence))
                    .limit(i64::from(limit));
            }
            self.load_all(query, "kernel events", KernelEventRow::into_domain)
        }
    }
}

use kernel_store::KernelEventRow;

mod kernel_queue {
    use super::kernel_store::{append_in_tx, db_now, lock_ledger};
    use super::*;
    use crate::kernel;

    /// Causation and correlation of the event a `_and_record_event` method
    /// appends; `None` for the plain methods.
    pub(in crate::backend) type RecordWith = Option<(Option<String>, Option<String>)>;

    /// The states from which a run can be claimed (when `available_at` has
    /// passed): waiting ones, and held ones whose lease ended. The same
    /// list as the partial indexes' predicate.
    const CLAIMABLE_STATES_SQL: &str = "('QUEUED', 'RETRY_SCHEDULED', 'CLAIMED', 'RUNNING')";

    /// A queue row.
    #[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
    #[diesel(table_name = kernel_session_runs, check_for_backend(DbBackend))]
    #[diesel(treat_none_as_default_value = false)]
    pub(in crate::backend) struct SessionRunRow {
        session_run_id: String,
        kernel_task_run_id: String,
        adapter_id: String,
        state: String,
        claimed_by: Option<String>,
        lease_expires_at: Option<DbTime>,
        attempt_count: i64,
        available_at: DbTime,
        created_at: DbTime,
        updated_at: DbTime,
    }

    impl SessionRunRow {
        pub(in crate::backend) fn into_domain(self) -> StorageResult<KernelSessionLease> {
            Ok(KernelSessionLease {
                state: self.state.parse()?,
                session_run_id: self.session_run_id,
                kernel_task_run_id: self.kernel_task_run_id,
                adapter_id: self.adapter_id,
                claimed_by: self.claimed_by,
                lease_expires_at: self.lease_expires_at.map(|t| t.0),
                attempt_count: self.attempt_count,
                available_at: self.available_at.0,
                created_at: self.created_at.0,
                updated_at: self.updated_at.0,
            })
        }
    }

    /// A claim history row.
    #[derive(Debug, Clone, Queryable, Selectable, Insertable)]
    #[diesel(table_name = kernel_session_claims, check_for_backend(DbBackend))]
    #[diesel(treat_none_as_default_value = false)]
    pub(in crate::backend) struct ClaimRow {
        session_run_id: String,
        attempt: i64,
        claimed_by: String,
        claimed_at: DbTime,
        lease_expires_at: DbTime,
        ended_at: Option<DbTime>,
        outcome: Option<String>,
    }

    impl ClaimRow {
        pub(in crate::backend) fn into_domain(self) -> StorageResult<SessionClaim> {
            Ok(SessionClaim {
                outcome: self.outcome.map(|o| o.parse()).transpose()?,
                session_run_id: self.session_run_id,
                attempt: self.attempt,
                claimed_by: self.claimed_by,
                claimed_at: self.claimed_at.0,
                lease_expires_at: self.lease_expires_at.0,
                ended_at: self.ended_at.map(|t| t.0),
            })
        }
    }

    /// The `n`th bind marker of a raw statement.
    fn bind_marker(n: usize) -> String {
        match BACKEND {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// Row-locks what a statement selects on PostgreSQL; SQLite's write
    /// transaction already excludes every other writer.
    fn locking(clause: &str) -> &str {
        match BACKEND {
            Backend::Sqlite => "",
            Backend::Postgres => clause,
        }
    }

    type TimeSql = <kernel_session_runs::available_at as diesel::Expression>::SqlType;

    /// The run `id`, row-locked until the transaction ends.
    fn lock_run(conn: &mut Conn, id: &str) -> StorageResult<SessionRunRow> {
        diesel::sql_query(format!(
            "SELECT * FROM kernel_session_runs WHERE session_run_id = {}{}",
            bind_marker(1),
            locking(" FOR UPDATE")
        ))
        .bind::<diesel::sql_types::Text, _>(id)
        .cache_prepared()
        .get_result(conn)
        .map_err(|e| from_diesel(e, &format!("kernel session run {id}")))
    }

    /// The claimable run that has been available longest (of one adapter,
    /// when given), row-locked, skipping rows other workers hold locked.
    fn lock_next_claimable(
        conn: &mut Conn,
        now: DateTime<Utc>,
        adapter_id: Option<&str>,
    ) -> StorageResult<Option<SessionRunRow>> {
        let adapter = if adapter_id.is_some() {
            format!(" AND adapter_id = {}", bind_marker(2))
        } else {
            String::new()
        };
        let sql = format!(
            "SELECT * FROM kernel_session_runs WHERE state IN {CLAIMABLE_STATES_SQL} \
             AND available_at <= {}{adapter} ORDER BY available_at, session_run_id LIMIT 1{}",
            bind_marker(1),
            locking(" FOR UPDATE SKIP LOCKED")
        );
        let query = diesel::sql_query(sql)
            .into_boxed::<DbBackend>()
            .bind::<TimeSql, _>(DbTime(now));
        let query = match adapter_id {
            Some(a) => query.bind::<diesel::sql_types::Text, _>(a.to_string()),
            None => query,
        };
        query
            .cache_prepared()
            .get_result(conn)
            .optional()
            .map_err(|e| from_diesel(e, "kernel session runs"))
    }

    /// A lease or delay as a span of time; `Validation` when it is zero
    /// (unless allowed) or too large to add to a date.
    fn span(field: &str, d: std::time::Duration, zero_ok: bool) -> StorageResult<chrono::Duration> {
        if d.is_zero() && !zero_ok {
            return Err(StorageError::validation(format!("{field} must be longer than zero")));
        }
        chrono::Duration::from_std(d)
            .map_err(|_| StorageError::validation(format!("{field} of {d:?} is too long")))
    }

    /// `now + span`, at microsecond precision, within the years every
    /// backend holds.
    fn later(field: &str, now: DateTime<Utc>, span: chrono::Duration) -> StorageResult<DateTime<Utc>> {
        let at = now
            .checked_add_signed(span)
            .ok_or_else(|| StorageError::validation(format!("{field} is too far in the future")))?;
        validate::timestamp(field, at)
    }

    /// `Conflict` unless `fence` names the claim that holds the run now.
    fn check_fence(row: &SessionRunRow, state: SessionRunState, fence: &LeaseFence) -> StorageResult<()> {
        let current = state.is_held()
            && row.attempt_count == fence.attempt
            && row.claimed_by.as_deref() == Some(fence.claimed_by.as_str());
        if current {
            return Ok(());
        }
        Err(StorageError::Conflict(format!(
            "lease fence (attempt {} by {:?}) is not the current claim of session run {}: \
             the run is {state} at attempt {}{}",
            fence.attempt,
            fence.claimed_by,
            row.session_run_id,
            row.attempt_count,
            row.claimed_by
                .as_deref()
                .map_or(String::new(), |by| format!(", last claimed by {by:?}"))
        )))
    }

    /// Ends the claim `attempt` of run `id` (if it has not ended) with
    /// `outcome` (`None`: its lease expired and another claim took over).
    fn end_claim(
        conn: &mut Conn,
        id: &str,
        attempt: i64,
        now: DateTime<Utc>,
        outcome: Option<SessionRunState>,
    ) -> StorageResult<()> {
        diesel::update(
            kernel_session_claims::table
                .find((id, attempt))
                .filter(kernel_session_claims::ended_at.is_null()),
        )
        .set((
            kernel_session_claims::ended_at.eq(Some(DbTime(now))),
            kernel_session_claims::outcome.eq(outcome.map(|o| o.as_str())),
        ))
        // RETURNING and a load, not `execute`: see `kernel_store::lock_ledger`.
        .returning(kernel_session_claims::attempt)
        .cache_prepared()
        .load::<i64>(conn)
        .map(drop)
        .map_err(|e| from_diesel(e, &format!("claim {attempt} of kernel session run {id}")))
    }

    /// The ledger event of a queue change that reached `lease.state`.
    fn record_event(
        conn: &mut Conn,
        lease: &KernelSessionLease,
        previous: Option<SessionRunState>,
        actor_id: Option<&str>,
        record: RecordWith,
        at: DateTime<Utc>,
    ) -> StorageResult<Option<KernelEvent>> {
        let Some((causation_id, correlation_id)) = record else {
            return Ok(None);
        };
        let event_type = lease.state.event_type();
        let event = NewKernelEvent {
            event_version: "1".into(),
            kernel_task_run_id: lease.kernel_task_run_id.clone(),
            session_run_id: lease.session_run_id.clone(),
            aggregate_type: "session_run".into(),
            aggregate_id: lease.session_run_id.clone(),
            idempotency_key: format!(
                "{}:{event_type}:{}",
                lease.session_run_id,
                crate::ids::new_uuid()
            ),
            event_type: event_type.into(),
            actor: KernelActor::new(
                KernelActorKind::SessionBroker,
                actor_id.unwrap_or(QUEUE_ACTOR),
            ),
            causation_id,
            correlation_id,
            source_component: QUEUE_SOURCE.into(),
            payload: serde_json::json!({
                "state": lease.state.as_str(),
                "previous_state": previous.map(SessionRunState::as_str),
                "attempt": lease.attempt_count,
                "claimed_by": lease.claimed_by,
                "lease_expires_at": lease.lease_expires_at.map(|t| t.to_rfc3339()),
                "available_at": lease.available_at.to_rfc3339(),
            }),
        };
        kernel::validate_new_event(&event)?;
        lock_ledger(conn)?;
        append_in_tx(conn, event, at).map(Some)
    }

    /// The actor of queue events no worker made.
    const QUEUE_ACTOR: &str = "handshake-storage";
    /// The `source_component` of queue events.
    const QUEUE_SOURCE: &str = "handshake-storage.session_queue";

    fn claimed_by_ok(claimed_by: &str) -> StorageResult<()> {
        validate::non_blank("claimed_by", claimed_by)?;
        validate::indexed_text("claimed_by", claimed_by)
    }

    impl Store {
        pub(in crate::backend) fn enqueue_session_run(
            &self,
            run: SessionRun,
            record: RecordWith,
        ) -> StorageResult<(SessionRun, Option<KernelEvent>)> {
            for (field, value) in [
                ("session_run_id", &run.session_run_id),
                ("kernel_task_run_id", &run.kernel_task_run_id),
                ("adapter_id", &run.adapter_id),
            ] {
                validate::non_blank(field, value)?;
                validate::indexed_text(field, value)?;
            }
            if run.state != SessionRunState::Queued {
                return Err(StorageError::validation(format!(
                    "a session run is enqueued in state QUEUED, not {}",
                    run.state
                )));
            }
            let mut conn = self.conn()?;
            write_tx(&mut conn, |conn| {
                let now = db_now(conn)?;
                let row = SessionRunRow {
                    session_run_id: run.session_run_id.clone(),
                    kernel_task_run_id: run.kernel_task_run_id.clone(),
                    adapter_id: run.adapter_id.clone(),
                    state: SessionRunState::Queued.as_str().into(),
                    claimed_by: None,
                    lease_expires_at: None,
                    attempt_count: 0,
                    available_at: DbTime(now),
                    created_at: DbTime(now),
                    updated_at: DbTime(now),
                };
                diesel::insert_into(kernel_session_runs::table)
                    .values(&row)
                    .execute(conn)
                    .map_err(|e| {
                        from_diesel(e, &format!("kernel session run {}", run.session_run_id))
                    })?;
                let lease = row.into_domain()?;
                let event = record_event(conn, &lease, None, None, record, now)?;
                Ok((
                    SessionRun {
                        session_run_id: lease.session_run_id,
                        kernel_task_run_id: lease.kernel_task_run_id,
                        adapter_id: lease.adapter_id,
                        state: lease.state,
                        created_at: lease.created_at,
                        updated_at: lease.updated_at,
                    },
                    event,
                ))
            })
        }

        /// Claims run `id`, or (without one) the next claimable run.
        pub(in crate::backend) fn claim_session_run(
            &self,
            id: Option<&str>,
            adapter_id: Option<&str>,
            claimed_by: &str,
            lease: std::time::Duration,
            record: RecordWith,
        ) -> StorageResult<Option<(KernelSessionLease, Option<KernelEvent>)>> {
            claimed_by_ok(claimed_by)?;
            if let Some(id) = id {
                validate::key("session_run_id", id)?;
            }
            if let Some(adapter) = adapter_id {
                validate::key("adapter_id", adapter)?;
            }
            let lease = span("lease", lease, false)?;
            let mut conn = self.conn()?;
            write_tx(&mut conn, |conn| {
                let now = db_now(conn)?;
                let row = match id {
                    Some(id) => lock_run(conn, id)?,
                    None => match lock_next_claimable(conn, now, adapter_id)? {
                        Some(row) => row,
                        None => return Ok(None),
                    },
                };
                let state: SessionRunState = row.state.parse()?;
                let waiting = matches!(
                    state,
                    SessionRunState::Queued | SessionRunState::RetryScheduled
                );
                if !(waiting || state.is_held()) || row.available_at.0 > now {
                    return Ok(None);
                }
                let id = row.session_run_id.as_str();
                if state.is_held() {
                    end_claim(conn, id, row.attempt_count, now, None)?;
                }
                let attempt = row.attempt_count + 1;
                let expires = later("lease_expires_at", now, lease)?;
                let updated: SessionRunRow = diesel::update(kernel_session_runs::table.find(id))
                    .set((
                        kernel_session_runs::state.eq(SessionRunState::Claimed.as_str()),
                        kernel_session_runs::claimed_by.eq(Some(claimed_by)),
                        kernel_session_runs::lease_expires_at.eq(Some(DbTime(expires))),
                        kernel_session_runs::attempt_count.eq(attempt),
                        kernel_session_runs::available_at.eq(DbTime(expires)),
                        kernel_session_runs::updated_at.eq(DbTime(now)),
                    ))
                    .returning(SessionRunRow::as_returning())
                    .cache_prepared()
                    .get_result(conn)
                    .map_err(|e| from_diesel(e, &format!("kernel session run {id}")))?;
                diesel::insert_into(kernel_session_claims::table)
                    .values(&ClaimRow {
                        session_run_id: id.to_string(),
                        attempt,
                        claimed_by: claimed_by.to_string(),
                        claimed_at: DbTime(now),
                        lease_expires_at: DbTime(expires),
                        ended_at: None,
                        outcome: None,
                    })
                    .execute(conn)
                    .map_err(|e| from_diesel(e, &format!("claim {attempt} of {id}")))?;
                let claimed = updated.into_domain()?;
                let event =
                    record_event(conn, &claimed, Some(state), Some(claimed_by), record, now)?;
                Ok(Some((claimed, event)))
            })
        }

        pub(in crate::backend) fn renew_session_lease(
            &self,
            fence: &LeaseFence,
            lease: std::time::Duration,
        ) -> StorageResult<KernelSessionLease> {
            validate::key("session_run_id", &fence.session_run_id)?;
            validate::key("claimed_by", &fence.claimed_by)?;
            let lease = span("lease", lease, false)?;
            let id = fence.session_run_id.as_str();
            let mut conn = self.conn()?;
            write_tx(&mut conn, |conn| {
                let now = db_now(conn)?;
                let row = lock_run(conn, id)?;
                check_fence(&row, row.state.parse()?, fence)?;
                let expires = later("lease_expires_at", now, lease)?;
                let updated: SessionRunRow = diesel::update(kernel_session_runs::table.find(id))
                    .set((
                        kernel_session_runs::lease_expires_at.eq(Some(DbTime(expires))),
                        kernel_session_runs::available_at.eq(DbTime(expires)),
                        kernel_session_runs::updated_at.eq(DbTime(now)),
                    ))
                    .returning(SessionRunRow::as_returning())
                    .cache_prepared()
                    .get_result(conn)
                    .map_err(|e| from_diesel(e, &format!("kernel session run {id}")))?;
                diesel::update(kernel_session_claims::table.find((id, fence.attempt)))
                    .set(kernel_session_claims::lease_expires_at.eq(DbTime(expires)))
                    .returning(kernel_session_claims::attempt)
                    .cache_prepared()
                    .load::<i64>(conn)
                    .map_err(|e| from_diesel(e, &format!("claim {} of {id}", fence.attempt)))?;
                updated.into_domain()
            })
        }

        pub(in crate::backend) fn update_session_run(
            &self,
            id: &str,
            update: SessionRunUpdate,
            record: RecordWith,
        ) -> StorageResult<(KernelSessionLease, Option<KernelEvent>)> {
            validate::key("session_run_id", id)?;
            let target = update.state;
            if target == SessionRunState::Claimed {
                return Err(StorageError::validation(
                    "a session run is claimed with claim_kernel_session_run or \
                     claim_next_kernel_session_run, not by a state update",
                ));
            }
            if let Some(fence) = &update.fence {
                if fence.session_run_id != id {
                    return Err(StorageError::validation(format!(
                        "the lease fence names session run {:?}, not {id:?}",
                        fence.session_run_id
                    )));
                }
            }
            let delayed = matches!(
                target,
                SessionRunState::RetryScheduled | SessionRunState::BackpressureDelayed
            );
            if update.delay.is_some() && !delayed {
                return Err(StorageError::validation(format!(
                    "a delay applies to RETRY_SCHEDULED and BACKPRESSURE_DELAYED, not {target}"
                )));
            }
            let delay = span("delay", update.delay.unwrap_or_default(), true)?;
            let mut conn = self.conn()?;
            write_tx(&mut conn, |conn| {
                let now = db_now(conn)?;
                let row = lock_run(conn, id)?;
                let current: SessionRunState = row.state.parse()?;
                if let Some(fence) = &update.fence {
                    check_fence(&row, current, fence)?;
                }
                if !current.can_move_to(target) {
                    return Err(StorageError::validation(format!(
                        "session run {id} cannot move from {current} to {target}"
                    )));
                }
                let available = if delayed {
                    DbTime(later("available_at", now, delay)?)
                } else {
                    row.available_at
                };
                let ends_claim = current.is_held() && !target.is_held();
                if ends_claim {
                    end_claim(conn, id, row.attempt_count, now, Some(target))?;
                }
                let lease_expires = if target.is_held() {
                    row.lease_expires_at
                } else {
                    None
                };
                let updated: SessionRunRow = diesel::update(kernel_session_runs::table.find(id))
                    .set((
                        kernel_session_runs::state.eq(target.as_str()),
                        kernel_session_runs::lease_expires_at.eq(lease_expires),
                        kernel_session_runs::available_at.eq(available),
                        kernel_session_runs::updated_at.eq(DbTime(now)),
                    ))
                    .returning(SessionRunRow::as_returning())
                    .cache_prepared()
                    .get_result(conn)
                    .map_err(|e| from_diesel(e, &format!("kernel session run {id}")))?;
                let lease = updated.into_domain()?;
                let actor = update.fence.as_ref().map(|f| f.claimed_by.as_str());
                let event = record_event(conn, &lease, Some(current), actor, record, now)?;
                Ok((lease, event))
            })
        }

        pub(in crate::backend) fn session_claims(&self, id: &str) -> StorageResult<Vec<SessionClaim>> {
            validate::key("session_run_id", id)?;
            self.load_all(
                kernel_session_claims::table
                    .filter(kernel_session_claims::session_run_id.eq(id.to_string()))
                    .order(kernel_session_claims::attempt)
                    .select(ClaimRow::as_select()),
                "kernel session claims",
                ClaimRow::into_domain,
            )
        }
    }
}

/// The event a `_and_record_event` method appended.
fn recorded(event: Option<KernelEvent>) -> StorageResult<KernelEvent> {
    event.ok_or_else(|| StorageError::Database("the change recorded no event".into()))
}

use kernel_queue::{ClaimRow, SessionRunRow};
