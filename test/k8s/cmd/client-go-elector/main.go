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
	"sync"
	"syscall"
	"time"

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
	line := map[string]any{
		"time":   time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00"),
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

func seconds(value float64) time.Duration { return time.Duration(value * float64(time.Second)) }

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func main() {
	var kubeconfig, id, leaseName, namespace string
	var port int
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
	flag.Parse()
	klog.SetOutput(os.Stderr)
	klog.LogToStderr(true)
	if id == "" {
		fmt.Fprintln(os.Stderr, "--id (or POD_NAME) is required")
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
	client := kubernetes.NewForConfigOrDie(config)

	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: leaseName, Namespace: namespace},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	health := leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)

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
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   seconds(leaseDuration),
		RenewDeadline:   seconds(renewDeadline),
		RetryPeriod:     seconds(retryPeriod),
		ReleaseOnCancel: true,
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
				ticker := time.NewTicker(100 * time.Millisecond)
				defer ticker.Stop()
				pass := 0
				for {
					if termCtx.Err() != nil {
						return
					}
					pass++
					log.emit("work", id, &term, map[string]any{"pass": pass})
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
}
