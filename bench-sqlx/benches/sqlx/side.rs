// The sqlx side of the comparison, included once per backend (`include!`
// in `sqlx.rs`) after the module defines `Db`, `Time`, `Id`, `Json`,
// `time`, `uuid_arg`, `json`, `sql`, `MAX_BINDS` and `connect`. The statements
// are `handshake_storage::bench::sql`'s, the same the raw-SQL baseline
// sends through Diesel.

use chrono::{DateTime, Utc};
use handshake_storage::bench::sql as q;
use handshake_storage::{NewBlock, WriteActorKind};
use serde_json::json;
use uuid::Uuid;

type Query<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>;

/// A block row, decoded into plain values as the baseline does.
type BlockRow = (
    String,
    String,
    String,
    i64,
    String,
    String,
    Json,
    Option<String>,
    Option<bool>,
    Time,
    Time,
    String,
    Option<String>,
    Option<Id>,
    Option<Id>,
    Id,
);

/// A sqlx pool of eight on one database, with the statements ready.
pub struct Side {
    pool: sqlx::Pool<Db>,
    create_block: String,
    get_block: String,
    update_block: String,
    stamp_document: String,
    delete_blocks: String,
    get_blocks: String,
}

fn bind_stamp(query: Query<'_>, at: DateTime<Utc>) -> Query<'_> {
    query
        .bind(time(at))
        .bind(WriteActorKind::Human.as_str())
        .bind(Some("bench"))
        .bind(None::<Id>)
        .bind(None::<Id>)
        .bind(uuid_arg(Uuid::new_v4()))
}

fn bind_block<'q>(query: Query<'q>, document_id: &str, block: &NewBlock, at: DateTime<Utc>) -> Query<'q> {
    let query = query
        .bind(block.id.clone().unwrap_or_else(|| Uuid::new_v4().to_string()))
        .bind(document_id.to_string())
        .bind(block.kind.clone())
        .bind(block.sequence)
        .bind(block.raw_content.clone())
        .bind(
            block
                .display_content
                .clone()
                .unwrap_or_else(|| block.raw_content.clone()),
        )
        .bind(json(block.derived_content.clone().unwrap_or_else(|| json!({}))))
        .bind(block.sensitivity.clone())
        .bind(Some(block.exportable.unwrap_or(true)))
        .bind(time(at));
    bind_stamp(query, at)
}

impl Side {
    pub async fn open(url: &str) -> Side {
        Side {
            pool: connect(url).await,
            create_block: sql(&q::create_block()),
            get_block: sql(&q::get_block()),
            update_block: sql(&q::update_block()),
            stamp_document: sql(&q::stamp("documents")),
            delete_blocks: sql(q::delete_blocks()),
            get_blocks: sql(&q::get_blocks()),
        }
    }

    pub async fn create_block(&self, block: &NewBlock) {
        bind_block(sqlx::query(&self.create_block), &block.document_id, block, Utc::now())
            .execute(&self.pool)
            .await
            .expect("create_block");
    }

    pub async fn get_block(&self, id: &str) {
        let _row: BlockRow = sqlx::query_as(&self.get_block)
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .expect("get_block");
    }

    pub async fn update_block(&self, id: &str, raw_content: &str) {
        let query = sqlx::query_as::<_, BlockRow>(&self.update_block).bind(raw_content.to_string());
        let query = query
            .bind(time(Utc::now()))
            .bind(WriteActorKind::Human.as_str())
            .bind(Some("bench"))
            .bind(None::<Id>)
            .bind(None::<Id>)
            .bind(uuid_arg(Uuid::new_v4()))
            .bind(id.to_string());
        query.fetch_one(&self.pool).await.expect("update_block");
    }

    /// One transaction: stamp the document, delete its blocks, insert the
    /// new ones in multi-row INSERTs sized to the bind-parameter limit.
    pub async fn replace_blocks(&self, document_id: &str, blocks: &[NewBlock]) {
        let at = Utc::now();
        let mut tx = self.pool.begin().await.expect("begin");
        bind_stamp(sqlx::query(&self.stamp_document), at)
            .bind(document_id.to_string())
            .execute(&mut *tx)
            .await
            .expect("stamp the document");
        sqlx::query(&self.delete_blocks)
            .bind(document_id.to_string())
            .execute(&mut *tx)
            .await
            .expect("delete blocks");
        let per_statement = MAX_BINDS / q::BLOCK_COLUMN_COUNT;
        for chunk in blocks.chunks(per_statement) {
            let insert = sql(&q::insert(
                "blocks",
                q::BLOCK_COLUMNS,
                q::BLOCK_COLUMN_COUNT,
                chunk.len(),
            ));
            let mut query = sqlx::query(&insert);
            for block in chunk {
                query = bind_block(query, document_id, block, at);
            }
            query.execute(&mut *tx).await.expect("insert blocks");
        }
        tx.commit().await.expect("commit");
    }

    pub async fn get_blocks(&self, document_id: &str) -> usize {
        let rows: Vec<BlockRow> = sqlx::query_as(&self.get_blocks)
            .bind(document_id)
            .fetch_all(&self.pool)
            .await
            .expect("get_blocks");
        rows.len()
    }
}
