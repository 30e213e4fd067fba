package lock_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/lock"
)

func Example() {
	addr, stop := kvtest.ExampleServer() // a throwaway local server
	defer stop()
	client, _ := keyvalue.Open(keyvalue.Config{Addrs: []string{addr}})
	defer client.Close()
	ctx := context.Background()

	locks := lock.New(client, lock.Options{TTL: 10 * time.Second})
	mu, _ := locks.Mutex("nightly-import")

	first, _ := mu.Lock(ctx)
	if _, err := mu.TryLock(ctx); err != nil {
		fmt.Println("second try:", err)
	}

	got := make(chan int64)
	go func() {
		// Waits in BLPOP on the server; the release hands the lock over.
		second, err := mu.Lock(ctx)
		if err != nil {
			log.Fatal(err)
		}
		got <- second.Token()
		_ = second.Unlock(ctx)
	}()
	time.Sleep(50 * time.Millisecond)
	_ = first.Unlock(ctx)
	fmt.Println("fencing tokens increase:", first.Token() < <-got)
	// Output:
	// second try: lock nightly-import: held by another owner
	// fencing tokens increase: true
}
