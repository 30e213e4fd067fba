package keyvalue_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyvalue-go/keyvalue"
)

func ExampleLoadURL() {
	var cfg keyvalue.Config
	err := keyvalue.LoadURL("rediss+sentinel://app:secret@10.0.0.1,10.0.0.2:26380/cache/2?tls_ca_file=/run/tls/ca.crt&dial_timeout=2s", &cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg)
	fmt.Println(cfg.TLS.CAFile, cfg.DialTimeout)
	// Output:
	// sentinel cache via 10.0.0.1:26379,10.0.0.2:26380 db=2 tls=on user=app
	// /run/tls/ca.crt 2s
}

func ExampleOpen() {
	// Open validates the configuration and returns at once: no dial yet.
	client, err := keyvalue.Open(keyvalue.Config{
		Addrs:      []string{"127.0.0.1:1"}, // nothing listens on port 1
		ClientName: "example",
		Retry:      keyvalue.RetryConfig{MaxAttempts: 2, Base: time.Millisecond},
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	// The first command dials, retrying with backoff; the error says why it failed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = client.Do(ctx, client.B().Set().Key("greeting").Value("hello").Build()).Error()
	fmt.Println(errors.Is(err, keyvalue.ErrUnreachable))
	var ce *keyvalue.ConnectError
	if errors.As(err, &ce) {
		fmt.Println(ce.Attempts, ce.Hint)
	}
	// Output:
	// true
	// 2 nothing listens there: is the server running, and are host and port right?
}

func ExampleConfig_Normalize() {
	_, err := keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: []string{"10.0.0.1:7000"}, DB: 3}.Normalize()
	fmt.Println(err)
	// Output:
	// keyvalue: config db: must be 0 in cluster mode (a cluster has only database 0), got 3
}
