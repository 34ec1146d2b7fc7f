package bench

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// ProfileDirEnv names the folder the instrumented proxy writes its CPU
// profiles to; without it the instrumentation does nothing.
const ProfileDirEnv = "LINKERD_BENCH_PROFILE_DIR"

// profileHook is added to the proxy's main package when the benchmark
// builds it (go build -overlay; the proxy's source is untouched). With
// ProfileDirEnv set, each SIGUSR1 starts or stops a CPU profile, written
// to <dir>/<pid>/cpu-<n>.pprof.tmp and renamed to cpu-<n>.pprof once
// complete. Without
// the variable it installs nothing, so the proxy handles SIGUSR1 as it
// always does.
var profileHook = []byte(`package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
)

// Added by tools/suites/bench at build time; not part of the proxy.
func init() {
	dir := os.Getenv("` + ProfileDirEnv + `")
	if dir == "" {
		return
	}
	dir = filepath.Join(dir, strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench profile:", err)
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		var f *os.File
		n := 0
		for range sig {
			if f == nil {
				n++
				var err error
				if f, err = os.Create(filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof.tmp", n))); err != nil {
					fmt.Fprintln(os.Stderr, "bench profile:", err)
					continue
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					fmt.Fprintln(os.Stderr, "bench profile:", err)
				}
				continue
			}
			pprof.StopCPUProfile()
			name := f.Name()
			f.Close()
			f = nil
			if err := os.Rename(name, name[:len(name)-len(".tmp")]); err != nil {
				fmt.Fprintln(os.Stderr, "bench profile:", err)
			}
		}
	}()
}
`)

// Profile is the CPU profile section of the report.
type Profile struct {
	Rate    int            `json:"rate"`
	Seconds float64        `json:"seconds"`
	Proxies []ProxyProfile `json:"proxies"`
}

// ProxyProfile summarises one proxy's CPU profile.
type ProxyProfile struct {
	Name         string     `json:"name"`
	File         string     `json:"file"`
	TotalSeconds float64    `json:"totalSeconds"`
	Categories   []Category `json:"categories"`
	// Top are the functions burning the most CPU themselves (flat);
	// TopCum those under which the most CPU is burnt (cumulative), the
	// runtime's own left out.
	Top    []TopEntry `json:"top"`
	TopCum []TopEntry `json:"topCum"`
}

// Category is a share of the CPU time by kind of work.
type Category struct {
	Name string  `json:"name"`
	Pct  float64 `json:"pct"`
}

// TopEntry is one function of the profile.
type TopEntry struct {
	Function string  `json:"function"`
	FlatPct  float64 `json:"flatPct"`
	CumPct   float64 `json:"cumPct"`
}

// categories classify the function a sample was taken in (the leaf) by
// kind of work; the first match wins, so more specific entries come first.
var categories = []struct {
	name     string
	prefixes []string
}{
	{"system calls (socket reads and writes, epoll; kernel time lands here)", []string{"syscall.", "internal/runtime/syscall/", "runtime/internal/syscall/", "internal/poll.", "runtime.netpoll", "runtime.epoll"}},
	{"crypto (TLS record encryption, handshakes)", []string{"crypto/", "vendor/golang.org/x/crypto/", "golang.org/x/crypto/"}},
	{"memory allocation and garbage collection", []string{"runtime.mallocgc", "runtime.gc", "runtime.scanobject", "runtime.markroot", "runtime.greyobject", "runtime.findObject", "runtime.(*mspan)", "runtime.(*mheap)", "runtime.(*mcache)", "runtime.(*mcentral)", "runtime.(*gcWork)", "runtime.(*gcControllerState)", "runtime.bgsweep", "runtime.sweepone", "runtime.memclr", "runtime.heapBits", "runtime.wbBuf", "runtime.bulkBarrier", "runtime.typePointers", "runtime.(*sweepLocked)", "runtime.nextFreeFast", "runtime.newobject", "runtime.makeslice", "runtime.growslice", "runtime.scanblock", "runtime.scanstack", "runtime.(*unwinder)", "runtime.pcvalue", "runtime.step", "runtime.funcspdelta", "runtime.spanOf", "runtime.(*pageAlloc)", "runtime.(*spanSet)", "runtime.(*fixalloc)"}},
	{"goroutine scheduling and wake-ups", []string{"runtime.futex", "runtime.usleep", "runtime.schedule", "runtime.findRunnable", "runtime.stealWork", "runtime.runqgrab", "runtime.park_m", "runtime.mcall", "runtime.goready", "runtime.ready", "runtime.wakep", "runtime.notesleep", "runtime.notewakeup", "runtime.(*timers)", "runtime.nanotime", "runtime.osyield", "runtime.lock", "runtime.unlock", "runtime.casgstatus", "runtime.execute", "runtime.gopark", "runtime.resetspinning", "runtime.checkTimers", "runtime.runtimer", "runtime.selectgo", "runtime.chansend", "runtime.chanrecv", "runtime.send", "runtime.recv", "runtime.(*waitq)", "runtime.semacquire", "runtime.semrelease", "runtime.startm", "runtime.stopm", "runtime.handoffp", "runtime.gogo", "runtime.goexit", "runtime.newproc", "runtime.gfget", "runtime.malg", "sync."}},
	{"HTTP/1 and HTTP/2 framing and headers (net/http, x/net/http2)", []string{"net/http.", "net/textproto.", "vendor/golang.org/x/net/http2", "golang.org/x/net/http2", "vendor/golang.org/x/net/http/", "net/url.", "mime."}},
	{"Prometheus metrics", []string{"github.com/prometheus/"}},
	{"the proxy's own code", []string{"github.com/linkerd-go/linkerd-go/"}},
	{"bytes, strings, maps, copying", []string{"runtime.memmove", "runtime.memequal", "runtime.map", "internal/runtime/maps.", "runtime.aeshash", "runtime.strhash", "runtime.concatstring", "runtime.slicebytetostring", "runtime.stringtoslicebyte", "runtime.rawstring", "runtime.rawbyteslice", "runtime.intstring", "bytes.", "strings.", "strconv.", "unicode/", "bufio.", "io.", "internal/bytealg.", "fmt.", "sort.", "slices.", "maps.", "hash/", "internal/sync."}},
}

