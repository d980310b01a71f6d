-- Every SQL statement liqmap runs against its own tables, by name (models/queries.py loads them).
--
-- File format (procrastinate's): a block starts with a line `-- query_name --`, then one or more
-- `-- description` lines, then the statement. Parameters are SQLAlchemy named binds (`:name`).
-- A `{table}` in a statement is filled from a fixed set of table names (models.queries.query_on).
-- Comment lines between blocks (like the section titles) belong to no statement.
-- Filters that a caller may leave out read `(CAST(:x AS t) IS NULL OR column = :x)`: PostgreSQL
-- plans each such call with the value known, as it would a statement written without the filter.
--
-- Modules (models/*_store.py) run these through small typed functions, named the same way:
-- market_store (exchanges, markets, symbols, tier tables), market_data_store (candles, open
-- interest, funding), jobs_store (watermarks, job runs, coverage, queue bookkeeping),
-- liquidations_store, heatmap_store (series, engine state, snapshots, swept levels), auth_store
-- (API keys), partitions.


-- ================================ markets ======================================================

-- exchanges --
-- Every exchange, by id.
SELECT id, name FROM exchanges ORDER BY id;

-- insert_exchange --
-- Name an exchange the first time one of its markets is stored.
INSERT INTO exchanges (id, name) VALUES (:id, :name) ON CONFLICT DO NOTHING;

-- markets --
-- Every market, or those of the given exchanges (:exchanges NULL: all), by exchange and symbol.
SELECT id, exchange_id, symbol, exchange_symbol, base, quote, settle, linear, contract_size, active
FROM markets
WHERE CAST(:exchanges AS text[]) IS NULL OR exchange_id = ANY(:exchanges)
ORDER BY exchange_id, symbol;

-- market --
-- One market by exchange and unified symbol.
SELECT id, exchange_id, symbol, exchange_symbol, base, quote, settle, linear, contract_size, active
FROM markets
WHERE exchange_id = :exchange AND symbol = :symbol;

-- upsert_market --
-- Store a market's metadata (new, or changed by the venue); returns its id.
INSERT INTO markets (exchange_id, symbol, exchange_symbol, base, quote, settle, linear,
                     contract_size, price_precision, amount_precision, active)
VALUES (:exchange_id, :symbol, :exchange_symbol, :base, :quote, :settle, :linear,
        :contract_size, :price_precision, :amount_precision, :active)
ON CONFLICT (exchange_id, symbol) DO UPDATE SET
    exchange_symbol = EXCLUDED.exchange_symbol, base = EXCLUDED.base, quote = EXCLUDED.quote,
    settle = EXCLUDED.settle, linear = EXCLUDED.linear, contract_size = EXCLUDED.contract_size,
    price_precision = EXCLUDED.price_precision, amount_precision = EXCLUDED.amount_precision,
    active = EXCLUDED.active, updated_at = now()
RETURNING id;

-- known_symbols --
-- Every symbol with a market or a heatmap series (for "did you mean" suggestions).
SELECT symbol FROM heatmap_series UNION SELECT symbol FROM markets;

-- tier_tables --
-- Every stored tier table of a market, oldest first, tiers ascending; each row also carries the
-- market's close when the table became valid (close_at, else first_close), the price at which
-- tiers given in another unit are converted.
SELECT t.valid_from, t.tier, t.min_notional, t.max_notional, t.maintenance_margin_rate,
       t.maintenance_amount, t.max_leverage, t.notional_unit, t.source,
       (SELECT c.close FROM candles c
         WHERE c.market_id = t.market_id AND c.timeframe = :tf AND c.ts <= t.valid_from
         ORDER BY c.ts DESC LIMIT 1) AS close_at,
       (SELECT c.close FROM candles c
         WHERE c.market_id = t.market_id AND c.timeframe = :tf
         ORDER BY c.ts LIMIT 1) AS first_close
FROM margin_tiers t
WHERE t.market_id = :market
ORDER BY t.valid_from, t.tier;


-- ================================ market data ==================================================

-- candle_buckets --
-- OHLCV of one market aggregated to :step_s buckets aligned to :start (the base bar as is).
SELECT to_timestamp(:start_s + b * :step_s) AS ts, o[1] AS open, high, low,
       c[1] AS close, volume, taker_buy_volume
FROM (
    SELECT floor((extract(epoch FROM ts) - :start_s) / :step_s)::int AS b,
           array_agg(open ORDER BY ts) AS o, max(high) AS high, min(low) AS low,
           array_agg(close ORDER BY ts DESC) AS c, sum(volume) AS volume,
           sum(taker_buy_volume) AS taker_buy_volume
    FROM candles
    WHERE market_id = :market AND timeframe = :tf AND ts >= :start AND ts < :end
    GROUP BY b
) g ORDER BY b LIMIT :limit;

-- open_interest --
-- Open interest of one market per base bar in [start, end).
SELECT ts, open_interest, open_interest_usd FROM open_interest
WHERE market_id = :market AND timeframe = :tf AND ts >= :start AND ts < :end
ORDER BY ts LIMIT :limit;

-- funding_rates --
-- Settled funding rates of one market in [start, end).
SELECT ts, funding_rate FROM funding_rates
WHERE market_id = :market AND ts >= :start AND ts < :end
ORDER BY ts LIMIT :limit;

-- bars_with_open_interest --
-- The engine's input: candles joined with open interest (USD, at bar end) after :after,
-- ascending; only bars with both.
SELECT (extract(epoch FROM c.ts) * 1000)::bigint AS ts, c.open, c.high, c.low, c.close,
       c.volume, c.taker_buy_volume,
       coalesce(o.open_interest_usd, o.open_interest * c.close) AS oi_usd
FROM candles c
JOIN open_interest o
  ON o.market_id = c.market_id AND o.timeframe = c.timeframe AND o.ts = c.ts
WHERE c.market_id = :market AND c.timeframe = :tf AND c.ts > :after
  AND coalesce(o.open_interest_usd, o.open_interest * c.close) IS NOT NULL
ORDER BY c.ts;

-- has_open_interest --
-- Whether a market has any open interest stored at :tf (the model maps only such markets).
SELECT EXISTS (
    SELECT 1 FROM open_interest
    WHERE market_id = :market AND timeframe = :tf
      AND coalesce(open_interest_usd, open_interest) IS NOT NULL
);

-- first_close --
-- The oldest stored close of a market (the fallback tier table's reference price).
SELECT close FROM candles WHERE market_id = :market AND timeframe = :tf ORDER BY ts LIMIT 1;

-- bar_stored --
-- Whether a bar series ({table}: candles or open_interest) holds the bar opening at :start.
SELECT 1 FROM {table} WHERE market_id = :market AND timeframe = :tf AND ts = :start;

-- end_of_run --
-- The first missing bar after the run of consecutive bars starting at :start: an ordered index
-- scan from :start that stops at the first break.
SELECT ts + make_interval(secs => :step_s) FROM (
    SELECT ts, lead(ts) OVER (ORDER BY ts) AS next_ts FROM {table}
    WHERE market_id = :market AND timeframe = :tf AND ts >= :start
) run
WHERE next_ts IS NULL OR next_ts > ts + make_interval(secs => :step_s)
ORDER BY ts LIMIT 1;

-- gaps --
-- Holes in a stored bar series: (last bar before the hole, first bar after it).
SELECT ts, next_ts FROM (
    SELECT ts, lead(ts) OVER (ORDER BY ts) AS next_ts
    FROM {table} WHERE market_id = :market AND timeframe = :tf
) g WHERE next_ts - ts > make_interval(secs => :step_s)
ORDER BY ts;

-- dataset_extents --
-- First and last stored timestamp per market and dataset (any bar length).
SELECT market_id, 'candles' AS dataset, min(ts) AS first_ts, max(ts) AS last_ts
FROM candles WHERE market_id = ANY(:ids) GROUP BY market_id
UNION ALL
SELECT market_id, 'open_interest', min(ts), max(ts)
FROM open_interest WHERE market_id = ANY(:ids) GROUP BY market_id
UNION ALL
SELECT market_id, 'funding', min(ts), max(ts)
FROM funding_rates WHERE market_id = ANY(:ids) GROUP BY market_id
UNION ALL
SELECT market_id, 'tiers', min(valid_from), max(valid_from)
FROM margin_tiers WHERE market_id = ANY(:ids) GROUP BY market_id;

-- datasets_present --
-- Per market, whether each dataset has any row (one index probe each).
SELECT m.exchange_id,
       EXISTS (SELECT 1 FROM candles c WHERE c.market_id = m.id),
       EXISTS (SELECT 1 FROM open_interest o WHERE o.market_id = m.id),
       EXISTS (SELECT 1 FROM funding_rates f WHERE f.market_id = m.id),
       EXISTS (SELECT 1 FROM margin_tiers t WHERE t.market_id = m.id)
FROM markets m WHERE m.id = ANY(:ids) ORDER BY m.exchange_id;


-- ================================ ingest bookkeeping ===========================================

-- watermark --
-- Everything of the dataset before this instant is stored (the ingest watermark).
SELECT watermark FROM ingest_watermarks WHERE market_id = :market AND dataset = :dataset;

-- advance_watermark --
-- Move a watermark forward only (a late, smaller value never rewinds it).
INSERT INTO ingest_watermarks (market_id, dataset, watermark)
VALUES (:market_id, :dataset, :watermark)
ON CONFLICT (market_id, dataset) DO UPDATE SET
    watermark = greatest(ingest_watermarks.watermark, EXCLUDED.watermark), updated_at = now();

-- newest_watermark --
-- The newest watermark of a dataset over every market (the data's clock of a replay).
SELECT max(watermark) FROM ingest_watermarks WHERE dataset = :dataset;

-- watermarks --
-- (exchange, symbol, dataset, watermark) for every market and dataset.
SELECT m.exchange_id, m.symbol, w.dataset, w.watermark FROM ingest_watermarks w
JOIN markets m ON m.id = w.market_id;

-- start_job_run --
-- Log a run as 'running'; returns its id.
INSERT INTO job_runs (job, exchange, symbol, dataset, status, watermark_from, worker,
                      pid_namespace, procrastinate_job_id)
VALUES (:job, :exchange, :symbol, :dataset, 'running', :watermark_from, :worker,
        :pid_namespace, :procrastinate_job_id)
RETURNING id;

-- finish_job_run --
-- Record a run's outcome.
UPDATE job_runs SET status = :status, rows_written = :rows_written, watermark_to = :watermark_to,
                    error = :error, finished_at = now()
WHERE id = :id;

-- runs_outside_queue --
-- Runs outside the queue (CLI backfills, imports, `up`'s pipeline) are 'running' only while the
-- process named in `worker` lives; queue jobs' runs are the stalled-job recovery's. These are
-- the ones processes of :host left running, in PID namespace :pid_namespace (NULL: any).
SELECT id, worker, started_at FROM job_runs
WHERE status = 'running' AND procrastinate_job_id IS NULL
  AND left(worker, length(:host) + 1) = :host || ':'
  -- a pid means something only in its namespace (NULL: a run from before it was recorded)
  AND (pid_namespace IS NULL OR CAST(:pid_namespace AS bigint) IS NULL
       OR pid_namespace = :pid_namespace);

-- fail_running_run --
-- Fail one run still 'running' (as the stalled-job recovery fails a dead worker's).
UPDATE job_runs SET status = 'failed', error = :reason, finished_at = now()
WHERE id = :id AND status = 'running';

-- fail_orphaned_runs --
-- Fail the runs left 'running' although their queue job has ended (the database went away
-- before the run could store its outcome); the reason is appended to any error already there.
UPDATE job_runs r SET status = 'failed', finished_at = now(),
       error = coalesce(r.error || '; ', '') || :reason
FROM procrastinate_jobs j
WHERE r.status = 'running' AND j.id = r.procrastinate_job_id AND j.status <> 'doing';

-- prune_job_runs --
-- Finished runs older than :cutoff go, except those the status queries (coverage, the API's
-- market status) still read: per job and market dataset, the latest run, the latest success
-- and the latest error (by start and by finish). Runs still 'running' are never touched.
WITH keep AS (
    (SELECT DISTINCT ON (job, exchange, symbol, dataset) id FROM job_runs
     ORDER BY job, exchange, symbol, dataset, started_at DESC, id DESC)
    UNION
    (SELECT DISTINCT ON (job, exchange, symbol, dataset) id FROM job_runs
     WHERE status = 'succeeded'
     ORDER BY job, exchange, symbol, dataset, finished_at DESC NULLS LAST, id DESC)
    UNION
    (SELECT DISTINCT ON (job, exchange, symbol, dataset) id FROM job_runs
     WHERE error IS NOT NULL
     ORDER BY job, exchange, symbol, dataset, started_at DESC, id DESC)
    UNION
    (SELECT DISTINCT ON (job, exchange, symbol, dataset) id FROM job_runs
     WHERE error IS NOT NULL
     ORDER BY job, exchange, symbol, dataset, coalesce(finished_at, started_at) DESC, id DESC)
)
DELETE FROM job_runs r
WHERE r.status <> 'running' AND coalesce(r.finished_at, r.started_at) < :cutoff
  AND NOT EXISTS (SELECT 1 FROM keep WHERE keep.id = r.id);

-- prune_queue_jobs --
-- A queue's finished procrastinate jobs with no event since :cutoff, with their events (ON
-- DELETE CASCADE). procrastinate's own delete_old_jobs would fail as a whole on a job that the
-- last periodic defer of a task still references (procrastinate_periodic_defers.job_id has no
-- ON DELETE: a task removed from the configuration keeps its last job referenced for good);
-- those stay.
DELETE FROM procrastinate_jobs j
WHERE j.queue_name = :queue
  AND j.status IN ('succeeded', 'failed', 'cancelled', 'aborted')
  AND NOT EXISTS (
      SELECT 1 FROM procrastinate_events e WHERE e.job_id = j.id AND e.at >= :cutoff)
  AND NOT EXISTS (SELECT 1 FROM procrastinate_periodic_defers d WHERE d.job_id = j.id);

-- lock_stalled_job --
-- A queue job is stalled when it is 'doing' on a worker that stopped sending heartbeats (or was
-- pruned): procrastinate's own rule (its select_stalled_jobs_by_heartbeat query), re-checked
-- here under the job's row lock so two recovering workers never both act on one job.
SELECT j.queueing_lock FROM procrastinate_jobs j
LEFT JOIN procrastinate_workers w ON w.id = j.worker_id
WHERE j.id = :job AND j.status = 'doing'
  AND (j.worker_id IS NULL
       OR w.id IS NULL
       OR w.last_heartbeat < now() - make_interval(secs => :stalled_after_s))
FOR UPDATE OF j;

-- queued_under_lock --
-- Whether another run of the same periodic task already waits under the job's queueing lock.
SELECT 1 FROM procrastinate_jobs WHERE queueing_lock = :lock
AND status = 'todo' AND id <> :job LIMIT 1;

-- fail_queue_job --
-- Fail a queue job through procrastinate's own function.
SELECT procrastinate_finish_job_v1(:job, 'failed', false);

-- retry_queue_job --
-- Send a queue job back to 'todo' now, as procrastinate's JobManager.retry_job does.
SELECT procrastinate_retry_job_v2(:job, now(), NULL, NULL, NULL);

-- fail_runs_of_queue_job --
-- Fail the runs a queue job left 'running'.
UPDATE job_runs SET status = 'failed', error = :error, finished_at = now()
WHERE procrastinate_job_id = :job AND status = 'running';

-- coverage --
-- Per market and dataset: stored extent and row count (bars of :tf) and how the ingest runs
-- fared (latest success, latest run, latest error).
WITH series AS (
    SELECT market_id, 'candles' AS dataset, min(ts) AS first_ts, max(ts) AS last_ts,
           count(*) AS rows FROM candles WHERE timeframe = :tf GROUP BY market_id
    UNION ALL
    SELECT market_id, 'open_interest', min(ts), max(ts), count(*)
    FROM open_interest WHERE timeframe = :tf GROUP BY market_id
    UNION ALL
    SELECT market_id, 'funding', min(ts), max(ts), count(*)
    FROM funding_rates GROUP BY market_id
    UNION ALL
    SELECT market_id, 'tiers', min(valid_from), max(valid_from), count(*)
    FROM margin_tiers GROUP BY market_id
), runs AS (
    SELECT exchange, symbol, dataset,
           max(finished_at) FILTER (WHERE status = 'succeeded') AS last_success,
           (array_agg(job ORDER BY started_at DESC, id DESC))[1] AS last_job,
           (array_agg(status ORDER BY started_at DESC, id DESC))[1] AS last_status,
           (array_agg(error ORDER BY started_at DESC, id DESC)
                FILTER (WHERE error IS NOT NULL))[1] AS last_error,
           max(coalesce(finished_at, started_at)) FILTER (WHERE error IS NOT NULL)
               AS last_error_at
    FROM job_runs WHERE job IN ('ingest', 'backfill', 'import')
    GROUP BY exchange, symbol, dataset
)
SELECT m.id AS market_id, m.exchange_id AS exchange, m.symbol, d.dataset, s.first_ts,
       s.last_ts, coalesce(s.rows, 0) AS rows, r.last_success, r.last_job, r.last_status,
       r.last_error, r.last_error_at
FROM markets m
CROSS JOIN (VALUES ('candles'), ('open_interest'), ('funding'), ('tiers')) AS d(dataset)
LEFT JOIN series s ON s.market_id = m.id AND s.dataset = d.dataset
LEFT JOIN runs r ON r.exchange = m.exchange_id AND r.symbol = m.symbol
                AND r.dataset = d.dataset
ORDER BY m.exchange_id, m.symbol, d.dataset;

-- latest_ingest_runs --
-- Per exchange, symbol and dataset of :symbols: the latest ingest run and the last success.
SELECT DISTINCT ON (exchange, symbol, dataset) exchange, symbol, dataset,
       max(finished_at) FILTER (WHERE status = 'succeeded')
           OVER (PARTITION BY exchange, symbol, dataset) AS last_success,
       status, error, started_at
FROM job_runs
WHERE job IN ('ingest', 'backfill', 'import') AND symbol = ANY(:symbols)
ORDER BY exchange, symbol, dataset, started_at DESC;

-- try_session_lock --
-- Take a session-level advisory lock if it is free (held until released or disconnected).
SELECT pg_try_advisory_lock(:key);

-- release_session_lock --
-- Release a session-level advisory lock.
SELECT pg_advisory_unlock(:key);


-- ================================ realized liquidations ========================================

-- refresh_realized_from_events --
-- Recompute per-bar realized totals of one market from its stored events in [first, last]
-- (idempotent; bars of :step ms, named :tf).
INSERT INTO realized_liquidations
    (source, exchange, base, symbol, timeframe, ts, long_usd, short_usd, events,
     lower_bound, note)
SELECT 'stream', m.exchange_id, m.base, m.symbol, :tf,
       to_timestamp(floor(extract(epoch FROM e.ts) * 1000 / :step) * :step / 1000.0),
       coalesce(sum(e.usd_value) FILTER (WHERE e.side = 'long'), 0),
       coalesce(sum(e.usd_value) FILTER (WHERE e.side = 'short'), 0),
       count(*), m.exchange_id = 'binanceusdm',
       CASE WHEN m.exchange_id = 'binanceusdm'
            THEN 'lower bound: Binance pushes at most one event per symbol per second'
       END
FROM liquidation_events e JOIN markets m ON m.id = e.market_id
WHERE e.market_id = :market AND e.ts >= :first AND e.ts <= :last
GROUP BY m.exchange_id, m.base, m.symbol, 6
ON CONFLICT (source, exchange, base, symbol, timeframe, ts) DO UPDATE SET
    long_usd = EXCLUDED.long_usd, short_usd = EXCLUDED.short_usd,
    events = EXCLUDED.events, lower_bound = EXCLUDED.lower_bound,
    note = EXCLUDED.note;

-- realized_bars --
-- Realized liquidations of a base asset in [start, end), one row per bar, source and venue
-- (optionally only :exchanges, only bars of :tf). Rows are stored per market (symbol) or as a
-- total over the base's markets (symbol '*'): the stored total where there is one, else the sum.
SELECT source, exchange, timeframe, ts,
       CASE WHEN bool_or(symbol = '*') THEN sum(long_usd) FILTER (WHERE symbol = '*')
            ELSE sum(long_usd) END AS long_usd,
       CASE WHEN bool_or(symbol = '*') THEN sum(short_usd) FILTER (WHERE symbol = '*')
            ELSE sum(short_usd) END AS short_usd,
       (CASE WHEN bool_or(symbol = '*') THEN sum(events) FILTER (WHERE symbol = '*')
             ELSE sum(events) END)::bigint AS events,
       bool_or(lower_bound) AS lower_bound, string_agg(DISTINCT note, '; ') AS note
FROM realized_liquidations
WHERE base = :base AND ts >= :start AND ts < :end
  AND (CAST(:exchanges AS text[]) IS NULL OR exchange = ANY(:exchanges))
  AND (CAST(:tf AS text) IS NULL OR timeframe = :tf)
GROUP BY source, exchange, timeframe, ts ORDER BY ts, exchange, source LIMIT :limit;


-- ================================ heatmap series and engine state ==============================

-- ensure_series --
-- The id of a symbol's series of one scope (exchange id or 'all'), created on first use.
INSERT INTO heatmap_series (symbol, scope, bucket_size) VALUES (:symbol, :scope, :bucket_size)
ON CONFLICT (symbol, scope) DO UPDATE SET bucket_size = EXCLUDED.bucket_size
RETURNING id;

-- series_of_symbol --
-- Every series of a symbol (one per exchange and the cross-exchange 'all'), and whether it has
-- any snapshot (a venue without open interest has a series and no snapshots).
SELECT s.id, s.symbol, s.scope, s.bucket_size,
       EXISTS (SELECT 1 FROM heatmap_snapshots h WHERE h.series_id = s.id) AS has_snapshots
FROM heatmap_series s WHERE s.symbol = :symbol;

-- clear_series --
-- Forget everything materialized for a series (before a full recompute).
WITH snapshots AS (DELETE FROM heatmap_snapshots WHERE series_id = :series),
     swept AS (DELETE FROM swept_levels WHERE series_id = :series)
DELETE FROM engine_states WHERE series_id = :series;

-- engine_state --
-- The saved engine state of a series.
SELECT series_id, last_bar_ts, model_version, params, state, updated_at
FROM engine_states WHERE series_id = :series;

-- save_engine_state --
-- Keep the engine state after a series' last processed bar (:params is JSON text).
INSERT INTO engine_states (series_id, last_bar_ts, model_version, params, state)
VALUES (:series_id, :last_bar_ts, :model_version, CAST(:params AS jsonb), :state)
ON CONFLICT (series_id) DO UPDATE SET
    last_bar_ts = EXCLUDED.last_bar_ts, model_version = EXCLUDED.model_version,
    params = EXCLUDED.params, state = EXCLUDED.state;

-- model_states --
-- Saved engine states (version and assumptions) of every series of a symbol.
SELECT e.series_id, s.scope, e.model_version, e.params, e.last_bar_ts, e.updated_at
FROM engine_states e JOIN heatmap_series s ON s.id = e.series_id
WHERE s.symbol = :symbol ORDER BY s.scope;


-- ================================ heatmap snapshots ============================================
-- Vectors are read with array_send (PostgreSQL's binary array format) and decoded by numpy
-- (models/arrays.py), never element by element in Python.

-- latest_snapshots --
-- Per series and resolution, the newest snapshot whose bar opened at or before :at.
SELECT l.* FROM unnest(CAST(:ids AS int[])) AS q(id),
                unnest(CAST(:res AS text[])) AS r(res)
CROSS JOIN LATERAL (
    SELECT h.series_id, h.resolution, h.ts, h.price, h.bucket_origin, h.bucket_size,
           h.model_version, h.fine_buckets, h.center_index, h.compact_first,
           array_send(h.long_usd) AS long_bin, array_send(h.short_usd) AS short_bin, h.band_usd
    FROM heatmap_snapshots h
    WHERE h.series_id = q.id AND h.resolution = r.res AND h.ts <= :at
    ORDER BY h.ts DESC LIMIT 1
) l;

-- snapshot_page --
-- One series' snapshots of a resolution with bars opening in [start, end) after :after, oldest
-- first, at most :limit.
SELECT h.series_id, h.resolution, h.ts, h.price, h.bucket_origin, h.bucket_size,
       h.model_version, h.fine_buckets, h.center_index, h.compact_first,
       array_send(h.long_usd) AS long_bin, array_send(h.short_usd) AS short_bin, h.band_usd
FROM heatmap_snapshots h
WHERE h.series_id = :series AND h.resolution = :res AND h.ts >= :start AND h.ts < :end
  AND h.ts > :after
ORDER BY h.ts LIMIT :limit;

-- snapshots_after --
-- Every snapshot of one series and resolution with a bar opening after :after, oldest first.
SELECT h.series_id, h.resolution, h.ts, h.price, h.bucket_origin, h.bucket_size,
       h.model_version, h.fine_buckets, h.center_index, h.compact_first,
       array_send(h.long_usd) AS long_bin, array_send(h.short_usd) AS short_bin, h.band_usd
FROM heatmap_snapshots h
WHERE h.series_id = :series AND h.resolution = :res AND h.ts > :after
ORDER BY h.ts;

-- newest_snapshot_per_series --
-- Per series, the bar opening of its newest snapshot at any of the resolutions :res (NULL when
-- it has none): a latest-row lookup per series and resolution.
SELECT q.id, max(l.ts) FROM unnest(CAST(:ids AS int[])) AS q(id)
CROSS JOIN unnest(CAST(:res AS text[])) AS r(res) LEFT JOIN LATERAL (
    SELECT ts FROM heatmap_snapshots h WHERE h.series_id = q.id
    AND h.resolution = r.res ORDER BY ts DESC LIMIT 1) l ON true
GROUP BY q.id;

-- first_snapshot_ts --
-- The oldest bar opening any of the series has a snapshot of at resolution :res.
SELECT min(l.ts) FROM unnest(CAST(:ids AS int[])) AS q(id) CROSS JOIN LATERAL (
    SELECT ts FROM heatmap_snapshots h WHERE h.series_id = q.id
    AND h.resolution = :res ORDER BY ts LIMIT 1) l;

-- snapshot_column_index --
-- Per series and heatmap column of :step_s seconds from :start, the last snapshot whose bar
-- opened in the column (no vectors: those are read by snapshot_vectors).
SELECT DISTINCT ON (series_id, col) series_id, col, ts
FROM (
    SELECT series_id, ts,
           floor((extract(epoch FROM ts) - :start_s) / :step_s)::int AS col
    FROM heatmap_snapshots
    WHERE series_id = ANY(CAST(:ids AS int[])) AND resolution = CAST(:res AS varchar)
      AND ts >= :start AND ts < :end
) h
ORDER BY series_id, col, ts DESC;

-- snapshot_vectors --
-- The vectors of one series' snapshots at the given bar openings, with the grid index of their
-- first bucket and their layout (graded buckets: maps.compact).
SELECT ts, round(bucket_origin / bucket_size)::int AS first, fine_buckets, center_index,
       compact_first, array_send(long_usd) AS long_bin, array_send(short_usd) AS short_bin
FROM heatmap_snapshots WHERE series_id = :series AND resolution = :res AND ts = ANY(:stamps);

-- snapshot_band_vectors --
-- The leverage-band blobs (maps.bands; NULL: stored without bands) of one series' snapshots at
-- the given bar openings, with the grid index of their first bucket, their layout and their
-- stored length (a band-filtered heatmap; unfiltered ones read snapshot_vectors).
SELECT ts, round(bucket_origin / bucket_size)::int AS first, fine_buckets, center_index,
       compact_first, cardinality(long_usd) AS size, band_usd
FROM heatmap_snapshots WHERE series_id = :series AND resolution = :res AND ts = ANY(:stamps);

-- snapshot_price_range --
-- Per series, over its snapshots with bars opening in [start, end): the lowest and highest
-- price, the lowest stored bucket edge, and the stored layout of the snapshot at the highest
-- price (a map's span is a fraction of its price, so that one reaches highest).
SELECT s.low, s.high, s.first_edge, t.bucket_size, t.fine_buckets, t.center_index,
       t.compact_first, t.bucket_origin, cardinality(t.long_usd) AS size
FROM (SELECT series_id, min(price) AS low, max(price) AS high, min(bucket_origin) AS first_edge
      FROM heatmap_snapshots WHERE series_id = ANY(:ids)
      AND resolution = :res AND ts >= :start AND ts < :end GROUP BY series_id) s
CROSS JOIN LATERAL (
    SELECT h.bucket_size, h.fine_buckets, h.center_index, h.compact_first, h.long_usd,
           h.bucket_origin
    FROM heatmap_snapshots h WHERE h.series_id = s.series_id
    AND h.resolution = :res AND h.ts >= :start AND h.ts < :end
    ORDER BY h.price DESC LIMIT 1) t;

-- snapshot_summary --
-- Per series, its snapshots with bars opening in [start, end): how many, the first and last
-- bar, the grid steps and model versions they were stored with (an export's metadata).
SELECT series_id, count(*) AS n, min(ts) AS first, max(ts) AS last,
       array_agg(DISTINCT bucket_size) AS sizes, array_agg(DISTINCT model_version) AS versions
FROM heatmap_snapshots WHERE series_id = ANY(CAST(:ids AS int[]))
AND resolution = :res AND ts >= :start AND ts < :end
GROUP BY series_id;

-- export_snapshots --
-- The series' snapshots with bars opening in [start, end), by time then series (an export's
-- rows, read through a server-side cursor).
SELECT h.series_id, h.ts, round(h.bucket_origin / h.bucket_size)::int AS first,
       h.bucket_size, h.price, h.fine_buckets, h.center_index, h.compact_first,
       array_send(h.long_usd) AS long_bin, array_send(h.short_usd) AS short_bin, h.band_usd
FROM heatmap_snapshots h
WHERE h.series_id = ANY(CAST(:ids AS int[])) AND h.resolution = :res
  AND h.ts >= :start AND h.ts < :end
ORDER BY h.ts, h.series_id;

-- prune_snapshots --
-- Drop a series' snapshots of one resolution with bars opening before :before.
DELETE FROM heatmap_snapshots
WHERE series_id = :series AND resolution = :resolution AND ts < :before;

-- notify --
-- Send a NOTIFY, delivered when the transaction commits.
SELECT pg_notify(:channel, :payload);


-- ================================ swept levels =================================================

-- swept_after --
-- One series' swept levels per bar after :after, oldest first.
SELECT ts, long_usd, short_usd FROM swept_levels WHERE series_id = :series AND ts > :after
ORDER BY ts;

-- swept_buckets --
-- Predicted liquidated notional summed over the series and over :step_s buckets from :start.
SELECT to_timestamp(:start_s + b * :step_s) AS ts, sum(long_usd) AS long_usd,
       sum(short_usd) AS short_usd, count(DISTINCT ts) AS bars
FROM (
    SELECT floor((extract(epoch FROM ts) - :start_s) / :step_s)::int AS b, ts,
           long_usd, short_usd
    FROM swept_levels
    WHERE series_id = ANY(:ids) AND ts >= :start AND ts < :end
) s GROUP BY b ORDER BY b LIMIT :limit;

-- last_swept_ts --
-- The newest bar of a series with swept levels.
SELECT max(ts) FROM swept_levels WHERE series_id = :series;


-- ================================ API keys =====================================================

-- insert_api_key --
-- Store a new key (its hash only).
INSERT INTO api_keys (name, prefix, key_hash, rate_limit_per_minute)
VALUES (:name, :prefix, :key_hash, :rate_limit)
RETURNING id, name, prefix, rate_limit_per_minute, created_at, revoked_at;

-- api_keys --
-- Every key, active or revoked.
SELECT id, name, prefix, rate_limit_per_minute, created_at, revoked_at
FROM api_keys ORDER BY id;

-- active_api_key --
-- The active key with this hash.
SELECT id, name, prefix, rate_limit_per_minute, created_at, revoked_at
FROM api_keys WHERE key_hash = :key_hash AND revoked_at IS NULL;

-- api_key_active --
-- Whether a key is still active.
SELECT 1 FROM api_keys WHERE id = :id AND revoked_at IS NULL;

-- revoke_api_key --
-- Revoke the active key with this prefix.
UPDATE api_keys SET revoked_at = now() WHERE prefix = :prefix AND revoked_at IS NULL;

-- rate_limit_take --
-- Take one request from a client's shared bucket (GCRA, epoch seconds by the database's clock:
-- ``tat`` is when the bucket is full again; a request is allowed while tat + interval stays
-- within ``window`` of now). A row comes back when the request is allowed, none when not.
INSERT INTO rate_limit_buckets AS b (client, tat)
VALUES (:client, extract(epoch FROM clock_timestamp()) + :interval)
ON CONFLICT (client) DO UPDATE
SET tat = greatest(b.tat, extract(epoch FROM clock_timestamp())) + :interval
WHERE greatest(b.tat, extract(epoch FROM clock_timestamp())) + :interval
      - extract(epoch FROM clock_timestamp()) <= :window
RETURNING b.tat;

-- rate_limit_wait --
-- Seconds until a client's bucket allows its next request (0 or less: it allows one now).
SELECT greatest(tat, extract(epoch FROM clock_timestamp())) + :interval
       - extract(epoch FROM clock_timestamp()) - :window
FROM rate_limit_buckets WHERE client = :client;

-- rate_limit_prune --
-- Forget full buckets (their time has passed: they carry no information).
DELETE FROM rate_limit_buckets WHERE tat < extract(epoch FROM clock_timestamp());


-- ================================ partitions ===================================================

-- partitions_of --
-- The child tables of a partitioned table.
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :table;

-- lock_partition_ddl --
-- Serialize partition DDL per table until the transaction ends.
SELECT pg_advisory_xact_lock(:key, hashtext(:table));

-- relation_exists --
-- The relation of this name, or NULL.
SELECT to_regclass(:name);


-- ================================ known positions ==============================================
-- The real-position layer (models/known_positions.py): readings of a sample of accounts on one
-- venue, beside (never inside) the model's estimates.

-- upsert_known_snapshot --
-- Store a recorded, already binned snapshot (finished when stored); returns its id. Stored
-- again, its description is replaced (the caller then replaces its markets and bins).
INSERT INTO known_snapshots (venue, source, taken_at, finished_at, selection, accounts_planned,
                             leverage_bands, meta)
VALUES (:venue, :source, :taken_at, :taken_at, :selection, :accounts_planned, :leverage_bands,
        CAST(:meta AS jsonb))
ON CONFLICT (venue, source, taken_at) DO UPDATE SET
    finished_at = EXCLUDED.finished_at, selection = EXCLUDED.selection,
    accounts_planned = EXCLUDED.accounts_planned, leverage_bands = EXCLUDED.leverage_bands,
    meta = EXCLUDED.meta
RETURNING id;

-- clear_known_snapshot_markets --
-- Forget a snapshot's per-market totals and bins (before they are written again).
WITH bins AS (DELETE FROM known_level_bins WHERE snapshot_id = :snapshot)
DELETE FROM known_snapshot_markets WHERE snapshot_id = :snapshot;

-- insert_known_snapshot_market --
-- One market of a snapshot: its totals, price, bin width and the venue's open interest.
INSERT INTO known_snapshot_markets (snapshot_id, symbol, price, long_usd, short_usd, positions,
                                    accounts, bin_width, venue_open_interest_usd)
VALUES (:snapshot_id, :symbol, :price, :long_usd, :short_usd, :positions, :accounts,
        :bin_width, :venue_open_interest_usd);

-- insert_known_level_bin --
-- One bin of a recorded snapshot (USD that would be liquidated around :price, per band).
INSERT INTO known_level_bins (snapshot_id, symbol, side, price, usd, usd_by_leverage)
VALUES (:snapshot_id, :symbol, :side, :price, :usd, :usd_by_leverage);

-- open_known_round --
-- The newest round of a venue and source still reading accounts.
SELECT id, taken_at, accounts_planned FROM known_snapshots
WHERE venue = :venue AND source = :source AND finished_at IS NULL
ORDER BY taken_at DESC LIMIT 1;

-- latest_known_round_start --
-- When the newest round of a venue and source started (finished or not).
SELECT max(taken_at) FROM known_snapshots WHERE venue = :venue AND source = :source;

-- start_known_round --
-- A new live round (unfinished until every planned account is read); returns its id.
INSERT INTO known_snapshots (venue, source, taken_at, selection, accounts_planned, meta)
VALUES (:venue, :source, :taken_at, :selection, :accounts_planned, CAST(:meta AS jsonb))
RETURNING id;

-- plan_known_account --
-- An account a round will read (on one dex; '' is the main one).
INSERT INTO known_snapshot_accounts (snapshot_id, account, dex)
VALUES (:snapshot_id, :account, :dex);

-- pending_known_accounts --
-- The accounts of a round not read yet, in a stable order.
SELECT account, dex FROM known_snapshot_accounts
WHERE snapshot_id = :snapshot AND read_at IS NULL
ORDER BY account, dex;

-- clear_known_account_positions --
-- Forget what an earlier attempt stored of one account in a round.
DELETE FROM known_positions WHERE snapshot_id = :snapshot AND account = :account AND dex = :dex;

-- insert_known_position --
-- One position as the venue reported it, with its liquidation price.
INSERT INTO known_positions (snapshot_id, account, symbol, dex, coin, side, size, notional_usd,
                             entry_price, leverage, margin_mode, liquidation_price)
VALUES (:snapshot_id, :account, :symbol, :dex, :coin, :side, :size, :notional_usd,
        :entry_price, :leverage, :margin_mode, :liquidation_price);

-- mark_known_account_read --
-- An account read: the venue's time of its state and how many positions it held.
UPDATE known_snapshot_accounts
SET read_at = now(), state_time = :state_time, positions = :positions, error = NULL
WHERE snapshot_id = :snapshot AND account = :account AND dex = :dex;

-- fail_known_account --
-- An account that could not be read counts as read, with the reason and no positions.
UPDATE known_snapshot_accounts SET read_at = now(), error = :error
WHERE snapshot_id = :snapshot AND account = :account AND dex = :dex;

-- known_round_totals --
-- Per market of a round: long and short USD, positions, accounts, and the positions' value
-- over their size (the price when the venue's mark is unknown).
SELECT symbol,
       coalesce(sum(notional_usd) FILTER (WHERE side = 'long'), 0.0) AS long_usd,
       coalesce(sum(notional_usd) FILTER (WHERE side = 'short'), 0.0) AS short_usd,
       count(*) AS positions, count(DISTINCT account) AS accounts,
       sum(notional_usd) / nullif(sum(size), 0) AS mean_mark
FROM known_positions WHERE snapshot_id = :snapshot
GROUP BY symbol;

-- finish_known_round --
-- Close a round: the span of the venue's state times it read, :meta merged into its own.
UPDATE known_snapshots s SET finished_at = now(),
       state_from = a.state_from, state_to = a.state_to,
       meta = s.meta || CAST(:meta AS jsonb)
FROM (SELECT min(state_time) AS state_from, max(state_time) AS state_to
      FROM known_snapshot_accounts WHERE snapshot_id = :snapshot) a
WHERE s.id = :snapshot;

-- known_snapshot_at --
-- The newest finished snapshot of a market on a venue taken at or before :at (NULL: the
-- newest), with the market's totals.
SELECT s.id, s.venue, s.source, s.taken_at, s.state_from, s.state_to, s.selection,
       s.accounts_planned, s.leverage_bands, s.meta, m.symbol, m.price, m.long_usd, m.short_usd,
       m.positions, m.bin_width, m.venue_open_interest_usd
FROM known_snapshots s JOIN known_snapshot_markets m ON m.snapshot_id = s.id
WHERE s.venue = :venue AND m.symbol = :symbol AND s.finished_at IS NOT NULL
  AND (CAST(:at AS timestamptz) IS NULL OR s.taken_at <= :at)
ORDER BY s.taken_at DESC LIMIT 1;

-- known_snapshot_accounts --
-- The accounts a snapshot planned to read and how each read went.
SELECT account, dex, error, read_at FROM known_snapshot_accounts
WHERE snapshot_id = :snapshot ORDER BY account, dex;

-- known_level_bins --
-- A recorded snapshot's bins of one market, ascending by price.
SELECT side, price, usd, usd_by_leverage FROM known_level_bins
WHERE snapshot_id = :snapshot AND symbol = :symbol
ORDER BY price, side;

-- known_position_levels --
-- A live round's positions of one market that have a liquidation price, ascending by it.
SELECT side, liquidation_price, notional_usd, leverage FROM known_positions
WHERE snapshot_id = :snapshot AND symbol = :symbol AND liquidation_price IS NOT NULL
ORDER BY liquidation_price, account;

-- known_markets --
-- Every (venue, symbol) with a finished known-positions snapshot (for "did you mean").
SELECT DISTINCT s.venue, m.symbol
FROM known_snapshots s JOIN known_snapshot_markets m ON m.snapshot_id = s.id
WHERE s.finished_at IS NOT NULL
ORDER BY s.venue, m.symbol;

-- insert_known_liquidation --
-- One liquidation fill of a read account (stored once; the venue's trade id keys it).
INSERT INTO known_liquidations (venue, account, fill_id, symbol, ts, side, price, quantity,
                                usd_value, raw)
VALUES (:venue, :account, :fill_id, :symbol, :ts, :side, :price, :quantity, :usd_value,
        CAST(:raw AS jsonb))
ON CONFLICT (venue, account, fill_id) DO NOTHING;

-- last_known_liquidation --
-- The newest stored liquidation fill of an account on a venue.
SELECT max(ts) FROM known_liquidations WHERE venue = :venue AND account = :account;

-- known_liquidations --
-- The read accounts' liquidation fills of a market in [start, end), oldest first.
SELECT ts, account, side, price, quantity, usd_value FROM known_liquidations
WHERE venue = :venue AND symbol = :symbol AND ts >= :start AND ts < :end
ORDER BY ts, account LIMIT :limit;
