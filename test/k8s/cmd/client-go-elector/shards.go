package main

// The election-set benchmark's client-go side: N leader elections on Leases <prefix>-0 …
// <prefix>-(N-1) in one process, every replica campaigning for every one of them, as a client-go
// user who splits work over Leases writes it (client-go has no way to share them out). It writes the
// same lines as apps/example --shards N: started-leading, work and stopped-leading with "election".

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

func runShards(config *rest.Config, log *eventLog, id, namespace, prefix string, count int, leaseDuration, renewDeadline, retryPeriod time.Duration) {
	// Default client-side throttling (5 requests a second) would starve N electors; raised as controller-runtime users do.
	config.QPS = 1e6
	config.Burst = 1e6
	client := kubernetes.NewForConfigOrDie(config)
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		cancel()
	}()
	log.emit("ready", "", nil, map[string]any{"port": 0})
	var done sync.WaitGroup
	for i := 0; i < count; i++ {
		election := fmt.Sprintf("%s/%d", prefix, i)
		lock := &renewalClock{Interface: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i), Namespace: namespace},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: id},
		}}
		done.Add(1)
		go func() {
			defer done.Done()
			// Run returns when leadership is lost: campaign again until the process stops.
			for ctx.Err() == nil {
				var term int32
				var elector *leaderelection.LeaderElector
				elector, _ = leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
					Lock: lock, LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod, ReleaseOnCancel: true,
					Callbacks: leaderelection.LeaderCallbacks{
						OnStartedLeading: func(termCtx context.Context) {
							if record, _, err := lock.Get(termCtx); err == nil {
								term = int32(record.LeaderTransitions)
							}
							log.emit("started-leading", id, &term, map[string]any{"election": election})
							ticker := time.NewTicker(100 * time.Millisecond)
							defer ticker.Stop()
							for {
								at := time.Now()
								if termCtx.Err() != nil || !elector.IsLeader() || !lock.validFor(renewDeadline) {
									return
								}
								log.emitAt(at, "work", id, &term, map[string]any{"election": election})
								select {
								case <-termCtx.Done():
									return
								case <-ticker.C:
								}
							}
						},
						OnStoppedLeading: func() {
							log.emit("stopped-leading", "", &term, map[string]any{"election": election})
						},
					},
				})
				elector.Run(ctx)
			}
		}()
	}
	done.Wait()
}
