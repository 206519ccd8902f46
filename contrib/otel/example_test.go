package redsyncotel_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	goredislib "github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/quorumlock/redsync"
	redsyncotel "github.com/quorumlock/redsync/contrib/otel"
	"github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

func Example() {
	// Three Redis servers (embedded here).
	var pools []redis.Pool
	for i := 0; i < 3; i++ {
		server := miniredis.NewMiniRedis()
		if err := server.Start(); err != nil {
			panic(err)
		}
		defer server.Close()
		client := goredislib.NewClient(&goredislib.Options{Addr: server.Addr()})
		defer client.Close()
		pools = append(pools, goredis.NewPool(client))
	}

	// Spans go to a recorder here; use an exporter of your own (OTLP,
	// stdout) and a MeterProvider with a reader in a service.
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())
	mp := sdkmetric.NewMeterProvider()
	defer mp.Shutdown(context.Background())

	obs, err := redsyncotel.New(redsyncotel.WithTracerProvider(tp), redsyncotel.WithMeterProvider(mp))
	if err != nil {
		panic(err)
	}
	rs := redsync.New(pools...)
	rs.SetObserver(obs)

	ctx := context.Background()
	holder := rs.NewMutex("orders")
	if err := holder.LockContext(ctx); err != nil {
		panic(err)
	}
	_ = rs.NewMutex("orders").TryLockContext(ctx) // taken
	if _, err := holder.UnlockContext(ctx); err != nil {
		panic(err)
	}
	rs.Wait()

	for _, span := range spans.Ended() {
		var outcome string
		for _, a := range span.Attributes() {
			if a.Key == redsyncotel.OutcomeKey {
				outcome = a.Value.AsString()
			}
		}
		fmt.Println(span.Name(), outcome, span.Status().Code)
	}
	// Output:
	// redsync.lock ok Unset
	// redsync.lock taken Error
	// redsync.unlock ok Unset
}
