package lock_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/localserver"
	"github.com/keyvalue-go/keyvalue/lock"
)

func Example() {
	dir, _ := os.MkdirTemp("", "keyvalue-example-")
	defer os.RemoveAll(dir)
	srv, err := localserver.Start(localserver.Options{Dir: dir, Name: "example"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()
	client, _ := keyvalue.Open(keyvalue.Config{Addrs: []string{srv.Addr()}})
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
