// client-go-elector is the reference peer for interop tests and benchmarks: client-go's own
// tools/leaderelection with the same flags and the same JSON lines as apps/example, so a Go
// candidate and a TypeScript one can share one Lease and be observed the same way.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

type eventLog struct {
	mu sync.Mutex
	id string
}

func (l *eventLog) emit(event string, leader string, term *int32, extra map[string]any) {
	l.emitAt(time.Now(), event, leader, term, extra)
}

// emitAt lets a caller stamp a line with a time taken before it checked that the line is still true.
func (l *eventLog) emitAt(at time.Time, event string, leader string, term *int32, extra map[string]any) {
	line := map[string]any{
		"time":   at.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		"id":     l.id,
		"event":  event,
		"leader": nil,
		"term":   nil,
	}
	if leader != "" {
		line["leader"] = leader
	}
	if term != nil {
		line["term"] = *term
	}
	for k, v := range extra {
		line[k] = v
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = json.NewEncoder(os.Stdout).Encode(line)
}

// renewalClock wraps the Lease lock and notes when each successful write of ours was *sent*: the
// term stays valid until renewDeadline after that, on the monotonic clock — what term.isValid() is
// in the TypeScript library. client-go itself offers no such check (its context is cancelled by a
// goroutine that may run after a paused process's work loop has resumed).
type renewalClock struct {
	resourcelock.Interface
	mu       sync.Mutex
	lastSent time.Time
}

func (l *renewalClock) note(sent time.Time, record resourcelock.LeaderElectionRecord, err error) error {
	if err == nil && record.HolderIdentity == l.Identity() {
		l.mu.Lock()
		l.lastSent = sent
		l.mu.Unlock()
	}
	return err
}

func (l *renewalClock) Create(ctx context.Context, record resourcelock.LeaderElectionRecord) error {
	sent := time.Now()
	return l.note(sent, record, l.Interface.Create(ctx, record))
}

func (l *renewalClock) Update(ctx context.Context, record resourcelock.LeaderElectionRecord) error {
	sent := time.Now()
	return l.note(sent, record, l.Interface.Update(ctx, record))
}

// validFor reports whether our last successful write was sent less than deadline ago.
func (l *renewalClock) validFor(deadline time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.lastSent.IsZero() && time.Since(l.lastSent) < deadline
}

func seconds(value float64) time.Duration { return time.Duration(value * float64(time.Second)) }

// tickFormat is how the example writes a tick: ISO 8601 in UTC with milliseconds (Date.toISOString()).
const tickFormat = "2006-01-02T15:04:05.000Z"

// runTicks is what a client-go user writes for a job on the leader only, as the example's cron
// job 'tick' ('* * * * * *', UTC): a loop started in OnStartedLeading that fires at every whole
// wall-clock second while the term's context is live. Each run works for `work` in a goroutine of
// its own (as robfig/cron runs jobs), so a long run does not hold back the next tick; the next tick
// is the first whole second after each wake-up, so ticks a paused process slept through are not
// run. Ticks that fall due while nobody leads are simply lost: client-go has no record of them.
func runTicks(termCtx context.Context, log *eventLog, id string, term *int32, work time.Duration) {
	for {
		next := time.Now().Truncate(time.Second).Add(time.Second)
		timer := time.NewTimer(time.Until(next))
		select {
		case <-termCtx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		if termCtx.Err() != nil { // both were ready and select chose the timer
			return
		}
		go func(tick time.Time) {
			fields := map[string]any{"job": "tick", "tick": tick.UTC().Format(tickFormat), "kind": "scheduled"}
			log.emit("tick-start", id, term, fields)
			outcome := "completed"
			done := time.NewTimer(work)
			select {
			case <-termCtx.Done():
				done.Stop()
				outcome = "cancelled"
			case <-done.C:
			}
			end := map[string]any{"outcome": outcome}
			for k, v := range fields {
				end[k] = v
			}
			log.emit("tick-end", id, term, end)
		}(next)
	}
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func envInt(name string, fallback int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return fallback
}

func main() {
	var kubeconfig, id, leaseName, namespace, lossPolicy, schedule, coordinated string
	var port, tickWorkMs int
	var leaseDuration, renewDeadline, retryPeriod float64
	flag.StringVar(&kubeconfig, "kube-config", os.Getenv("KUBECONFIG"), "kubeconfig path")
	flag.StringVar(&kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig path (alias)")
	flag.StringVar(&id, "id", os.Getenv("POD_NAME"), "identity")
	flag.IntVar(&port, "port", 8080, "health server port (0 = any free port)")
	flag.StringVar(&leaseName, "lease-name", envOr("LEASE_NAME", "example-controller"), "Lease name")
	flag.StringVar(&namespace, "namespace", envOr("POD_NAMESPACE", "default"), "namespace")
	flag.Float64Var(&leaseDuration, "lease-duration", 15, "lease duration in seconds")
	flag.Float64Var(&renewDeadline, "renew-deadline", 10, "renew deadline in seconds")
	flag.Float64Var(&retryPeriod, "retry-period", 2, "retry period in seconds")
	flag.StringVar(&lossPolicy, "loss-policy", envOr("LOSS_POLICY", "exit"), "after losing leadership: exit, or rejoin the election")
	// The example's --schedule catch-up|skip: its missed-tick policy. client-go has none, so any
	// non-empty value only turns the job on; ticks missed without a leader are lost either way.
	flag.StringVar(&schedule, "schedule", os.Getenv("SCHEDULE"), "run the leader-only job 'tick' at every whole second (any non-empty value)")
	flag.IntVar(&tickWorkMs, "tick-work-ms", envInt("TICK_WORK_MS", 300), "how long each run of 'tick' works, in ms")
	var leases int
	var window float64
	flag.IntVar(&leases, "leases", 0, "benchmark: hold this many Leases (<lease-name>-0 …) in this one process, print one JSON line and exit")
	flag.Float64Var(&window, "window", 30, "benchmark: seconds of renewals to measure with --leases")
	var shards int
	flag.StringVar(&coordinated, "coordinated", os.Getenv("COORDINATED_VERSION"), "coordinated leader election: publish a LeaseCandidate with this binary and emulation version and lead only when the apiserver names this candidate")
	flag.IntVar(&shards, "shards", 0, "campaign for every one of this many Leases, shards-0 …, in this one process (apps/example --shards)")
	flag.Parse()
	klog.SetOutput(os.Stderr)
	klog.LogToStderr(true)
	if id == "" {
		fmt.Fprintln(os.Stderr, "--id (or POD_NAME) is required")
		os.Exit(2)
	}
	if lossPolicy != "exit" && lossPolicy != "rejoin" {
		fmt.Fprintf(os.Stderr, "--loss-policy must be exit or rejoin, got %q\n", lossPolicy)
		os.Exit(2)
	}
	log := &eventLog{id: id}

	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot load kubeconfig %q: %v\n", kubeconfig, err)
		os.Exit(2)
	}
	// client-go's advice: a hung request must not outlive a term.
	config.Timeout = max(time.Second, seconds(renewDeadline)/2)
	if leases > 0 {
		runMany(config, id, namespace, leaseName, leases, seconds(window), seconds(leaseDuration), seconds(renewDeadline), seconds(retryPeriod))
		return
	}
	if shards > 0 {
		runShards(config, log, id, namespace, "shards", shards, seconds(leaseDuration), seconds(renewDeadline), seconds(retryPeriod))
		return
	}
	client := kubernetes.NewForConfigOrDie(config)

	lock := &renewalClock{Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: leaseName, Namespace: namespace},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}}
	health := leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)
	if coordinated != "" {
		// As kube-controller-manager does: the candidate is announced, then the elector only renews a Lease that names it.
		candidate, waiter, err := leaderelection.NewCandidate(client, namespace, id, leaseName, coordinated, coordinated, coordinationv1.OldestEmulationVersion)
		if err != nil {
			fmt.Fprintf(os.Stderr, "lease candidate: %v\n", err)
			os.Exit(2)
		}
		candidateCtx, stopCandidate := context.WithCancel(context.Background())
		defer stopCandidate()
		go candidate.Run(candidateCtx)
		waiter.WaitForCacheSync(candidateCtx.Done())
	}

	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		cancel()
	}()

	listener, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "health server: %v\n", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := health.Check(r); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	go func() { _ = http.Serve(listener, mux) }()

	var currentTerm *int32
	log.emit("ready", "", nil, map[string]any{"port": listener.Addr().(*net.TCPAddr).Port})
	// Run returns when leadership is lost; with --loss-policy rejoin we run for it again.
	for ctx.Err() == nil {
		runCtx, endRun := context.WithCancel(ctx)
		var elector *leaderelection.LeaderElector
		elector, err = leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   seconds(leaseDuration),
			RenewDeadline:   seconds(renewDeadline),
			RetryPeriod:     seconds(retryPeriod),
			ReleaseOnCancel: true,
			Coordinated:     coordinated != "",
			WatchDog:        health,
			Name:            leaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(termCtx context.Context) {
					record, _, err := lock.Get(termCtx)
					var term int32
					if err == nil {
						term = int32(record.LeaderTransitions)
					}
					currentTerm = &term
					log.emit("started-leading", id, &term, nil)
					if schedule != "" {
						go runTicks(termCtx, log, id, &term, time.Duration(tickWorkMs)*time.Millisecond)
					}
					ticker := time.NewTicker(100 * time.Millisecond)
					defer ticker.Stop()
					pass := 0
					for {
						// As apps/example's 'valid' style: the time is taken before the check, and the
						// check is the clock, not only the context.
						at := time.Now()
						if termCtx.Err() != nil {
							return
						}
						// IsLeader: client-go has not yet seen the Lease name someone else.
						if !elector.IsLeader() || !lock.validFor(seconds(renewDeadline)) {
							// Validity only goes one way: end this run (releasing if we still can).
							endRun()
							return
						}
						pass++
						log.emitAt(at, "work", id, &term, map[string]any{"pass": pass, "style": "valid"})
						select {
						case <-termCtx.Done():
							return
						case <-ticker.C:
						}
					}
				},
				OnStoppedLeading: func() {
					log.emit("stopped-leading", "", currentTerm, nil)
				},
				OnNewLeader: func(identity string) {
					log.emit("new-leader", identity, nil, nil)
				},
			},
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "leader election: %v\n", err)
			os.Exit(2)
		}
		health.SetLeaderElection(elector) // as RunOrDie does
		elector.Run(runCtx)
		endRun()
		if lossPolicy == "exit" {
			break
		}
	}
}
