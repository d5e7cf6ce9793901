package archiveredis

import "context"

// SetAfterAppend makes p run f between each archive write and the cursor
// advance that follows it.
func SetAfterAppend(p *Pipeline, f func()) { p.afterAppend = f }

// Pass runs one pass of p (leases, then every held shard).
func Pass(ctx context.Context, p *Pipeline) error { return p.pass(ctx) }