const otherCategory = "everything else (runtime, net, context, ...)"

// AnalyzeProfile reads a CPU profile and summarises it with the top n
// functions.
func AnalyzeProfile(data []byte, n int) (ProxyProfile, error) {
	var pp ProxyProfile
	p, err := profile.Parse(bytes.NewReader(data))
	if err != nil {
		return pp, err
	}
	vi := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			vi = i
		}
	}
	if vi < 0 {
		return pp, fmt.Errorf("not a CPU profile")
	}
	flat := map[string]int64{}
	cum := map[string]int64{}
	byCat := map[string]int64{}
	var sum int64
	for _, s := range p.Sample {
		v := s.Value[vi]
		sum += v
		seen := map[string]bool{}
		leaf := ""
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				if line.Function == nil {
					continue
				}
				name := line.Function.Name
				if leaf == "" {
					leaf = name
				}
				if !seen[name] {
					seen[name] = true
					cum[name] += v
				}
			}
		}
		if leaf == "" {
			leaf = "(unknown)"
		}
		flat[leaf] += v
		byCat[categorize(leaf)] += v
	}
	if sum == 0 {
		return pp, nil
	}
	// CPU profiles count nanoseconds of CPU.
	pp.TotalSeconds = time.Duration(sum).Seconds()
	pct := func(v int64) float64 { return float64(v) * 100 / float64(sum) }
	for name, v := range byCat {
		pp.Categories = append(pp.Categories, Category{Name: name, Pct: pct(v)})
	}
	slices.SortFunc(pp.Categories, func(a, b Category) int {
		return cmp.Or(cmp.Compare(b.Pct, a.Pct), strings.Compare(a.Name, b.Name))
	})
	var all []TopEntry
	for name, v := range cum {
		all = append(all, TopEntry{Function: name, FlatPct: pct(flat[name]), CumPct: pct(v)})
	}
	pp.Top = topBy(all, n, func(e TopEntry) float64 { return e.FlatPct }, func(e TopEntry) bool { return e.FlatPct > 0 })
	pp.TopCum = topBy(all, n, func(e TopEntry) float64 { return e.CumPct }, func(e TopEntry) bool {
		return !strings.HasPrefix(e.Function, "runtime.") && !strings.HasPrefix(e.Function, "internal/runtime/")
	})
	return pp, nil
}

// topBy returns the n entries with the largest key among those keep
// accepts, ties by name.
func topBy(all []TopEntry, n int, key func(TopEntry) float64, keep func(TopEntry) bool) []TopEntry {
	var out []TopEntry
	for _, e := range all {
		if keep(e) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b TopEntry) int {
		return cmp.Or(cmp.Compare(key(b), key(a)), strings.Compare(a.Function, b.Function))
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// categorize names the category of a function.
func categorize(fn string) string {
	for _, c := range categories {
		for _, prefix := range c.prefixes {
			if strings.HasPrefix(fn, prefix) {
				return c.name
			}
		}
	}
	return otherCategory
}
