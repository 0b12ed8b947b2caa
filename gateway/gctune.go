package gateway

import (
	"fmt"
	"os"
	"runtime/debug"
)

// Garbage collector settings of the serving process. The gateway's live
// heap is small (a few MB: policy, caches, limiter windows), so with Go's
// default GOGC=100 the collector runs after every few MB of allocation and
// took about a third of the CPU of a POST /v1/exec/check (measured with
// BenchmarkCheckHandler: ~60 -> ~40 cpu-µs per request at 400). A soft
// memory limit keeps the larger target from growing without bound: near it
// the collector runs as often as it must.
const (
	// DefaultGCPercent is GOGC for `execgate serve` unless GOGC is set.
	DefaultGCPercent = 400
	// DefaultMemoryLimit is GOMEMLIMIT unless GOMEMLIMIT is set.
	DefaultMemoryLimit = 512 << 20
)

// TuneGC applies DefaultGCPercent and DefaultMemoryLimit where the
// environment does not set GOGC or GOMEMLIMIT, and says what it did.
func TuneGC() string {
	gc, limit := "GOGC from the environment", "GOMEMLIMIT from the environment"
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGCPercent)
		gc = fmt.Sprintf("GOGC=%d", DefaultGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(DefaultMemoryLimit)
		limit = fmt.Sprintf("GOMEMLIMIT=%dMiB", DefaultMemoryLimit>>20)
	}
	return gc + ", " + limit
}
