package webhookriver

import (
	"fmt"
	"os"
	"sync"
	"time"
)

var dbgMu sync.Mutex
var dbg = map[string][2]float64{}

func track(name string, start time.Time) {
	dbgMu.Lock()
	v := dbg[name]
	v[0]++
	v[1] += time.Since(start).Seconds()
	dbg[name] = v
	dbgMu.Unlock()
}

func DumpDebug() {
	dbgMu.Lock()
	defer dbgMu.Unlock()
	for k, v := range dbg {
		fmt.Fprintf(os.Stderr, "%-10s n=%6.0f total=%7.2fs avg=%6.1fms\n", k, v[0], v[1], 1000*v[1]/max(v[0], 1))
	}
}
