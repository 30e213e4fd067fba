package lock_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/lock"
)

func Example() {
	// The server comes from KEYVALUE_URL (or KEYVALUE_CONFIG, KEYVALUE_*).
	var cfg keyvalue.Config
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()

	locks := lock.New(client, lock.Options{TTL: 10 * time.Second})
	mu, err := locks.Mutex("nightly-import")
	if err != nil {
		log.Fatal(err)
	}

	first, err := mu.Lock(ctx)
	if err != nil {
		log.Fatal(err)
	}
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
		if err := second.Unlock(ctx); err != nil {
			log.Fatal(err)
		}
		got <- second.Token()
	}()
	time.Sleep(50 * time.Millisecond)
	if err := first.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("fencing tokens increase:", first.Token() < <-got)
	// Output:
	// second try: lock nightly-import: held by another owner
	// fencing tokens increase: true
}
