-- Outbound webhooks drained per endpoint (webhook/webhookriver's doc):
-- a delivery's next_attempt_us is when it may be sent next, unix
-- microseconds. 0 (a new row, a replay): now. A node that picks a queue's
-- head sets it to the end of its claim (no other node sends the row
-- meanwhile; past it, a dead node's row is due again); a failed attempt
-- sets it to the retry's time (backoff with jitter). Portable SQL, like
-- 00001.

-- +goose Up
ALTER TABLE webhook_deliveries ADD COLUMN next_attempt_us BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE webhook_deliveries DROP COLUMN next_attempt_us;
