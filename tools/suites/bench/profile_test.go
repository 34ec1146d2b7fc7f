package bench

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// cpuProfile builds a CPU profile whose samples are the given stacks (leaf
// first) with the given nanoseconds.
func cpuProfile(t *testing.T, stacks map[string][]string) []byte {
	t.Helper()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
	}
	fns := map[string]*profile.Function{}
	locs := map[string]*profile.Location{}
	loc := func(name string) *profile.Location {
		if l, ok := locs[name]; ok {
			return l
		}
		f := &profile.Function{ID: uint64(len(fns) + 1), Name: name}
		fns[name] = f
		p.Function = append(p.Function, f)
		l := &profile.Location{ID: uint64(len(locs) + 1), Line: []profile.Line{{Function: f}}}
		locs[name] = l
		p.Location = append(p.Location, l)
		return l
	}
	for key, stack := range stacks {
		var s profile.Sample
		for _, fn := range stack {
			s.Location = append(s.Location, loc(fn))
		}
		d, err := time.ParseDuration(key[:len(key)-len("#x")])
		if err != nil {
			t.Fatal(err)
		}
		s.Value = []int64{int64(d / (10 * time.Millisecond)), int64(d)}
		p.Sample = append(p.Sample, &s)
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestAnalyzeProfile(t *testing.T) {
	data := cpuProfile(t, map[string][]string{
		// "<cpu time>#<unique tag>": stack, leaf first.
		"600ms#a": {"internal/runtime/syscall/linux.Syscall6", "syscall.write", "crypto/tls.(*Conn).Write", "net/http.(*conn).serve", "runtime.goexit"},
		"300ms#b": {"crypto/internal/fips140/aes/gcm.gcmAesEnc", "crypto/tls.(*Conn).Write", "net/http.(*conn).serve", "runtime.goexit"},
		"100ms#c": {"runtime.mallocgc", "github.com/linkerd-go/linkerd-go/proxy/internal/outbound.(*Proxy).serveHTTP", "net/http.(*conn).serve", "runtime.goexit"},
	})
	pp, err := AnalyzeProfile(data, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !near(pp.TotalSeconds, 1) {
		t.Errorf("total %v s, want 1", pp.TotalSeconds)
	}
	wantCats := []Category{
		{categories[0].name, 60}, // system calls
		{categories[1].name, 30}, // crypto
		{categories[2].name, 10}, // allocation
	}
	if len(pp.Categories) != len(wantCats) {
		t.Fatalf("categories %+v", pp.Categories)
	}
	for i, w := range wantCats {
		if pp.Categories[i].Name != w.Name || !near(pp.Categories[i].Pct, w.Pct) {
			t.Errorf("category %d = %+v, want %+v", i, pp.Categories[i], w)
		}
	}
	if len(pp.Top) != 3 || pp.Top[0].Function != "internal/runtime/syscall/linux.Syscall6" || !near(pp.Top[0].FlatPct, 60) {
		t.Errorf("top %+v", pp.Top)
	}
	// Cumulative, without the runtime: serve (100), tls Write (90),
	// syscall.write (60).
	want := []string{"net/http.(*conn).serve", "crypto/tls.(*Conn).Write", "syscall.write"}
	for i, w := range want {
		if pp.TopCum[i].Function != w {
			t.Errorf("topCum[%d] = %+v, want %s", i, pp.TopCum[i], w)
		}
	}
	if !near(pp.TopCum[1].CumPct, 90) || pp.TopCum[1].FlatPct != 0 {
		t.Errorf("tls Write %+v, want 90%% cumulative, 0 flat", pp.TopCum[1])
	}
}

func TestAnalyzeProfileRejectsOtherProfiles(t *testing.T) {
	if _, err := AnalyzeProfile([]byte("not a profile"), 5); err == nil {
		t.Error("garbage accepted")
	}
}

func TestCategorize(t *testing.T) {
	for fn, want := range map[string]string{
		"syscall.Syscall":                      categories[0].name,
		"internal/poll.(*FD).Write":            categories[0].name,
		"crypto/tls.(*halfConn).encrypt":       categories[1].name,
		"runtime.scanobject":                   categories[2].name,
		"runtime.futex":                        categories[3].name,
		"net/http.(*http2Framer).WriteHeaders": categories[4].name,
		"github.com/prometheus/client_golang/prometheus.(*counter).Inc":                 categories[5].name,
		"github.com/linkerd-go/linkerd-go/proxy/internal/balance.(*Balancer[...]).Pick": categories[6].name,
		"runtime.memmove":   categories[7].name,
		"context.WithValue": otherCategory,
		"net.(*netFD).Read": otherCategory,
	} {
		if got := categorize(fn); got != want {
			t.Errorf("categorize(%s) = %q, want %q", fn, got, want)
		}
	}
}
