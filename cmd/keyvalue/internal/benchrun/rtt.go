package benchrun

import (
	"container/heap"
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/valkey-io/valkey-go"
)

// The round-trip dimension: every implementation of a run reaches the
// server through one Toxiproxy proxy (run in this process) that delays
// each direction by half the round trip, so a request and its reply cost
// what they cost between an application and its server one network hop
// away. Toxiproxy's own latency toxic counts in milliseconds; usLatency
// is the same toxic in microseconds.
//
// A sleep cannot make such delays where the kernel has no high-resolution
// timers (this VM: a 50µs sleep takes 1.1ms), so the chunks wait on one
// releaser goroutine, which sleeps until a chunk is due within spinBelow
// and then spins (yielding) until it is due: one goroutine, busy only
// while a chunk is about to be due, for every connection of the proxy.

// usLatency delays every chunk by Latency microseconds after it was read
// (so a pipeline of chunks is delayed once, not once per chunk).
type usLatency struct {
	Latency int64 `json:"latency_us"`
}

// GetBufferSize is the toxic's channel buffer, as Toxiproxy's latency toxic.
func (t *usLatency) GetBufferSize() int { return 1024 }

// Pipe passes chunks through, each Latency after it arrived.
func (t *usLatency) Pipe(stub *toxics.ToxicStub) {
	delay := time.Duration(t.Latency) * time.Microsecond
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if due := c.Timestamp.Add(delay); time.Until(due) > 0 && !clock().wait(due, stub.Interrupt) {
				stub.Output <- c // interrupted: never drop data
				return
			}
			stub.Output <- c
		}
	}
}

// spinBelow is how close to its due time a chunk must be for the releaser
// to spin instead of sleeping: more than a coarse timer's granularity.
const spinBelow = 2 * time.Millisecond

// releaser wakes waiting chunks when they are due.
type releaser struct {
	mu    sync.Mutex
	queue dueHeap
	seq   uint64
	wake  chan struct{}
}

type dueItem struct {
	due  time.Time
	seq  uint64
	done chan struct{}
}

// dueHeap orders chunks by due time, then arrival.
type dueHeap []dueItem

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	return h[i].due.Before(h[j].due) || h[i].due.Equal(h[j].due) && h[i].seq < h[j].seq
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// clock is the process's releaser, started on first use; it blocks
// without using the CPU while no chunk waits.
var clock = sync.OnceValue(func() *releaser {
	r := &releaser{wake: make(chan struct{}, 1)}
	go r.run()
	return r
})

// wait blocks until due, or returns false when interrupt closes first.
func (r *releaser) wait(due time.Time, interrupt <-chan struct{}) bool {
	done := make(chan struct{})
	r.mu.Lock()
	r.seq++
	heap.Push(&r.queue, dueItem{due: due, seq: r.seq, done: done})
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	select {
	case <-done:
		return true
	case <-interrupt:
		return false
	}
}

func (r *releaser) run() {
	for {
		r.mu.Lock()
		if r.queue.Len() == 0 {
			r.mu.Unlock()
			<-r.wake
			continue
		}
		next := r.queue[0]
		left := time.Until(next.due)
		if left <= 0 {
			heap.Pop(&r.queue)
			r.mu.Unlock()
			close(next.done)
			continue
		}
		r.mu.Unlock()
		if left > spinBelow {
			t := time.NewTimer(left - spinBelow)
			select {
			case <-t.C:
			case <-r.wake: // an earlier chunk may have come
				t.Stop()
			}
			continue
		}
		for time.Until(next.due) > 0 {
			runtime.Gosched()
		}
	}
}

var registerToxic = sync.OnceFunc(func() { toxics.Register("latency_us", new(usLatency)) })

// RTTProxy forwards a local address to the server with a round trip of RTT
// added.
type RTTProxy struct {
	RTT  time.Duration
	p    *toxiproxy.Proxy
	addr string
}

// StartRTTProxy starts a proxy on a free 127.0.0.1 port to upstream that
// adds rtt to every round trip (half in each direction).
func StartRTTProxy(upstream string, rtt time.Duration) (*RTTProxy, error) {
	registerToxic()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "keyvalue-bench-rtt", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("start the round-trip proxy: %w", err)
	}
	half := rtt.Microseconds() / 2
	for _, stream := range []string{"upstream", "downstream"} {
		js := fmt.Sprintf(`{"name":"rtt-%s","type":"latency_us","stream":%q,"toxicity":1,"attributes":{"latency_us":%d}}`, stream, stream, half)
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			p.Stop()
			return nil, fmt.Errorf("add the round-trip delay: %w", err)
		}
	}
	return &RTTProxy{RTT: rtt, p: p, addr: p.Listen}, nil
}

// Addr is the address implementations dial instead of the server's.
func (p *RTTProxy) Addr() string { return p.addr }

// Stop closes the proxy and its connections.
func (p *RTTProxy) Stop() { p.p.Stop() }

// ProxyCost measures what the proxy itself adds: the median PING through
// it and directly, each over n round trips, with opt's other settings.
func ProxyCost(ctx context.Context, opt valkey.ClientOption, direct, proxied string, n int) (through, plain time.Duration, err error) {
	measure := func(addr string) (time.Duration, error) {
		o := opt
		o.InitAddress = []string{addr}
		c, err := valkey.NewClient(o)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		ds := make([]float64, 0, n)
		for range n {
			start := time.Now()
			if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
				return 0, err
			}
			ds = append(ds, float64(time.Since(start)))
		}
		return time.Duration(median(ds)), nil
	}
	if plain, err = measure(direct); err != nil {
		return 0, 0, err
	}
	through, err = measure(proxied)
	return through, plain, err
}
