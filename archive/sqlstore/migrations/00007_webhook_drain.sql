-- Outbound webhooks drained per endpoint (webhook/webhookriver's doc):
-- a delivery's next_attempt_us is when it may be sent next, unix
-- microseconds. 0 (a new row, a replay): now. A node that picks a queue's
-- head sets it to the end of its claim (no other node sends the row
-- meanwhile; past it, a dead node's row is due again); a failed attempt
-- sets it to the retry's time (backoff with jitter). An endpoint's due
-- heads are found oldest first through webhook_deliveries_due, each
-- checked against webhook_deliveries_pending (no earlier pending row of
-- its queue). The due index's predicate names next_attempt_us (always
-- >= 0) so that only queries repeating it use it: the probe, without,
-- always takes the pending index (by endpoint and topic), whatever the
-- planner's statistics say (a fresh table's once sent the probe down
-- the due index, a scan of the endpoint's whole backlog per row).
-- Portable SQL, like 00001.

-- +goose Up
ALTER TABLE webhook_deliveries ADD COLUMN next_attempt_us BIGINT NOT NULL DEFAULT 0;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, id_ms, id_seq)
    WHERE state = 'pending' AND next_attempt_us >= 0;

-- +goose Down
DROP INDEX webhook_deliveries_due;
ALTER TABLE webhook_deliveries DROP COLUMN next_attempt_us;
