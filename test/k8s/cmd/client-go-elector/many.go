package main

// The "many elections" benchmark's client-go side: one process, one clientset (one HTTP/2
// connection), N leader elections on Leases <prefix>-0 … <prefix>-(N-1), as a client-go user who
// holds many Leases writes it. It prints one JSON line with what scripts/many-elections.ts prints
// for this library, measured the same way.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// timedLock notes how long each renewing write takes, and counts failed writes.
type timedLock struct {
	resourcelock.Interface
	stats *manyStats
}

type manyStats struct {
	mu        sync.Mutex
	measuring bool
	latencies []float64
	failures  atomic.Int64
}

func (l *timedLock) Update(ctx context.Context, record resourcelock.LeaderElectionRecord) error {
	start := time.Now()
	err := l.Interface.Update(ctx, record)
	if err != nil {
		l.stats.failures.Add(1)
		return err
	}
	l.stats.mu.Lock()
	if l.stats.measuring {
		l.stats.latencies = append(l.stats.latencies, float64(time.Since(start).Microseconds())/1000)
	}
	l.stats.mu.Unlock()
	return nil
}

func (l *timedLock) Create(ctx context.Context, record resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, record)
	if err != nil {
		l.stats.failures.Add(1)
	}
	return err
}

func cpuMs() float64 {
	var usage syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return float64(usage.Utime.Nano()+usage.Stime.Nano()) / 1e6
}

func rssMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

func runMany(config *rest.Config, id, namespace, prefix string, count int, window time.Duration, leaseDuration, renewDeadline, retryPeriod time.Duration) {
	// client-go throttles a clientset to 5 requests a second by default; a process holding many
	// Leases raises that, as controller-runtime users do.
	config.QPS = 1e6
	config.Burst = 1e6
	client := kubernetes.NewForConfigOrDie(config)
	stats := &manyStats{}
	baseline := rssMB()
	ctx, cancel := context.WithCancel(context.Background())
	var held atomic.Int64
	allHeld := make(chan struct{})
	started := time.Now()
	var done sync.WaitGroup
	for i := 0; i < count; i++ {
		lock := &timedLock{stats: stats, Interface: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i), Namespace: namespace},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: id},
		}}
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod, ReleaseOnCancel: true,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) {
					if held.Add(1) == int64(count) {
						close(allHeld)
					}
				},
				OnStoppedLeading: func() {},
			},
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "leader election: %v\n", err)
			os.Exit(2)
		}
		done.Add(1)
		go func() {
			defer done.Done()
			elector.Run(ctx)
		}()
	}
	acquireMs := -1.0
	select {
	case <-allHeld:
		acquireMs = float64(time.Since(started).Microseconds()) / 1000
	case <-time.After(60 * time.Second):
	}
	acquireFailures := stats.failures.Load()
	time.Sleep(2 * retryPeriod) // past the first renewals
	stats.mu.Lock()
	stats.measuring = true
	stats.mu.Unlock()
	cpuBefore := cpuMs()
	time.Sleep(window)
	cpu := cpuMs() - cpuBefore
	stats.mu.Lock()
	stats.measuring = false
	latencies := append([]float64(nil), stats.latencies...)
	stats.mu.Unlock()
	rss := rssMB()
	sort.Float64s(latencies)
	result := map[string]any{
		"implementation": "client-go", "leases": count, "held": held.Load(),
		"acquireMs": acquireMs, "acquireFailures": acquireFailures,
		"renewals": len(latencies), "renewP50": percentile(latencies, 0.5), "renewP99": percentile(latencies, 0.99),
		"cpuMsPerRenewal": cpu / float64(max(1, len(latencies))), "rssMB": rss, "kBPerLease": (rss - baseline) * 1024 / float64(count),
	}
	cancel()
	done.Wait()
	line, _ := json.Marshal(result)
	fmt.Println(string(line))
}
